import ConvLabCore

/// The small-batch kernel of `FullyConnectedPlan`: Y[n][k] = Σ_f X[n][f]·W[k][f], both operands read in place along
/// their contiguous rows. A block of 4 rows of W and 4 images keeps 16 vector accumulators (one per output, lane j
/// summing the features ≡ j mod 16) and needs 8 loads per 16 FMAs; W's 4 rows stay in L1 while every image passes, so
/// W streams from memory once. A GEMM would first pack W (the packing pass and its strided reads cost more than the
/// product when there are few images: 0.8 ms for MobileNetV2's 1280→1000 classifier at batch 1, oneDNN 0.1 ms).
/// Each output's rounding is fixed by its lane sums and a fixed-order horizontal sum, whatever the task split.
enum FullyConnectedKernel {
    /// Each lane sums ⌈f/16⌉ products; the 16 lane sums and the scalar tail are then added in sequence.
    static func errorBound(features f: Int) -> Double {
        blockedDotProductErrorBound(terms: f, blockTerms: (f + 15) / 16, partials: 16 + f % 16)
    }

    static func typicalError(features f: Int) -> Double {
        TypicalError.dotProduct(terms: f, blockTerms: (f + 15) / 16, partials: 16 + f % 16)
    }

    /// Outputs k in `rows`, every image: y[n·ldy + k].
    static func run(x: UnsafePointer<Float>, images: Int, w: UnsafePointer<Float>, rows: Range<Int>, features f: Int,
                    y: UnsafeMutablePointer<Float>, ldy: Int) {
        var k0 = rows.lowerBound
        while k0 < rows.upperBound {
            let kc = min(4, rows.upperBound - k0)
            var n0 = 0
            while n0 < images {
                let nc = min(4, images - n0)
                block(x: x, n0: n0, nc: nc, w: w, k0: k0, kc: kc, f: f, y: y, ldy: ldy)
                n0 += 4
            }
            k0 += 4
        }
    }

    /// One 4×4 block of outputs; missing rows or images repeat the last real one and are not stored.
    @inline(__always)
    private static func block(x: UnsafePointer<Float>, n0: Int, nc: Int, w: UnsafePointer<Float>, k0: Int, kc: Int,
                              f: Int, y: UnsafeMutablePointer<Float>, ldy: Int) {
        let w0 = w + k0 * f, w1 = w + (k0 + min(1, kc - 1)) * f
        let w2 = w + (k0 + min(2, kc - 1)) * f, w3 = w + (k0 + min(3, kc - 1)) * f
        let x0 = x + n0 * f, x1 = x + (n0 + min(1, nc - 1)) * f
        let x2 = x + (n0 + min(2, nc - 1)) * f, x3 = x + (n0 + min(3, nc - 1)) * f
        var a00 = SIMD16<Float>(), a01 = SIMD16<Float>(), a02 = SIMD16<Float>(), a03 = SIMD16<Float>()
        var a10 = SIMD16<Float>(), a11 = SIMD16<Float>(), a12 = SIMD16<Float>(), a13 = SIMD16<Float>()
        var a20 = SIMD16<Float>(), a21 = SIMD16<Float>(), a22 = SIMD16<Float>(), a23 = SIMD16<Float>()
        var a30 = SIMD16<Float>(), a31 = SIMD16<Float>(), a32 = SIMD16<Float>(), a33 = SIMD16<Float>()
        let full = f / 16 * 16
        var p = 0
        while p < full {
            let v0 = loadVector(x0 + p), v1 = loadVector(x1 + p), v2 = loadVector(x2 + p), v3 = loadVector(x3 + p)
            let r0 = loadVector(w0 + p)
            a00.addProduct(r0, v0); a01.addProduct(r0, v1); a02.addProduct(r0, v2); a03.addProduct(r0, v3)
            let r1 = loadVector(w1 + p)
            a10.addProduct(r1, v0); a11.addProduct(r1, v1); a12.addProduct(r1, v2); a13.addProduct(r1, v3)
            let r2 = loadVector(w2 + p)
            a20.addProduct(r2, v0); a21.addProduct(r2, v1); a22.addProduct(r2, v2); a23.addProduct(r2, v3)
            let r3 = loadVector(w3 + p)
            a30.addProduct(r3, v0); a31.addProduct(r3, v1); a32.addProduct(r3, v2); a33.addProduct(r3, v3)
            p += 16
        }
        func finish(_ a: SIMD16<Float>, _ i: Int, _ j: Int, _ wi: UnsafePointer<Float>, _ xj: UnsafePointer<Float>) {
            guard i < kc, j < nc else { return }
            var total = horizontalSum(a)
            for q in full..<f { total = total.addingProduct(wi[q], xj[q]) }
            y[(n0 + j) * ldy + k0 + i] = total
        }
        finish(a00, 0, 0, w0, x0); finish(a01, 0, 1, w0, x1); finish(a02, 0, 2, w0, x2); finish(a03, 0, 3, w0, x3)
        finish(a10, 1, 0, w1, x0); finish(a11, 1, 1, w1, x1); finish(a12, 1, 2, w1, x2); finish(a13, 1, 3, w1, x3)
        finish(a20, 2, 0, w2, x0); finish(a21, 2, 1, w2, x1); finish(a22, 2, 2, w2, x2); finish(a23, 2, 3, w2, x3)
        finish(a30, 3, 0, w3, x0); finish(a31, 3, 1, w3, x1); finish(a32, 3, 2, w3, x2); finish(a33, 3, 3, w3, x3)
    }
}

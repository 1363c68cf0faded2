/// 16×16 float32 transpose in registers. Row-major element index 16·r + c has bits (r₃r₂r₁r₀ c₃c₂c₁c₀); transposing
/// rotates them by four. One "unzip" — even and odd halves of two concatenated vectors, for all eight pairs —
/// rotates the index of the 256 elements right by one bit, so four unzips transpose (64 `vpermt2ps` with AVX-512,
/// ~11 ns per block here, against 256 strided scalar stores). Used to move data between NCHW rows and the
/// 16-channel blocks the Winograd transforms work on, and by the native GEMM to pack Bᵀ.
package enum Transpose16 {
    package typealias Vector = SIMD16<Float>

    @inlinable @inline(__always) package static func unzip(_ a: Vector, _ b: Vector) -> (Vector, Vector) {
        (evenLanes(a, b), oddLanes(a, b))
    }

    /// Writes dst[c·dstStride + r] = src[r·srcStride + c] for r, c < 16 (strides in floats). The offsets use
    /// wrapping multiplication: callers pass strides of real buffers, and the overflow checks' 30 multiplications
    /// and branches were a visible share of the depthwise plan's transposes.
    @inlinable @inline(__always)
    package static func transpose(_ s: UnsafePointer<Float>, stride ss: Int, into d: UnsafeMutablePointer<Float>, stride ds: Int) {
        transpose(s, stride: ss, rows: 16, into: d, stride: ds)
    }

    /// `transpose` of a block whose rows from `rows` on are zero and not read (a 3×3 weight gradient's 9 tap vectors:
    /// no zeroed copy on the stack first), storing only the first `lastColumn` floats of the last column. Columns are
    /// stored in order, so with `ds` < 16 each column's tail is overwritten by the next column: a [16][rows] run is
    /// written whole and exactly when `lastColumn` = `ds` ≥ 8. With `rows` a constant after inlining, the checks fold.
    @inlinable @inline(__always)
    package static func transpose(_ s: UnsafePointer<Float>, stride ss: Int, rows: Int, into d: UnsafeMutablePointer<Float>,
                                  stride ds: Int, lastColumn: Int = 16) {
        @inline(__always) func row(_ i: Int) -> Vector { i < rows ? loadVector(s + i &* ss) : Vector() }
        var (r0, r1, r2, r3) = (row(0), row(1), row(2), row(3))
        var (r4, r5, r6, r7) = (row(4), row(5), row(6), row(7))
        var (r8, r9, r10, r11) = (row(8), row(9), row(10), row(11))
        var (r12, r13, r14, r15) = (row(12), row(13), row(14), row(15))
        for _ in 0..<4 {
            let (a0, b0) = unzip(r0, r1), (a1, b1) = unzip(r2, r3), (a2, b2) = unzip(r4, r5), (a3, b3) = unzip(r6, r7)
            let (a4, b4) = unzip(r8, r9), (a5, b5) = unzip(r10, r11), (a6, b6) = unzip(r12, r13)
            let (a7, b7) = unzip(r14, r15)
            (r0, r1, r2, r3, r4, r5, r6, r7) = (a0, a1, a2, a3, a4, a5, a6, a7)
            (r8, r9, r10, r11, r12, r13, r14, r15) = (b0, b1, b2, b3, b4, b5, b6, b7)
        }
        storeVector(r0, d); storeVector(r1, d + ds); storeVector(r2, d + 2 &* ds); storeVector(r3, d + 3 &* ds)
        storeVector(r4, d + 4 &* ds); storeVector(r5, d + 5 &* ds); storeVector(r6, d + 6 &* ds); storeVector(r7, d + 7 &* ds)
        storeVector(r8, d + 8 &* ds); storeVector(r9, d + 9 &* ds); storeVector(r10, d + 10 &* ds); storeVector(r11, d + 11 &* ds)
        storeVector(r12, d + 12 &* ds); storeVector(r13, d + 13 &* ds); storeVector(r14, d + 14 &* ds)
        if lastColumn >= 16 {
            storeVector(r15, d + 15 &* ds)
        } else {
            for lane in 0..<lastColumn { d[15 &* ds &+ lane] = r15[lane] }
        }
    }
}

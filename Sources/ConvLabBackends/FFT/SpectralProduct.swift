/// The per-bin products of FFT convolution: for every frequency bin b, Y_b = W_b · X_b with W_b the K×C matrix of
/// (conjugated, pre-scaled) filter spectra and X_b the C×M matrix of input spectra (M = images × tiles). That is one
/// small complex GEMM per bin; here they run as one batched GEMM with 16 consecutive bins in the SIMD lanes, so
/// each register holds the same matrix entry of 16 bins (NNPACK's "tuple GEMM"). Data layout, planar:
///     W[binBlock][k][c][16], X[binBlock][c][m][16], Y[binBlock][k][m][16].
///
/// Two arithmetic forms, selectable because they trade differently here:
/// - `fourMultiplication`: yr = Σ wr·xr − Σ wi·xi, yi = Σ wr·xi + wi·xr (4 FMAs per complex multiply-add);
/// - `gauss`: Gauss's 3-multiplication product. With per-filter planes wr, wr + wi, wi − wr (plan time) and
///   per-input planes xr + xi, xi, xr: t1 = wr(xr + xi), t2 = xi(wr + wi), t3 = xr(wi − wr),
///   yr = Σt1 − Σt2, yi = Σt1 + Σt3 (3 FMAs, but 3 planes to load instead of 2).
public enum ComplexProduct: String, CaseIterable, Sendable, Codable {
    case fourMultiplication = "4m"
    case gauss = "3m"

    /// Planes stored per complex matrix entry.
    var planes: Int { self == .gauss ? 3 : 2 }
}

enum SpectralProduct {
    typealias Vector = SIMD16<Float>

    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> Vector {
        UnsafeRawPointer(p).load(as: Vector.self)
    }

    @inline(__always) static func store(_ v: Vector, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vector.self)
    }

    /// Output channels per register block: 4, or 1 for narrow groups (depthwise, single-channel images) where
    /// padding to 4 would stream three zero filter spectra for every real one.
    static func blockRows(outputChannelsPerGroup: Int) -> Int { outputChannelsPerGroup >= 4 ? 4 : 1 }

    /// Y for one bin block: `kBlocks` blocks of `rows` (4 or 1) output channels × all `m` columns, summing over `c`
    /// channels. Plane p of a matrix is at offset p·planeStride; entries are 16 floats apart in row-major order.
    static func multiply(form: ComplexProduct, rows: Int, w: UnsafePointer<Float>, wPlaneStride: Int,
                         x: UnsafePointer<Float>, xPlaneStride: Int,
                         y: UnsafeMutablePointer<Float>, yPlaneStride: Int,
                         kBlocks: Int, channels c: Int, columns m: Int) {
        if rows == 1 {
            for k in 0..<kBlocks {
                for column in 0..<m {
                    single(form: form, w: w + k * c * 16, ws: wPlaneStride, x: x + column * 16, xs: xPlaneStride,
                           channels: c, columns: m, y: y + (k * m + column) * 16, ys: yPlaneStride)
                }
            }
            return
        }
        for kb in 0..<kBlocks {
            let wRow = w + kb * 4 * c * 16
            let yRow = y + kb * 4 * m * 16
            var column = 0
            while column + 2 <= m {
                if form == .gauss {
                    gauss4x2(w: wRow, ws: wPlaneStride, x: x + column * 16, xs: xPlaneStride, channels: c, columns: m,
                             y: yRow + column * 16, ys: yPlaneStride)
                } else {
                    fourM4x2(w: wRow, ws: wPlaneStride, x: x + column * 16, xs: xPlaneStride, channels: c, columns: m,
                             y: yRow + column * 16, ys: yPlaneStride)
                }
                column += 2
            }
            if column < m {
                if form == .gauss {
                    gauss4x1(w: wRow, ws: wPlaneStride, x: x + column * 16, xs: xPlaneStride, channels: c, columns: m,
                             y: yRow + column * 16, ys: yPlaneStride)
                } else {
                    fourM4x1(w: wRow, ws: wPlaneStride, x: x + column * 16, xs: xPlaneStride, channels: c, columns: m,
                             y: yRow + column * 16, ys: yPlaneStride)
                }
            }
        }
    }

    /// 4 output channels × 2 columns, 4-multiplication form. The real part's subtraction is kept out of the loop:
    /// yr = Σ wr·xr − Σ wi·xi in two accumulators, so every operation in the loop is a plain FMA (a negated operand
    /// costs LLVM an extra xor per use here). 24 accumulators, 4 + 8 loads per 32 FMAs.
    static func fourM4x2(w: UnsafePointer<Float>, ws: Int, x: UnsafePointer<Float>, xs: Int, channels: Int,
                         columns: Int, y: UnsafeMutablePointer<Float>, ys: Int) {
        var p00 = Vector(), p01 = Vector(), p10 = Vector(), p11 = Vector()
        var p20 = Vector(), p21 = Vector(), p30 = Vector(), p31 = Vector()
        var m00 = Vector(), m01 = Vector(), m10 = Vector(), m11 = Vector()
        var m20 = Vector(), m21 = Vector(), m30 = Vector(), m31 = Vector()
        var i00 = Vector(), i01 = Vector(), i10 = Vector(), i11 = Vector()
        var i20 = Vector(), i21 = Vector(), i30 = Vector(), i31 = Vector()
        let rowStride = channels * 16
        for c in 0..<channels {
            let xp = x + c * columns * 16
            let xr0 = load(xp), xr1 = load(xp + 16), xi0 = load(xp + xs), xi1 = load(xp + xs + 16)
            let wp = w + c * 16
            var wr = load(wp), wi = load(wp + ws)
            p00.addProduct(wr, xr0); m00.addProduct(wi, xi0); i00.addProduct(wr, xi0); i00.addProduct(wi, xr0)
            p01.addProduct(wr, xr1); m01.addProduct(wi, xi1); i01.addProduct(wr, xi1); i01.addProduct(wi, xr1)
            wr = load(wp + rowStride); wi = load(wp + rowStride + ws)
            p10.addProduct(wr, xr0); m10.addProduct(wi, xi0); i10.addProduct(wr, xi0); i10.addProduct(wi, xr0)
            p11.addProduct(wr, xr1); m11.addProduct(wi, xi1); i11.addProduct(wr, xi1); i11.addProduct(wi, xr1)
            wr = load(wp + 2 * rowStride); wi = load(wp + 2 * rowStride + ws)
            p20.addProduct(wr, xr0); m20.addProduct(wi, xi0); i20.addProduct(wr, xi0); i20.addProduct(wi, xr0)
            p21.addProduct(wr, xr1); m21.addProduct(wi, xi1); i21.addProduct(wr, xi1); i21.addProduct(wi, xr1)
            wr = load(wp + 3 * rowStride); wi = load(wp + 3 * rowStride + ws)
            p30.addProduct(wr, xr0); m30.addProduct(wi, xi0); i30.addProduct(wr, xi0); i30.addProduct(wi, xr0)
            p31.addProduct(wr, xr1); m31.addProduct(wi, xi1); i31.addProduct(wr, xi1); i31.addProduct(wi, xr1)
        }
        let yRow = columns * 16
        store(p00 - m00, y); store(p01 - m01, y + 16); store(i00, y + ys); store(i01, y + ys + 16)
        store(p10 - m10, y + yRow); store(p11 - m11, y + yRow + 16)
        store(i10, y + yRow + ys); store(i11, y + yRow + ys + 16)
        store(p20 - m20, y + 2 * yRow); store(p21 - m21, y + 2 * yRow + 16)
        store(i20, y + 2 * yRow + ys); store(i21, y + 2 * yRow + ys + 16)
        store(p30 - m30, y + 3 * yRow); store(p31 - m31, y + 3 * yRow + 16)
        store(i30, y + 3 * yRow + ys); store(i31, y + 3 * yRow + ys + 16)
    }

    static func fourM4x1(w: UnsafePointer<Float>, ws: Int, x: UnsafePointer<Float>, xs: Int, channels: Int,
                         columns: Int, y: UnsafeMutablePointer<Float>, ys: Int) {
        var p0 = Vector(), p1 = Vector(), p2 = Vector(), p3 = Vector()
        var m0 = Vector(), m1 = Vector(), m2 = Vector(), m3 = Vector()
        var i0 = Vector(), i1 = Vector(), i2 = Vector(), i3 = Vector()
        let rowStride = channels * 16
        for c in 0..<channels {
            let xp = x + c * columns * 16
            let xr = load(xp), xi = load(xp + xs)
            let wp = w + c * 16
            var wr = load(wp), wi = load(wp + ws)
            p0.addProduct(wr, xr); m0.addProduct(wi, xi); i0.addProduct(wr, xi); i0.addProduct(wi, xr)
            wr = load(wp + rowStride); wi = load(wp + rowStride + ws)
            p1.addProduct(wr, xr); m1.addProduct(wi, xi); i1.addProduct(wr, xi); i1.addProduct(wi, xr)
            wr = load(wp + 2 * rowStride); wi = load(wp + 2 * rowStride + ws)
            p2.addProduct(wr, xr); m2.addProduct(wi, xi); i2.addProduct(wr, xi); i2.addProduct(wi, xr)
            wr = load(wp + 3 * rowStride); wi = load(wp + 3 * rowStride + ws)
            p3.addProduct(wr, xr); m3.addProduct(wi, xi); i3.addProduct(wr, xi); i3.addProduct(wi, xr)
        }
        let yRow = columns * 16
        store(p0 - m0, y); store(i0, y + ys); store(p1 - m1, y + yRow); store(i1, y + yRow + ys)
        store(p2 - m2, y + 2 * yRow); store(i2, y + 2 * yRow + ys)
        store(p3 - m3, y + 3 * yRow); store(i3, y + 3 * yRow + ys)
    }

    /// One output channel × one column, either form (for narrow groups; bandwidth-bound like any depthwise work).
    static func single(form: ComplexProduct, w: UnsafePointer<Float>, ws: Int, x: UnsafePointer<Float>, xs: Int,
                       channels: Int, columns: Int, y: UnsafeMutablePointer<Float>, ys: Int) {
        var a = Vector(), b = Vector(), i = Vector()
        for c in 0..<channels {
            let xp = x + c * columns * 16
            let wp = w + c * 16
            if form == .gauss {
                a.addProduct(load(wp), load(xp))
                b.addProduct(load(wp + ws), load(xp + xs))
                i.addProduct(load(wp + 2 * ws), load(xp + 2 * xs))
            } else {
                let (wr, wi, xr, xi) = (load(wp), load(wp + ws), load(xp), load(xp + xs))
                a.addProduct(wr, xr)
                b.addProduct(wi, xi)
                i.addProduct(wr, xi)
                i.addProduct(wi, xr)
            }
        }
        store(a - b, y)
        store(form == .gauss ? a + i : i, y + ys)
    }

    /// 4 output channels × 2 columns, Gauss form: 24 accumulators, 6 + 12 loads per 24 FMAs.
    static func gauss4x2(w: UnsafePointer<Float>, ws: Int, x: UnsafePointer<Float>, xs: Int, channels: Int,
                         columns: Int, y: UnsafeMutablePointer<Float>, ys: Int) {
        var a00 = Vector(), a01 = Vector(), a10 = Vector(), a11 = Vector()
        var a20 = Vector(), a21 = Vector(), a30 = Vector(), a31 = Vector()
        var b00 = Vector(), b01 = Vector(), b10 = Vector(), b11 = Vector()
        var b20 = Vector(), b21 = Vector(), b30 = Vector(), b31 = Vector()
        var c00 = Vector(), c01 = Vector(), c10 = Vector(), c11 = Vector()
        var c20 = Vector(), c21 = Vector(), c30 = Vector(), c31 = Vector()
        let rowStride = channels * 16
        for c in 0..<channels {
            // Input planes: 0 = xr + xi, 1 = xi, 2 = xr. Filter planes: 0 = wr, 1 = wr + wi, 2 = wi − wr.
            let xp = x + c * columns * 16
            let s0 = load(xp), s1 = load(xp + 16)
            let i0 = load(xp + xs), i1 = load(xp + xs + 16)
            let r0 = load(xp + 2 * xs), r1 = load(xp + 2 * xs + 16)
            var wp = w + c * 16
            var p = load(wp), q = load(wp + ws), d = load(wp + 2 * ws)
            a00.addProduct(p, s0); b00.addProduct(q, i0); c00.addProduct(d, r0)
            a01.addProduct(p, s1); b01.addProduct(q, i1); c01.addProduct(d, r1)
            wp += rowStride
            p = load(wp); q = load(wp + ws); d = load(wp + 2 * ws)
            a10.addProduct(p, s0); b10.addProduct(q, i0); c10.addProduct(d, r0)
            a11.addProduct(p, s1); b11.addProduct(q, i1); c11.addProduct(d, r1)
            wp += rowStride
            p = load(wp); q = load(wp + ws); d = load(wp + 2 * ws)
            a20.addProduct(p, s0); b20.addProduct(q, i0); c20.addProduct(d, r0)
            a21.addProduct(p, s1); b21.addProduct(q, i1); c21.addProduct(d, r1)
            wp += rowStride
            p = load(wp); q = load(wp + ws); d = load(wp + 2 * ws)
            a30.addProduct(p, s0); b30.addProduct(q, i0); c30.addProduct(d, r0)
            a31.addProduct(p, s1); b31.addProduct(q, i1); c31.addProduct(d, r1)
        }
        let yRow = columns * 16
        func put(_ a: Vector, _ b: Vector, _ c: Vector, _ target: UnsafeMutablePointer<Float>) {
            store(a - b, target)
            store(a + c, target + ys)
        }
        put(a00, b00, c00, y); put(a01, b01, c01, y + 16)
        put(a10, b10, c10, y + yRow); put(a11, b11, c11, y + yRow + 16)
        put(a20, b20, c20, y + 2 * yRow); put(a21, b21, c21, y + 2 * yRow + 16)
        put(a30, b30, c30, y + 3 * yRow); put(a31, b31, c31, y + 3 * yRow + 16)
    }

    static func gauss4x1(w: UnsafePointer<Float>, ws: Int, x: UnsafePointer<Float>, xs: Int, channels: Int,
                         columns: Int, y: UnsafeMutablePointer<Float>, ys: Int) {
        var a0 = Vector(), a1 = Vector(), a2 = Vector(), a3 = Vector()
        var b0 = Vector(), b1 = Vector(), b2 = Vector(), b3 = Vector()
        var c0 = Vector(), c1 = Vector(), c2 = Vector(), c3 = Vector()
        let rowStride = channels * 16
        for c in 0..<channels {
            let xp = x + c * columns * 16
            let s = load(xp), i = load(xp + xs), r = load(xp + 2 * xs)
            let wp = w + c * 16
            a0.addProduct(load(wp), s); b0.addProduct(load(wp + ws), i); c0.addProduct(load(wp + 2 * ws), r)
            let w1 = wp + rowStride
            a1.addProduct(load(w1), s); b1.addProduct(load(w1 + ws), i); c1.addProduct(load(w1 + 2 * ws), r)
            let w2 = w1 + rowStride
            a2.addProduct(load(w2), s); b2.addProduct(load(w2 + ws), i); c2.addProduct(load(w2 + 2 * ws), r)
            let w3 = w2 + rowStride
            a3.addProduct(load(w3), s); b3.addProduct(load(w3 + ws), i); c3.addProduct(load(w3 + 2 * ws), r)
        }
        let yRow = columns * 16
        store(a0 - b0, y); store(a0 + c0, y + ys)
        store(a1 - b1, y + yRow); store(a1 + c1, y + yRow + ys)
        store(a2 - b2, y + 2 * yRow); store(a2 + c2, y + 2 * yRow + ys)
        store(a3 - b3, y + 3 * yRow); store(a3 + c3, y + 3 * yRow + ys)
    }
}

import ConvLabCore

/// Register-blocked micro-kernels of the direct backend. Each accumulates, over the reduction index j = (c, r, s),
/// `blockChannels` output channels × 64 consecutive output positions: per j, four 16-float loads of input at
/// `input + tapOffsets[j]` and one broadcast weight per output channel, then one FMA per (channel, vector).
/// Built with `-target-cpu native` these are AVX-512 `vfmadd231ps` on zmm registers (check with objdump).
enum DirectKernels {
    typealias Vector = SIMD16<Float>

    /// 6 output channels × 64 positions: 24 accumulators, 10 loads per 24 FMAs.
    /// `weights` holds 6 floats per j; the result goes to `tile[channel · tileStride + position]`.
    static func accumulate6x64(input: UnsafePointer<Float>, tapOffsets: UnsafePointer<Int>, count: Int,
                               weights: UnsafePointer<Float>, tile: UnsafeMutablePointer<Float>, tileStride: Int) {
        var a00 = Vector(), a01 = Vector(), a02 = Vector(), a03 = Vector()
        var a10 = Vector(), a11 = Vector(), a12 = Vector(), a13 = Vector()
        var a20 = Vector(), a21 = Vector(), a22 = Vector(), a23 = Vector()
        var a30 = Vector(), a31 = Vector(), a32 = Vector(), a33 = Vector()
        var a40 = Vector(), a41 = Vector(), a42 = Vector(), a43 = Vector()
        var a50 = Vector(), a51 = Vector(), a52 = Vector(), a53 = Vector()
        var w = weights
        for j in 0..<count {
            let p = input + tapOffsets[j]
            let x0 = loadVector(p), x1 = loadVector(p + 16), x2 = loadVector(p + 32), x3 = loadVector(p + 48)
            var b = Vector(repeating: w[0])
            a00.addProduct(x0, b); a01.addProduct(x1, b); a02.addProduct(x2, b); a03.addProduct(x3, b)
            b = Vector(repeating: w[1])
            a10.addProduct(x0, b); a11.addProduct(x1, b); a12.addProduct(x2, b); a13.addProduct(x3, b)
            b = Vector(repeating: w[2])
            a20.addProduct(x0, b); a21.addProduct(x1, b); a22.addProduct(x2, b); a23.addProduct(x3, b)
            b = Vector(repeating: w[3])
            a30.addProduct(x0, b); a31.addProduct(x1, b); a32.addProduct(x2, b); a33.addProduct(x3, b)
            b = Vector(repeating: w[4])
            a40.addProduct(x0, b); a41.addProduct(x1, b); a42.addProduct(x2, b); a43.addProduct(x3, b)
            b = Vector(repeating: w[5])
            a50.addProduct(x0, b); a51.addProduct(x1, b); a52.addProduct(x2, b); a53.addProduct(x3, b)
            w += 6
        }
        storeRow(tile, a00, a01, a02, a03)
        storeRow(tile + tileStride, a10, a11, a12, a13)
        storeRow(tile + 2 * tileStride, a20, a21, a22, a23)
        storeRow(tile + 3 * tileStride, a30, a31, a32, a33)
        storeRow(tile + 4 * tileStride, a40, a41, a42, a43)
        storeRow(tile + 5 * tileStride, a50, a51, a52, a53)
    }

    /// 1 output channel × 64 positions, for depthwise and other narrow groups where 6-channel blocks would
    /// mostly multiply zeros. Load-bound (5 loads per 4 FMAs), as depthwise convolution is on any machine.
    static func accumulate1x64(input: UnsafePointer<Float>, tapOffsets: UnsafePointer<Int>, count: Int,
                               weights: UnsafePointer<Float>, tile: UnsafeMutablePointer<Float>, tileStride: Int) {
        var a0 = Vector(), a1 = Vector(), a2 = Vector(), a3 = Vector()
        for j in 0..<count {
            let p = input + tapOffsets[j]
            let b = Vector(repeating: weights[j])
            a0.addProduct(loadVector(p), b); a1.addProduct(loadVector(p + 16), b)
            a2.addProduct(loadVector(p + 32), b); a3.addProduct(loadVector(p + 48), b)
        }
        storeRow(tile, a0, a1, a2, a3)
    }

    @inline(__always)
    private static func storeRow(_ p: UnsafeMutablePointer<Float>, _ a: Vector, _ b: Vector, _ c: Vector,
                                 _ d: Vector) {
        storeVector(a, p); storeVector(b, p + 16); storeVector(c, p + 32); storeVector(d, p + 48)
    }
}

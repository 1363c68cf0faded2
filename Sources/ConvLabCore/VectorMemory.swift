/// Unaligned loads and stores of 16 floats for the SIMD kernels: `vmovups` on zmm when built with
/// `-target-cpu native`. Free functions, `@inlinable`, so kernels in other modules (the GEMM, the backends) get the
/// instruction inlined; a protocol-extension version was not inlined across modules (measured: a call per load,
/// 3× slower direct convolution).
@inlinable @inline(__always)
package func loadVector(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
}

@inlinable @inline(__always)
package func storeVector(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self)
}

/// The even lanes of a then those of b (and the odd ones): one two-source shuffle (`vpermt2ps`) each. Written as
/// element lists, which LLVM folds into that shuffle; the standard library's `SIMD32.evenHalf`/`oddHalf` compiled to
/// out-of-line calls passing vectors through memory (Swift 6.3), which made every 16×16 transpose ~8× slower and
/// cost a third of a 1×1 layer's time on 14² maps.
@inlinable @inline(__always)
package func evenLanes(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> {
    SIMD16(a[0], a[2], a[4], a[6], a[8], a[10], a[12], a[14], b[0], b[2], b[4], b[6], b[8], b[10], b[12], b[14])
}

@inlinable @inline(__always)
package func oddLanes(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> {
    SIMD16(a[1], a[3], a[5], a[7], a[9], a[11], a[13], a[15], b[1], b[3], b[5], b[7], b[9], b[11], b[13], b[15])
}

/// The sum of a vector's lanes in a fixed tree order, inlined: the standard library's generic `sum()` compiled to a
/// call (Swift 6.3), 24 of them per block of the backward-weights kernel.
@inlinable @inline(__always)
package func horizontalSum(_ v: SIMD16<Float>) -> Float {
    let eight = v.lowHalf + v.highHalf
    let four = eight.lowHalf + eight.highHalf
    let two = four.lowHalf + four.highHalf
    return two.x + two.y
}

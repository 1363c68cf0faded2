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

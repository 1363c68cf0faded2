/// Unaligned loads and stores of 16 floats, for the SIMD kernels (`vmovups` on zmm when built with
/// `-target-cpu native`). A type that runs such kernels conforms and calls `load(p)` / `store(v, p)`.
/// Inlinable so that kernels in other modules (the GEMM, the backends) get the instruction, not a call.
package protocol VectorMemory {}

extension VectorMemory {
    @inlinable @inline(__always)
    package static func load(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
    }

    @inlinable @inline(__always)
    package static func store(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self)
    }
}

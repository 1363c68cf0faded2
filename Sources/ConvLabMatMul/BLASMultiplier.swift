import CBLAS

/// SGEMM through OpenBLAS's CBLAS interface.
///
/// OpenBLAS is told to use one thread per call: convlab splits work over its own workers (so `--threads` means the
/// same for every backend and calls from several threads do not oversubscribe the cores).
struct BLASMultiplier: MatrixMultiplier {
    var name: String { "blas" }

    init() { Self.singleThreaded }

    private static let singleThreaded: Void = openblas_set_num_threads(1)

    func workspaceBytes(m: Int, n: Int, k: Int) -> Int { 0 }  // OpenBLAS packs into its own buffers

    func multiply(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                  c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool, workspace: UnsafeMutableRawBufferPointer) {
        guard m > 0 && n > 0 else { return }
        if k == 0 {
            if !accumulate { for row in 0..<m { (c + row * ldc).update(repeating: 0, count: n) } }
            return
        }
        // CBLAS takes 32-bit sizes; a dimension beyond that (possible only with memory limits raised far past RAM)
        // goes to the native engine rather than through a trapping conversion.
        guard [m, n, k, lda, ldb, ldc].allSatisfy({ $0 <= Int(Int32.max) }) else {
            NativeMultiplier().multiply(m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc,
                                        accumulate: accumulate, workspace: workspace)
            return
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), 1, a, Int32(lda),
                    b, Int32(ldb), accumulate ? 1 : 0, c, Int32(ldc))
    }

    func multiplyTransposedA(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>,
                             ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool,
                             workspace: UnsafeMutableRawBufferPointer) {
        guard m > 0 && n > 0 else { return }
        guard k > 0, [m, n, k, lda, ldb, ldc].allSatisfy({ $0 <= Int(Int32.max) }) else {
            NativeMultiplier().multiplyTransposedA(m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc,
                                                   accumulate: accumulate, workspace: workspace)
            return
        }
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), 1, a, Int32(lda),
                    b, Int32(ldb), accumulate ? 1 : 0, c, Int32(ldc))
    }

    func multiplyTransposedB(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>,
                             ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool,
                             workspace: UnsafeMutableRawBufferPointer) {
        guard m > 0 && n > 0 else { return }
        guard k > 0, [m, n, k, lda, ldb, ldc].allSatisfy({ $0 <= Int(Int32.max) }) else {
            NativeMultiplier().multiplyTransposedB(m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc,
                                                   accumulate: accumulate, workspace: workspace)
            return
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(k), 1, a, Int32(lda),
                    b, Int32(ldb), accumulate ? 1 : 0, c, Int32(ldc))
    }
}

import CBLAS

/// SGEMM through OpenBLAS's CBLAS interface.
///
/// OpenBLAS is told to use one thread per call: convlab splits work over its own workers (so `--threads` means the
/// same for every backend and calls from several threads do not oversubscribe the cores).
struct BLASMultiplier: MatrixMultiplier {
    var name: String { "blas" }

    init() { Self.singleThreaded }

    private static let singleThreaded: Void = openblas_set_num_threads(1)

    func workspaceBytes(m: Int, n: Int, k: Int) -> Int { 0 }

    func multiply(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                  c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool, workspace: UnsafeMutableRawPointer?) {
        guard m > 0 && n > 0 else { return }
        if k == 0 {
            if !accumulate { for row in 0..<m { (c + row * ldc).update(repeating: 0, count: n) } }
            return
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), 1, a, Int32(lda),
                    b, Int32(ldb), accumulate ? 1 : 0, c, Int32(ldc))
    }
}

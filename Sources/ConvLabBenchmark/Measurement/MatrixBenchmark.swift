import ConvLabCore
import ConvLabMatMul

/// Times one matrix product on an engine and measures its error on sampled rows against a float64 product.
/// Error is normalised like the convolution checker's: |c − c64| / Σ|a|·|b| per element.
public struct MatrixBenchmark: Codable, Sendable {
    public var engine: String
    public var m, n, k, threads: Int
    public var msMedian: Double
    public var msMin: Double
    /// 2·m·n·k / median time.
    public var gflops: Double
    public var maxRelativeError: Double?
    public var workspaceBytes: Int

    public static func run(m: Int, n: Int, k: Int, engine: MatrixEngine, threads: Int, checkRows: Int = 64,
                           seed: UInt64 = 1, timing: TimingPolicy = TimingPolicy(),
                           limits: ResourceLimits = .default) throws -> MatrixBenchmark {
        for (name, value) in [("m", m), ("n", n), ("k", k)] where value < 1 {
            throw ConvLabError.invalidArgument(name: name, reason: "must be at least 1 (got \(value))")
        }
        try Parallel.validate(threads: threads)
        guard checkRows >= 0 else {
            throw ConvLabError.invalidArgument(name: "check-rows", reason: "must not be negative (got \(checkRows))")
        }
        let multiplier = engine.makeMultiplier()
        // A, B and C together, before any of them is allocated: each alone may fit where the three do not.
        let what = "the \(m)x\(k) · \(k)x\(n) product's matrices"
        guard let ak = CheckedArithmetic.product(m, k), let kn = CheckedArithmetic.product(k, n),
              let mn = CheckedArithmetic.product(m, n), let elements = CheckedArithmetic.sum(ak, kn, mn),
              let bytes = CheckedArithmetic.product(elements, 4) else { throw ConvLabError.sizeOverflow(what: what) }
        try ResourceLimits.check(what, bytes: bytes, limit: limits.maxTensorBytes)
        let workspaceBytes = multiplier.parallelWorkspaceBytes(m: m, n: n, k: k, threads: threads)
        try ResourceLimits.check("the product's workspace", bytes: workspaceBytes, limit: limits.maxWorkspaceBytes)
        let a = try Tensor<Float>.random(shape: [m, k], seed: seed)
        let b = try Tensor<Float>.random(shape: [k, n], seed: seed &+ 1)
        var c = try Tensor<Float>(shape: [m, n])
        let workspace = try Workspace(byteCount: workspaceBytes, limits: limits)
        let result = a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                c.withUnsafeMutableBufferPointer { c in
                    Timing.measure(policy: timing) {
                        multiplier.multiplyParallel(m: m, n: n, k: k, a: a.baseAddress!, lda: k, b: b.baseAddress!,
                                                    ldb: n, c: c.baseAddress!, ldc: n, threads: threads,
                                                    workspace: workspace.buffer)
                    }
                }
            }
        }
        var maxError: Double?
        if checkRows > 0 {
            let (av, bv, cv) = (a.scalars, b.scalars, c.scalars)
            var generator = SeededGenerator(seed: seed &+ 2)
            var worst = 0.0
            for _ in 0..<min(checkRows, m) {
                let i = Int.random(in: 0..<m, using: &generator)
                for j in 0..<n {
                    var exact = 0.0
                    var scale = 0.0
                    for p in 0..<k {
                        let product = Double(av[i * k + p]) * Double(bv[p * n + j])
                        exact += product
                        scale += abs(product)
                    }
                    if scale > 0 { worst = max(worst, abs(Double(cv[i * n + j]) - exact) / scale) }
                }
            }
            maxError = worst
        }
        return MatrixBenchmark(engine: engine.description, m: m, n: n, k: k, threads: threads,
                               msMedian: result.median * 1e3, msMin: result.minimum * 1e3,
                               gflops: 2 * Double(m) * Double(n) * Double(k) / result.median / 1e9,
                               maxRelativeError: maxError, workspaceBytes: workspace.byteCount)
    }
}

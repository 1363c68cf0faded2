import ConvLabCore
import ConvLabMatMul

/// Settings every backend honours.
public struct PlanOptions: Sendable {
    /// Worker threads used by `execute` (through `Parallel.forEach`), 1...`Parallel.maxThreads`. Default: all cores.
    public var threads: Int
    /// Memory ceilings; a plan whose workspace would exceed `limits.maxWorkspaceBytes` is refused at plan time.
    public var limits: ResourceLimits
    /// The matrix-multiply engine used by backends with a GEMM stage.
    public var matrixEngine: MatrixEngine
    /// Plans whose error bound exceeds `accuracy.ceiling` are refused at plan time unless `accuracy.allowsInaccurate`.
    public var accuracy: AccuracyCeiling

    public init(threads: Int = Parallel.defaultThreadCount, limits: ResourceLimits = .default,
                matrixEngine: MatrixEngine = .native, accuracy: AccuracyCeiling = .default) {
        self.threads = threads
        self.limits = limits
        self.matrixEngine = matrixEngine
        self.accuracy = accuracy
    }

    /// Throws for a thread count outside 1...`Parallel.maxThreads`; every backend calls this before sizing anything.
    public func validate() throws {
        try Parallel.validate(threads: threads)
        try accuracy.validate()
    }
}

import ConvLabCore
import ConvLabMatMul

/// Whether a backend can run a descriptor, and if not, why (a sentence the CLI prints as is).
public enum SupportStatus: Hashable, Sendable {
    case supported
    case unsupported(String)

    public var isSupported: Bool { self == .supported }
}

/// Settings every backend honours.
public struct PlanOptions: Sendable {
    /// Worker threads used by `execute` (through `Parallel.forEach`). Default: all cores.
    public var threads: Int
    /// Memory ceilings; a plan whose workspace would exceed `limits.maxWorkspaceBytes` is refused at plan time.
    public var limits: ResourceLimits
    /// The matrix-multiply engine used by backends with a GEMM stage.
    public var matrixEngine: MatrixEngine

    public init(threads: Int = Parallel.defaultThreadCount, limits: ResourceLimits = .default,
                matrixEngine: MatrixEngine = .native) {
        self.threads = threads
        self.limits = limits
        self.matrixEngine = matrixEngine
    }
}

/// A convolution algorithm. Like a oneDNN implementation it says whether it applies to a problem, and like an FFTW
/// planner it does its expensive preparation once: `makePlan` transforms the weights, sizes the workspace and picks
/// blocking; the returned plan then executes cheaply, any number of times, from any number of threads.
public protocol Convolution: Sendable {
    /// The name used on the command line and in CSV output, e.g. `im2col`.
    var name: String { get }

    /// `.supported`, or `.unsupported(reason)` for features this backend lacks (e.g. stride > 1 for Winograd).
    func support(for descriptor: ConvolutionDescriptor) -> SupportStatus

    /// The largest relative error this backend should make on `descriptor`, in the accuracy checker's
    /// normalisation |y − y_ref| / Σ|w|·|x|. Known before planning, so a selector can filter by accuracy.
    func expectedErrorBound(for descriptor: ConvolutionDescriptor) -> Double

    /// Prepares an execution plan: validates `weights` (K×C/G×R×S), transforms them, sizes the workspace.
    /// Throws `.unsupported` for descriptors `support(for:)` rejects and `.memoryLimitExceeded` when the
    /// workspace would not fit under `options.limits`.
    func makePlan(descriptor: ConvolutionDescriptor, weights: Tensor<Float>, options: PlanOptions) throws
        -> any ConvolutionPlan
}

/// A prepared convolution for one descriptor and one set of weights.
///
/// Contract for implementations: `execute` allocates nothing (scratch comes from the caller's workspace), writes
/// every element of `output`, and reads `self` only, so it is safe to call concurrently from several threads on
/// different buffers and workspaces.
public protocol ConvolutionPlan: Sendable {
    var descriptor: ConvolutionDescriptor { get }
    var backendName: String { get }
    /// Scratch bytes `execute` needs; pass a `Workspace` at least this large (or nil when zero).
    var workspaceBytes: Int { get }
    /// True when repeated executions on the same input give bit-identical output at this plan's thread count.
    var isDeterministic: Bool { get }
    /// Relative error bound for this plan, in the checker's normalisation (see `Convolution.expectedErrorBound`).
    var expectedErrorBound: Double { get }
    /// The variant the plan chose, for reports: e.g. "T=32x32 4m" for a tiled FFT. Empty when there is no choice.
    var details: String { get }

    /// Computes output (N×K×Ho×Wo) from input (N×C×H×W). Throws `.shapeMismatch` for buffers of the wrong size
    /// and a too-small or missing workspace. `profile`, when given, receives per-phase times.
    func execute(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
                 workspace: Workspace?, profile: ExecutionProfile?) throws
}

extension ConvolutionPlan {
    public var details: String { "" }

    /// A workspace sized for this plan.
    public func makeWorkspace() throws -> Workspace {
        try Workspace(byteCount: workspaceBytes)
    }

    /// Checks buffer sizes and the workspace; every plan calls this first in `execute`.
    func validateBuffers(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
                         workspace: Workspace?) throws {
        if input.count != descriptor.inputCount {
            throw ConvLabError.shapeMismatch(what: "input buffer", expected: "\(descriptor.inputCount) floats "
                                             + "(\(descriptor.inputShape))", actual: "\(input.count)")
        }
        if output.count != descriptor.outputCount {
            throw ConvLabError.shapeMismatch(what: "output buffer", expected: "\(descriptor.outputCount) floats "
                                             + "(\(descriptor.outputShape))", actual: "\(output.count)")
        }
        if workspaceBytes > 0 && (workspace?.byteCount ?? 0) < workspaceBytes {
            throw ConvLabError.shapeMismatch(what: "workspace", expected: "at least \(workspaceBytes) bytes",
                                             actual: "\(workspace?.byteCount ?? 0) bytes")
        }
    }

    /// Tensor front end: checks shapes, then executes into `output`.
    public func execute(_ input: Tensor<Float>, into output: inout Tensor<Float>, workspace: Workspace?,
                        profile: ExecutionProfile? = nil) throws {
        if input.shape != descriptor.inputShape {
            throw ConvLabError.shapeMismatch(what: "input", expected: "\(descriptor.inputShape)",
                                             actual: "\(input.shape)")
        }
        if output.shape != descriptor.outputShape {
            throw ConvLabError.shapeMismatch(what: "output", expected: "\(descriptor.outputShape)",
                                             actual: "\(output.shape)")
        }
        try input.withUnsafeBufferPointer { x in
            try output.withUnsafeMutableBufferPointer { y in
                try execute(input: x, output: y, workspace: workspace, profile: profile)
            }
        }
    }

    /// One-off convenience: allocates the output and a workspace, executes, returns the output.
    public func callAsFunction(_ input: Tensor<Float>) throws -> Tensor<Float> {
        var output = try Tensor<Float>(shape: descriptor.outputShape)
        try execute(input, into: &output, workspace: workspaceBytes > 0 ? makeWorkspace() : nil)
        return output
    }
}

extension Convolution {
    /// Rejects unsupported descriptors and weights of the wrong shape; every backend calls this in `makePlan`.
    func validatePlanInputs(descriptor: ConvolutionDescriptor, weights: Tensor<Float>, options: PlanOptions) throws {
        if case .unsupported(let reason) = support(for: descriptor) {
            throw ConvLabError.unsupported(backend: name, reason: reason)
        }
        if weights.shape != descriptor.weightShape {
            throw ConvLabError.shapeMismatch(what: "weights", expected: "\(descriptor.weightShape) (K, C/groups, R, S)",
                                             actual: "\(weights.shape)")
        }
        if options.threads < 1 {
            throw ConvLabError.invalidArgument(name: "threads", reason: "must be at least 1 (got \(options.threads))")
        }
    }
}

/// Unit roundoff of float32, u = 2⁻²⁴: the relative error of one correctly rounded operation.
public let float32UnitRoundoff = 0x1p-24

/// Worst-case bound for a float32 dot product of n terms in any summation order (Higham, Thm 3.1),
/// γₙ = n·u / (1 − n·u), relative to Σ|wᵢ|·|xᵢ|. Direct methods (reference loops, im2col + GEMM, direct SIMD) all
/// sum (C/groups)·R·S products per output, so this is their bound; typical errors are ~√n·u.
public func dotProductErrorBound(terms n: Int) -> Double {
    let nu = Double(n) * float32UnitRoundoff
    return nu < 0.5 ? nu / (1 - nu) : 1
}

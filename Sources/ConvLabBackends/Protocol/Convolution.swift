import ConvLabCore

/// A convolution algorithm. Like a oneDNN implementation it says whether it applies to a problem and, before any
/// weights exist, what it would do (`describe`: variant, error bound, workspace, work); like an FFTW planner it does
/// its expensive preparation once: `makePlan` transforms the weights and builds a plan from the same geometry; the
/// plan then executes cheaply, any number of times, from any number of threads.
///
/// Adding a backend is one folder (its geometry, plan and kernels) plus one line in `BackendRegistry.standard`: the
/// selector, `compare`, `bench` and the cost model work from this protocol alone.
public protocol Convolution: Sendable {
    /// The name used on the command line and in CSV output, e.g. `im2col`.
    var name: String { get }

    /// Whether the selector may choose this backend. False for the float64 reference (the ground truth, not a fast
    /// path) and for the generic `winograd`, whose fixed variants are listed on their own.
    var isSelectable: Bool { get }

    /// `.supported`, or `.unsupported(reason)` for features this backend lacks (e.g. stride > 1 for Winograd).
    func support(for descriptor: ConvolutionDescriptor) -> SupportStatus

    /// What the plan for `descriptor` would be, computed from the descriptor and options alone, without timing
    /// anything under the default FFTW effort (so the answer is the same on every run). Throws `.unsupported` for
    /// descriptors `support(for:)` rejects, `.invalidArgument` for bad options, `.memoryLimitExceeded` or
    /// `.sizeOverflow` when the plan would not fit.
    func describe(_ descriptor: ConvolutionDescriptor, options: PlanOptions) throws -> PlanDescription

    /// Prepares an execution plan: validates `weights` (K×C/G×R×S), transforms them, lays out the workspace.
    /// Throws what `describe` throws, and `.shapeMismatch` for weights of the wrong shape.
    func makePlan(descriptor: ConvolutionDescriptor, weights: Tensor<Float>, options: PlanOptions) throws
        -> any ConvolutionPlan

    // MARK: Every pass (defaults: the forward pass only)

    /// Whether this backend runs `pass` on `descriptor`, and if not, why.
    func support(for descriptor: ConvolutionDescriptor, pass: ConvolutionPass) -> SupportStatus

    /// `describe` for any pass.
    func describe(_ descriptor: ConvolutionDescriptor, pass: ConvolutionPass, options: PlanOptions) throws
        -> PlanDescription

    /// A plan for `pass`: `weights` are needed for forward and backward-data (fixed at plan time, transformed there),
    /// and ignored by backward-weights, whose operands both change every step.
    func makePlan(pass: ConvolutionPass, descriptor: ConvolutionDescriptor, weights: Tensor<Float>?,
                  options: PlanOptions) throws -> any PassPlan
}

extension Convolution {
    public var isSelectable: Bool { true }

    public func support(for descriptor: ConvolutionDescriptor, pass: ConvolutionPass) -> SupportStatus {
        pass == .forward ? support(for: descriptor) : .unsupported("\(name) has no \(pass) pass")
    }

    public func describe(_ descriptor: ConvolutionDescriptor, pass: ConvolutionPass, options: PlanOptions) throws
        -> PlanDescription {
        try validate(descriptor, pass: pass, options: options)
        return try describe(descriptor, options: options)
    }

    public func makePlan(pass: ConvolutionPass, descriptor: ConvolutionDescriptor, weights: Tensor<Float>?,
                         options: PlanOptions) throws -> any PassPlan {
        try validate(descriptor, pass: pass, options: options)
        return try makePlan(descriptor: descriptor, weights: try requiredWeights(weights, pass: pass), options: options)
    }

    /// Rejects a pass this backend does not run on `descriptor`, and invalid options.
    package func validate(_ descriptor: ConvolutionDescriptor, pass: ConvolutionPass, options: PlanOptions) throws {
        if case .unsupported(let reason) = support(for: descriptor, pass: pass) {
            throw ConvLabError.unsupported(backend: name, reason: reason)
        }
        try options.validate()
    }

    /// The weights a forward or backward-data plan needs.
    package func requiredWeights(_ weights: Tensor<Float>?, pass: ConvolutionPass) throws -> Tensor<Float> {
        guard let weights else {
            throw ConvLabError.invalidArgument(name: "weights", reason: "the \(pass) pass needs the layer's weights")
        }
        return weights
    }

    /// The largest relative error this backend should make on `descriptor`, in the accuracy checker's normalisation
    /// |y − y_ref| / Σ|w|·|x|; infinite when it cannot run it.
    public func expectedErrorBound(for descriptor: ConvolutionDescriptor, options: PlanOptions = PlanOptions(threads: 1))
        -> Double {
        (try? describe(descriptor, options: options))?.errorBound ?? .infinity
    }

    /// Rejects unsupported descriptors and invalid options; every backend calls this first in `describe`.
    package func validate(_ descriptor: ConvolutionDescriptor, options: PlanOptions) throws {
        if case .unsupported(let reason) = support(for: descriptor) {
            throw ConvLabError.unsupported(backend: name, reason: reason)
        }
        try options.validate()
    }

    /// Rejects weights of the wrong shape; every backend calls this in `makePlan`.
    package func validate(weights: Tensor<Float>, for descriptor: ConvolutionDescriptor) throws {
        if weights.shape != descriptor.weightShape {
            throw ConvLabError.shapeMismatch(what: "weights", expected: "\(descriptor.weightShape) (K, C/groups, R, S)",
                                             actual: "\(weights.shape)")
        }
    }
}

import ConvLabAccuracy
import ConvLabBackends
import ConvLabCore

/// Runs one convolution problem through several backends on the same seeded data and measures each: plan time,
/// median execution time, workspace, determinism and accuracy against the float64 reference.
public struct ComparisonRunner: Sendable {
    public var descriptor: ConvolutionDescriptor
    public var options: PlanOptions
    public var timing: TimingPolicy
    public var seed: UInt64
    public var distribution: Distribution
    /// Compare each output with the float64 reference (costs one reference evaluation per problem).
    public var checkAccuracy: Bool
    /// Also record a per-phase profile of one extra execution.
    public var profile: Bool

    public init(descriptor: ConvolutionDescriptor, options: PlanOptions = PlanOptions(),
                timing: TimingPolicy = TimingPolicy(), seed: UInt64 = 1,
                distribution: Distribution = .uniform(low: -1, high: 1), checkAccuracy: Bool = true,
                profile: Bool = false) {
        self.descriptor = descriptor
        self.options = options
        self.timing = timing
        self.seed = seed
        self.distribution = distribution
        self.checkAccuracy = checkAccuracy
        self.profile = profile
    }

    /// Bytes the comparison itself holds besides any plan's workspace: float32 input, weights and output, and with
    /// the accuracy check the float64 reference output, its magnitudes and the checker's neighbourhood scales.
    /// (The descriptor's counts are validated to fit memory, so this arithmetic cannot overflow.)
    public var requiredBytes: Int {
        let d = descriptor
        let float32Tensors = (d.inputCount + d.weightCount + d.outputCount) * 4
        let reference = checkAccuracy ? d.outputCount * 8 * 4 : 0
        return float32Tensors + reference
    }

    /// Measures every backend in order; a backend that is unsupported or fails gets a row saying so.
    /// `onEach` is called as each measurement completes (for streaming output).
    public func run(backends: [any Convolution], onEach: (BackendMeasurement) -> Void = { _ in }) throws
        -> [BackendMeasurement] {
        try ResourceLimits.check("the comparison's tensors (input, weights, output\(checkAccuracy ? ", float64 reference" : ""))",
                                 bytes: requiredBytes, limit: options.limits.maxTensorBytes)
        let input = try Tensor<Float>.random(shape: descriptor.inputShape, distribution: distribution, seed: seed)
        let weights = try Tensor<Float>.random(shape: descriptor.weightShape, distribution: distribution,
                                               seed: seed &+ 0x5EED)
        let reference = checkAccuracy
            ? try ReferenceConvolution.compute(descriptor: descriptor, input: input, weights: weights,
                                               threads: options.threads)
            : nil
        var output = try Tensor<Float>(shape: descriptor.outputShape)
        var results: [BackendMeasurement] = []
        for backend in backends {
            var row = BackendMeasurement(backend: backend.name, descriptor: descriptor, threads: options.threads,
                                         status: .measured)
            if case .unsupported(let reason) = backend.support(for: descriptor) {
                row.status = .unsupported(reason)
            } else {
                do {
                    try measure(backend, input: input, weights: weights, reference: reference, output: &output,
                                into: &row)
                } catch let error as ConvLabError {
                    if case .memoryLimitExceeded = error { row.status = .skipped(error.description) }
                    else { row.status = .failed(error.description) }
                } catch {
                    row.status = .failed(String(describing: error))
                }
            }
            onEach(row)
            results.append(row)
        }
        return results
    }

    private func measure(_ backend: any Convolution, input: Tensor<Float>, weights: Tensor<Float>,
                         reference: ReferenceResult?, output: inout Tensor<Float>,
                         into row: inout BackendMeasurement) throws {
        let planStart = Timing.now()
        let plan = try backend.makePlan(descriptor: descriptor, weights: weights, options: options)
        row.planSeconds = Timing.now() - planStart
        row.workspaceBytes = plan.workspaceBytes
        row.isDeterministic = plan.isDeterministic
        row.variant = plan.variant.isEmpty ? nil : plan.variant
        let workspace = plan.workspaceBytes > 0 ? try plan.makeWorkspace() : nil
        // Poison the output so a backend that skips elements cannot pass on a previous backend's result.
        output.withUnsafeMutableBufferPointer { $0.update(repeating: .nan) }
        row.timing = try input.withUnsafeBufferPointer { x in
            try output.withUnsafeMutableBufferPointer { y in
                try Timing.measure(policy: timing) {
                    try plan.execute(input: x, output: y, workspace: workspace, profile: nil)
                }
            }
        }
        if let reference {
            row.accuracy = try AccuracyChecker.compare(output: output, reference: reference,
                                                       errorBound: plan.expectedErrorBound)
        }
        if profile {
            let phases = ExecutionProfile()
            try plan.execute(input, into: &output, workspace: workspace, profile: phases)
            row.phases = phases.phases
        }
    }
}

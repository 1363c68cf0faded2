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
    /// The computation measured: forward, backward-data or backward-weights.
    public var pass: ConvolutionPass
    /// The tensor layouts to time a plan in: NCHW always runs for plans without a blocked entry point; with
    /// `.nChw16c` a plan that has one (`ChannelBlockedPassExecution`, any pass) gets a second row, on blocked
    /// activations.
    public var layouts: [TensorLayout]

    public init(descriptor: ConvolutionDescriptor, options: PlanOptions = PlanOptions(),
                timing: TimingPolicy = TimingPolicy(), seed: UInt64 = 1,
                distribution: Distribution = .uniform(low: -1, high: 1), checkAccuracy: Bool = true,
                profile: Bool = false, pass: ConvolutionPass = .forward, layouts: [TensorLayout] = [.nchw]) {
        self.descriptor = descriptor
        self.options = options
        self.timing = timing
        self.seed = seed
        self.distribution = distribution
        self.checkAccuracy = checkAccuracy
        self.profile = profile
        self.pass = pass
        self.layouts = layouts
    }

    /// Bytes the comparison itself holds besides any plan's workspace: float32 input, weights and output, and with
    /// the accuracy check the float64 reference output, its magnitudes and the checker's neighbourhood scales.
    /// (The descriptor's counts are validated to fit memory, so this arithmetic cannot overflow.)
    public var requiredBytes: Int {
        let d = descriptor
        // x, w, y (or dy), and for a backward pass its result too; with the check, the float64 reference of the
        // result, its magnitudes and the checker's neighbourhood scales.
        let result = d.shapes(for: pass).output.reduce(1, *)
        let float32Tensors = (d.inputCount + d.weightCount + d.outputCount + (pass == .forward ? 0 : result)) * 4
        let reference = checkAccuracy ? result * 8 * 4 : 0
        return float32Tensors + reference
    }

    /// Measures every backend in order; a backend that is unsupported or fails gets a row saying so.
    /// `onEach` is called as each measurement completes (for streaming output).
    public func run(backends: [any Convolution], onEach: (BackendMeasurement) -> Void = { _ in }) throws
        -> [BackendMeasurement] {
        try ResourceLimits.check("the comparison's tensors (input, weights, output\(checkAccuracy ? ", float64 reference" : ""))",
                                 bytes: requiredBytes, limit: options.limits.maxTensorBytes)
        let d = descriptor
        let x = try Tensor<Float>.random(shape: d.inputShape, distribution: distribution, seed: seed)
        let weights = try Tensor<Float>.random(shape: d.weightShape, distribution: distribution, seed: seed &+ 0x5EED)
        let dy = pass == .forward ? nil
            : try Tensor<Float>.random(shape: d.outputShape, distribution: distribution, seed: seed &+ 0xD1)
        let input = pass == .backwardData ? dy! : x
        let reference = checkAccuracy
            ? try ReferenceConvolution.compute(pass, descriptor: d, input: input, weights: weights, gradOutput: dy,
                                               threads: options.threads)
            : nil
        var output = try Tensor<Float>(shape: d.shapes(for: pass).output)
        var results: [BackendMeasurement] = []
        for backend in backends {
            var row = BackendMeasurement(backend: backend.name, descriptor: d, threads: options.threads,
                                         status: .measured, pass: pass)
            if case .unsupported(let reason) = backend.support(for: d, pass: pass) {
                row.status = .unsupported(reason)
            } else {
                var blockedPlan: (any ChannelBlockedPassExecution)?
                let timesNCHW = layouts.contains(.nchw)
                capturingErrors(into: &row) { row in
                    let plan: any PassPlan
                    if timesNCHW {
                        plan = try measure(backend, input: input, weights: weights, gradOutput: dy,
                                           reference: reference, output: &output, into: &row)
                    } else {
                        plan = try backend.makePlan(pass: pass, descriptor: d, weights: weights, options: options)
                    }
                    blockedPlan = layouts.contains(.nChw16c) ? plan as? any ChannelBlockedPassExecution : nil
                    if !timesNCHW && blockedPlan == nil {
                        row.status = .unsupported("its \(plan.summary.variant.isEmpty ? "" : plan.summary.variant + " ")"
                                                  + "plan has no nChw16c entry point")
                    }
                }
                if let blockedPlan {
                    var blockedRow = row
                    (blockedRow.layout, blockedRow.timing, blockedRow.accuracy, blockedRow.phases) = (.nChw16c, nil, nil, [])
                    let variant = blockedPlan.blockedSummary.variant
                    blockedRow.variant = variant.isEmpty ? nil : variant
                    blockedRow.workspaceBytes = blockedPlan.summary.workspaceBytes
                    capturingErrors(into: &blockedRow) { blockedRow in
                        try measureBlocked(blockedPlan, input: input, gradOutput: dy, reference: reference,
                                           into: &blockedRow)
                    }
                    if timesNCHW {
                        onEach(row)
                        results.append(row)
                    }
                    row = blockedRow
                }
            }
            onEach(row)
            results.append(row)
        }
        return results
    }

    /// Runs `body`, turning a thrown error into the row's status (skipped for plans refused by a memory limit or the
    /// accuracy ceiling, failed otherwise).
    private func capturingErrors(into row: inout BackendMeasurement,
                                 _ body: (inout BackendMeasurement) throws -> Void) {
        do {
            try body(&row)
        } catch let error as ConvLabError {
            switch error {
            case .memoryLimitExceeded, .tooInaccurate: row.status = .skipped(error.description)
            default: row.status = .failed(error.description)
            }
        } catch {
            row.status = .failed(String(describing: error))
        }
    }

    /// Times a plan's nChw16c entry point on the blocked activations (x or dy, and dy for backward-weights); the
    /// blocked output (y, dx, or dw in Oihw16o) is unblocked for the accuracy check. The blocking of the operands and
    /// the unblocking of the output are outside the timed runs (the layout a network would keep between layers), as in
    /// oneDNN's measurements.
    private func measureBlocked(_ plan: any ChannelBlockedPassExecution, input: Tensor<Float>,
                                gradOutput: Tensor<Float>?, reference: ReferenceResult?,
                                into row: inout BackendMeasurement) throws {
        let blockedInput = try plan.blockedInput(input)
        let blockedGradient = try pass == .backwardWeights ? ChannelBlocking.blocked(gradOutput!) : Tensor<Float>(shape: [0])
        var output = try Tensor<Float>(shape: plan.blockedOutputShape)
        output.withUnsafeMutableBufferPointer { $0.update(repeating: .nan) }
        let workspace = try Workspace(byteCount: plan.summary.workspaceBytes)
        try record(into: &row, run: { profile in
            try blockedInput.withUnsafeBufferPointer { x in
                try blockedGradient.withUnsafeBufferPointer { g in
                    try output.withUnsafeMutableBufferPointer { y in
                        let operands = PassOperands(input: x, gradOutput: pass == .backwardWeights ? g
                                                        : UnsafeBufferPointer(start: nil, count: 0), output: y)
                        return try timeOrProfile(profile) {
                            try plan.executeBlocked(operands, workspace: workspace.buffer, profile: $0)
                        }
                    }
                }
            }
        }, accuracy: {
            try reference.map {
                try AccuracyChecker.compare(output: try plan.unblockedOutput(output),
                                            reference: $0, errorBound: plan.summary.errorBound,
                                            ceiling: options.accuracy.ceiling, typicalError: plan.summary.typicalError)
            }
        })
    }

    /// Fills the row's timing, then its accuracy (after the timed runs, from the output they left), then, when
    /// profiling, its phases: `run(nil)` times the plan under the policy, `run(profile)` executes it once into it.
    private func record(into row: inout BackendMeasurement, run: (ExecutionProfile?) throws -> TimingResult?,
                        accuracy: () throws -> AccuracyReport?) throws {
        row.timing = try run(nil)
        row.accuracy = try accuracy()
        if profile {
            let phases = ExecutionProfile()
            _ = try run(phases)
            row.phases = phases.phases
        }
    }

    /// One execution into `profile`, or, without one, the timed runs of the policy.
    private func timeOrProfile(_ profile: ExecutionProfile?, _ execute: (ExecutionProfile?) throws -> Void) throws
        -> TimingResult? {
        if let profile {
            try execute(profile)
            return nil
        }
        return try Timing.measure(policy: timing) { try execute(nil) }
    }

    /// Plans and times `backend` on NCHW tensors; returns the plan (for a blocked measurement of the same plan).
    private func measure(_ backend: any Convolution, input: Tensor<Float>, weights: Tensor<Float>,
                         gradOutput: Tensor<Float>?, reference: ReferenceResult?, output: inout Tensor<Float>,
                         into row: inout BackendMeasurement) throws -> any PassPlan {
        let planStart = Timing.now()
        let plan = try backend.makePlan(pass: pass, descriptor: descriptor, weights: weights, options: options)
        row.planSeconds = Timing.now() - planStart
        row.workspaceBytes = plan.summary.workspaceBytes
        row.isDeterministic = plan.summary.isDeterministic
        row.variant = plan.summary.variant.isEmpty ? nil : plan.summary.variant
        let workspace = try Workspace(byteCount: plan.summary.workspaceBytes)
        // Poison the output so a backend that skips elements cannot pass on a previous backend's result.
        output.withUnsafeMutableBufferPointer { $0.update(repeating: .nan) }
        let second = try gradOutput ?? Tensor<Float>(shape: [0])
        func run(_ profile: ExecutionProfile?) throws -> TimingResult? {
            try input.withUnsafeBufferPointer { a in
                try second.withUnsafeBufferPointer { g in
                    try output.withUnsafeMutableBufferPointer { y in
                        let operands = PassOperands(input: a, gradOutput: pass == .backwardWeights ? g
                                                        : UnsafeBufferPointer(start: nil, count: 0), output: y)
                        return try timeOrProfile(profile) {
                            try plan.execute(operands, workspace: workspace.buffer, profile: $0)
                        }
                    }
                }
            }
        }
        try record(into: &row, run: run, accuracy: {
            try reference.map {
                try AccuracyChecker.compare(output: output, reference: $0, errorBound: plan.summary.errorBound,
                                            ceiling: options.accuracy.ceiling, typicalError: plan.summary.typicalError)
            }
        })
        return plan
    }
}

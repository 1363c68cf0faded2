import ConvLabCore

/// The workspace of a phased plan: the two phase-split operands, then the inner plan's own workspace.
struct PhasedBuffers: Sendable {
    /// The phases of x (forward, backward-weights).
    let input: WorkspaceRegion<Float>
    /// The phases of y (forward: written by the inner plan) or of dy (backward-weights: read by it).
    let output: WorkspaceRegion<Float>
    let inner: WorkspaceRegion<UInt8>
}

extension DilationAsPhases {
    /// The description of `pass` on the dilated layer from the inner plan's: the same bound, typical error and
    /// determinism (each output sums the same products), the phase buffers added to the workspace and one pass over
    /// memory for the gather and the scatter added to the work.
    func summary(backend: String, pass: ConvolutionPass, inner plan: PlanDescription, options: PlanOptions) throws
        -> (summary: PlanDescription, buffers: PhasedBuffers) {
        var layout = WorkspaceLayout()
        let input = try layout.reserve(Float.self, count: inner.inputCount, what: "the phases of the input")
        let output = try layout.reserve(Float.self, count: inner.outputCount,
                                        what: pass == .forward ? "the phases of the output" : "the phases of dy")
        let innerBytes = try layout.reserve(UInt8.self, count: plan.workspaceBytes, what: "the inner plan's workspace")
        try ResourceLimits.check("the workspace of \(phases) dilation phases", bytes: layout.byteCount,
                                 limit: options.limits.maxWorkspaceBytes)
        var work = plan.work
        let moved = descriptor.inputCount + inner.inputCount + inner.outputCount + descriptor.outputCount
        work?.stages.append(.memory(bytes: Double(moved) * 4))
        let summary = PlanDescription(
            backend: backend, pass: pass, variant: variant(inner: plan.variant), errorBound: plan.errorBound,
            errorSource: plan.errorSource, typicalError: plan.typicalError, workspaceBytes: layout.byteCount,
            persistentBytes: plan.persistentBytes, isDeterministic: plan.isDeterministic, work: work)
        return (summary, PhasedBuffers(input: input, output: output, inner: innerBytes))
    }
}

/// A dilated layer's forward pass through an undilated forward plan of its phases (`DilationAsPhases`).
struct PhasedForwardPlan: ConvolutionPlan {
    let phases: DilationAsPhases
    let inner: any ConvolutionPlan
    let summary: PlanDescription
    let buffers: PhasedBuffers
    let threads: Int

    var descriptor: ConvolutionDescriptor { phases.descriptor }

    init(phases: DilationAsPhases, inner: any ConvolutionPlan, backend: String, options: PlanOptions) throws {
        self.phases = phases
        self.inner = inner
        (summary, buffers) = try phases.summary(backend: backend, pass: .forward, inner: inner.summary, options: options)
        threads = options.threads
    }

    func execute(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
                 workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?) throws {
        try validateBuffers(input: input, output: output, workspace: workspace)
        let (x, y) = (buffers.input.pointer(in: workspace), buffers.output.pointer(in: workspace))
        measurePhase("gather phases", in: profile) { phases.gatherInput(input.baseAddress!, into: x, threads: threads) }
        try inner.execute(input: UnsafeBufferPointer(start: x, count: phases.inner.inputCount),
                          output: UnsafeMutableBufferPointer(start: y, count: phases.inner.outputCount),
                          workspace: buffers.inner.bytes(in: workspace), profile: profile)
        measurePhase("scatter phases", in: profile) {
            phases.scatterOutput(y, into: output.baseAddress!, threads: threads)
        }
    }
}

/// A dilated layer's backward-weights pass through an undilated one whose batch holds every phase of x and dy.
struct PhasedWeightGradientPlan: PassPlan {
    let phases: DilationAsPhases
    let inner: any PassPlan
    let summary: PlanDescription
    let buffers: PhasedBuffers
    let threads: Int

    var descriptor: ConvolutionDescriptor { phases.descriptor }

    init(phases: DilationAsPhases, inner: any PassPlan, backend: String, options: PlanOptions) throws {
        self.phases = phases
        self.inner = inner
        (summary, buffers) = try phases.summary(backend: backend, pass: .backwardWeights, inner: inner.summary,
                                                options: options)
        threads = options.threads
    }

    func execute(_ operands: PassOperands, workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?) throws {
        try validate(operands, workspace: workspace)
        let (x, dy) = (buffers.input.pointer(in: workspace), buffers.output.pointer(in: workspace))
        measurePhase("gather phases", in: profile) {
            phases.gatherInput(operands.input.baseAddress!, into: x, threads: threads)
            phases.gatherGradient(operands.gradOutput.baseAddress!, into: dy, threads: threads)
        }
        try inner.execute(PassOperands(input: UnsafeBufferPointer(start: x, count: phases.inner.inputCount),
                                       gradOutput: UnsafeBufferPointer(start: dy, count: phases.inner.outputCount),
                                       output: operands.output),
                          workspace: buffers.inner.bytes(in: workspace), profile: profile)
    }
}

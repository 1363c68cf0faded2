import ConvLabCore

/// A channel-blocked plan that runs on nChw16c tensors only (the pairing with an NCHW plan checks the buffers); the
/// few-channel stems read an NCHW input (`inputLayout`).
protocol BlockedOnlyPlan: Sendable {
    var blockedSummary: PlanDescription { get }
    var inputLayout: TensorLayout { get }
    func run(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
             workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?)
}

extension BlockedOnlyPlan {
    var inputLayout: TensorLayout { .nChw16c }
}

/// A forward plan for NCHW tensors paired with a channel-blocked plan for nChw16c ones: the layout a caller hands in
/// picks the plan. `direct` pairs its fastest NCHW plan with the blocked one where they differ: the depthwise row
/// plan (each load reused across four output rows, no transposes) with the 16-channel bands, which on blocked tensors
/// have no transposes left to pay; the general polyphase plan with the 1×1 or tap-by-tap blocked tiles. One
/// workspace serves both (the larger).
struct PlanWithBlockedEntry: ChannelBlockedExecution {
    let nchw: any ConvolutionPlan
    let blocked: any BlockedOnlyPlan

    var descriptor: ConvolutionDescriptor { nchw.descriptor }
    var summary: PlanDescription { nchw.summary.sharingWorkspace(with: blocked.blockedSummary) }
    var blockedSummary: PlanDescription { blocked.blockedSummary }
    var blockedInputLayout: TensorLayout { blocked.inputLayout }

    func execute(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
                 workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?) throws {
        try validateBuffers(input: input, output: output, workspace: workspace)
        try nchw.execute(input: input, output: output, workspace: workspace, profile: profile)
    }

    func executeBlocked(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
                        workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?) throws {
        try validateBlockedBuffers(input: input, output: output, workspace: workspace)
        blocked.run(input: input, output: output, workspace: workspace, profile: profile)
    }
}

/// The blocked half of a backward pairing (`PassPlanWithBlockedEntry`): a plan that runs on nChw16c operands.
protocol BlockedPassPlan: Sendable {
    var blockedSummary: PlanDescription { get }
    func executeBlocked(_ operands: PassOperands, workspace: UnsafeMutableRawBufferPointer,
                        profile: ExecutionProfile?) throws
}

extension ChannelBlockedDepthwiseWeightGradientPlan: BlockedPassPlan {}

/// The same pairing for the backward passes: a plan on NCHW tensors, another on nChw16c ones, one workspace (the
/// larger). `direct` pairs the depthwise row plan (backward-weights) with the channel-blocked bands, and the phased
/// backward-data of dense strided layers with the blocked tiles writing dx's phases in place
/// (`ChannelBlockedPhasedDataGradientPlan`).
struct PassPlanWithBlockedEntry: ChannelBlockedPassExecution {
    let nchw: any PassPlan
    let blocked: any BlockedPassPlan

    var descriptor: ConvolutionDescriptor { nchw.descriptor }
    var summary: PlanDescription { nchw.summary.sharingWorkspace(with: blocked.blockedSummary) }
    var blockedSummary: PlanDescription { blocked.blockedSummary }

    func execute(_ operands: PassOperands, workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?) throws {
        try validate(operands, workspace: workspace)
        try nchw.execute(operands, workspace: workspace, profile: profile)
    }

    func executeBlocked(_ operands: PassOperands, workspace: UnsafeMutableRawBufferPointer,
                        profile: ExecutionProfile?) throws {
        try validateBlocked(operands, workspace: workspace)
        try blocked.executeBlocked(operands, workspace: workspace, profile: profile)
    }
}

extension PlanDescription {
    /// This description with a workspace large enough for `other`'s too: a pair of plans that share one.
    func sharingWorkspace(with other: PlanDescription) -> PlanDescription {
        var summary = self
        summary.workspaceBytes = max(workspaceBytes, other.workspaceBytes)
        return summary
    }
}

import ConvLabCore

/// The row plan for wide stride-1 depthwise rows, which is the faster one on NCHW tensors (each load is reused across
/// four output rows, no transposes), paired with the channel-blocked plan for nChw16c tensors, where no transposes
/// are left to pay: the layout a caller hands in picks the plan. One workspace serves both (the larger layout).
struct DepthwiseRowsWithBlockedEntry: ChannelBlockedExecution {
    let rows: DepthwisePlan
    let blocked: ChannelBlockedDepthwisePlan

    var descriptor: ConvolutionDescriptor { rows.descriptor }
    var summary: PlanDescription { Self.summary(rows: rows.summary, blocked: blocked.summary) }
    var blockedSummary: PlanDescription { blocked.summary }

    /// The row plan's description with the workspace both plans need.
    static func summary(rows: PlanDescription, blocked: PlanDescription) -> PlanDescription {
        var summary = rows
        summary.workspaceBytes = max(rows.workspaceBytes, blocked.workspaceBytes)
        return summary
    }

    func execute(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
                 workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?) throws {
        try validateBuffers(input: input, output: output, workspace: workspace)
        try rows.execute(input: input, output: output, workspace: workspace, profile: profile)
    }

    func executeBlocked(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
                        workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?) throws {
        try validateBlockedBuffers(input: input, output: output, workspace: workspace)
        try blocked.executeBlocked(input: input, output: output, workspace: workspace, profile: profile)
    }
}

/// The same pairing for backward-weights: the row plan on NCHW x and dy, the channel-blocked bands on nChw16c ones.
struct DepthwiseWeightGradientRowsWithBlockedEntry: ChannelBlockedPassExecution {
    let rows: DepthwiseWeightGradientPlan
    let blocked: ChannelBlockedDepthwiseWeightGradientPlan

    var descriptor: ConvolutionDescriptor { rows.descriptor }
    var summary: PlanDescription { DepthwiseRowsWithBlockedEntry.summary(rows: rows.summary, blocked: blocked.summary) }
    var blockedSummary: PlanDescription { blocked.summary }

    func execute(_ operands: PassOperands, workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?) throws {
        try validate(operands, workspace: workspace)
        try rows.execute(operands, workspace: workspace, profile: profile)
    }

    func executeBlocked(_ operands: PassOperands, workspace: UnsafeMutableRawBufferPointer,
                        profile: ExecutionProfile?) throws {
        try validateBlocked(operands, workspace: workspace)
        try blocked.executeBlocked(operands, workspace: workspace, profile: profile)
    }
}

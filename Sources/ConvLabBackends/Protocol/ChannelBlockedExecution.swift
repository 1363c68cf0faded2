import ConvLabCore

/// A forward plan that can also run on channel-blocked tensors (`TensorLayout.nChw16c`): input
/// N×⌈C/16⌉×H×W×16 and output N×⌈K/16⌉×Ho×Wo×16, zero in the lanes past C and K. This is the layout oneDNN's fastest
/// kernels take, where a network keeps activations blocked from layer to layer; `bench --layout both` times a plan
/// both ways, so the cost of the NCHW transpositions is a number, not a footnote.
public protocol ChannelBlockedExecution: ConvolutionPlan {
    /// The description of what `executeBlocked` runs (by default `summary`; a plan that hands blocked tensors to
    /// another plan says which). Its workspace is the one `summary` declares.
    var blockedSummary: PlanDescription { get }

    func executeBlocked(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
                        workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?) throws
}

extension ChannelBlockedExecution {
    public var blockedSummary: PlanDescription { summary }

    /// Checks the blocked buffers' sizes and the workspace, as `validateBuffers` does for NCHW.
    package func validateBlockedBuffers(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
                                        workspace: UnsafeMutableRawBufferPointer) throws {
        let d = descriptor
        let inputCount = try TensorLayout.nChw16c.count(batch: d.batch, channels: d.inputChannels,
                                                        height: d.inputHeight, width: d.inputWidth)
        let outputCount = try TensorLayout.nChw16c.count(batch: d.batch, channels: d.outputChannels,
                                                         height: d.outputHeight, width: d.outputWidth)
        if input.count != inputCount {
            throw ConvLabError.shapeMismatch(what: "nChw16c input buffer", expected: "\(inputCount) floats",
                                             actual: "\(input.count)")
        }
        if output.count != outputCount {
            throw ConvLabError.shapeMismatch(what: "nChw16c output buffer", expected: "\(outputCount) floats",
                                             actual: "\(output.count)")
        }
        try validateWorkspace(workspace)
    }
}

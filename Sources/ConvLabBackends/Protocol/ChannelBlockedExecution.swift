import ConvLabCore

/// A pass plan that can also run on channel-blocked activations (`TensorLayout.nChw16c`: N×⌈C/16⌉×H×W×16, zero in
/// the lanes past the channel count). This is the layout oneDNN's fastest kernels take, forward and backward, where a
/// network keeps activations (and their gradients) blocked from layer to layer; `bench --layout both` times a plan
/// both ways, so the cost of the NCHW transpositions is a number, not a footnote.
///
/// The activations of the pass are blocked: x and y forward; dy and dx for backward-data; x and dy for
/// backward-weights. Weights and the weight gradient dw stay K×C/G×R×S.
public protocol ChannelBlockedPassExecution: PassPlan {
    /// The description of what `executeBlocked` runs (by default `summary`; a plan that hands blocked tensors to
    /// another plan says which). Its workspace is the one `summary` declares.
    var blockedSummary: PlanDescription { get }

    func executeBlocked(_ operands: PassOperands, workspace: UnsafeMutableRawBufferPointer,
                        profile: ExecutionProfile?) throws
}

/// A forward plan with a channel-blocked entry point: input x and output y both nChw16c.
public protocol ChannelBlockedExecution: ChannelBlockedPassExecution, ConvolutionPlan {
    func executeBlocked(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
                        workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?) throws
}

extension ChannelBlockedPassExecution {
    public var blockedSummary: PlanDescription { summary }

    /// What `executeBlocked` writes: y or dx as [N, ⌈C/16⌉, H, W, 16], or dw as K×C/G×R×S.
    public var blockedOutputShape: [Int] {
        let shape = descriptor.shapes(for: pass).output
        return pass == .backwardWeights ? shape : ChannelBlocking.blockedShape(shape)
    }

    /// Checks the blocked operands' sizes (and dw's, for backward-weights) and the workspace, as `validate` does for
    /// NCHW.
    package func validateBlocked(_ operands: PassOperands, workspace: UnsafeMutableRawBufferPointer) throws {
        let shapes = descriptor.shapes(for: pass)
        func blocked(_ shape: [Int]) throws -> Int {
            try TensorLayout.nChw16c.count(batch: shape[0], channels: shape[1], height: shape[2], width: shape[3])
        }
        var checks = [("\(pass) input", operands.input.count, try blocked(shapes.input))]
        if let gradOutput = shapes.gradOutput {
            checks.append(("gradient of the output", operands.gradOutput.count, try blocked(gradOutput)))
        }
        checks.append(("\(pass) output", operands.output.count,
                       pass == .backwardWeights ? shapes.output.reduce(1, *) : try blocked(shapes.output)))
        for (what, actual, expected) in checks where actual != expected {
            throw ConvLabError.shapeMismatch(what: "nChw16c " + what, expected: "\(expected) floats",
                                             actual: "\(actual)")
        }
        try checkWorkspace(workspace)
    }
}

extension ChannelBlockedExecution {
    public func executeBlocked(_ operands: PassOperands, workspace: UnsafeMutableRawBufferPointer,
                               profile: ExecutionProfile?) throws {
        try executeBlocked(input: operands.input, output: operands.output, workspace: workspace, profile: profile)
    }

    /// Checks the blocked buffers' sizes and the workspace, as `validateBuffers` does for NCHW.
    package func validateBlockedBuffers(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
                                        workspace: UnsafeMutableRawBufferPointer) throws {
        try validateBlocked(PassOperands(input: input, output: output), workspace: workspace)
    }
}

extension ChannelBlockedPassExecution {
    /// Tensor front end on blocked tensors (`ChannelBlocking.blocked`): `input` is x (forward, backward-weights) or
    /// dy (backward-data), `gradOutput` dy for backward-weights, all N×⌈C/16⌉×H×W×16. Returns the blocked output (y or
    /// dx), or dw as K×C/G×R×S. Allocates the output and a workspace.
    public func runBlocked(_ input: Tensor<Float>, gradOutput: Tensor<Float>? = nil) throws -> Tensor<Float> {
        let shapes = descriptor.shapes(for: pass)
        let blocked = ChannelBlocking.blockedShape
        if input.shape != blocked(shapes.input) {
            throw ConvLabError.shapeMismatch(what: "nChw16c \(pass) input", expected: "\(blocked(shapes.input))",
                                             actual: "\(input.shape)")
        }
        if let expected = shapes.gradOutput.map(blocked), gradOutput?.shape != expected {
            throw ConvLabError.shapeMismatch(what: "nChw16c gradient of the output", expected: "\(expected)",
                                             actual: gradOutput.map { "\($0.shape)" } ?? "none")
        }
        var output = try Tensor<Float>(shape: blockedOutputShape)
        let workspace = try Workspace(byteCount: summary.workspaceBytes)
        let second = try gradOutput ?? Tensor<Float>(shape: [0])
        try input.withUnsafeBufferPointer { x in
            try second.withUnsafeBufferPointer { g in
                try output.withUnsafeMutableBufferPointer { y in
                    try executeBlocked(PassOperands(input: x, gradOutput: shapes.gradOutput == nil
                                                        ? UnsafeBufferPointer(start: nil, count: 0) : g, output: y),
                                       workspace: workspace.buffer, profile: nil)
                }
            }
        }
        return output
    }
}

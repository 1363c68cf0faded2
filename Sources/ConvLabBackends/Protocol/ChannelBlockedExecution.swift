import ConvLabCore

/// A pass plan that can also run on channel-blocked activations (`TensorLayout.nChw16c`: N×⌈C/16⌉×H×W×16, zero in
/// the lanes past the channel count). This is the layout oneDNN's fastest kernels take, forward and backward, where a
/// network keeps activations (and their gradients) blocked from layer to layer; `bench --layout both` times a plan
/// both ways, so the cost of the NCHW transpositions is a number, not a footnote.
///
/// The activations of the pass are blocked: x and y forward; dy and dx for backward-data; x and dy for
/// backward-weights, which returns dw blocked too, in Oihw16o (`ChannelBlocking.blockedWeights`: the layout its
/// kernels' registers hold, as oneDNN's blocked kernels return diff weights). The weights a forward or backward-data
/// plan is made with stay K×C/G×R×S (packed at plan time). One exception, declared by
/// `blockedInputLayout`: a layer on at most 4 input channels (a network's RGB or grey stem) takes its input NCHW, as
/// oneDNN's stem kernels do — that input is an image, and blocked it would be 16 lanes per pixel of which 3 are data.
public protocol ChannelBlockedPassExecution: PassPlan {
    /// The description of what `executeBlocked` runs (by default `summary`; a plan that hands blocked tensors to
    /// another plan says which). Its workspace is the one `summary` declares.
    var blockedSummary: PlanDescription { get }

    /// The layout `executeBlocked` takes its input operand in (x, or dy for backward-data): nChw16c unless the plan
    /// says NCHW (the few-channel stems).
    var blockedInputLayout: TensorLayout { get }

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
    public var blockedInputLayout: TensorLayout { .nChw16c }

    /// `input` (NCHW) as `executeBlocked` takes it: blocked, or as it is where the plan reads NCHW.
    public func blockedInput(_ input: Tensor<Float>) throws -> Tensor<Float> {
        blockedInputLayout == .nchw ? input : try ChannelBlocking.blocked(input)
    }

    /// What `executeBlocked` writes: y or dx as [N, ⌈C/16⌉, H, W, 16], or dw as [⌈K/16⌉, C/G, R, S, 16].
    public var blockedOutputShape: [Int] {
        let shape = descriptor.shapes(for: pass).output
        return pass == .backwardWeights ? ChannelBlocking.blockedWeightShape(shape) : ChannelBlocking.blockedShape(shape)
    }

    /// What `executeBlocked` wrote, as the NCHW entry writes it: y or dx unblocked to NCHW, dw to K×C/G×R×S.
    public func unblockedOutput(_ output: Tensor<Float>) throws -> Tensor<Float> {
        let channels = descriptor.shapes(for: pass).output[pass == .backwardWeights ? 0 : 1]
        return pass == .backwardWeights ? try ChannelBlocking.unblockedWeights(output, outputChannels: channels)
            : try ChannelBlocking.unblocked(output, channels: channels)
    }

    /// Checks the blocked operands' sizes (and dw's, for backward-weights) and the workspace, as `validate` does for
    /// NCHW.
    package func validateBlocked(_ operands: PassOperands, workspace: UnsafeMutableRawBufferPointer) throws {
        let shapes = descriptor.shapes(for: pass)
        func blocked(_ shape: [Int], _ layout: TensorLayout = .nChw16c) throws -> Int {
            try layout.count(batch: shape[0], channels: shape[1], height: shape[2], width: shape[3])
        }
        var checks = [("\(pass) input", operands.input.count, try blocked(shapes.input, blockedInputLayout))]
        if let gradOutput = shapes.gradOutput {
            checks.append(("gradient of the output", operands.gradOutput.count, try blocked(gradOutput)))
        }
        checks.append(("\(pass) output", operands.output.count, try CheckedArithmetic.product(
            blockedOutputShape, what: "an nChw16c \(pass) output")))
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
    /// dy (backward-data), `gradOutput` dy for backward-weights, all N×⌈C/16⌉×H×W×16 (`input` NCHW where
    /// `blockedInputLayout` says so). Returns the blocked output (y or dx), or dw in Oihw16o (`blockedOutputShape`;
    /// `unblockedOutput` gives either back in the NCHW entry's layout). Allocates the output and a workspace.
    public func runBlocked(_ input: Tensor<Float>, gradOutput: Tensor<Float>? = nil) throws -> Tensor<Float> {
        let shapes = descriptor.shapes(for: pass)
        let blocked = ChannelBlocking.blockedShape
        let inputShape = blockedInputLayout == .nchw ? shapes.input : blocked(shapes.input)
        if input.shape != inputShape {
            throw ConvLabError.shapeMismatch(what: "\(blockedInputLayout.rawValue) \(pass) input",
                                             expected: "\(inputShape)", actual: "\(input.shape)")
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

import ConvLabCore

/// A prepared convolution for one descriptor and one set of weights.
///
/// Contract for implementations: `execute` allocates nothing (scratch comes from the caller's workspace), writes
/// every element of `output`, and reads `self` only, so it is safe to call concurrently from several threads on
/// different buffers and workspaces. What it is — backend, variant, bound, workspace — is the `PlanDescription` its
/// backend's `describe` gives for the same descriptor and options.
public protocol ConvolutionPlan: PassPlan {
    var descriptor: ConvolutionDescriptor { get }
    var summary: PlanDescription { get }

    /// Computes output (N×K×Ho×Wo) from input (N×C×H×W). Throws `.shapeMismatch` for buffers of the wrong size and
    /// for a workspace shorter than `workspaceBytes` or not 64-byte aligned. `profile`, when given, receives
    /// per-phase times.
    func execute(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
                 workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?) throws
}

extension ConvolutionPlan {
    public var backendName: String { summary.backend }
    /// Scratch bytes `execute` needs; pass a workspace at least this large (`Workspace.none` when zero).
    public var workspaceBytes: Int { summary.workspaceBytes }
    /// True when repeated executions on the same input give bit-identical output at this plan's thread count.
    public var isDeterministic: Bool { summary.isDeterministic }
    /// Relative error bound for this plan, in the checker's normalisation.
    public var expectedErrorBound: Double { summary.errorBound }
    /// The variant the plan chose, for reports: e.g. "32x32 4m 9 tiles" for a tiled FFT. Empty when there is no choice.
    public var variant: String { summary.variant }

    /// A workspace sized for this plan.
    public func makeWorkspace() throws -> Workspace {
        try Workspace(byteCount: workspaceBytes)
    }

    /// Checks buffer sizes and the workspace's length and alignment; every plan calls this first in `execute`. After
    /// it, every region of the plan's `WorkspaceLayout` lies inside `workspace`.
    package func validateBuffers(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
                                 workspace: UnsafeMutableRawBufferPointer) throws {
        if input.count != descriptor.inputCount {
            throw ConvLabError.shapeMismatch(what: "input buffer", expected: "\(descriptor.inputCount) floats "
                                             + "(\(descriptor.inputShape))", actual: "\(input.count)")
        }
        if output.count != descriptor.outputCount {
            throw ConvLabError.shapeMismatch(what: "output buffer", expected: "\(descriptor.outputCount) floats "
                                             + "(\(descriptor.outputShape))", actual: "\(output.count)")
        }
        try validateWorkspace(workspace)
    }

    /// Checks the workspace's length and alignment against the plan's layout.
    package func validateWorkspace(_ workspace: UnsafeMutableRawBufferPointer) throws {
        if workspace.count < workspaceBytes {
            throw ConvLabError.shapeMismatch(what: "workspace", expected: "at least \(workspaceBytes) bytes",
                                             actual: "\(workspace.count) bytes")
        }
        if workspaceBytes > 0, let base = workspace.baseAddress, Int(bitPattern: base) % Workspace.alignment != 0 {
            throw ConvLabError.shapeMismatch(what: "workspace", expected: "\(Workspace.alignment)-byte alignment",
                                             actual: "address \(base)")
        }
    }

    /// Executes with a `Workspace` (nil when the plan needs none).
    public func execute(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
                        workspace: Workspace?, profile: ExecutionProfile? = nil) throws {
        try execute(input: input, output: output, workspace: workspace?.buffer ?? Workspace.none, profile: profile)
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

import ConvLabCore

/// The tensors one execution of a pass reads and writes (shapes: `ConvolutionDescriptor.shapes(for:)`).
public struct PassOperands {
    /// x for forward and backward-weights, dy for backward-data.
    public var input: UnsafeBufferPointer<Float>
    /// dy for backward-weights; empty for the other passes, whose second operand (w) is fixed at plan time.
    public var gradOutput: UnsafeBufferPointer<Float>
    /// y, dx or dw.
    public var output: UnsafeMutableBufferPointer<Float>

    public init(input: UnsafeBufferPointer<Float>, gradOutput: UnsafeBufferPointer<Float> = UnsafeBufferPointer(start: nil, count: 0),
                output: UnsafeMutableBufferPointer<Float>) {
        self.input = input
        self.gradOutput = gradOutput
        self.output = output
    }
}

/// A prepared computation of one pass of one layer: the common face of forward plans (`ConvolutionPlan`) and the
/// backward plans, so that benchmarks, the accuracy checker and the selector treat every pass alike. Same contract
/// as a forward plan: `execute` allocates nothing, writes every element of the output, and is safe to call from
/// several threads at once with their own buffers and workspaces.
public protocol PassPlan: Sendable {
    var descriptor: ConvolutionDescriptor { get }
    var summary: PlanDescription { get }

    /// Runs the pass. Throws `.shapeMismatch` for operands of the wrong size and for a workspace shorter than
    /// `summary.workspaceBytes` or not 64-byte aligned.
    func execute(_ operands: PassOperands, workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?) throws
}

extension PassPlan {
    public var pass: ConvolutionPass { summary.pass }

    /// Checks every operand's length and the workspace; every backward plan calls this first.
    package func validate(_ operands: PassOperands, workspace: UnsafeMutableRawBufferPointer) throws {
        let d = descriptor
        let shapes = d.shapes(for: pass)
        func count(_ shape: [Int]) -> Int { shape.reduce(1, *) }
        let checks: [(String, Int, [Int])] = [("\(pass) input", operands.input.count, shapes.input),
                                              ("\(pass) output", operands.output.count, shapes.output)]
            + (shapes.gradOutput.map { [("gradient of the output", operands.gradOutput.count, $0)] } ?? [])
        for (what, actual, shape) in checks where actual != count(shape) {
            throw ConvLabError.shapeMismatch(what: what, expected: "\(count(shape)) floats (\(shape))",
                                             actual: "\(actual)")
        }
        try checkWorkspace(workspace)
    }

    /// Checks the workspace's length (at least `summary.workspaceBytes`) and its alignment.
    package func checkWorkspace(_ workspace: UnsafeMutableRawBufferPointer) throws {
        if workspace.count < summary.workspaceBytes {
            throw ConvLabError.shapeMismatch(what: "workspace", expected: "at least \(summary.workspaceBytes) bytes",
                                             actual: "\(workspace.count) bytes")
        }
        if summary.workspaceBytes > 0, let base = workspace.baseAddress, Int(bitPattern: base) % Workspace.alignment != 0 {
            throw ConvLabError.shapeMismatch(what: "workspace", expected: "\(Workspace.alignment)-byte alignment",
                                             actual: "address \(base)")
        }
    }

    /// Tensor front end: `input` is x (forward, backward-weights) or dy (backward-data); `gradOutput` is dy for
    /// backward-weights. Allocates the output and a workspace.
    public func run(_ input: Tensor<Float>, gradOutput: Tensor<Float>? = nil) throws -> Tensor<Float> {
        let shapes = descriptor.shapes(for: pass)
        if input.shape != shapes.input {
            throw ConvLabError.shapeMismatch(what: "\(pass) input", expected: "\(shapes.input)", actual: "\(input.shape)")
        }
        if let expected = shapes.gradOutput, gradOutput?.shape != expected {
            throw ConvLabError.shapeMismatch(what: "gradient of the output", expected: "\(expected)",
                                             actual: gradOutput.map { "\($0.shape)" } ?? "none")
        }
        var output = try Tensor<Float>(shape: shapes.output)
        let workspace = try Workspace(byteCount: summary.workspaceBytes)
        let second = try gradOutput ?? Tensor<Float>(shape: [0])
        try input.withUnsafeBufferPointer { x in
            try second.withUnsafeBufferPointer { g in
                try output.withUnsafeMutableBufferPointer { y in
                    try execute(PassOperands(input: x, gradOutput: shapes.gradOutput == nil ? UnsafeBufferPointer(start: nil, count: 0) : g,
                                             output: y),
                                workspace: workspace.buffer, profile: nil)
                }
            }
        }
        return output
    }
}

/// Every forward plan is a pass plan.
extension ConvolutionPlan {
    public func execute(_ operands: PassOperands, workspace: UnsafeMutableRawBufferPointer,
                        profile: ExecutionProfile?) throws {
        try execute(input: operands.input, output: operands.output, workspace: workspace, profile: profile)
    }
}

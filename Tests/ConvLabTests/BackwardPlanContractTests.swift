import ConvLab
import Foundation
import Synchronization
import Testing

/// The backward plans keep the forward contract: validated operands and workspace, safe concurrent execution with
/// the caller's buffers, the same bits on every run and at every thread count (with the native engine).
@Suite struct BackwardPlanContractTests {
    static let passes: [ConvolutionPass] = [.backwardData, .backwardWeights]
    static let cases: [(String, ConvolutionPass)] = BackendRegistry.all.flatMap { backend in
        passes.map { (backend.name, $0) }
    }

    /// A strided, grouped, batched shape if the backend runs it in `pass`, else stride-1 3×3 or 5×5 forms.
    static func descriptor(for backend: any Convolution, pass: ConvolutionPass) -> ConvolutionDescriptor? {
        let strided = try! ConvolutionDescriptor(
            batch: 2, inputChannels: 8, inputHeight: 21, inputWidth: 19, outputChannels: 10, kernelHeight: 3,
            kernelWidth: 3, strideHeight: 1, strideWidth: 2, padding: .same, groups: 2)
        let candidates = [strided] + [3, 5].map { r in
            try! ConvolutionDescriptor(batch: 3, inputChannels: 8, inputHeight: 21, inputWidth: 19, outputChannels: 10,
                                       kernelHeight: r, kernelWidth: r, padding: .same, groups: 2)
        }
        return candidates.first { backend.support(for: $0, pass: pass).isSupported }
    }

    struct Operands {
        let input: [Float]
        let gradOutput: [Float]
        let outputCount: Int
    }

    static func operands(_ d: ConvolutionDescriptor, _ pass: ConvolutionPass, seed: UInt64) throws -> Operands {
        let shapes = d.shapes(for: pass)
        let input = try Tensor<Float>.random(shape: shapes.input, seed: seed).scalars
        let gradOutput = try shapes.gradOutput.map { try Tensor<Float>.random(shape: $0, seed: seed + 1000).scalars } ?? []
        return Operands(input: input, gradOutput: gradOutput, outputCount: shapes.output.reduce(1, *))
    }

    static func run(_ plan: any PassPlan, _ o: Operands, workspace: Workspace) throws -> [Float] {
        var output = [Float](repeating: .nan, count: o.outputCount)
        try o.input.withUnsafeBufferPointer { x in
            try o.gradOutput.withUnsafeBufferPointer { g in
                try output.withUnsafeMutableBufferPointer { y in
                    try plan.execute(PassOperands(input: x, gradOutput: g, output: y), workspace: workspace.buffer,
                                     profile: nil)
                }
            }
        }
        return output
    }

    static func plan(_ backend: any Convolution, _ pass: ConvolutionPass, _ d: ConvolutionDescriptor,
                     threads: Int) throws -> any PassPlan {
        try backend.makePlan(pass: pass, descriptor: d, weights: try Tensor.random(shape: d.weightShape, seed: 7),
                             options: PlanOptions(threads: threads))
    }

    @Test(arguments: cases)
    func rejectsShortOperandsAndWorkspace(backendName: String, pass: ConvolutionPass) throws {
        let backend = try BackendRegistry.backend(named: backendName)
        guard let d = Self.descriptor(for: backend, pass: pass) else { return }
        let plan = try Self.plan(backend, pass, d, threads: 1)
        let o = try Self.operands(d, pass, seed: 1)
        let workspace = try Workspace(byteCount: plan.summary.workspaceBytes)
        let short = Operands(input: Array(o.input.dropLast()), gradOutput: o.gradOutput, outputCount: o.outputCount)
        let shortOutput = Operands(input: o.input, gradOutput: o.gradOutput, outputCount: o.outputCount - 1)
        #expect(throws: ConvLabError.self) { try Self.run(plan, short, workspace: workspace) }
        #expect(throws: ConvLabError.self) { try Self.run(plan, shortOutput, workspace: workspace) }
        if pass == .backwardWeights {
            let noGradient = Operands(input: o.input, gradOutput: [], outputCount: o.outputCount)
            #expect(throws: ConvLabError.self) { try Self.run(plan, noGradient, workspace: workspace) }
        }
        if plan.summary.workspaceBytes > 0 {
            let small = try Workspace(byteCount: plan.summary.workspaceBytes - 1)
            #expect(throws: ConvLabError.self) { try Self.run(plan, o, workspace: small) }
        }
        let result = try Self.run(plan, o, workspace: workspace)
        #expect(result.allSatisfy { $0.isFinite }, "\(backendName) \(pass) left an element unwritten")
    }

    /// One plan, eight problems on 24 concurrent tasks, each with its own buffers and workspace: serial bits.
    @Test(arguments: cases)
    func concurrentExecutionMatchesSerial(backendName: String, pass: ConvolutionPass) throws {
        let backend = try BackendRegistry.backend(named: backendName)
        guard let d = Self.descriptor(for: backend, pass: pass) else { return }
        let plan = try Self.plan(backend, pass, d, threads: 2)
        let problems = try (0..<8).map { try Self.operands(d, pass, seed: UInt64(20 + $0)) }
        let serialWorkspace = try Workspace(byteCount: plan.summary.workspaceBytes)
        let serial = try problems.map { try Self.run(plan, $0, workspace: serialWorkspace) }
        let mismatches = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 8 * 3) { task in
            let i = task % 8
            do {
                let workspace = try Workspace(byteCount: plan.summary.workspaceBytes)
                if try Self.run(plan, problems[i], workspace: workspace) != serial[i] {
                    mismatches.add(1, ordering: .relaxed)
                }
            } catch {
                mismatches.add(1000, ordering: .relaxed)
            }
        }
        #expect(mismatches.load(ordering: .relaxed) == 0, "\(backendName) \(pass)")
    }

    /// Deterministic plans give the same bits on every run, and (native engine) for 1, 2 and 3 threads: the
    /// reductions are split by the plan's shape, never by the thread count.
    @Test(arguments: cases)
    func sameBitsOnEveryRunAndThreadCount(backendName: String, pass: ConvolutionPass) throws {
        let backend = try BackendRegistry.backend(named: backendName)
        guard let d = Self.descriptor(for: backend, pass: pass) else { return }
        let o = try Self.operands(d, pass, seed: 3)
        let results = try [1, 2, 3].map { threads -> [Float] in
            let plan = try Self.plan(backend, pass, d, threads: threads)
            #expect(plan.summary.isDeterministic, "\(backendName) \(pass) says it is not deterministic")
            let workspace = try Workspace(byteCount: plan.summary.workspaceBytes)
            let first = try Self.run(plan, o, workspace: workspace)
            let second = try Self.run(plan, o, workspace: workspace)
            #expect(second == first, "\(backendName) \(pass) repeat")
            return first
        }
        #expect(results[0] == results[1] && results[1] == results[2], "\(backendName) \(pass) depends on threads")
    }
}

extension BackwardPlanContractTests {
    /// The tests above skip a backend without a shape for the pass; every family must have one.
    @Test func everyFamilyHasAShapeInBothPasses() throws {
        for name in ["reference", "im2col", "direct", "fft", "fft-tiled", "winograd-f2x3", "winograd-f4x3"] {
            let backend = try BackendRegistry.backend(named: name)
            for pass in Self.passes {
                #expect(Self.descriptor(for: backend, pass: pass) != nil, "\(name) \(pass)")
            }
        }
    }
}

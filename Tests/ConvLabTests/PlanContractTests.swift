import ConvLab
import Foundation
import Synchronization
import Testing

/// The promises of `ConvolutionPlan`: validated buffers, caller-owned workspace, limits, thread safety, determinism.
@Suite struct PlanContractTests {
    static let descriptor = try! ConvolutionDescriptor(
        batch: 2, inputChannels: 8, inputHeight: 21, inputWidth: 19, outputChannels: 10, kernelHeight: 3,
        kernelWidth: 3, strideHeight: 1, strideWidth: 2, padding: .same, groups: 2)

    /// A shape the backend supports: the strided, grouped one above if it can, else stride-1 3×3 or 5×5 forms.
    static func descriptor(for backend: any Convolution) -> ConvolutionDescriptor {
        let candidates = [descriptor] + [3, 5].map { r in
            try! ConvolutionDescriptor(batch: 2, inputChannels: 8, inputHeight: 21, inputWidth: 19, outputChannels: 10,
                                       kernelHeight: r, kernelWidth: r, padding: .same, groups: 2)
        }
        return candidates.first { backend.support(for: $0).isSupported } ?? descriptor
    }

    static let backends = BackendRegistry.all.map(\.name)

    @Test(arguments: backends)
    func rejectsBadWeightsBuffersAndWorkspace(backendName: String) throws {
        let backend = try BackendRegistry.backend(named: backendName)
        let d = Self.descriptor(for: backend)
        #expect(throws: ConvLabError.self) {
            try backend.makePlan(descriptor: d, weights: try Tensor(shape: [10, 8, 3, 3]), options: PlanOptions())
        }
        #expect(throws: ConvLabError.self) {
            try backend.makePlan(descriptor: d, weights: try Tensor(shape: d.weightShape),
                                 options: PlanOptions(threads: 0))
        }
        let plan = try backend.makePlan(descriptor: d, weights: try Tensor(shape: d.weightShape),
                                        options: PlanOptions())
        let input = [Float](repeating: 1, count: d.inputCount)
        var output = [Float](repeating: 0, count: d.outputCount)
        let workspace = plan.workspaceBytes > 0 ? try plan.makeWorkspace() : nil
        try Array(input.dropLast()).withUnsafeBufferPointer { x in
            try output.withUnsafeMutableBufferPointer { y in
                #expect(throws: ConvLabError.self) { try plan.execute(input: x, output: y, workspace: workspace, profile: nil) }
            }
        }
        try input.withUnsafeBufferPointer { x in
            try output.withUnsafeMutableBufferPointer { y in
                let short = UnsafeMutableBufferPointer(rebasing: y.dropLast())
                #expect(throws: ConvLabError.self) { try plan.execute(input: x, output: short, workspace: workspace, profile: nil) }
                if plan.workspaceBytes > 0 {
                    #expect(throws: ConvLabError.self) { try plan.execute(input: x, output: y, workspace: nil, profile: nil) }
                    let small = try Workspace(byteCount: plan.workspaceBytes - 1)
                    #expect(throws: ConvLabError.self) { try plan.execute(input: x, output: y, workspace: small, profile: nil) }
                }
                try plan.execute(input: x, output: y, workspace: workspace, profile: nil)
            }
        }
        var wrongShape = try Tensor<Float>(shape: [2, 10, 21, 12])
        #expect(throws: ConvLabError.self) {
            try plan.execute(try Tensor(shape: d.inputShape), into: &wrongShape, workspace: workspace)
        }
    }

    @Test func workspaceOverTheLimitIsRefusedAtPlanTime() throws {
        let d = try ConvolutionDescriptor(inputChannels: 64, inputHeight: 64, inputWidth: 64, outputChannels: 64,
                                          kernelHeight: 3, kernelWidth: 3, padding: .same)
        let tight = PlanOptions(limits: ResourceLimits(maxTensorBytes: 1 << 30, maxWorkspaceBytes: 4096))
        for backend in [DirectBackend(), Im2colBackend()] as [any Convolution] {
            #expect {
                try backend.makePlan(descriptor: d, weights: try Tensor(shape: d.weightShape), options: tight)
            } throws: { error in
                guard case ConvLabError.memoryLimitExceeded(_, let required, let limit) = error else { return false }
                return required > limit && limit == 4096
            }
        }
    }

    /// One plan, eight threads at once, each with its own buffers and workspace: same bits as a serial run.
    @Test(arguments: backends)
    func concurrentExecutionMatchesSerial(backendName: String) async throws {
        let backend = try BackendRegistry.backend(named: backendName)
        let d = Self.descriptor(for: backend)
        let weights = try Tensor<Float>.random(shape: d.weightShape, seed: 1)
        let plan = try backend.makePlan(descriptor: d, weights: weights, options: PlanOptions(threads: 2))
        let inputs = try (0..<8).map { try Tensor<Float>.random(shape: d.inputShape, seed: UInt64(10 + $0)) }
        let serial = try inputs.map { try plan($0) }
        let mismatches = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 8 * 3) { task in
            let i = task % 8
            do {
                let workspace = plan.workspaceBytes > 0 ? try plan.makeWorkspace() : nil
                var output = try Tensor<Float>(shape: d.outputShape)
                try plan.execute(inputs[i], into: &output, workspace: workspace)
                if output != serial[i] { mismatches.add(1, ordering: .relaxed) }
            } catch {
                mismatches.add(1000, ordering: .relaxed)
            }
        }
        #expect(mismatches.load(ordering: .relaxed) == 0)
    }

    @Test(arguments: backends)
    func deterministicPlansRepeatBitForBit(backendName: String) throws {
        let backend = try BackendRegistry.backend(named: backendName)
        let d = Self.descriptor(for: backend)
        let plan = try backend.makePlan(
            descriptor: d, weights: try Tensor.random(shape: d.weightShape, seed: 3), options: PlanOptions(threads: 2))
        let x = try Tensor<Float>.random(shape: d.inputShape, seed: 4)
        #expect(plan.isDeterministic)
        #expect(try plan(x) == plan(x))
    }

    @Test func profileRecordsNamedPhases() throws {
        let d = Self.descriptor
        let plan = try DirectBackend().makePlan(descriptor: d, weights: try Tensor(shape: d.weightShape),
                                                options: PlanOptions())
        var y = try Tensor<Float>(shape: d.outputShape)
        let profile = ExecutionProfile()
        try plan.execute(try Tensor(shape: d.inputShape), into: &y, workspace: try plan.makeWorkspace(),
                         profile: profile)
        #expect(profile.phases.map(\.name) == ["pad input", "convolve"])
        #expect(profile.phases.allSatisfy { $0.seconds >= 0 })
    }

    /// With the native GEMM engine (the default) no backend's result depends on the thread count: each output is
    /// computed by one worker in an order fixed by the plan's shape (the native GEMM sums k in fixed blocks of 128,
    /// see `NativeMultiplier.kSum`), so how the work is split never reaches the arithmetic. These shapes make the
    /// splits differ: im2col switches to output-channel blocks at 2+ threads and its last column tile is ragged.
    /// The one exception is FFTW's own threading: when a phase has fewer transforms than threads (a single-channel
    /// image), each transform runs threaded inside FFTW, whose plan for some thread counts splits the transform
    /// differently (seen at 4 threads on a 1-channel 257² image); these shapes have enough channels to avoid it.
    @Test(arguments: [
        try! ConvolutionDescriptor(batch: 1, inputChannels: 24, inputHeight: 37, inputWidth: 41, outputChannels: 40,
                                   kernelHeight: 3, kernelWidth: 3, padding: .same),
        try! ConvolutionDescriptor(batch: 3, inputChannels: 12, inputHeight: 29, inputWidth: 30, outputChannels: 18,
                                   kernelHeight: 5, kernelWidth: 5, padding: .same, groups: 3),
        try! ConvolutionDescriptor(batch: 2, inputChannels: 16, inputHeight: 20, inputWidth: 33, outputChannels: 48,
                                   kernelHeight: 1, kernelWidth: 7, padding: .same),
    ])
    func threadCountNeverChangesBitsWithTheNativeEngine(d: ConvolutionDescriptor) throws {
        let weights = try Tensor<Float>.random(shape: d.weightShape, seed: 5)
        let x = try Tensor<Float>.random(shape: d.inputShape, seed: 6)
        for backend in BackendRegistry.supporting(d) {
            let outputs = try [1, 2, 3, 5].map { threads in
                try backend.makePlan(descriptor: d, weights: weights, options: PlanOptions(threads: threads))(x)
            }
            #expect(outputs.allSatisfy { $0 == outputs[0] }, "\(backend.name) on \(d)")
        }
    }

    @Test func unknownBackendNameListsTheKnownOnes() {
        #expect {
            try BackendRegistry.backend(named: "winograd-f99")
        } throws: { error in
            guard case ConvLabError.unknownName(_, _, let known) = error else { return false }
            return known.contains("direct") && known.contains("im2col")
        }
    }
}

import ConvLab
import Foundation
import Testing

/// `describe` is what the selector ranks and `makePlan` is what runs: they must be the same plan. And the plan must
/// stay inside the workspace it declares, whatever the shape, thread count or engine.
@Suite struct PlanDescriptionTests {
    static let descriptors = RandomDescriptors.make(count: 40, seed: 2026)
    static let engines: [MatrixEngine] = [.native, .blas, .strassen(depth: 1, base: .native, cutoff: 2)]
    static let canaryBytes = 256
    static let canary: UInt8 = 0x5A

    static func backends(_ index: Int) -> [any Convolution] {
        let settings = [BackendSettings(), BackendSettings(fftTile: 16, fftProduct: .gauss, winogradTile: 3),
                        BackendSettings(winogradTile: 2)][index % 3]
        return BackendRegistry.all(settings).filter { $0.name != "reference" }
    }

    @Test(arguments: 0..<3)
    func describeIsThePlanAndThePlanStaysInItsWorkspace(settingsIndex: Int) throws {
        let fallbacks = ScratchFallbacks.total
        var checked = 0
        for (index, d) in Self.descriptors.enumerated() {
            let options = PlanOptions(threads: 1 + (index + settingsIndex) % 3,
                                      matrixEngine: Self.engines[(index + settingsIndex) % Self.engines.count])
            let x = try Tensor<Float>.random(shape: d.inputShape, seed: UInt64(index))
            let w = try Tensor<Float>.random(shape: d.weightShape, seed: UInt64(index) + 99)
            let truth = try ReferenceConvolution.compute(descriptor: d, input: x, weights: w, threads: 2)
            for backend in Self.backends(settingsIndex) where backend.support(for: d).isSupported {
                let described = try backend.describe(d, options: options)
                let plan = try backend.makePlan(descriptor: d, weights: w, options: options)
                let label = "\(backend.name) on \(d) at \(options.threads) threads, \(options.matrixEngine)"
                #expect(plan.summary.variant == described.variant, "\(label)")
                #expect(plan.summary.errorBound == described.errorBound, "\(label)")
                #expect(plan.workspaceBytes == described.workspaceBytes, "\(label)")
                #expect(plan.summary.persistentBytes == described.persistentBytes, "\(label)")
                #expect(plan.backendName == backend.name, "\(label)")

                // Exactly the declared bytes, then a canary: nothing may be written past the end.
                let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: plan.workspaceBytes + Self.canaryBytes,
                                                                    alignment: Workspace.alignment)
                defer { memory.deallocate() }
                memory.initializeMemory(as: UInt8.self, repeating: Self.canary)
                var y = try Tensor<Float>(shape: d.outputShape)
                try x.withUnsafeBufferPointer { input in
                    try y.withUnsafeMutableBufferPointer { output in
                        try plan.execute(input: input, output: output,
                                         workspace: UnsafeMutableRawBufferPointer(rebasing: memory[0..<plan.workspaceBytes]),
                                         profile: nil)
                    }
                }
                let overwritten = memory[plan.workspaceBytes...].filter { $0 != Self.canary }.count
                #expect(overwritten == 0, "\(label): \(overwritten) bytes written past the workspace")
                let report = try AccuracyChecker.compare(output: y, reference: truth, errorBound: plan.expectedErrorBound)
                #expect(report.passed, "\(label): \(report)")
                checked += 1
            }
        }
        #expect(checked > 150, "too few plans checked: \(checked)")
        #expect(ScratchFallbacks.total == fallbacks, "a GEMM got less workspace than it declared")
    }

    /// A plan never reserves per-worker scratch for workers that have no work: an 8×8 layer gets the same workspace at
    /// 1,000 threads as at the number of tasks it has.
    @Test func workspaceFollowsTheWorkNotTheThreadCount() throws {
        let d = try ConvolutionDescriptor(inputChannels: 4, inputHeight: 8, inputWidth: 8, outputChannels: 4,
                                          kernelHeight: 3, kernelWidth: 3, padding: .same)
        for backend in BackendRegistry.supporting(d) {
            let many = try backend.describe(d, options: PlanOptions(threads: 1000)).workspaceBytes
            let enough = try backend.describe(d, options: PlanOptions(threads: 256)).workspaceBytes
            #expect(many == enough, "\(backend.name): \(many) bytes at 1000 threads, \(enough) at 256")
            #expect(many < 8 << 20, "\(backend.name): \(many) bytes for an 8×8 layer")
        }
    }

    @Test(arguments: [0, -1, Parallel.maxThreads + 1, Int.max])
    func threadCountsOutsideTheRangeAreRefused(threads: Int) throws {
        let d = try ConvolutionDescriptor(inputChannels: 4, inputHeight: 8, inputWidth: 8, outputChannels: 4,
                                          kernelHeight: 3, kernelWidth: 3, padding: .same)
        let w = try Tensor<Float>(shape: d.weightShape)
        for backend in BackendRegistry.all where backend.support(for: d).isSupported {
            #expect(throws: ConvLabError.invalidArgument(name: "threads", reason: "must be 1...1024 (got \(threads))")) {
                _ = try backend.describe(d, options: PlanOptions(threads: threads))
            }
            #expect(throws: ConvLabError.self) {
                _ = try backend.makePlan(descriptor: d, weights: w, options: PlanOptions(threads: threads))
            }
        }
        #expect(throws: ConvLabError.self) {
            _ = try ConvLab.convolution(for: d, weights: w, options: PlanOptions(threads: threads))
        }
    }

    /// Under the default FFTW effort, describing (what `select` does) times nothing and gives the same answer on
    /// every call; the FFT sizes come from the formula and the tile table.
    @Test func describingTimesNothingAndIsRepeatable() throws {
        let before = FFTPlanningDiagnostics.timedMeasurements
        for d in Self.descriptors.prefix(20) {
            for backend in BackendRegistry.supporting(d) {
                let first = try backend.describe(d, options: PlanOptions(threads: 2))
                let second = try backend.describe(d, options: PlanOptions(threads: 2))
                #expect(first.variant == second.variant && first.workspaceBytes == second.workspaceBytes)
            }
        }
        #expect(FFTPlanningDiagnostics.timedMeasurements == before)
    }

    /// The estimates pick what FFTW is fast at: 7-smooth whole-image sizes, and for tiles the codelet sizes, whose
    /// per-point cost the tile table carries (32² runs at a third of 40²'s per point here, so a 64² image with a 7×7
    /// kernel gets 32×32 tiles, measured 2.8–3.3 ms against 3.4–4.9 ms for 40×40 and 20×20).
    @Test func estimatesPickWhatFFTWIsFastAt() throws {
        let seven = try ConvolutionDescriptor(inputChannels: 64, inputHeight: 64, inputWidth: 64, outputChannels: 64,
                                              kernelHeight: 7, kernelWidth: 7, padding: .same)
        #expect(try FFTBackend(tiling: .tiled(size: nil)).transformSize(for: seven) == (32, 32))
        let odd = try ConvolutionDescriptor(inputChannels: 1, inputHeight: 1024, inputWidth: 1018, outputChannels: 1,
                                            kernelHeight: 7, kernelWidth: 7)
        let size = try FFTBackend().transformSize(for: odd)
        for n in [size.height, size.width] {
            var m = n
            for p in [2, 3, 5, 7] { while m % p == 0 { m /= p } }
            #expect(m == 1 && n >= 1018, "\(n)")
        }
        #expect(size == (1024, 1024), "a power of two where it fits: \(size)")
    }
}

import ConvLab
import Testing

/// Adding a backend is one folder plus one registry line: nothing else in convlab needs to know it. These tests add
/// one that exists only here and check that the selector considers it, predicts it, chooses it and plans it.
@Suite struct RegistryTests {
    /// The direct backend under another name, claiming almost no work: a backend the cost model has never heard of.
    struct FreeLunchBackend: Convolution {
        var name: String { "free-lunch" }
        func support(for descriptor: ConvolutionDescriptor) -> SupportStatus { .supported }
        func describe(_ d: ConvolutionDescriptor, options: PlanOptions) throws -> PlanDescription {
            var plan = try DirectBackend().describe(d, options: options)
            plan.backend = name
            plan.variant = "test-only"
            plan.work = WorkEstimate([.memory(bytes: 1)])
            return plan
        }
        func makePlan(descriptor: ConvolutionDescriptor, weights: Tensor<Float>, options: PlanOptions) throws
            -> any ConvolutionPlan {
            try DirectBackend().makePlan(descriptor: descriptor, weights: weights, options: options)
        }
    }

    static let layer = try! ConvolutionDescriptor(inputChannels: 16, inputHeight: 20, inputWidth: 20,
                                                  outputChannels: 16, kernelHeight: 3, kernelWidth: 3, padding: .same)

    @Test func aRegisteredBackendIsConsideredPredictedAndChosen() throws {
        var registry = BackendRegistry.standard()
        registry.register(FreeLunchBackend())
        #expect(registry.names.last == "free-lunch")
        let selection = Selector(registry: registry).select(for: Self.layer, threads: 2)
        let candidate = selection.all.first { $0.backend.name == "free-lunch" }
        #expect(candidate?.status == .eligible)
        #expect(candidate?.seconds != nil, "the cost model predicts any described work")
        #expect(selection.choice?.backend.name == "free-lunch")
        #expect(selection.choice?.plan?.variant == "test-only")

        // ... and `ConvLab.convolution` plans it.
        let w = try Tensor<Float>.random(shape: Self.layer.weightShape, seed: 3)
        let x = try Tensor<Float>.random(shape: Self.layer.inputShape, seed: 4)
        let plan = try ConvLab.convolution(for: Self.layer, weights: w, options: PlanOptions(threads: 2),
                                           registry: registry)
        let report = try AccuracyChecker.compare(output: try plan(x),
                                                 reference: try ReferenceConvolution.compute(descriptor: Self.layer,
                                                                                             input: x, weights: w),
                                                 errorBound: plan.expectedErrorBound)
        #expect(report.passed)
    }

    @Test func withoutRegistrationTheSelectorNeverSeesIt() {
        let selection = Selector().select(for: Self.layer, threads: 2)
        #expect(!selection.all.contains { $0.backend.name == "free-lunch" })
        #expect(selection.choice != nil)
        // Every standard selectable backend that supports the layer is predicted: none silently missing.
        for candidate in selection.all where candidate.status == .eligible {
            #expect(candidate.seconds != nil, "\(candidate.backend.name)")
        }
    }

    @Test func registeringANameAgainReplacesTheBackend() throws {
        var registry = BackendRegistry.standard()
        let count = registry.backends.count
        registry.register(FFTBackend(tiling: .tiled(size: 16)))
        #expect(registry.backends.count == count)
        let fft = try registry.backend(named: "fft-tiled")
        #expect(try fft.describe(Self.layer, options: PlanOptions(threads: 1)).variant.hasPrefix("16x16"))
    }

    /// The reference and the generic `winograd` are listed but never chosen (the Winograd variants cover it).
    @Test func onlySelectableBackendsAreCandidates() {
        let names = BackendRegistry.standard().selectable.map(\.name)
        #expect(!names.contains("reference") && !names.contains("winograd"))
        #expect(names.contains("direct") && names.contains("winograd-f4x3"))
    }
}

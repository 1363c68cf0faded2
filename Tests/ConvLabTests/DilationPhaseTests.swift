import ConvLab
import Testing

/// Dilated layers through Winograd as the undilated problem over their polyphase components: every pass against the
/// float64 reference on random dilated shapes (odd sizes, asymmetric padding and dilation, groups, batch, 1×r
/// kernels, dilation beyond the output), and the plan says what it did.
@Suite struct DilationPhaseTests {
    static let variants = ["winograd-f2x3", "winograd-f4x3", "winograd-f6x3", "winograd-f2x5", "winograd-f4x5"]

    /// Random dilated stride-1 shapes the variant runs; at least one per seed stream has a dilation beyond its output.
    static func shapes(for backend: any Convolution, seed: UInt64) -> [ConvolutionDescriptor] {
        RandomDescriptors.make(count: 24, seed: seed, maxStride: 1, maxDilation: 7, kernelSizes: [1, 3, 5],
                               accept: { !$0.isUndilated && backend.support(for: $0).isSupported })
    }

    static let edgeCases: [ConvolutionDescriptor] = [
        // DeepLab's geometry, fewer channels: 36 phases of 6x6 outputs, one F(6,3) tile each.
        try! ConvolutionDescriptor(inputChannels: 20, inputHeight: 33, inputWidth: 33, outputChannels: 18,
                                   kernelHeight: 3, kernelWidth: 3, padding: .explicit(Padding(top: 6, bottom: 6, left: 6, right: 6)),
                                   dilationHeight: 6, dilationWidth: 6),
        // Dilation larger than the output along one axis (only 3 row phases hold outputs), asymmetric padding,
        // two groups, batch 3.
        try! ConvolutionDescriptor(batch: 3, inputChannels: 6, inputHeight: 13, inputWidth: 19, outputChannels: 4,
                                   kernelHeight: 3, kernelWidth: 3, padding: .explicit(Padding(top: 2, bottom: 0, left: 1, right: 3)),
                                   dilationHeight: 5, dilationWidth: 2, groups: 2),
        // 1x5 kernel dilated along its taps only, 17 input channels (a ragged channel block).
        try! ConvolutionDescriptor(inputChannels: 17, inputHeight: 9, inputWidth: 40, outputChannels: 33,
                                   kernelHeight: 1, kernelWidth: 5, padding: .same, dilationHeight: 1, dilationWidth: 3),
    ]

    @Test(arguments: variants)
    func everyPassAgreesWithTheReference(name: String) throws {
        let backend = try BackendRegistry.backend(named: name)
        let shapes = Self.shapes(for: backend, seed: 0xD11A + UInt64(name.count))
            + Self.edgeCases.filter { backend.support(for: $0).isSupported }
        #expect(shapes.count >= 24)
        for (index, d) in shapes.enumerated() {
            for pass in ConvolutionPass.allCases {
                let options = PlanOptions(threads: 1 + index % 2)
                #expect(backend.support(for: d, pass: pass).isSupported, "\(name) \(pass) on \(d)")
                let report = try AccuracyChecker.check(backend: backend, pass: pass, descriptor: d,
                                                       seed: UInt64(index), options: options)
                #expect(report.passed && report.comparedCount == d.shapes(for: pass).output.reduce(1, *),
                        "\(name) \(pass) on \(d): \(report)")
            }
        }
    }

    @Test func thePlanNamesItsPhasesAndKeepsTheBound() throws {
        let backend = try BackendRegistry.backend(named: "winograd-f2x3")
        let dilated = Self.edgeCases[1]
        let plan = try backend.describe(dilated, options: PlanOptions(threads: 1))
        // 13 + 2 − 2·5 = 5 output rows < dilation 5: 5 row phases; 19 + 4 − 2·2 = 19 columns: 2 column phases.
        #expect(plan.variant.hasPrefix("dilation 5x2 as 10 phases: F(2x2,3x3)"), "\(plan.variant)")
        let undilated = try ConvolutionDescriptor(batch: 3, inputChannels: 6, inputHeight: 13, inputWidth: 19,
                                                  outputChannels: 4, kernelHeight: 3, kernelWidth: 3, groups: 2)
        // Each output sums the same (C/G)·R·S products: the phases leave the bound as it was.
        #expect(plan.errorBound == (try backend.describe(undilated, options: PlanOptions(threads: 1))).errorBound)
        #expect(plan.work?.stages.contains { if case .memory = $0 { return true } else { return false } } == true,
                "the gather and scatter are priced")
    }

    @Test func stridedDilatedLayersAreRefusedWithAReason() throws {
        let d = try ConvolutionDescriptor(inputChannels: 4, inputHeight: 20, inputWidth: 20, outputChannels: 4,
                                          kernelHeight: 3, kernelWidth: 3, strideHeight: 2, strideWidth: 2,
                                          dilationHeight: 2, dilationWidth: 2)
        for name in Self.variants.prefix(3) {
            let backend = try BackendRegistry.backend(named: name)
            guard case .unsupported(let reason) = backend.support(for: d) else {
                Issue.record("\(name) accepted a strided dilated layer")
                continue
            }
            #expect(reason.contains("stride"))
            #expect(throws: ConvLabError.self) {
                _ = try backend.makePlan(descriptor: d, weights: try Tensor(shape: d.weightShape),
                                         options: PlanOptions(threads: 1))
            }
        }
    }
}

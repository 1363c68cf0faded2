import ConvLab
import Testing

/// backward-data of strided layers as stride-1 phases of dx (`DataGradientAsPhases`): every backend that takes the
/// split agrees with the float64 reference on random strided shapes and on the edges of the split — phases without
/// taps (stride larger than the kernel), phases whose padding crops dy, a layer whose dx is all zero — and says in its
/// variant which path it took; dilated and depthwise strided layers keep zero insertion.
@Suite struct DataGradientPhaseTests {
    static let backends = ["direct", "fft", "fft-tiled", "winograd"]

    static let edgeCases: [ConvolutionDescriptor] = [
        // ResNet's 1×1 stride-2 shortcut: one phase with a 1×1 kernel, three zero phases.
        try! ConvolutionDescriptor(batch: 2, inputChannels: 12, inputHeight: 14, inputWidth: 13, outputChannels: 20,
                                   kernelHeight: 1, kernelWidth: 1, strideHeight: 2, strideWidth: 2),
        // Padding beyond the kernel's reach: phases crop dy.
        try! ConvolutionDescriptor(inputChannels: 5, inputHeight: 9, inputWidth: 11, outputChannels: 7,
                                   kernelHeight: 3, kernelWidth: 3, strideHeight: 2, strideWidth: 2,
                                   padding: .explicit(Padding(top: 3, bottom: 1, left: 0, right: 3))),
        // Stride 3 with a 2×2 kernel: the third phase of each axis has no tap.
        try! ConvolutionDescriptor(inputChannels: 4, inputHeight: 17, inputWidth: 16, outputChannels: 6,
                                   kernelHeight: 2, kernelWidth: 2, strideHeight: 3, strideWidth: 3, padding: .same),
        // A channel multiplier of 2 at stride 2, 5×5, batch 3 (plain depthwise layers keep zero insertion).
        try! ConvolutionDescriptor(batch: 3, inputChannels: 16, inputHeight: 22, inputWidth: 21, outputChannels: 32,
                                   kernelHeight: 5, kernelWidth: 5, strideHeight: 2, strideWidth: 2, padding: .same,
                                   groups: 16),
        // A 7×7 stride-2 stem with 3 input channels, and a 1×3 kernel at stride 1×2 with two groups.
        try! ConvolutionDescriptor(inputChannels: 3, inputHeight: 32, inputWidth: 30, outputChannels: 8,
                                   kernelHeight: 7, kernelWidth: 7, strideHeight: 2, strideWidth: 2, padding: .same),
        try! ConvolutionDescriptor(batch: 2, inputChannels: 6, inputHeight: 7, inputWidth: 19, outputChannels: 4,
                                   kernelHeight: 1, kernelWidth: 3, strideHeight: 1, strideWidth: 2,
                                   padding: .explicit(Padding(top: 0, bottom: 0, left: 2, right: 1)), groups: 2),
    ]

    @Test func phasesAgreeWithTheReference() throws {
        let random = RandomDescriptors.make(count: 40, seed: 0x57D1, maxDilation: 1) {
            !$0.isStrideOne && !($0.channelsPerGroup == 1 && $0.outputChannelsPerGroup == 1)
        }
        var phased: [String: Int] = [:]
        for (index, d) in (random + Self.edgeCases).enumerated() {
            for name in Self.backends {
                let backend = try BackendRegistry.backend(named: name)
                guard backend.support(for: d, pass: .backwardData).isSupported else { continue }
                let options = PlanOptions(threads: 1 + index % 3)
                let variant = try backend.describe(d, pass: .backwardData, options: options).variant
                if variant.contains("phases") { phased[name, default: 0] += 1 }
                let report = try AccuracyChecker.check(backend: backend, pass: .backwardData, descriptor: d,
                                                       seed: UInt64(index) + 70, options: options)
                #expect(report.passed && report.comparedCount == d.inputCount, "\(name) on \(d) (\(variant)): \(report)")
            }
        }
        // direct and the FFTs plan every phase of every strided shape; the generic Winograd its r×r and 1×r ones.
        for name in ["direct", "fft", "fft-tiled"] {
            #expect(phased[name] == random.count + Self.edgeCases.count, "\(name): \(phased)")
        }
        #expect((phased["winograd"] ?? 0) > 0, "\(phased)")
    }

    /// The direct backend's nChw16c entry for dense strided layers runs the phases from one padded dy straight into
    /// dx (`ChannelBlockedPhasedDataGradientPlan`): random one-group strided shapes (odd sizes, non-square kernels and
    /// strides, batch, channel counts off the 16-lane blocks) and the edge cases above — zero phases, cropping
    /// phases, stride 3 past the kernel, the 3-channel stem — at 1–3 threads.
    @Test func blockedPhasesAgreeWithTheReference() throws {
        let random = RandomDescriptors.make(count: 30, seed: 0x57D2, maxDilation: 1) {
            !$0.isStrideOne && $0.groups == 1
        }
        // Several 16-channel chunks of dy and blocks of dx, two 64-channel groups, rows of several tiles.
        let wide = [
            try ConvolutionDescriptor(batch: 2, inputChannels: 37, inputHeight: 15, inputWidth: 13, outputChannels: 70,
                                      kernelHeight: 3, kernelWidth: 3, strideHeight: 2, strideWidth: 2, padding: .same),
            try ConvolutionDescriptor(inputChannels: 17, inputHeight: 19, inputWidth: 60, outputChannels: 33,
                                      kernelHeight: 5, kernelWidth: 3, strideHeight: 2, strideWidth: 3,
                                      padding: .explicit(Padding(top: 2, bottom: 1, left: 0, right: 2))),
            try ConvolutionDescriptor(inputChannels: 80, inputHeight: 14, inputWidth: 14, outputChannels: 40,
                                      kernelHeight: 1, kernelWidth: 1, strideHeight: 2, strideWidth: 2),
            // A 4-block group of dx over phase rows of 15: two whole 4 × 6 tiles in one call, then a tail.
            try ConvolutionDescriptor(inputChannels: 72, inputHeight: 29, inputWidth: 30, outputChannels: 20,
                                      kernelHeight: 3, kernelWidth: 3, strideHeight: 2, strideWidth: 2, padding: .same),
        ]
        for (index, d) in (random + wide + Self.edgeCases.filter { $0.groups == 1 }).enumerated() {
            let (x, w, dy) = try BlockedEntryChecks.operands(d, seed: UInt64(index) + 90)
            let plan = try DirectBackend().makePlan(pass: .backwardData, descriptor: d, weights: w,
                                                    options: PlanOptions(threads: 1 + index % 3))
            let blocked = try #require(plan as? any ChannelBlockedPassExecution, "\(d): no nChw16c entry")
            #expect(blocked.blockedSummary.variant.contains("channel-blocked, into dx"), "\(blocked.blockedSummary)")
            try BlockedEntryChecks.expectAgreesWithReference(blocked, x: x, weights: w, gradOutput: dy)
        }
    }

    @Test func aLayerThatNeverReadsItsInputHasAZeroGradient() throws {
        // 1×1 at stride 2 padded by one row and column: the only input pixel sits where no output looks.
        let d = try ConvolutionDescriptor(inputChannels: 3, inputHeight: 1, inputWidth: 1, outputChannels: 2,
                                          kernelHeight: 1, kernelWidth: 1, strideHeight: 2, strideWidth: 2,
                                          padding: .explicit(Padding(top: 1, bottom: 1, left: 1, right: 1)))
        let plan = try DirectBackend().makePlan(pass: .backwardData, descriptor: d,
                                                weights: try Tensor.random(shape: d.weightShape, seed: 1),
                                                options: PlanOptions(threads: 2))
        #expect(plan.summary.variant.contains("every phase zero"), "\(plan.summary.variant)")
        let dx = try plan.run(try Tensor.random(shape: d.outputShape, seed: 2))
        #expect(dx.scalars.allSatisfy { $0 == 0 })
    }

    @Test func dilatedAndDepthwiseStridedLayersKeepZeroInsertion() throws {
        let dilated = try ConvolutionDescriptor(inputChannels: 4, inputHeight: 15, inputWidth: 15, outputChannels: 4,
                                                kernelHeight: 3, kernelWidth: 3, strideHeight: 2, strideWidth: 2,
                                                padding: .same, dilationHeight: 2, dilationWidth: 2)
        // (16+ channels take the direct backend's own channel-blocked kernel: ChannelBlockedDepthwiseGradientTests.)
        let depthwise = try ConvolutionDescriptor(inputChannels: 8, inputHeight: 22, inputWidth: 21, outputChannels: 8,
                                                  kernelHeight: 3, kernelWidth: 3, strideHeight: 2, strideWidth: 2,
                                                  padding: .same, groups: 8)
        for d in [dilated, depthwise] {
            let variant = try DirectBackend().describe(d, pass: .backwardData, options: PlanOptions(threads: 1)).variant
            #expect(variant.contains("zero-inserted") && !variant.contains("phases"), "\(variant)")
            let report = try AccuracyChecker.check(backend: DirectBackend(), pass: .backwardData, descriptor: d, seed: 3)
            #expect(report.passed)
        }
    }
}

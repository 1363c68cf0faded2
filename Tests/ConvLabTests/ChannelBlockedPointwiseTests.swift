import ConvLab
import Testing

/// The direct backend's channel-blocked 1×1 plan, the nChw16c entry point of 1×1 layers, forward and (through the
/// forward problem on C↔K-swapped weights) backward-data: against the float64 reference on random shapes with ragged
/// channel counts (1–600: several input chunks, last output groups of 1–3 blocks), every stride, batch, maps whose
/// positions are not a multiple of the 24-position tile, outputs pre-filled with NaN, lanes past the last channel zero,
/// and the same bits at every thread count. (Padded 1×1 layers take the dense blocked plan, `ChannelBlockedDirectTests`.)
@Suite struct ChannelBlockedPointwiseTests {
    static let shapes: [ConvolutionDescriptor] = {
        var generator = SeededGenerator(seed: 0x1B1C)
        func pick(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &generator) }
        var result: [ConvolutionDescriptor] = []
        while result.count < 40 {
            let wide = pick(0...3) == 0
            if let d = try? ConvolutionDescriptor(
                batch: pick(1...3), inputChannels: wide ? pick(257...600) : pick(1...100),
                inputHeight: pick(1...30), inputWidth: pick(1...30),
                outputChannels: pick(0...1) == 0 ? pick(1...40) : pick(41...200), kernelHeight: 1, kernelWidth: 1,
                strideHeight: pick(0...2) == 0 ? pick(2...3) : 1, strideWidth: pick(0...2) == 0 ? pick(2...3) : 1) {
                result.append(d)
            }
        }
        // ResNet-50's 7×7 2048 → 512 (weights beyond L2: group ranges) and a 112² map with 16 outputs (one block).
        result.append(try! ConvolutionDescriptor(inputChannels: 2048, inputHeight: 7, inputWidth: 7, outputChannels: 512,
                                                 kernelHeight: 1, kernelWidth: 1))
        result.append(try! ConvolutionDescriptor(inputChannels: 32, inputHeight: 112, inputWidth: 112, outputChannels: 16,
                                                 kernelHeight: 1, kernelWidth: 1))
        // Two channel slices (`reductionSlices`): MobileNetV2's 960 → 160 at 7²; 300 channels (a ragged last block,
        // slices of 144 and 156) into one group on 7×8, batch 3; strided, 272 → 150 at 13² / 2 (gathered input).
        result.append(try! ConvolutionDescriptor(inputChannels: 960, inputHeight: 7, inputWidth: 7, outputChannels: 160,
                                                 kernelHeight: 1, kernelWidth: 1))
        result.append(try! ConvolutionDescriptor(batch: 3, inputChannels: 300, inputHeight: 7, inputWidth: 8,
                                                 outputChannels: 40, kernelHeight: 1, kernelWidth: 1))
        result.append(try! ConvolutionDescriptor(inputChannels: 272, inputHeight: 13, inputWidth: 13, outputChannels: 150,
                                                 kernelHeight: 1, kernelWidth: 1, strideHeight: 2, strideWidth: 2))
        // One output block on a 6×6 map: ranges of 6 positions, each read by a 24-wide tile past the map's end (the
        // last image's must be gathered, or they read past the tensor: the AddressSanitizer pass runs this suite).
        for threads in 0..<3 {
            result.append(try! ConvolutionDescriptor(inputChannels: 16 + threads, inputHeight: 6, inputWidth: 6,
                                                     outputChannels: 16, kernelHeight: 1, kernelWidth: 1))
        }
        return result
    }()

    @Test func blockedForwardAndDataGradientAgreeWithTheReference() throws {
        var dataGradients = 0
        for (index, d) in Self.shapes.enumerated() {
            let (x, w, dy) = try BlockedEntryChecks.operands(d, seed: UInt64(index))
            for pass in [ConvolutionPass.forward, .backwardData] {
                let plan = try DirectBackend().makePlan(pass: pass, descriptor: d, weights: w,
                                                        options: PlanOptions(threads: 1 + index % 3))
                // Every shape, every pass: strided 1×1 gradients run as phases, the 1×1 phase by the blocked tiles
                // into every s-th position of dx (`ChannelBlockedPhasedDataGradientPlan`).
                let blocked = try #require(plan as? any ChannelBlockedPassExecution, "\(pass) \(d): no nChw16c entry")
                let phased = pass == .backwardData && !d.isStrideOne
                let variant = blocked.blockedSummary.variant
                #expect(phased ? variant.hasSuffix("channel-blocked, into dx") : variant.contains("1x1 channel-blocked"),
                        "\(pass) \(d): \(variant)")
                if pass == .backwardData { dataGradients += 1 }
                try BlockedEntryChecks.expectAgreesWithReference(blocked, x: x, weights: w, gradOutput: dy)
            }
        }
        #expect(dataGradients >= Self.shapes.count / 3, "\(dataGradients) blocked backward-data plans")
    }

    /// Last groups of 1, 2, 3 and 4 output blocks (the 1 × 24, 2 × 12, 3 × 8 and 4 × 6 tiles), forward and as the
    /// backward-data problem's (its output blocks are the input channels').
    @Test func shapesCoverEveryLastGroupWidth() {
        let forward = Set(Self.shapes.map { ($0.outputChannels + 15) / 16 % 4 })
        let dataGradient = Set(Self.shapes.map { ($0.inputChannels + 15) / 16 % 4 })
        #expect(forward == [0, 1, 2, 3] && dataGradient == [0, 1, 2, 3], "\(forward) \(dataGradient)")
    }

    @Test func sameBitsAtEveryThreadCount() throws {
        for (index, d) in Self.shapes.prefix(8).enumerated() {
            let x = try ChannelBlocking.blocked(try Tensor<Float>.random(shape: d.inputShape, seed: UInt64(index)))
            let w = try Tensor<Float>.random(shape: d.weightShape, seed: UInt64(index) + 7)
            let bits = try (1...3).map { threads in
                let plan = try #require(try DirectBackend().makePlan(descriptor: d, weights: w,
                                                                     options: PlanOptions(threads: threads))
                                            as? any ChannelBlockedPassExecution)
                return try plan.runBlocked(x).withUnsafeBufferPointer { $0.map(\.bitPattern) }
            }
            #expect(bits[0] == bits[1] && bits[1] == bits[2], "\(d)")
        }
    }

    /// Which layers sum their channels in two slices: small maps (≤ 64 positions) with an odd number of 64-channel
    /// groups, an odd batch and at least 256 channels; and the sliced plans give the same bits at every thread count.
    @Test func channelSlicesOnlyOnSmallMapsWithUnevenGroups() throws {
        func layer(_ c: Int, _ size: Int, _ k: Int, batch: Int = 1) throws -> ConvolutionDescriptor {
            try ConvolutionDescriptor(batch: batch, inputChannels: c, inputHeight: size, inputWidth: size,
                                      outputChannels: k, kernelHeight: 1, kernelWidth: 1)
        }
        let cases: [(ConvolutionDescriptor, Bool)] = [
            (try layer(960, 7, 160), true), (try layer(1152, 7, 192), true), (try layer(960, 7, 320), true),
            (try layer(256, 8, 64), true), (try layer(960, 7, 160, batch: 3), true),
            (try layer(960, 7, 128), false), (try layer(2048, 7, 512), false), (try layer(576, 14, 96), false),
            (try layer(240, 7, 160), false), (try layer(960, 7, 160, batch: 2), false), (try layer(960, 9, 160), false),
        ]
        for (index, (d, sliced)) in cases.enumerated() {
            let w = try Tensor<Float>.random(shape: d.weightShape, seed: UInt64(index))
            let plans = try (1...3).map { threads in
                try #require(try DirectBackend().makePlan(descriptor: d, weights: w, options: PlanOptions(threads: threads))
                                 as? any ChannelBlockedPassExecution)
            }
            #expect(plans[0].blockedSummary.variant.hasSuffix("2 channel slices") == sliced,
                    "\(d): \(plans[0].blockedSummary.variant)")
            guard sliced else { continue }
            let x = try ChannelBlocking.blocked(try Tensor<Float>.random(shape: d.inputShape, seed: UInt64(index) + 9))
            let bits = try plans.map { try $0.runBlocked(x).withUnsafeBufferPointer { $0.map(\.bitPattern) } }
            #expect(bits[0] == bits[1] && bits[1] == bits[2], "\(d)")
        }
    }

    /// A padded 1×1 layer's blocked entry is the dense plan (its border outputs read only padding); a grouped one has
    /// none: the NCHW plan only, rather than a wrong answer.
    @Test func paddedAndGroupedLayers() throws {
        let padded = try ConvolutionDescriptor(inputChannels: 32, inputHeight: 9, inputWidth: 9, outputChannels: 32,
                                               kernelHeight: 1, kernelWidth: 1, padding: .explicit(Padding(1)))
        let grouped = try ConvolutionDescriptor(inputChannels: 32, inputHeight: 9, inputWidth: 9, outputChannels: 64,
                                                kernelHeight: 1, kernelWidth: 1, groups: 2)
        let plan = try DirectBackend().makePlan(descriptor: padded, weights: try Tensor<Float>.random(
            shape: padded.weightShape, seed: 3), options: PlanOptions())
        #expect((plan as? any ChannelBlockedPassExecution)?.blockedSummary.variant == "channel-blocked")
        let groupedPlan = try DirectBackend().makePlan(descriptor: grouped, weights: try Tensor<Float>.random(
            shape: grouped.weightShape, seed: 3), options: PlanOptions())
        #expect(!(groupedPlan is any ChannelBlockedPassExecution))
    }
}

import ConvLab
import Testing

/// The direct backend's channel-blocked depthwise gradient plans, 16 channels a vector. Backward-weights (bands of a
/// padded [row][column][16] buffer, kernels in pieces of up to 25 taps): against the float64 reference on random
/// depthwise shapes with 16+ channels (ragged last block, stride 1-3, dilation, asymmetric padding, batch, non-square
/// kernels up to 7×7 in pieces, a 1×27 row in segments, several bands). Backward-data at stride > 1 (each dx position
/// summing only its phase's taps): random strided shapes, strides larger than the kernel, padding past the kernel's
/// reach, several bands. Both: the same bits at every thread count, and the nChw16c entry points (blocked dy → blocked
/// dx, blocked x and dy → dw) against the reference, outputs pre-filled with NaN, padding lanes zero.
@Suite struct ChannelBlockedDepthwiseGradientTests {
    static func describe(_ d: ConvolutionDescriptor) -> String? {
        (try? DirectBackend().describe(d, pass: .backwardWeights, options: PlanOptions(threads: 1)))?.variant
    }

    /// Random depthwise layers of 16–40 channels, drawn as `make` says, kept where `accept` holds.
    static func randomDepthwise(count: Int, seed: UInt64,
                                make: (inout SeededGenerator, Int) -> ConvolutionDescriptor?,
                                accept: (ConvolutionDescriptor) -> Bool) -> [ConvolutionDescriptor] {
        var generator = SeededGenerator(seed: seed)
        var result: [ConvolutionDescriptor] = []
        while result.count < count {
            let channels = Int.random(in: 16...40, using: &generator)
            if let d = make(&generator, channels), accept(d) { result.append(d) }
        }
        return result
    }

    static let shapes = randomDepthwise(count: 40, seed: 0xDC16, make: { generator, channels in
        func pick(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &generator) }
        return try? ConvolutionDescriptor(
            batch: pick(1...3), inputChannels: channels, inputHeight: pick(1...30), inputWidth: pick(1...30),
            outputChannels: channels, kernelHeight: pick(1...7), kernelWidth: pick(1...7),
            strideHeight: pick(1...3), strideWidth: pick(1...3),
            padding: .explicit(Padding(top: pick(0...3), bottom: pick(0...3), left: pick(0...3), right: pick(0...3))),
            dilationHeight: pick(0...2) == 0 ? pick(2...3) : 1, dilationWidth: pick(0...2) == 0 ? pick(2...3) : 1,
            groups: channels)
    }, accept: { describe($0) == "depthwise channel-blocked" })

    static let edgeCases: [ConvolutionDescriptor] = [
        // A 1×27 row: two segments of taps per kernel row.
        try! ConvolutionDescriptor(inputChannels: 17, inputHeight: 5, inputWidth: 40, outputChannels: 17,
                                   kernelHeight: 1, kernelWidth: 27, padding: .same, groups: 17),
        // A tall strided image: several bands, batch 2, 5×5 whole in one piece.
        try! ConvolutionDescriptor(batch: 2, inputChannels: 32, inputHeight: 400, inputWidth: 60, outputChannels: 32,
                                   kernelHeight: 5, kernelWidth: 5, strideHeight: 2, strideWidth: 2, padding: .same,
                                   groups: 32),
        // MobileNet's 7×7 maps with many channels: many blocks, image groups of one.
        try! ConvolutionDescriptor(batch: 3, inputChannels: 96, inputHeight: 7, inputWidth: 7, outputChannels: 96,
                                   kernelHeight: 3, kernelWidth: 3, padding: .same, groups: 96),
    ]

    @Test func everyShapeAgreesWithTheReference() throws {
        for (index, d) in (Self.shapes + Self.edgeCases).enumerated() {
            #expect(Self.describe(d) == "depthwise channel-blocked", "\(d)")
            let options = PlanOptions(threads: 1 + index % 3)
            let report = try AccuracyChecker.check(backend: DirectBackend(), pass: .backwardWeights, descriptor: d,
                                                   seed: UInt64(index) + 300, options: options)
            #expect(report.passed && report.comparedCount == d.weightCount, "\(d): \(report)")
        }
    }

    static let stridedShapes: [ConvolutionDescriptor] = {
        var result = randomDepthwise(count: 40, seed: 0xDD16, make: { generator, channels in
            func pick(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &generator) }
            return try? ConvolutionDescriptor(
                batch: pick(1...3), inputChannels: channels, inputHeight: pick(1...30), inputWidth: pick(1...30),
                outputChannels: channels, kernelHeight: pick(1...7), kernelWidth: pick(1...7),
                strideHeight: pick(1...3), strideWidth: pick(1...4),
                padding: .explicit(Padding(top: pick(0...4), bottom: pick(0...4), left: pick(0...4), right: pick(0...9))),
                groups: channels)
        }, accept: { !$0.isStrideOne })
        // A tall image at stride 2 (several bands), and 1×1 at stride 3 (most dx positions have no tap).
        result.append(try! ConvolutionDescriptor(batch: 2, inputChannels: 48, inputHeight: 500, inputWidth: 33,
                                                 outputChannels: 48, kernelHeight: 3, kernelWidth: 3, strideHeight: 2,
                                                 strideWidth: 2, padding: .same, groups: 48))
        result.append(try! ConvolutionDescriptor(inputChannels: 17, inputHeight: 10, inputWidth: 11, outputChannels: 17,
                                                 kernelHeight: 1, kernelWidth: 1, strideHeight: 3, strideWidth: 3,
                                                 groups: 17))
        return result
    }()

    @Test func stridedDataGradientAgreesWithTheReference() throws {
        for (index, d) in Self.stridedShapes.enumerated() {
            let options = PlanOptions(threads: 1 + index % 3)
            let variant = try DirectBackend().describe(d, pass: .backwardData, options: options).variant
            #expect(variant.hasPrefix("depthwise channel-blocked"), "\(d): \(variant)")
            let report = try AccuracyChecker.check(backend: DirectBackend(), pass: .backwardData, descriptor: d,
                                                   seed: UInt64(index) + 500, options: options)
            #expect(report.passed && report.comparedCount == d.inputCount, "\(d): \(report)")
        }
        let d = Self.stridedShapes[Self.stridedShapes.count - 2]
        let w = try Tensor<Float>.random(shape: d.weightShape, seed: 8)
        let dy = try Tensor<Float>.random(shape: d.outputShape, seed: 9)
        let bits = try (1...3).map { threads in
            try DirectBackend().makePlan(pass: .backwardData, descriptor: d, weights: w,
                                         options: PlanOptions(threads: threads)).run(dy)
                .withUnsafeBufferPointer { $0.map(\.bitPattern) }
        }
        #expect(bits[0] == bits[1] && bits[1] == bits[2])
    }

    @Test func sameBitsAtEveryThreadCount() throws {
        for (index, d) in (Self.shapes.prefix(5) + Self.edgeCases).enumerated() {
            let x = try Tensor<Float>.random(shape: d.inputShape, distribution: .uniform(low: -1, high: 1),
                                             seed: UInt64(index))
            let dy = try Tensor<Float>.random(shape: d.outputShape, distribution: .uniform(low: -1, high: 1),
                                              seed: UInt64(index) + 5)
            let bits = try (1...3).map { threads in
                try DirectBackend().makePlan(pass: .backwardWeights, descriptor: d, weights: nil,
                                             options: PlanOptions(threads: threads)).run(x, gradOutput: dy)
                    .withUnsafeBufferPointer { $0.map(\.bitPattern) }
            }
            #expect(bits[0] == bits[1] && bits[1] == bits[2], "\(d)")
        }
    }

    /// Both gradient passes on nChw16c tensors: every depthwise shape whose plan has a blocked entry (the strided
    /// backward-data plan, stride-1 backward-data through the forward plan when dy needs no copy, every 16+-channel
    /// backward-weights plan) agrees with the reference. Most shapes must have one, so the test cannot pass empty.
    @Test func blockedEntryPointsAgreeWithTheReference() throws {
        let sameSize = Self.randomDepthwise(count: 12, seed: 0xDE16, make: { generator, channels in
            func pick(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &generator) }
            return try? ConvolutionDescriptor(
                batch: pick(1...3), inputChannels: channels, inputHeight: pick(1...60), inputWidth: pick(1...70),
                outputChannels: channels, kernelHeight: [1, 3, 5, 7][pick(0...3)], kernelWidth: [1, 3, 5][pick(0...2)],
                padding: .same, groups: channels)
        }, accept: { _ in true })
        let shapes = Self.shapes.prefix(15) + Self.stridedShapes.prefix(15) + sameSize + Self.edgeCases
        var blockedCount = [ConvolutionPass.backwardData: 0, .backwardWeights: 0]
        for (index, d) in shapes.enumerated() {
            let (x, w, dy) = try BlockedEntryChecks.operands(d, seed: UInt64(index))
            for pass in [ConvolutionPass.backwardData, .backwardWeights] {
                let options = PlanOptions(threads: 1 + index % 3)
                let plan = try DirectBackend().makePlan(pass: pass, descriptor: d,
                                                        weights: pass == .backwardData ? w : nil, options: options)
                guard let blocked = plan as? any ChannelBlockedPassExecution else { continue }
                blockedCount[pass]! += 1
                try BlockedEntryChecks.expectAgreesWithReference(blocked, x: x, weights: w, gradOutput: dy)
            }
        }
        #expect(blockedCount[.backwardData]! >= 27 && blockedCount[.backwardWeights]! == shapes.count,
                "blocked entries: \(blockedCount) of \(shapes.count) shapes")
    }

    /// Backward-weights on nChw16c tensors read in place (the interior holds at least 85% of the outputs): asymmetric
    /// padding, padding past the kernel's reach (outputs whose taps all fall in the padding), stride, dilation, a 1×27
    /// row in segments, ragged channel blocks, batch — against the reference.
    @Test func blockedWeightGradientReadInPlaceAgreesWithTheReference() throws {
        let shapes = [
            try ConvolutionDescriptor(batch: 2, inputChannels: 20, inputHeight: 30, inputWidth: 33, outputChannels: 20,
                                      kernelHeight: 3, kernelWidth: 3, padding: .same, groups: 20),
            try ConvolutionDescriptor(inputChannels: 36, inputHeight: 41, inputWidth: 50, outputChannels: 36,
                                      kernelHeight: 3, kernelWidth: 5, strideHeight: 2, strideWidth: 3,
                                      padding: .explicit(Padding(top: 0, bottom: 2, left: 3, right: 1)),
                                      dilationHeight: 2, groups: 36),
            try ConvolutionDescriptor(inputChannels: 16, inputHeight: 100, inputWidth: 100, outputChannels: 16,
                                      kernelHeight: 3, kernelWidth: 3,
                                      padding: .explicit(Padding(top: 4, bottom: 1, left: 5, right: 4)), groups: 16),
            try ConvolutionDescriptor(batch: 3, inputChannels: 17, inputHeight: 12, inputWidth: 300,
                                      outputChannels: 17, kernelHeight: 1, kernelWidth: 27, padding: .same,
                                      groups: 17),
            try ConvolutionDescriptor(inputChannels: 48, inputHeight: 56, inputWidth: 56, outputChannels: 48,
                                      kernelHeight: 5, kernelWidth: 5, strideHeight: 2, strideWidth: 2,
                                      padding: .same, groups: 48),
        ]
        for (index, d) in shapes.enumerated() {
            let (x, w, dy) = try BlockedEntryChecks.operands(d, seed: UInt64(index) + 900)
            let plan = try #require(try DirectBackend().makePlan(pass: .backwardWeights, descriptor: d, weights: nil,
                                                                 options: PlanOptions(threads: 1 + index % 3))
                                        as? any ChannelBlockedPassExecution, "\(d)")
            try BlockedEntryChecks.expectAgreesWithReference(plan, x: x, weights: w, gradOutput: dy)
        }
    }

    /// 3×3 "same" layers on nChw16c x and dy (`slidingPadded3x3`: the padding implied, nothing copied): against the
    /// reference and bit for bit the NCHW entry, which runs the same sums on a padded band (its taps in the padding
    /// multiplied by zeros, skipped here) — 1- and 2-wide, 1- and 2-high images, 7² with many blocks, ragged blocks,
    /// batch, and a tall image cut into several bands.
    @Test func slidingInPlaceWeightGradientMatchesTheBandBitForBit() throws {
        let shapes = try [(1, 96, 7, 7), (2, 20, 14, 14), (1, 17, 1, 9), (3, 16, 5, 1), (1, 18, 2, 2), (2, 16, 2, 5),
                          (1, 33, 28, 28), (1, 16, 2000, 40)].map { n, c, h, w in
            try ConvolutionDescriptor(batch: n, inputChannels: c, inputHeight: h, inputWidth: w, outputChannels: c,
                                      kernelHeight: 3, kernelWidth: 3, padding: .same, groups: c)
        }
        try BlockedEntryChecks.expectDirectWeightGradientsMatchNCHW(shapes, seed: 1200, inputLayout: .nChw16c)
    }

    /// 3×3 stride-2 layers padded by one on the top and left (`slidingPaddedStride2x3x3`: read in place, the taps
    /// outside the image skipped): against the reference and bit for bit the NCHW entry's padded band — even and odd
    /// sizes (the last row and column reading past the image or not), no bottom or right padding, 1- and 2-wide and
    /// 1-high images, ragged blocks, batch, and a tall image cut into several bands.
    @Test func slidingStride2InPlaceWeightGradientMatchesTheBandBitForBit() throws {
        let shapes = try [(1, 96, 14, 14, 1), (2, 20, 28, 28, 1), (1, 17, 7, 9, 1), (1, 18, 12, 10, 0), (1, 16, 1, 5, 1),
                          (3, 16, 6, 1, 1), (1, 16, 2, 2, 1), (1, 33, 15, 16, 0), (1, 16, 1200, 30, 1)]
            .map { n, c, h, w, end in
                try ConvolutionDescriptor(batch: n, inputChannels: c, inputHeight: h, inputWidth: w, outputChannels: c,
                                          kernelHeight: 3, kernelWidth: 3, strideHeight: 2, strideWidth: 2,
                                          padding: .explicit(Padding(top: 1, bottom: end, left: 1, right: end)),
                                          groups: c)
            }
        try BlockedEntryChecks.expectDirectWeightGradientsMatchNCHW(shapes, seed: 1300, inputLayout: .nChw16c)
    }

    /// Blocked operands of the NCHW size (or any other wrong size) are typed errors.
    @Test func wrongBlockedGradientSizesThrow() throws {
        let d = try ConvolutionDescriptor(inputChannels: 20, inputHeight: 7, inputWidth: 7, outputChannels: 20,
                                          kernelHeight: 3, kernelWidth: 3, padding: .same, groups: 20)
        let plan = try #require(try DirectBackend().makePlan(pass: .backwardWeights, descriptor: d, weights: nil,
                                                             options: PlanOptions()) as? any ChannelBlockedPassExecution)
        let x = try Tensor<Float>.random(shape: d.inputShape, seed: 1)
        #expect(throws: ConvLabError.self) { try plan.runBlocked(x, gradOutput: x) }
        let blocked = try ChannelBlocking.blocked(x)
        #expect(throws: ConvLabError.self) { try plan.runBlocked(blocked, gradOutput: nil) }
        #expect(try plan.runBlocked(blocked, gradOutput: blocked).shape == ChannelBlocking.blockedWeightShape(d.weightShape))
    }
}

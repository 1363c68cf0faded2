import ConvLab
import Testing

/// The direct backend's backward-weights plan for groups of 16+ output channels (output channels along the lanes,
/// the input read in place or from a padded copy, the reduction in chunks, split by channels or by slices of the
/// reduction): against the float64 reference on random shapes with every feature, the same bits at every thread
/// count, and a bound that holds on positive data.
@Suite struct ChannelVectorWeightGradientTests {
    /// K/G from 16 to 120 covers every block mix: 1, 2, 3, 4, 4+1, 4+2, 4+3, 4+4+… vectors, and ragged last vectors.
    static let shapes = RandomDescriptors.make(count: 48, seed: 0xC7EC, outputsPerGroup: 16...120) { d in
        (try? DirectBackend().describe(d, pass: .backwardWeights, options: PlanOptions(threads: 1)))?
            .variant.hasPrefix("channel vectors") == true
    }

    static let edgeCases: [ConvolutionDescriptor] = [
        // Rows wider than a chunk (several column chunks), stride 2, padding on the left only.
        try! ConvolutionDescriptor(batch: 2, inputChannels: 3, inputHeight: 7, inputWidth: 411, outputChannels: 20,
                                   kernelHeight: 3, kernelWidth: 3, strideHeight: 1, strideWidth: 2,
                                   padding: .explicit(Padding(top: 0, bottom: 0, left: 1, right: 0))),
        // 1×1 stride 2 read in place (no copy), odd map, two groups of 24.
        try! ConvolutionDescriptor(batch: 3, inputChannels: 10, inputHeight: 15, inputWidth: 13, outputChannels: 48,
                                   kernelHeight: 1, kernelWidth: 1, strideHeight: 2, strideWidth: 2, groups: 2),
        // Padding only on the bottom and right that no tap reaches: still read in place.
        try! ConvolutionDescriptor(inputChannels: 5, inputHeight: 12, inputWidth: 12, outputChannels: 64,
                                   kernelHeight: 3, kernelWidth: 2, strideHeight: 3, strideWidth: 3,
                                   padding: .explicit(Padding(top: 0, bottom: 1, left: 0, right: 1))),
        // Dilated 7x1 taps on a 1-pixel-wide output, 112 channels (4+2+1 vectors).
        try! ConvolutionDescriptor(inputChannels: 2, inputHeight: 30, inputWidth: 1, outputChannels: 112,
                                   kernelHeight: 7, kernelWidth: 1, dilationHeight: 4, dilationWidth: 1),
        // Taps that do not fill blocks of 6, so blocks of 5 come last (`tapBlocks`): 16 taps on one vector
        // (6 + 5 + 5), 27 taps on 4 + 1 vectors (6 + 6 + 5 + 5 + 5), 7 taps on 3 vectors (5 + 2).
        try! ConvolutionDescriptor(batch: 2, inputChannels: 8, inputHeight: 9, inputWidth: 11, outputChannels: 16,
                                   kernelHeight: 2, kernelWidth: 1),
        try! ConvolutionDescriptor(inputChannels: 3, inputHeight: 17, inputWidth: 15, outputChannels: 80,
                                   kernelHeight: 3, kernelWidth: 3, strideHeight: 2, strideWidth: 2, padding: .same),
        try! ConvolutionDescriptor(inputChannels: 7, inputHeight: 10, inputWidth: 10, outputChannels: 40,
                                   kernelHeight: 1, kernelWidth: 1),
    ]

    @Test func everyShapeAgreesWithTheReference() throws {
        var variants: Set<String> = []
        let shapes = Self.shapes + Self.edgeCases
        #expect(Self.shapes.count == 48)
        // Every remainder block after the 4-vector ones: 1, 2 and 3 vectors (the 1 × 6, 2 × 6 and 3 × 6 kernels).
        #expect(Set(Self.shapes.map { ($0.outputChannelsPerGroup + 15) / 16 % 4 }) == [0, 1, 2, 3])
        for (index, d) in shapes.enumerated() {
            let options = PlanOptions(threads: 1 + index % 3)
            let description = try DirectBackend().describe(d, pass: .backwardWeights, options: options)
            #expect(description.variant.hasPrefix("channel vectors"), "\(d): \(description.variant)")
            variants.insert(description.variant.contains("padded copy by slice") ? "copy by slice"
                            : description.variant.contains("padded copy") ? "copy" : "in place")
            variants.insert(description.variant.contains("slices") ? "reduction split" : "channel split")
            if !description.variant.contains("x\(d.outputWidth) chunks") { variants.insert("column chunks") }
            let report = try AccuracyChecker.check(backend: DirectBackend(), pass: .backwardWeights, descriptor: d,
                                                   seed: UInt64(index) + 900, options: options)
            #expect(report.passed && report.comparedCount == d.weightCount, "\(d): \(report)")
        }
        #expect(variants == ["copy", "copy by slice", "in place", "column chunks", "reduction split", "channel split"],
                "\(variants)")
    }

    @Test func sameBitsAtEveryThreadCount() throws {
        for (index, d) in (Self.shapes.prefix(6) + Self.edgeCases).enumerated() {
            let x = try Tensor<Float>.random(shape: d.inputShape, distribution: .uniform(low: -1, high: 1),
                                             seed: UInt64(index))
            let dy = try Tensor<Float>.random(shape: d.outputShape, distribution: .uniform(low: -1, high: 1),
                                              seed: UInt64(index) + 77)
            let results = try (1...3).map { threads in
                try DirectBackend().makePlan(pass: .backwardWeights, descriptor: d, weights: nil,
                                             options: PlanOptions(threads: threads)).run(x, gradOutput: dy)
            }
            let bits = results.map { $0.withUnsafeBufferPointer { $0.map(\.bitPattern) } }
            #expect(bits[0] == bits[1] && bits[1] == bits[2], "\(d)")
        }
    }

    /// Chunked sums: the bound counts a chunk's terms plus the chunks, far below one chain of N·Ho·Wo, and holds where
    /// rounding errors cannot cancel (a single chain would exceed it here).
    @Test func chunkedBoundHoldsOnPositiveData() throws {
        let d = try ConvolutionDescriptor(batch: 6, inputChannels: 3, inputHeight: 130, inputWidth: 130,
                                          outputChannels: 20, kernelHeight: 3, kernelWidth: 3, padding: .same)
        let report = try AccuracyChecker.check(backend: DirectBackend(), pass: .backwardWeights, descriptor: d,
                                               seed: 5, distribution: .uniform(low: 0, high: 1),
                                               options: PlanOptions(threads: 2))
        let chain = dotProductErrorBound(terms: d.reductionLength(for: .backwardWeights))
        #expect(report.errorBound < chain / 10 && report.maxRelativeError > 0)
        #expect(report.verdict == .pass, "\(report.maxRelativeError) vs \(report.errorBound)")
    }

    /// The nChw16c entry on layers of more than 4 channels: x and dy blocked, x read in place where no tap reaches the
    /// padding (1×1, unpadded) and from a zero-padded blocked copy elsewhere — ragged channel blocks, stride,
    /// dilation, padding on any side, batch, both schedules — against the reference and bit for bit the NCHW entry
    /// (both sum in the same order; dw comes back from Oihw16o).
    @Test func blockedEntryReadsBlockedInputInPlace() throws {
        var generator = SeededGenerator(seed: 0xB10C)
        func pick(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &generator) }
        var shapes: [ConvolutionDescriptor] = []
        while shapes.count < 24 {
            let pointwise = pick(0...1) == 0
            let (r, s) = pointwise ? (1, 1) : (pick(1...4), pick(1...4))
            let padding = shapes.count % 2 == 0 ? Padding(top: 0, bottom: 0, left: 0, right: 0)
                : Padding(top: pick(0...2), bottom: pick(0...2), left: pick(0...2), right: pick(0...2))
            guard let d = try? ConvolutionDescriptor(
                batch: pick(1...3), inputChannels: pick(5...70), inputHeight: pick(4...30), inputWidth: pick(4...40),
                outputChannels: pick(16...120), kernelHeight: r, kernelWidth: s, strideHeight: pick(1...2),
                strideWidth: pick(1...2), padding: .explicit(padding), dilationHeight: pick(1...2),
                dilationWidth: pick(1...2)) else { continue }
            shapes.append(d)
        }
        // dw beyond an eighth of L2 (the channel split): 1024 → 256 at 7², and a padded 3×3 on 256 channels at 7².
        shapes.append(try ConvolutionDescriptor(inputChannels: 1024, inputHeight: 7, inputWidth: 7,
                                                outputChannels: 256, kernelHeight: 1, kernelWidth: 1))
        shapes.append(try ConvolutionDescriptor(inputChannels: 256, inputHeight: 7, inputWidth: 7,
                                                outputChannels: 256, kernelHeight: 3, kernelWidth: 3, padding: .same))
        let paddedCopies = try shapes.filter {
            try DirectBackend().describe($0, pass: .backwardWeights, options: PlanOptions(threads: 1)).variant
                .contains("padded copy")
        }
        #expect(paddedCopies.count >= 8, "\(paddedCopies.count) layers read a padded blocked copy")
        let schedules = try BlockedEntryChecks.expectDirectWeightGradientsMatchNCHW(shapes, seed: 700,
                                                                                    inputLayout: .nChw16c)
        #expect(schedules == [true, false], "both schedules: \(schedules)")
    }
}

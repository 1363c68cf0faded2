import ConvLab
import Testing

/// The direct backend's nChw16c plan for layers on 1–4 input channels (`FewChannelDirectPlan`, the stems): against
/// the float64 reference on random shapes — 1–4 channels, 16–150 output channels (last register groups of 1–4 blocks),
/// square and non-square kernels up to 11×11, stride 1–4, dilation 1–3, asymmetric padding (also past the kernel's
/// reach), batch 1–3, rows narrower than one register tile — with the output and the workspace pre-filled with NaN, so
/// an output it forgets or a band cell it reads before writing fails; lanes past the last channel zero; the same bits
/// at 1–3 threads; the image read NCHW (a blocked one refused); and the NCHW entry still the polyphase plan.
@Suite struct FewChannelDirectTests {
    static let shapes: [ConvolutionDescriptor] = {
        var generator = SeededGenerator(seed: 0xF3C4)
        func pick(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &generator) }
        var result: [ConvolutionDescriptor] = []
        while result.count < 48 {
            let samePadding = pick(0...3) == 0
            let r = pick(1...11), s = pick(0...2) == 0 ? pick(1...11) : r
            guard r * s > 1, let d = try? ConvolutionDescriptor(
                batch: pick(1...3), inputChannels: pick(1...4), inputHeight: pick(1...40), inputWidth: pick(1...70),
                outputChannels: pick(0...2) == 0 ? pick(16...40) : pick(41...150), kernelHeight: r, kernelWidth: s,
                strideHeight: samePadding ? 1 : pick(1...4), strideWidth: samePadding ? 1 : pick(1...4),
                padding: samePadding ? .same
                    : .explicit(Padding(top: pick(0...4), bottom: pick(0...4), left: pick(0...5), right: pick(0...12))),
                dilationHeight: samePadding ? 1 : pick(1...3), dilationWidth: samePadding ? 1 : pick(1...3))
            else { continue }
            result.append(d)
        }
        // Network stems: MobileNetV2's 3×3/2, ConvNeXt's 4×4/4 (96 channels: groups of 4 and 2 blocks), AlexNet's
        // 11×11/4 on 227², SRCNN's grey 9×9.
        result.append(try! ConvolutionDescriptor(inputChannels: 3, inputHeight: 64, inputWidth: 64, outputChannels: 32,
                                                 kernelHeight: 3, kernelWidth: 3, strideHeight: 2, strideWidth: 2,
                                                 padding: .explicit(Padding(top: 1, bottom: 1, left: 1, right: 1))))
        result.append(try! ConvolutionDescriptor(inputChannels: 3, inputHeight: 48, inputWidth: 48, outputChannels: 96,
                                                 kernelHeight: 4, kernelWidth: 4, strideHeight: 4, strideWidth: 4))
        result.append(try! ConvolutionDescriptor(inputChannels: 3, inputHeight: 67, inputWidth: 67, outputChannels: 96,
                                                 kernelHeight: 11, kernelWidth: 11, strideHeight: 4, strideWidth: 4))
        result.append(try! ConvolutionDescriptor(inputChannels: 1, inputHeight: 30, inputWidth: 41, outputChannels: 64,
                                                 kernelHeight: 9, kernelWidth: 9, padding: .same))
        // ConvNeXt's stem at its width (56 outputs a row, 96 channels: 3 + 3 blocks in 3 × 8 tiles).
        result.append(try! ConvolutionDescriptor(inputChannels: 3, inputHeight: 24, inputWidth: 224, outputChannels: 96,
                                                 kernelHeight: 4, kernelWidth: 4, strideHeight: 4, strideWidth: 4))
        // 2 × 14 tiles: a 32-channel stem onto 28-wide rows, and 64 channels (4-block halves) onto 14-wide ones.
        result.append(try! ConvolutionDescriptor(inputChannels: 3, inputHeight: 56, inputWidth: 56, outputChannels: 32,
                                                 kernelHeight: 3, kernelWidth: 3, strideHeight: 2, strideWidth: 2,
                                                 padding: .explicit(Padding(top: 1, bottom: 1, left: 1, right: 1))))
        result.append(try! ConvolutionDescriptor(batch: 2, inputChannels: 3, inputHeight: 14, inputWidth: 14,
                                                 outputChannels: 64, kernelHeight: 3, kernelWidth: 3, padding: .same))
        return result
    }()

    /// The blocked output of `plan` on x, from NaN-filled output and workspace.
    static func runBlocked(_ plan: any ChannelBlockedPassExecution, _ x: Tensor<Float>) throws -> Tensor<Float> {
        let blocked = try plan.blockedInput(x)
        var output = try Tensor<Float>(shape: plan.blockedOutputShape)
        output.withUnsafeMutableBufferPointer { $0.update(repeating: .nan) }
        let workspace = try Workspace(byteCount: plan.summary.workspaceBytes)
        for i in 0..<workspace.byteCount { workspace.buffer[i] = 0xFF }  // all-ones bytes: NaN floats
        try blocked.withUnsafeBufferPointer { input in
            try output.withUnsafeMutableBufferPointer { y in
                try plan.executeBlocked(PassOperands(input: input, output: y), workspace: workspace.buffer, profile: nil)
            }
        }
        return output
    }

    @Test func agreesWithTheReferenceOnRandomShapes() throws {
        for (index, d) in Self.shapes.enumerated() {
            let (x, w, _) = try BlockedEntryChecks.operands(d, seed: UInt64(index))
            let plan = try DirectBackend().makePlan(descriptor: d, weights: w, options: PlanOptions(threads: 1 + index % 3))
            let blocked = try #require(plan as? any ChannelBlockedPassExecution, "\(d): no nChw16c entry point")
            #expect(blocked.blockedSummary.variant.hasPrefix("few-channel"), "\(d): \(blocked.blockedSummary.variant)")
            #expect(!plan.summary.variant.hasPrefix("few-channel"), "\(d): the NCHW entry should stay the polyphase plan")
            #expect(blocked.blockedInputLayout == .nchw, "\(d): the image should be read NCHW")
            let output = try Self.runBlocked(blocked, x)
            let lanesZero = output.scalars.enumerated().allSatisfy { index, value in
                let block = (index / (16 * d.outputHeight * d.outputWidth)) % ((d.outputChannels + 15) / 16)
                return block * 16 + index % 16 < d.outputChannels || value == 0
            }
            #expect(lanesZero, "\(d): lanes past the last channel are not zero")
            let unblocked = try ChannelBlocking.unblocked(output, channels: d.outputChannels)
            let reference = try ReferenceConvolution.compute(.forward, descriptor: d, input: x, weights: w,
                                                             gradOutput: nil, threads: 2)
            let report = try AccuracyChecker.compare(output: unblocked, reference: reference,
                                                     errorBound: blocked.blockedSummary.errorBound)
            #expect(report.passed && report.comparedCount == unblocked.count, "\(d): \(report)")
        }
    }

    /// Backward-data of a layer with at most 4 output channels (SRCNN's 32 → 1) runs as the forward problem on dy's
    /// few channels: its blocked entry reads dy NCHW, and dx agrees with the reference on random shapes.
    @Test func dataGradientOnFewOutputChannelsReadsDyNCHW() throws {
        var generator = SeededGenerator(seed: 0xD9F1)
        func pick(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &generator) }
        var checked = 0
        for index in 0..<12 {
            let r = pick(2...9), s = pick(0...1) == 0 ? r : pick(1...9)
            let d = try ConvolutionDescriptor(
                batch: pick(1...2), inputChannels: pick(16...70), inputHeight: pick(8...30), inputWidth: pick(8...45),
                outputChannels: pick(1...4), kernelHeight: r, kernelWidth: s, padding: .same)
            let (x, w, dy) = try BlockedEntryChecks.operands(d, seed: UInt64(index) + 300)
            let plan = try DirectBackend().makePlan(pass: .backwardData, descriptor: d, weights: w,
                                                    options: PlanOptions(threads: 1 + index % 3))
            guard let blocked = plan as? any ChannelBlockedPassExecution else { continue }
            #expect(blocked.blockedInputLayout == .nchw, "\(d): \(blocked.blockedSummary.variant)")
            try BlockedEntryChecks.expectAgreesWithReference(blocked, x: x, weights: w, gradOutput: dy)
            checked += 1
        }
        #expect(checked >= 8, "\(checked) blocked backward-data plans")
    }

    /// Backward-weights of a stem on nChw16c dy (`ChannelVectorWeightGradientWithBlockedEntry`): the image read NCHW,
    /// dy in place; against the reference on random stems (1–4 channels, 16–150 output channels, stride, dilation,
    /// asymmetric padding, batch; both schedules) and bit for bit the NCHW entry's dw, whose only difference is dy's
    /// transposes.
    @Test func weightGradientOnBlockedDyAgreesAndMatchesNCHW() throws {
        var generator = SeededGenerator(seed: 0x5E7B)
        func pick(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &generator) }
        var shapes: [ConvolutionDescriptor] = []
        while shapes.count < 16 {
            let r = pick(1...11), s = pick(0...2) == 0 ? pick(1...11) : r
            guard r * s > 1, let d = try? ConvolutionDescriptor(
                batch: pick(1...3), inputChannels: pick(1...4), inputHeight: pick(4...40), inputWidth: pick(4...60),
                outputChannels: pick(0...1) == 0 ? pick(16...40) : pick(41...150), kernelHeight: r, kernelWidth: s,
                strideHeight: pick(1...3), strideWidth: pick(1...3),
                padding: .explicit(Padding(top: pick(0...3), bottom: pick(0...3), left: pick(0...3), right: pick(0...4))),
                dilationHeight: pick(1...2), dilationWidth: pick(1...2)) else { continue }
            shapes.append(d)
        }
        // A dw too large for the reduction split (4 × 11 × 11 × 160): the channel split reads blocked dy too.
        shapes.append(try ConvolutionDescriptor(inputChannels: 4, inputHeight: 30, inputWidth: 30, outputChannels: 150,
                                                kernelHeight: 11, kernelWidth: 11, strideHeight: 2, strideWidth: 2))
        let schedules = try BlockedEntryChecks.expectDirectWeightGradientsMatchNCHW(shapes, seed: 500,
                                                                                    inputLayout: .nchw)
        #expect(schedules == [true, false], "both schedules: \(schedules)")
    }

    /// The blocked entry reads the image NCHW: a blocked (16-lane) x is the wrong size and a typed error.
    @Test func blockedImageIsRefused() throws {
        let d = Self.shapes.last!
        let (x, w, _) = try BlockedEntryChecks.operands(d, seed: 7)
        let plan = try #require(try DirectBackend().makePlan(descriptor: d, weights: w, options: PlanOptions(threads: 2))
                                    as? any ChannelBlockedPassExecution)
        #expect(throws: ConvLabError.self) { _ = try plan.runBlocked(try ChannelBlocking.blocked(x)) }
        #expect(try plan.runBlocked(x).shape == plan.blockedOutputShape)
    }

    /// 96 output channels group as 3 + 3 blocks where that computes fewer padded positions (rows of 56 and 15: 4 + 2
    /// computed 360 and 120 block-positions, 3 + 3 336 and 96) and stay 4 + 2 where it does not (rows of 12); 64 and
    /// 32 channels always take groups of 4.
    @Test func outputBlocksGroupInThreesOnlyWhereThatComputesLess() throws {
        let cases: [(channels: Int, size: Int, kernel: Int, stride: Int, threes: Bool)] = [
            (96, 224, 4, 4, true), (96, 67, 11, 4, true), (96, 48, 4, 4, false), (64, 224, 7, 2, false),
            (32, 224, 3, 2, false),
        ]
        for c in cases {
            let d = try ConvolutionDescriptor(inputChannels: 3, inputHeight: c.size, inputWidth: c.size,
                                              outputChannels: c.channels, kernelHeight: c.kernel, kernelWidth: c.kernel,
                                              strideHeight: c.stride, strideWidth: c.stride)
            let w = try Tensor<Float>(shape: [d.outputChannels, 3, c.kernel, c.kernel])
            let plan = try #require(try DirectBackend().makePlan(descriptor: d, weights: w, options: PlanOptions())
                                        as? any ChannelBlockedPassExecution)
            #expect(plan.blockedSummary.variant.contains("3-block groups") == c.threes, "\(d)")
        }
    }

    @Test func sameBitsAtEveryThreadCount() throws {
        for (index, d) in Self.shapes.suffix(8).enumerated() {
            let (x, w, _) = try BlockedEntryChecks.operands(d, seed: UInt64(index) + 100)
            let bits = try (1...3).map { threads in
                let plan = try #require(try DirectBackend().makePlan(descriptor: d, weights: w,
                                                                     options: PlanOptions(threads: threads))
                                            as? any ChannelBlockedPassExecution)
                return try Self.runBlocked(plan, x).withUnsafeBufferPointer { $0.map(\.bitPattern) }
            }
            #expect(bits[0] == bits[1] && bits[1] == bits[2], "\(d)")
        }
    }
}

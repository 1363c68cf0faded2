import ConvLab
import Testing

/// Backward-weights of 1×1, unpadded layers with x and dy exchanged (input channels along the lanes, dw summed in
/// place): both entries against the float64 reference on random shapes — batch, odd maps, strides (x gathered on the
/// blocked entry's exchanged plan), narrow and wide output channels, both schedules, both NCHW choices, both blocked
/// choices (Oihw16o dw summed as given, or exchanged and blocked) — the same bits at every thread count, and the
/// layers it must leave to the plan as given.
@Suite struct PointwiseExchangedWeightGradientTests {
    static let shapes: [ConvolutionDescriptor] = {
        var generator = SeededGenerator(seed: 0xE1C4)
        func pick(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &generator) }
        var shapes: [ConvolutionDescriptor] = []
        while shapes.count < 20 {
            // Maps from 1×1 to 40×40 (the reduction split needs 8 chunks), K from 5 (one ragged vector) to 150.
            let side = pick(0...4) == 0 ? pick(1...3) : pick(5...40)
            // Strided layers with K ≥ N·Ho·Wo (where the exchange applies to them): batch 1, maps up to 12×12.
            let strided = pick(0...3) == 0
            let (height, width) = strided ? (pick(1...12), pick(1...12)) : (side, pick(1...40))
            let (sh, sw) = strided ? (pick(1...3), pick(2...3)) : (1, 1)
            let outputs = ((height - 1) / sh + 1) * ((width - 1) / sw + 1)
            if let d = try? ConvolutionDescriptor(batch: strided ? 1 : pick(1...3), inputChannels: 16 * pick(1...8),
                                                  inputHeight: height, inputWidth: width,
                                                  outputChannels: strided ? max(5, outputs + pick(0...40)) : pick(5...150),
                                                  kernelHeight: 1, kernelWidth: 1, strideHeight: sh, strideWidth: sw) {
                shapes.append(d)
            }
        }
        // dw of 1 MiB (the channel split) and 32 → 16 at 56² (the reduction split; NCHW keeps the plan as given).
        shapes.append(try! ConvolutionDescriptor(inputChannels: 1024, inputHeight: 7, inputWidth: 7,
                                                 outputChannels: 256, kernelHeight: 1, kernelWidth: 1))
        shapes.append(try! ConvolutionDescriptor(inputChannels: 32, inputHeight: 56, inputWidth: 56,
                                                 outputChannels: 16, kernelHeight: 1, kernelWidth: 1))
        return shapes
    }()

    @Test func bothEntriesAgreeWithTheReference() throws {
        var seen: Set<String> = []
        for (index, d) in Self.shapes.enumerated() {
            let options = PlanOptions(threads: 1 + index % 3)
            let plan = try DirectBackend().makePlan(pass: .backwardWeights, descriptor: d, weights: nil, options: options)
            let blocked = try #require(plan as? any ChannelBlockedPassExecution, "\(d): no nChw16c entry")
            // The blocked entry returns Oihw16o dw: summed in place by the plan as given on one image where K fills
            // a 4-vector block, else exchanged and blocked at the end.
            let variant = blocked.blockedSummary.variant
            if d.outputChannels >= 64 && d.batch == 1 {
                #expect(variant.hasPrefix("channel vectors") && variant.hasSuffix("dw summed in Oihw16o"), "\(d)")
                seen.insert("blocked as given")
            } else {
                #expect(variant.hasPrefix("input-channel vectors (x and dy exchanged")
                        && variant.hasSuffix("dw blocked at the end"), "\(d)")
                seen.insert("blocked exchanged")
            }
            seen.insert(variant.contains("slices") ? "reduction split" : "channel split")
            seen.insert(plan.summary.variant.contains("exchanged") ? "NCHW exchanged" : "NCHW as given")
            if !d.isStrideOne {
                seen.insert("strided")
                #expect(variant.contains("x gathered") == (d.outputChannels < 64 || d.batch > 1)
                        && !plan.summary.variant.contains("exchanged"), "\(d)")
            }

            let (x, _, dy) = try BlockedEntryChecks.operands(d, seed: UInt64(index) + 40)
            try BlockedEntryChecks.expectAgreesWithReference(blocked, x: x, weights: try Tensor<Float>(shape: d.weightShape),
                                                             gradOutput: dy)
            let report = try AccuracyChecker.check(backend: DirectBackend(), pass: .backwardWeights, descriptor: d,
                                                   seed: UInt64(index) + 60, options: options)
            #expect(report.passed && report.comparedCount == d.weightCount, "\(d): \(report)")
        }
        #expect(seen == ["reduction split", "channel split", "NCHW exchanged", "NCHW as given", "strided",
                         "blocked as given", "blocked exchanged"], "\(seen)")
    }

    @Test func sameBitsAtEveryThreadCount() throws {
        for (index, d) in Self.shapes.suffix(6).enumerated() {
            let (x, _, dy) = try BlockedEntryChecks.operands(d, seed: UInt64(index) + 80)
            let (bx, bdy) = (try ChannelBlocking.blocked(x), try ChannelBlocking.blocked(dy))
            let results = try (1...3).map { threads in
                let plan = try DirectBackend().makePlan(pass: .backwardWeights, descriptor: d, weights: nil,
                                                        options: PlanOptions(threads: threads))
                let blocked = try #require(plan as? any ChannelBlockedPassExecution)
                return try blocked.runBlocked(bx, gradOutput: bdy).scalars.map(\.bitPattern)
            }
            #expect(results[0] == results[1] && results[1] == results[2], "\(d)")
        }
    }

    /// Padding, groups, a kernel wider than 1×1 or input channels not in whole vectors break the symmetry or the
    /// in-place result, and a strided layer with more outputs than output channels gathers more than it saves: those
    /// layers keep the plan as given.
    @Test func otherLayersKeepThePlanAsGiven() throws {
        let others = [
            try ConvolutionDescriptor(inputChannels: 32, inputHeight: 19, inputWidth: 19, outputChannels: 99,
                                      kernelHeight: 1, kernelWidth: 1, strideHeight: 2, strideWidth: 2),
            try ConvolutionDescriptor(inputChannels: 32, inputHeight: 9, inputWidth: 9, outputChannels: 32,
                                      kernelHeight: 1, kernelWidth: 1,
                                      padding: .explicit(Padding(top: 0, bottom: 1, left: 0, right: 0))),
            try ConvolutionDescriptor(inputChannels: 64, inputHeight: 9, inputWidth: 9, outputChannels: 64,
                                      kernelHeight: 1, kernelWidth: 1, groups: 2),
            try ConvolutionDescriptor(inputChannels: 32, inputHeight: 9, inputWidth: 9, outputChannels: 32,
                                      kernelHeight: 1, kernelWidth: 3),
            try ConvolutionDescriptor(inputChannels: 40, inputHeight: 9, inputWidth: 9, outputChannels: 32,
                                      kernelHeight: 1, kernelWidth: 1),
        ]
        for d in others {
            let plan = try DirectBackend().makePlan(pass: .backwardWeights, descriptor: d, weights: nil,
                                                    options: PlanOptions(threads: 2))
            let blocked = (plan as? any ChannelBlockedPassExecution)?.blockedSummary.variant ?? ""
            #expect(!plan.summary.variant.contains("exchanged") && !blocked.contains("exchanged"),
                    "\(d): \(plan.summary.variant) / \(blocked)")
        }
    }
}

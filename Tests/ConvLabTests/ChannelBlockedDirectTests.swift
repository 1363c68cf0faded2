import ConvLab
import Testing

/// The direct backend's channel-blocked plan for dense layers (the nChw16c entry point of every one-group layer that
/// is not a plain 1×1 or a stem on 1–4 channels, `FewChannelDirectTests`), forward and, at stride 1 where dy needs no copy, backward-data: against the float64 reference
/// on random shapes — ragged channel counts (several input chunks; last output groups of 1–3 blocks), non-square
/// kernels, stride 1–3, dilation, asymmetric padding (also past the kernel's reach), batch, rows that are not a
/// multiple of the register tile — outputs pre-filled with NaN, lanes past the last channel zero; and the same bits at
/// every thread count.
@Suite struct ChannelBlockedDirectTests {
    static let shapes: [ConvolutionDescriptor] = {
        var generator = SeededGenerator(seed: 0xD3C7)
        func pick(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &generator) }
        var result: [ConvolutionDescriptor] = []
        while result.count < 40 {
            let samePadding = pick(0...2) == 0
            let (r, s) = (pick(1...5), pick(1...5))
            guard let d = try? ConvolutionDescriptor(
                batch: pick(1...3), inputChannels: pick(0...4) == 0 ? pick(70...140) : pick(1...40),
                inputHeight: pick(1...20), inputWidth: pick(1...30),
                outputChannels: pick(0...1) == 0 ? pick(1...40) : pick(41...150), kernelHeight: r, kernelWidth: s,
                strideHeight: samePadding ? 1 : pick(1...3), strideWidth: samePadding ? 1 : pick(1...3),
                padding: samePadding ? .same
                    : .explicit(Padding(top: pick(0...3), bottom: pick(0...3), left: pick(0...3), right: pick(0...6))),
                dilationHeight: samePadding ? 1 : pick(1...2), dilationWidth: samePadding ? 1 : pick(1...2)),
                  d.kernelHeight * d.kernelWidth > 1 || d.padding != .zero,
                  d.inputChannels > 4 || d.outputChannels < 16 || d.kernelHeight * d.kernelWidth == 1 else { continue }
            result.append(d)
        }
        // A 14-wide 3×3 with 256 channels both ways (4 groups as 2 × 14 halves; chunks of the input channels).
        result.append(try! ConvolutionDescriptor(inputChannels: 256, inputHeight: 14, inputWidth: 14, outputChannels: 256,
                                                 kernelHeight: 3, kernelWidth: 3, padding: .same))
        // 2 × 14 tiles: 13-wide rows of a 4-block group (halves), 28-wide rows of a 2-block group at stride 2, and a
        // 6-block layer whose last group has 2 blocks on 14-wide rows.
        result.append(try! ConvolutionDescriptor(batch: 2, inputChannels: 40, inputHeight: 13, inputWidth: 13,
                                                 outputChannels: 64, kernelHeight: 3, kernelWidth: 3, padding: .same))
        result.append(try! ConvolutionDescriptor(inputChannels: 24, inputHeight: 56, inputWidth: 56, outputChannels: 32,
                                                 kernelHeight: 3, kernelWidth: 3, strideHeight: 2, strideWidth: 2,
                                                 padding: .same))
        result.append(try! ConvolutionDescriptor(inputChannels: 20, inputHeight: 9, inputWidth: 14, outputChannels: 90,
                                                 kernelHeight: 2, kernelWidth: 3, padding: .same))
        // Rows of several tiles: input channels in chunks of 16 (the group's 3×3 weights for a chunk in L1), 5 of them
        // with a partial last one, at stride 1 and 2.
        result.append(try! ConvolutionDescriptor(inputChannels: 72, inputHeight: 11, inputWidth: 26, outputChannels: 80,
                                                 kernelHeight: 3, kernelWidth: 3, padding: .same))
        result.append(try! ConvolutionDescriptor(batch: 2, inputChannels: 72, inputHeight: 16, inputWidth: 35,
                                                 outputChannels: 48, kernelHeight: 3, kernelWidth: 3, strideHeight: 2,
                                                 strideWidth: 2, padding: .valid))
        // Whole 4 × 6 tiles of a 4-block group run in one call per row: 16-wide rows (2 tiles and a tail) at stride 2.
        result.append(try! ConvolutionDescriptor(inputChannels: 20, inputHeight: 9, inputWidth: 31, outputChannels: 80,
                                                 kernelHeight: 3, kernelWidth: 3, strideHeight: 2, strideWidth: 2,
                                                 padding: .explicit(Padding(top: 1, bottom: 1, left: 1, right: 1))))
        return result
    }()

    @Test func blockedForwardAndDataGradientAgreeWithTheReference() throws {
        var dataGradients = 0
        for (index, d) in Self.shapes.enumerated() {
            let (x, w, dy) = try BlockedEntryChecks.operands(d, seed: UInt64(index))
            for pass in [ConvolutionPass.forward, .backwardData] {
                // (A padding past the kernel's reach can leave backward-data without a problem: refused, typed.)
                guard case .supported = DirectBackend().support(for: d, pass: pass) else { continue }
                let plan = try DirectBackend().makePlan(pass: pass, descriptor: d, weights: w,
                                                        options: PlanOptions(threads: 1 + index % 3))
                guard let blocked = plan as? any ChannelBlockedPassExecution else {
                    #expect(pass == .backwardData, "\(d): forward has no nChw16c entry point")
                    continue
                }
                if pass == .backwardData { dataGradients += 1 }
                try BlockedEntryChecks.expectAgreesWithReference(blocked, x: x, weights: w, gradOutput: dy)
            }
        }
        #expect(dataGradients >= 10, "\(dataGradients) blocked backward-data plans")
    }

    /// Last groups of 1, 2, 3 and 4 output blocks (the 1 × 24, 2 × 12, 3 × 8 and 4 × 6 tiles), forward and as the
    /// backward-data problem's (its output blocks are the input channels').
    @Test func shapesCoverEveryLastGroupWidth() {
        let forward = Set(Self.shapes.map { ($0.outputChannels + 15) / 16 % 4 })
        let dataGradient = Set(Self.shapes.map { ($0.inputChannels + 15) / 16 % 4 })
        #expect(forward == [0, 1, 2, 3] && dataGradient == [0, 1, 2, 3], "\(forward) \(dataGradient)")
    }

    /// Where the weight panels outweigh the input, the tasks stop at 2 per thread once the threads' first shares hold
    /// the same work: Inception-v3's 288 → 384 3×3/2 on 2 threads is its 6 groups over all 17 rows (3 + 3), not 2
    /// row ranges of 9 and 8 rows × 6 groups. With 5 groups the shares cannot be even and the split goes on to 4 tasks
    /// a thread, an even count; and where the input outweighs the weights (64 → 64 at 56²) the early stop is not
    /// taken.
    @Test func tasksStopAtEvenSharesWhenWeightsOutweighTheInput() throws {
        func tasks(inputChannels: Int, size: Int, outputChannels: Int, stride: Int) throws -> Int {
            let d = try ConvolutionDescriptor(inputChannels: inputChannels, inputHeight: size, inputWidth: size,
                                              outputChannels: outputChannels, kernelHeight: 3, kernelWidth: 3,
                                              strideHeight: stride, strideWidth: stride,
                                              padding: stride == 1 ? .same : .valid)
            let w = try Tensor<Float>(shape: d.weightShape)
            let plan = try #require(try DirectBackend().makePlan(descriptor: d, weights: w,
                                                                 options: PlanOptions(threads: 2))
                                        as? any ChannelBlockedPassExecution)
            #expect(plan.blockedSummary.variant == "channel-blocked", "\(d)")
            let stages: [WorkEstimate.Stage] = plan.blockedSummary.work?.stages ?? []
            for case .gemm(_, _, _, _, let tasks) in stages { return tasks }
            Issue.record("\(d): no gemm stage")
            return 0
        }
        #expect(try tasks(inputChannels: 288, size: 35, outputChannels: 384, stride: 2) == 6)
        let uneven = try tasks(inputChannels: 288, size: 35, outputChannels: 320, stride: 2)
        #expect(uneven >= 8 && uneven % 2 == 0, "\(uneven)")
        #expect(try tasks(inputChannels: 64, size: 56, outputChannels: 64, stride: 1) >= 8)
    }

    @Test func sameBitsAtEveryThreadCount() throws {
        for (index, d) in Self.shapes.suffix(6).enumerated() {
            let x = try ChannelBlocking.blocked(try Tensor<Float>.random(shape: d.inputShape, seed: UInt64(index)))
            let w = try Tensor<Float>.random(shape: d.weightShape, seed: UInt64(index) + 7)
            let bits = try (1...3).map { threads in
                let plan = try #require(try DirectBackend().makePlan(descriptor: d, weights: w,
                                                                     options: PlanOptions(threads: threads))
                                            as? any ChannelBlockedPassExecution)
                #expect(plan.blockedSummary.variant == "channel-blocked", "\(d)")
                return try plan.runBlocked(x).withUnsafeBufferPointer { $0.map(\.bitPattern) }
            }
            #expect(bits[0] == bits[1] && bits[1] == bits[2], "\(d)")
        }
    }
}

import ConvLab
import Testing

/// Winograd's nChw16c entry points (one group): forward (`WinogradPlanWithBlockedEntry`), stride-1 backward-data
/// through it, and backward-weights (`WinogradWeightGradientWithBlockedEntry`): against the float64 reference on
/// random shapes — F(2,3), F(4,3), F(6,3) and the generic backend on 2–5-tap, 1×r and r×1 kernels, ragged channel counts, asymmetric padding, batch, images smaller
/// than a tile, both schedules (a 256-channel 14² layer runs in phases, its 16-tile products on `ShortProduct`) — with NaN-filled outputs and lanes past the
/// last channel checked zero; the blocked output bit for bit the NCHW one (only the copies differ); and no blocked
/// entry for grouped layers, whose groups need not start a channel block.
@Suite struct WinogradBlockedEntryTests {
    static let cases: [(WinogradBackend, ConvolutionDescriptor)] = {
        var generator = SeededGenerator(seed: 0x3B10)
        func pick(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &generator) }
        var result: [(WinogradBackend, ConvolutionDescriptor)] = []
        while result.count < 30 {
            let threeTap = pick(0...2) > 0
            let r = threeTap ? 3 : pick(2...5)
            let (kh, kw) = [(r, r), (r, r), (1, r), (r, 1)][pick(0...3)]
            let backend = threeTap && kh == kw ? WinogradBackend(outputTile: [2, 4, 6][pick(0...2)], kernelSize: 3)
                                                 : WinogradBackend()
            guard let d = try? ConvolutionDescriptor(
                batch: pick(1...3), inputChannels: pick(0...3) == 0 ? pick(17...70) : pick(1...16),
                inputHeight: pick(1...24), inputWidth: pick(1...30),
                outputChannels: pick(0...2) == 0 ? pick(17...70) : pick(1...16), kernelHeight: kh, kernelWidth: kw,
                padding: pick(0...2) == 0 ? .same
                    : .explicit(Padding(top: pick(0...2), bottom: pick(0...2), left: pick(0...2), right: pick(0...3)))),
                  case .supported = backend.support(for: d) else { continue }
            result.append((backend, d))
        }
        result.append((WinogradBackend(outputTile: 4, kernelSize: 3),
                       try! ConvolutionDescriptor(inputChannels: 256, inputHeight: 14, inputWidth: 14, outputChannels: 256,
                                                  kernelHeight: 3, kernelWidth: 3, padding: .same)))
        return result
    }()

    @Test func blockedForwardAndDataGradientAgreeWithTheReference() throws {
        var (forwards, dataGradients, schedules) = (0, 0, Set<String>())
        for (index, (backend, d)) in Self.cases.enumerated() {
            let (x, w, dy) = try BlockedEntryChecks.operands(d, seed: UInt64(index) + 40)
            for pass in [ConvolutionPass.forward, .backwardData] {
                guard case .supported = backend.support(for: d, pass: pass) else { continue }
                let plan = try backend.makePlan(pass: pass, descriptor: d, weights: w,
                                                options: PlanOptions(threads: 1 + index % 3))
                guard let blocked = plan as? any ChannelBlockedPassExecution else {
                    // Backward-data with a crop or an upsampled dy runs on a copy and keeps NCHW only.
                    #expect(pass == .backwardData, "\(backend.name) \(d): forward has no nChw16c entry point")
                    continue
                }
                if pass == .forward {
                    forwards += 1
                    schedules.insert(blocked.summary.variant.contains("passes") ? "phases" : "fused")
                    if blocked.summary.variant.contains("16-row kernel") { schedules.insert("short products") }
                } else {
                    dataGradients += 1
                }
                try BlockedEntryChecks.expectAgreesWithReference(blocked, x: x, weights: w, gradOutput: dy)
            }
        }
        #expect(forwards == Self.cases.count)
        #expect(dataGradients >= 10, "\(dataGradients) blocked backward-data plans")
        #expect(schedules == ["phases", "fused", "short products"], "\(schedules)")
    }

    @Test func blockedOutputIsTheNCHWOutputBitForBit() throws {
        for (index, (backend, d)) in Self.cases.suffix(10).enumerated() {
            let (x, w, _) = try BlockedEntryChecks.operands(d, seed: UInt64(index) + 90)
            let plan = try backend.makePlan(descriptor: d, weights: w, options: PlanOptions(threads: 2))
            let blocked = try #require(plan as? any ChannelBlockedPassExecution)
            let nchw = try plan.run(x)
            let fromBlocked = try ChannelBlocking.unblocked(try blocked.runBlocked(try ChannelBlocking.blocked(x)),
                                                            channels: d.outputChannels)
            #expect(nchw.scalars.map(\.bitPattern) == fromBlocked.scalars.map(\.bitPattern), "\(backend.name) \(d)")
        }
    }

    /// Backward-weights (`WinogradWeightGradientWithBlockedEntry`): blocked x and dy against the reference, and bit for
    /// bit the NCHW entry's dw — in both schedules (slices where M is small, passes for the 256-channel layer and
    /// images of fewer tile rows than slices).
    @Test func blockedWeightGradientAgreesAndMatchesNCHW() throws {
        var schedules = Set<String>()
        for (index, (backend, d)) in Self.cases.enumerated() where index % 2 == 0 || index == Self.cases.count - 1 {
            guard case .supported = backend.support(for: d, pass: .backwardWeights) else { continue }
            let (x, _, dy) = try BlockedEntryChecks.operands(d, seed: UInt64(index) + 170)
            let plan = try backend.makePlan(pass: .backwardWeights, descriptor: d, weights: nil,
                                            options: PlanOptions(threads: 1 + index % 3))
            schedules.insert(plan.summary.variant.contains("slices") ? "slices" : "passes")
            try BlockedEntryChecks.expectBlockedWeightGradientMatchesNCHW(plan, x: x, gradOutput: dy,
                                                                          inputLayout: .nChw16c)
        }
        #expect(schedules == ["slices", "passes"], "\(schedules)")
    }

    @Test func groupedLayersHaveNoBlockedEntry() throws {
        let d = try ConvolutionDescriptor(inputChannels: 32, inputHeight: 12, inputWidth: 12, outputChannels: 32,
                                          kernelHeight: 3, kernelWidth: 3, padding: .same, groups: 4)
        let (_, w, _) = try BlockedEntryChecks.operands(d, seed: 5)
        let plan = try WinogradBackend(outputTile: 4, kernelSize: 3).makePlan(descriptor: d, weights: w,
                                                                             options: PlanOptions(threads: 2))
        #expect(!(plan is any ChannelBlockedPassExecution))
        let gradient = try WinogradBackend(outputTile: 4, kernelSize: 3).makePlan(
            pass: .backwardWeights, descriptor: d, weights: nil, options: PlanOptions(threads: 2))
        #expect(!(gradient is any ChannelBlockedPassExecution))
    }
}

import ConvLab
import Testing

/// F(4,3) with the filter transform inside the products (`FilterTransformingProduct`) against the float64 reference:
/// random shapes with odd sizes, asymmetric padding, batch, groups, dilation, channel counts off the 16-channel
/// blocks and tile counts off the 4-tile register tile; NCHW and nChw16c entries, forward and backward-data (which
/// runs the forward plan on the flipped filters); the plan says where its filters are transformed, and the automatic
/// rule only takes it for tables beyond the last-level cache on passes of at most 16 tiles.
@Suite struct FilterTransformingProductTests {
    static let inProducts = WinogradBackend(outputTile: 4, kernelSize: 3, filterTransform: .inProducts)

    static let shapes: [ConvolutionDescriptor] = {
        var generator = SeededGenerator(seed: 0x4F7A)
        func pick(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &generator) }
        var result: [ConvolutionDescriptor] = []
        while result.count < 24 {
            let groups = pick(0...3) == 0 ? pick(2...3) : 1
            guard let d = try? ConvolutionDescriptor(
                batch: pick(1...3), inputChannels: groups * (pick(0...2) == 0 ? pick(17...40) : pick(1...16)),
                inputHeight: pick(1...17), inputWidth: pick(1...19),
                outputChannels: groups * (pick(0...2) == 0 ? pick(17...40) : pick(1...16)), kernelHeight: 3, kernelWidth: 3,
                padding: pick(0...2) == 0 ? .same
                    : .explicit(Padding(top: pick(0...2), bottom: pick(0...2), left: pick(0...2), right: pick(0...3))),
                dilationHeight: pick(0...5) == 0 ? 2 : 1, dilationWidth: pick(0...5) == 0 ? 2 : 1, groups: groups),
                  case .supported = inProducts.support(for: d) else { continue }
            result.append(d)
        }
        return result
    }()

    @Test func forwardAndDataGradientAgreeWithTheReference() throws {
        var blockedRuns = 0
        for (index, d) in Self.shapes.enumerated() {
            let (x, w, dy) = try BlockedEntryChecks.operands(d, seed: UInt64(index) + 700)
            for pass in [ConvolutionPass.forward, .backwardData] {
                guard case .supported = Self.inProducts.support(for: d, pass: pass) else { continue }
                let plan = try Self.inProducts.makePlan(pass: pass, descriptor: d, weights: w,
                                                        options: PlanOptions(threads: 1 + index % 3))
                if d.isUndilated && pass == .forward {
                    #expect(plan.summary.variant.contains("filters transformed in the products"), "\(d): \(plan.summary.variant)")
                }
                let output = try plan.run(pass == .backwardData ? dy : x)
                let reference = try ReferenceConvolution.compute(pass, descriptor: d, input: pass == .backwardData ? dy : x,
                                                                 weights: w, gradOutput: dy, threads: 2)
                let report = try AccuracyChecker.compare(output: output, reference: reference,
                                                         errorBound: plan.summary.errorBound)
                #expect(report.passed && report.comparedCount == output.count, "\(pass) \(d): \(report)")
                if let blocked = plan as? any ChannelBlockedPassExecution {
                    blockedRuns += 1
                    try BlockedEntryChecks.expectAgreesWithReference(blocked, x: x, weights: w, gradOutput: dy)
                }
            }
        }
        #expect(blockedRuns >= 10, "\(blockedRuns) blocked runs")
    }

    /// The bound is the table's: moving the diagonal from G into A scales column t of Aᵀ and row t of G reciprocally.
    @Test func theBoundIsTheTableSchedules() throws {
        let d = try ConvolutionDescriptor(inputChannels: 40, inputHeight: 9, inputWidth: 9, outputChannels: 24,
                                          kernelHeight: 3, kernelWidth: 3, padding: .same)
        let table = try WinogradBackend(outputTile: 4, kernelSize: 3, filterTransform: .table)
            .describe(d, options: PlanOptions(threads: 2))
        let products = try Self.inProducts.describe(d, options: PlanOptions(threads: 2))
        #expect(!table.variant.contains("filters transformed"))
        #expect(products.variant.contains("filters transformed in the products"))
        #expect(abs(table.errorBound - products.errorBound) <= 1e-12 * table.errorBound)
    }

    @Test func theAutomaticRuleTakesOnlyTablesBeyondTheLastLevelCacheOnFewTiles() {
        let rule = WinogradBackend.transformsFiltersInProducts
        #expect(rule(.automatic, 38 << 20, 4, 32 << 20))
        #expect(rule(.automatic, 38 << 20, 16, 32 << 20))
        #expect(!rule(.automatic, 38 << 20, 17, 32 << 20))
        #expect(!rule(.automatic, 9 << 20, 4, 32 << 20))
        #expect(!rule(.table, 38 << 20, 4, 32 << 20))
        #expect(rule(.inProducts, 1 << 10, 400, 32 << 20))
    }
}

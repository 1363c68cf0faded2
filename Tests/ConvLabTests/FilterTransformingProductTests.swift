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
            blockedRuns += try Self.expectAgreesWithReference(d, seed: UInt64(index) + 700, threads: 1 + index % 3)
        }
        #expect(blockedRuns >= 10, "\(blockedRuns) blocked runs")
    }

    /// Passes of 14–16 and 24 tiles run the row products (U per row ξ and chunk of 16 channels, 2 blocks × 8 tiles):
    /// channel counts over several chunks, output blocks in pairs and a lone last block, tiles past the last group's,
    /// groups and batch; 12 tiles (two groups of 8 half empty) keep the in-register kernel.
    @Test func rowProductsAgreeWithTheReference() throws {
        // (descriptor, whether its forward pass runs the row products)
        let cases: [(ConvolutionDescriptor, Bool)] = [
            (try ConvolutionDescriptor(inputChannels: 40, inputHeight: 13, inputWidth: 13, outputChannels: 40,
                                       kernelHeight: 3, kernelWidth: 3, padding: .same), true),  // 16 tiles
            (try ConvolutionDescriptor(batch: 4, inputChannels: 24, inputHeight: 7, inputWidth: 7, outputChannels: 17,
                                       kernelHeight: 3, kernelWidth: 3, padding: .same), true),  // 4 × 4 tiles
            (try ConvolutionDescriptor(inputChannels: 33, inputHeight: 7, inputWidth: 27, outputChannels: 20,
                                       kernelHeight: 3, kernelWidth: 3, padding: .same), true),  // 2 × 7 tiles
            (try ConvolutionDescriptor(inputChannels: 36, inputHeight: 12, inputWidth: 20, outputChannels: 48,
                                       kernelHeight: 3, kernelWidth: 3, padding: .same, groups: 2), true),  // 15
            (try ConvolutionDescriptor(inputChannels: 17, inputHeight: 24, inputWidth: 18, outputChannels: 33,
                                       kernelHeight: 3, kernelWidth: 3,
                                       padding: .explicit(Padding(top: 0, bottom: 1, left: 1, right: 0))), true),  // 24
            (try ConvolutionDescriptor(batch: 3, inputChannels: 20, inputHeight: 7, inputWidth: 7, outputChannels: 18,
                                       kernelHeight: 3, kernelWidth: 3, padding: .same), false),  // 12 tiles
        ]
        for (index, (d, rowProducts)) in cases.enumerated() {
            let summary = try Self.inProducts.describe(d, options: PlanOptions(threads: 2))
            #expect(summary.variant.contains("rows of U") == rowProducts, "\(d): \(summary.variant)")
            for threads in [1, 3] {
                _ = try Self.expectAgreesWithReference(d, seed: UInt64(index) + 900, threads: threads)
            }
        }
    }

    /// Forward and backward-data (NCHW and, where the plan has one, the nChw16c entry) against the reference; returns
    /// the blocked runs.
    static func expectAgreesWithReference(_ d: ConvolutionDescriptor, seed: UInt64, threads: Int) throws -> Int {
        var blockedRuns = 0
        let (x, w, dy) = try BlockedEntryChecks.operands(d, seed: seed)
        for pass in [ConvolutionPass.forward, .backwardData] {
            guard case .supported = inProducts.support(for: d, pass: pass) else { continue }
            let plan = try inProducts.makePlan(pass: pass, descriptor: d, weights: w,
                                               options: PlanOptions(threads: threads))
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
        return blockedRuns
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
        #expect(rule(.automatic, 38 << 20, 8, 32 << 20))
        #expect(!rule(.automatic, 38 << 20, 9, 32 << 20))
        #expect(!rule(.automatic, 38 << 20, 16, 32 << 20))
        #expect(!rule(.automatic, 9 << 20, 4, 32 << 20))
        #expect(!rule(.table, 38 << 20, 4, 32 << 20))
        #expect(rule(.inProducts, 1 << 10, 400, 32 << 20))
    }
}

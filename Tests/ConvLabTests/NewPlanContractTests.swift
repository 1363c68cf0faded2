import ConvLab
import Foundation
import Synchronization
import Testing

/// The plans that vectorise across channels — im2col's transposed pointwise product, its one-product fully connected
/// layers and direct's channel-blocked depthwise bands — against the float64 reference on awkward shapes, and
/// holding the plan contract: the same bits at every thread count and under concurrent executions, and no read of
/// workspace they did not write (a workspace full of NaN changes nothing).
@Suite struct NewPlanContractTests {
    static func pointwise(_ n: Int, _ c: Int, _ h: Int, _ w: Int, _ k: Int, stride: Int = 1, groups: Int = 1)
        -> ConvolutionDescriptor {
        try! ConvolutionDescriptor(batch: n, inputChannels: c, inputHeight: h, inputWidth: w, outputChannels: k,
                                   kernelHeight: 1, kernelWidth: 1, strideHeight: stride, strideWidth: stride,
                                   padding: .valid, groups: groups)
    }

    static let pointwiseShapes: [ConvolutionDescriptor] = [
        pointwise(1, 64, 14, 14, 128),                 // 196 positions: 12 whole transposes and a tail of 4
        pointwise(2, 33, 7, 7, 192),                   // odd channel count, batch
        pointwise(1, 48, 13, 13, 184, stride: 2),      // subsampled first: 7×7 outputs; 184 = 11 blocks of 16 + 8
        pointwise(1, 64, 9, 11, 128, stride: 3, groups: 2),
        pointwise(3, 320, 7, 7, 1280),                 // MobileNetV2's last 1×1
    ]

    /// im2col plans `d` as `variant` and agrees with the float64 reference at one and three threads.
    static func expectIm2colPlan(_ variant: String, for d: ConvolutionDescriptor, seed: UInt64) throws {
        #expect(try Im2colBackend().describe(d, options: PlanOptions()).variant == variant, "\(d)")
        for threads in [1, 3] {
            let report = try AccuracyChecker.check(backend: Im2colBackend(), descriptor: d, seed: seed,
                                                   options: PlanOptions(threads: threads))
            #expect(report.passed && report.comparedCount == d.outputCount, "\(d), \(threads) threads: \(report)")
        }
    }

    @Test(arguments: pointwiseShapes)
    func pointwiseTransposedAgreesWithTheReference(d: ConvolutionDescriptor) throws {
        try Self.expectIm2colPlan("pointwise transposed", for: d, seed: 13)
    }

    static func fullyConnected(_ n: Int, _ c: Int, _ h: Int, _ w: Int, _ k: Int) -> ConvolutionDescriptor {
        try! ConvolutionDescriptor(batch: n, inputChannels: c, inputHeight: h, inputWidth: w, outputChannels: k,
                                   kernelHeight: h, kernelWidth: w, padding: .valid)
    }

    static let fullyConnectedShapes: [ConvolutionDescriptor] = [
        fullyConnected(4, 1280, 1, 1, 1000),           // MobileNetV2's classifier at batch 4: 16 strips, the last ragged
        fullyConnected(7, 64, 3, 3, 130),              // a 3×3 window over a 3×3 map; 7 images: a ragged 6-row panel
        fullyConnected(1, 33, 2, 5, 17),               // one image, fewer outputs than one strip
    ]

    /// A kernel covering its whole input is one product for the batch (`FullyConnectedPlan`).
    @Test(arguments: fullyConnectedShapes)
    func fullyConnectedAgreesWithTheReference(d: ConvolutionDescriptor) throws {
        try Self.expectIm2colPlan("fully connected", for: d, seed: 17)
    }

    static let contractCases: [(String, ConvolutionDescriptor)] = [
        ("im2col", fullyConnected(5, 96, 2, 2, 200)),
        ("im2col", pointwise(2, 40, 13, 13, 128)),
        ("im2col", pointwise(1, 48, 13, 13, 184, stride: 2)),
        ("direct", ChannelBlockedDepthwiseTests.depthwise(2, 20, 9, 9, 3, 3, stride: (2, 2))),
        ("direct", ChannelBlockedDepthwiseTests.depthwise(1, 48, 14, 14, 5, 5)),
        ("direct", ChannelBlockedDepthwiseTests.depthwise(1, 32, 60, 70, 3, 5)),  // rows plan + blocked entry
        ("direct", ChannelBlockedDepthwiseTests.spanning[0]),
    ]

    @Test(arguments: contractCases.indices)
    func sameBitsAtEveryThreadCountConcurrentlyAndOverPoisonedWorkspace(index: Int) throws {
        let (name, d) = Self.contractCases[index]
        let backend = try BackendRegistry.backend(named: name)
        let variant = try backend.describe(d, options: PlanOptions()).variant
        #expect(["pointwise transposed", "fully connected", "depthwise rows"].contains(variant)
                    || variant.hasPrefix("depthwise channel-blocked"), "\(name) \(d)")
        let x = try Tensor<Float>.random(shape: d.inputShape, distribution: .uniform(low: -1, high: 1), seed: 21)
        let w = try Tensor<Float>.random(shape: d.weightShape, distribution: .uniform(low: -1, high: 1), seed: 22)
        @Sendable func run(threads: Int, poison: Bool) throws -> [Float] {
            let plan = try backend.makePlan(descriptor: d, weights: w, options: PlanOptions(threads: threads))
            let workspace = try Workspace(byteCount: plan.workspaceBytes)
            if poison {
                workspace.buffer.bindMemory(to: Float.self).update(repeating: .nan)
            }
            var y = try Tensor<Float>(shape: d.outputShape)
            try plan.execute(x, into: &y, workspace: workspace)
            return y.scalars
        }
        let serial = try run(threads: 1, poison: false)
        #expect(serial.allSatisfy { $0.isFinite })
        for threads in [2, 3] { #expect(try run(threads: threads, poison: false) == serial, "\(name) \(d), \(threads)") }
        #expect(try run(threads: 2, poison: true) == serial, "\(name) \(d): a poisoned workspace changed the output")
        let results = Mutex<[[Float]]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            if let y = try? run(threads: 2, poison: false) { results.withLock { $0.append(y) } }
        }
        let concurrent = results.withLock { $0 }
        #expect(concurrent.count == 4 && concurrent.allSatisfy { $0 == serial }, "\(name) \(d): concurrent runs")
    }
}

import ConvLab
import Testing

/// Every backend against the float64 reference on many seeded random shapes and on hand-picked edge cases.
@Suite struct BackendAgreementTests {
    static let fastBackends = BackendRegistry.all.filter { $0.name != "reference" }.map(\.name)
    static let descriptors = RandomDescriptors.make(count: 240, seed: 20261124)

    /// The shared random shapes, or — for backends with a narrow domain (Winograd: stride 1, no dilation, r×r, 1×r
    /// or r×1 kernels) — 200 random shapes inside that domain, still varying padding, groups, batch and sizes.
    static func shapes(for backend: any Convolution) -> [ConvolutionDescriptor] {
        let supported = descriptors.filter { backend.support(for: $0).isSupported }
        if supported.count >= 200 { return supported }
        return RandomDescriptors.make(count: 200, seed: 77, maxStride: 1, maxDilation: 1, kernelSizes: [1, 2, 3, 4, 5, 7],
                                      accept: { backend.support(for: $0).isSupported })
    }

    @Test(arguments: fastBackends)
    func agreesWithReferenceOnRandomShapes(backendName: String) throws {
        let backend = try BackendRegistry.backend(named: backendName)
        var checked = 0
        for (index, descriptor) in Self.shapes(for: backend).enumerated() {
            let report = try AccuracyChecker.check(backend: backend, descriptor: descriptor, seed: UInt64(index),
                                                   options: PlanOptions(threads: 1 + index % 3))
            #expect(report.passed, "\(backendName) on \(descriptor): \(report)")
            #expect(report.comparedCount == descriptor.outputCount)
            checked += 1
        }
        #expect(checked >= 200, "\(backendName) supported only \(checked) of \(Self.descriptors.count) shapes")
    }

    /// Shapes that exercise tile, block and chunk edges of the fast paths.
    static let edgeCases: [ConvolutionDescriptor] = {
        func d(_ n: Int, _ c: Int, _ h: Int, _ w: Int, _ k: Int, _ r: Int, _ s: Int, stride: (Int, Int) = (1, 1),
               pad: PaddingRule = .same, dilation: (Int, Int) = (1, 1), groups: Int = 1) -> ConvolutionDescriptor? {
            try? ConvolutionDescriptor(batch: n, inputChannels: c, inputHeight: h, inputWidth: w, outputChannels: k,
                                       kernelHeight: r, kernelWidth: s, strideHeight: stride.0, strideWidth: stride.1,
                                       padding: pad, dilationHeight: dilation.0, dilationWidth: dilation.1,
                                       groups: groups)
        }
        return [
            d(1, 1, 1, 1, 1, 1, 1, pad: .valid),                   // 1x1 image, 1x1 kernel
            d(2, 3, 1, 1, 5, 3, 3),                                  // 1x1 image, padded 3x3
            d(1, 64, 7, 7, 67, 3, 3),                                // K not a multiple of the 6-channel block
            d(1, 16, 33, 65, 16, 1, 1, pad: .valid),                 // pointwise, odd sizes
            d(3, 8, 31, 17, 12, 1, 7),                               // 1x7, batch 3
            d(1, 8, 17, 31, 12, 7, 1),                               // 7x1
            d(1, 32, 40, 40, 32, 3, 3, groups: 32),                  // depthwise
            d(2, 16, 23, 19, 48, 5, 5, stride: (2, 2), groups: 16),  // depthwise, multiplier 3, stride 2
            d(1, 12, 50, 50, 24, 3, 3, stride: (2, 2)),              // stride 2
            d(2, 3, 40, 150, 13, 3, 3),                              // rows over 64 wide: direct's in-row tiles
            d(1, 5, 20, 200, 12, 3, 5, stride: (1, 2), dilation: (1, 2)),  // the same, strided and dilated
            d(1, 6, 29, 30, 10, 3, 3, stride: (1, 3), dilation: (2, 1)),
            d(1, 4, 64, 64, 4, 5, 5, dilation: (3, 3)),
            d(1, 3, 227, 227, 8, 11, 11, stride: (4, 4), pad: .valid),  // AlexNet conv1 geometry, fewer channels
            d(1, 1, 300, 260, 1, 15, 15),                            // one channel, large kernel
            d(1, 96, 9, 9, 64, 3, 3),                                // deep, small: im2col splits output channels
            d(1, 256, 5, 5, 256, 3, 3, pad: .valid),                 // output 3x3
            d(5, 20, 3, 3, 37, 3, 3, pad: .valid),                   // fully connected: kernel covers the input, batch 5
            d(3, 200, 1, 1, 130, 1, 1, pad: .valid),                 // a classifier after global pooling, batch 3
            d(2, 6, 5, 4, 70, 5, 4, stride: (2, 3), pad: .valid),    // fully connected, strided (one position anyway)
        ].compactMap { $0 }
    }()

    @Test(arguments: fastBackends)
    func agreesWithReferenceOnEdgeCases(backendName: String) throws {
        let backend = try BackendRegistry.backend(named: backendName)
        #expect(Self.edgeCases.count == 20)
        for (index, descriptor) in Self.edgeCases.enumerated() where backend.support(for: descriptor).isSupported {
            for threads in [1, 2] {
                let report = try AccuracyChecker.check(backend: backend, descriptor: descriptor,
                                                       seed: UInt64(100 + index),
                                                       distribution: .normal(mean: 0, standardDeviation: 1),
                                                       options: PlanOptions(threads: threads))
                #expect(report.passed, "\(backendName) threads \(threads) on \(descriptor): \(report)")
            }
        }
    }

    /// The reference backend (float32 rounding of the float64 result) is within one rounding of the truth.
    @Test func referenceBackendRoundsOnce() throws {
        for (index, descriptor) in Self.descriptors.prefix(30).enumerated() {
            let report = try AccuracyChecker.check(backend: ReferenceBackend(), descriptor: descriptor,
                                                   seed: UInt64(index))
            #expect(report.passed)
            #expect(report.maxULPDistance <= 1)
        }
    }

    /// Bounds are checked, not assumed: real errors sit well below them but above zero, so the bound is not vacuous.
    @Test func typicalErrorsAreFarBelowTheWorstCaseBound() throws {
        let d = try ConvolutionDescriptor(inputChannels: 64, inputHeight: 20, inputWidth: 20, outputChannels: 16,
                                          kernelHeight: 3, kernelWidth: 3, padding: .same)
        for name in Self.fastBackends {
            let backend = try BackendRegistry.backend(named: name)
            guard backend.support(for: d).isSupported else { continue }
            let report = try AccuracyChecker.check(backend: backend, descriptor: d, seed: 4)
            #expect(report.maxRelativeError > 0)
            #expect(report.maxRelativeError < report.errorBound / 10)
        }
    }
    /// The Winograd plan re-reads its filter transform per fused chunk only while that is cheap: a filter beyond half
    /// of L2 on a small image (few tiles per chunk) runs in phase passes, a small filter stays fused. Both schedules
    /// must agree with the reference.
    @Test func winogradScheduleFollowsTheFilterSizeAndL2() throws {
        let options = PlanOptions(threads: 2)
        let wide = try ConvolutionDescriptor(inputChannels: 256, inputHeight: 14, inputWidth: 14, outputChannels: 256,
                                             kernelHeight: 3, kernelWidth: 3, padding: .same)
        let narrow = try ConvolutionDescriptor(inputChannels: 32, inputHeight: 28, inputWidth: 28, outputChannels: 32,
                                               kernelHeight: 3, kernelWidth: 3, padding: .same)
        let backend = try BackendRegistry.backend(named: "winograd-f2x3")
        // 16 points x 256 x 256 floats = 4 MiB: beyond half of any L2 we run on (a few MiB), re-read per 14-tile chunk.
        let wideFilterBytes = 16 * 256 * 256 * 4
        #expect(wideFilterBytes > MachineCaches.current.level2Bytes / 2)
        #expect(try backend.describe(wide, options: options).variant.contains("passes"))
        #expect(try backend.describe(narrow, options: options).variant.contains("fused"))
        for d in [wide, narrow] {
            let report = try AccuracyChecker.check(backend: backend, descriptor: d, seed: 12, options: options)
            #expect(report.passed && report.maxRelativeError > 0, "\(d)")
        }
    }
}

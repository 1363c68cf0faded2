import ConvLab
import Testing

/// The direct backend's channel-blocked depthwise plan (16 channels per vector): partial channel blocks, strides,
/// dilation, asymmetric and oversized padding, non-square kernels, kernels wider than the image, batch, row bands
/// split across tasks and a row's partial block of 8 positions, each against the float64 reference — and the plan is
/// really the one `direct` picks for them.
@Suite struct ChannelBlockedDepthwiseTests {
    static func depthwise(_ n: Int, _ c: Int, _ h: Int, _ w: Int, _ r: Int, _ s: Int, stride: (Int, Int) = (1, 1),
                          padding: PaddingRule = .same, dilation: (Int, Int) = (1, 1)) -> ConvolutionDescriptor {
        try! ConvolutionDescriptor(batch: n, inputChannels: c, inputHeight: h, inputWidth: w, outputChannels: c,
                                   kernelHeight: r, kernelWidth: s, strideHeight: stride.0, strideWidth: stride.1,
                                   padding: padding, dilationHeight: dilation.0, dilationWidth: dilation.1, groups: c)
    }

    static let shapes: [ConvolutionDescriptor] = [
        depthwise(1, 16, 7, 7, 3, 3),                                   // one whole block, a 7-wide row
        depthwise(1, 960, 7, 7, 3, 3),                                  // MobileNetV2's last depthwise layer
        depthwise(2, 20, 14, 13, 5, 5, stride: (2, 2)),                 // a partial block, stride 2, odd width
        depthwise(1, 33, 9, 11, 3, 5, padding: .explicit(Padding(top: 2, bottom: 0, left: 1, right: 3)),
                  dilation: (2, 1)),
        depthwise(3, 48, 17, 19, 7, 7, stride: (2, 1)),
        depthwise(1, 17, 40, 30, 3, 3),                                 // bands of rows at 3 threads
        depthwise(1, 24, 12, 12, 1, 1, padding: .valid),
        depthwise(1, 32, 7, 7, 13, 13),                                 // a kernel wider than the image (RepLKNet)
        depthwise(1, 16, 6, 9, 3, 3, padding: .explicit(Padding(top: 4, bottom: 3, left: 5, right: 2))),
        depthwise(2, 40, 23, 23, 3, 3, stride: (3, 3), padding: .valid, dilation: (2, 3)),
        depthwise(1, 64, 112, 112, 3, 3, stride: (2, 2)),               // a 56-wide strided output
    ]

    @Test(arguments: shapes)
    func agreesWithTheReference(d: ConvolutionDescriptor) throws {
        #expect(try DirectBackend().describe(d, options: PlanOptions()).variant == "depthwise channel-blocked", "\(d)")
        for threads in [1, 3] {
            let report = try AccuracyChecker.check(backend: DirectBackend(), descriptor: d, seed: 11,
                                                   options: PlanOptions(threads: threads))
            #expect(report.passed && report.comparedCount == d.outputCount, "\(d), \(threads) threads: \(report)")
        }
    }

    /// The row plan keeps what it is faster at (rows of ≥ 48 outputs at stride 1) and layers of few channels.
    @Test func rowPlanKeepsWideRowsAndFewChannels() throws {
        for d in [Self.depthwise(1, 32, 112, 112, 3, 3), Self.depthwise(1, 8, 28, 28, 3, 3)] {
            #expect(try DirectBackend().describe(d, options: PlanOptions()).variant != "depthwise channel-blocked")
        }
    }
}

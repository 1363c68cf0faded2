import ConvLab
import Testing

/// The direct backend's depthwise plan (stride 1, rows of ≥ 24 outputs): four-row blocks, a partial last 64-column
/// block, leftover rows, row bands split across tasks, padding of any kind, dilation, channel multiplier and batch,
/// each against the float64 reference.
@Suite struct DepthwisePlanTests {
    static let shapes: [ConvolutionDescriptor] = [
        // (N, C, H, W, K, R, S, padding, dilation)
        try! ConvolutionDescriptor(inputChannels: 32, inputHeight: 112, inputWidth: 112, outputChannels: 32,
                                   kernelHeight: 3, kernelWidth: 3, padding: .same, groups: 32),
        try! ConvolutionDescriptor(batch: 2, inputChannels: 5, inputHeight: 31, inputWidth: 67, outputChannels: 10,
                                   kernelHeight: 5, kernelWidth: 5, padding: .same, groups: 5),
        try! ConvolutionDescriptor(batch: 3, inputChannels: 3, inputHeight: 26, inputWidth: 29, outputChannels: 3,
                                   kernelHeight: 3, kernelWidth: 1, padding: .explicit(Padding(top: 2, bottom: 0,
                                                                                              left: 0, right: 1)),
                                   groups: 3),
        try! ConvolutionDescriptor(inputChannels: 4, inputHeight: 41, inputWidth: 130, outputChannels: 4,
                                   kernelHeight: 3, kernelWidth: 3, padding: .same, dilationHeight: 2,
                                   dilationWidth: 3, groups: 4),
        try! ConvolutionDescriptor(inputChannels: 2, inputHeight: 9, inputWidth: 40, outputChannels: 6,
                                   kernelHeight: 7, kernelWidth: 7, padding: .valid, groups: 2),
        try! ConvolutionDescriptor(inputChannels: 1, inputHeight: 203, inputWidth: 24, outputChannels: 1,
                                   kernelHeight: 1, kernelWidth: 1, padding: .valid, groups: 1),
    ]

    @Test(arguments: shapes)
    func agreesWithTheReference(d: ConvolutionDescriptor) throws {
        for threads in [1, 3] {
            let report = try AccuracyChecker.check(backend: DirectBackend(), descriptor: d, seed: 7,
                                                   options: PlanOptions(threads: threads))
            #expect(report.passed && report.comparedCount == d.outputCount, "\(d), \(threads) threads: \(report)")
        }
    }
}

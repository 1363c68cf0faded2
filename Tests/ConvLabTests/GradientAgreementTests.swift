import ConvLab
import Testing

/// Every backend that says it runs a backward pass agrees with the float64 reference of that pass within its
/// declared bound, on random shapes with every feature, at 1–3 threads and on several matrix engines; one that does
/// not, refuses through the protocol with a reason and then cannot be planned.
@Suite struct GradientAgreementTests {
    static let descriptors = RandomDescriptors.make(count: 220, seed: 0xB4C)
    static let engines: [MatrixEngine] = [.native, .blas, .strassen(depth: 1, base: .native, cutoff: 2)]

    @Test(arguments: [ConvolutionPass.backwardData, .backwardWeights])
    func everyBackendAgreesOrRefuses(pass: ConvolutionPass) throws {
        var checked: [String: Int] = [:]
        for backend in BackendRegistry.all where backend.name != "reference" {
            for (index, d) in Self.descriptors.enumerated() {
                let options = PlanOptions(threads: 1 + index % 3, matrixEngine: Self.engines[index % Self.engines.count])
                switch backend.support(for: d, pass: pass) {
                case .unsupported(let reason):
                    #expect(!reason.isEmpty, "\(backend.name) refused \(pass) without a reason")
                    #expect(throws: ConvLabError.self) {
                        _ = try backend.makePlan(pass: pass, descriptor: d, weights: try Tensor(shape: d.weightShape),
                                                 options: options)
                    }
                case .supported:
                    let report = try AccuracyChecker.check(backend: backend, pass: pass, descriptor: d,
                                                           seed: UInt64(index), options: options)
                    #expect(report.passed && report.comparedCount == d.shapes(for: pass).output.reduce(1, *),
                            "\(backend.name) \(pass) on \(d), \(options.threads) threads, \(options.matrixEngine): \(report)")
                    checked[backend.name, default: 0] += 1
                }
            }
        }
        // im2col, direct and the FFTs run every shape in both passes (backward-data as the forward problem of the
        // transposed convolution, cropping where the padding exceeds the kernel's extent).
        let everyShape = ["im2col", "direct", "fft", "fft-tiled"]
        for name in everyShape {
            #expect(checked[name] == Self.descriptors.count, "\(name) runs every shape: \(checked)")
        }
        // Winograd runs its stride-1 share in both passes (backward-data as a forward plan, backward-weights as
        // F(R, m): the tiles of dY are the kernel, the tiles of X the data).
        #expect(["winograd-f2x3", "winograd-f4x3", "winograd-f6x3", "winograd-f2x5", "winograd-f4x5"]
                    .allSatisfy { (checked[$0] ?? 0) >= 10 }, "\(checked)")
    }

    /// Shapes large enough for the splits the random ones are too small to reach: im2col's pointwise paths and its
    /// chunked backward-weights reduction (partials added in order), Winograd's multi-pass accumulation, FFT tiles
    /// over several images. Every backend that runs the pass must agree, and each plan's variant shows the split.
    @Test(arguments: [ConvolutionPass.backwardData, .backwardWeights])
    func plannedSplitsAgree(pass: ConvolutionPass) throws {
        let shapes = [
            try ConvolutionDescriptor(batch: 2, inputChannels: 48, inputHeight: 40, inputWidth: 37, outputChannels: 40,
                                      kernelHeight: 1, kernelWidth: 1),
            try ConvolutionDescriptor(batch: 3, inputChannels: 16, inputHeight: 30, inputWidth: 30, outputChannels: 24,
                                      kernelHeight: 3, kernelWidth: 3, padding: .same, groups: 2),
            try ConvolutionDescriptor(batch: 2, inputChannels: 8, inputHeight: 45, inputWidth: 45, outputChannels: 8,
                                      kernelHeight: 1, kernelWidth: 1, strideHeight: 2, strideWidth: 2),
            // Depthwise rows: channel multiplier 2, asymmetric padding, dilation, several bands, odd row count.
            try ConvolutionDescriptor(batch: 2, inputChannels: 6, inputHeight: 71, inputWidth: 33, outputChannels: 12,
                                      kernelHeight: 3, kernelWidth: 5, padding: .explicit(Padding(top: 2, bottom: 0, left: 1, right: 3)),
                                      dilationHeight: 2, dilationWidth: 1, groups: 6),
            try ConvolutionDescriptor(batch: 1, inputChannels: 5, inputHeight: 9, inputWidth: 11, outputChannels: 5,
                                      kernelHeight: 9, kernelWidth: 9, padding: .same, groups: 5),
            // One channel counts as depthwise; a 21×21 kernel crashed the optimised build when its sums lived in a
            // stack buffer ("stack smashing detected", img_k31 of the suite).
            try ConvolutionDescriptor(inputChannels: 1, inputHeight: 40, inputWidth: 37, outputChannels: 1,
                                      kernelHeight: 21, kernelWidth: 23, padding: .same),
            // A 1×1 layer with more output than input channels on a map too short to chunk: im2col's weight gradient
            // splits dW by rows (output channels), 4 blocks of 102 (the last ragged at 79 rows), not by columns; its
            // data gradient splits dx's 160 channels into 3 blocks of 54 (the last 52).
            try ConvolutionDescriptor(batch: 2, inputChannels: 160, inputHeight: 7, inputWidth: 6, outputChannels: 385,
                                      kernelHeight: 1, kernelWidth: 1),
        ]
        var chunked = false, pointwise = false, depthwiseRows = 0, rowBlocks = false
        for (index, d) in shapes.enumerated() {
            for backend in BackendRegistry.all where backend.name != "reference" {
                guard case .supported = backend.support(for: d, pass: pass) else { continue }
                let options = PlanOptions(threads: 1 + index % 2 + 1)
                let description = try backend.describe(d, pass: pass, options: options)
                if backend.name == "direct" && description.variant == "depthwise rows" { depthwiseRows += 1 }
                if backend.name == "im2col" {
                    chunked = chunked || description.variant.contains("chunks")
                    pointwise = pointwise || description.variant.hasPrefix("pointwise")
                    rowBlocks = rowBlocks || description.variant.contains("output channels")
                        || (description.variant.hasPrefix("pointwise") && !description.variant.contains(" 1 blocks"))
                }
                let report = try AccuracyChecker.check(backend: backend, pass: pass, descriptor: d,
                                                       seed: UInt64(index + 40), options: options)
                #expect(report.passed, "\(backend.name) \(pass) on \(d) (\(description.variant)): \(report)")
            }
        }
        #expect(pointwise, "no im2col plan took the pointwise path")
        if pass == .backwardWeights {
            #expect(chunked, "no im2col plan chunked its reduction")
            #expect(rowBlocks, "no im2col plan split dW by output channels")
            #expect(depthwiseRows == 3, "the depthwise backward-weights plan ran \(depthwiseRows) of 3 depthwise shapes")
        } else {
            #expect(rowBlocks, "no im2col pointwise plan split dx by channels")
        }
    }

    /// A wrong answer must fail: the checker is not vacuous on gradients (a dgrad that forgot the last tap, a wgrad
    /// off by one image).
    @Test func theCheckerCatchesAnIncompleteGradient() throws {
        let d = try ConvolutionDescriptor(batch: 2, inputChannels: 3, inputHeight: 9, inputWidth: 9, outputChannels: 4,
                                          kernelHeight: 3, kernelWidth: 3, padding: .same)
        let x = try Tensor<Float>.random(shape: d.inputShape, seed: 1)
        let dy = try Tensor<Float>.random(shape: d.outputShape, seed: 2)
        let reference = try ReferenceConvolution.backwardWeights(descriptor: d, input: x, gradOutput: dy)
        // The gradient of the first image alone.
        let one = try ConvolutionDescriptor(batch: 1, inputChannels: 3, inputHeight: 9, inputWidth: 9, outputChannels: 4,
                                            kernelHeight: 3, kernelWidth: 3, padding: .same)
        let partial = try ReferenceConvolution.backwardWeights(
            descriptor: one, input: try Tensor(shape: one.inputShape, scalars: Array(x.scalars.prefix(one.inputCount))),
            gradOutput: try Tensor(shape: one.outputShape, scalars: Array(dy.scalars.prefix(one.outputCount))))
        let wrong = try Tensor<Float>(shape: d.weightShape, scalars: partial.output.scalars.map { Float($0) })
        let report = try AccuracyChecker.compare(output: wrong, reference: reference,
                                                 errorBound: dotProductErrorBound(terms: d.reductionLength(for: .backwardWeights)))
        #expect(!report.passed)
    }
}

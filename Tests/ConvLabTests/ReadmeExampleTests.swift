import ConvLab
import Testing

/// The library example in README.md, verbatim inside a test so that it keeps compiling and stays right.
@Suite struct ReadmeExampleTests {
    @Test func readmeExample() throws {
        // --- README example begins ---
        let layer = try ConvolutionDescriptor(inputChannels: 64, inputHeight: 56, inputWidth: 56,
                                              outputChannels: 64, kernelHeight: 3, kernelWidth: 3, padding: .same)
        let x = try Tensor<Float>.random(shape: layer.inputShape, seed: 1)
        let w = try Tensor<Float>.random(shape: layer.weightShape, distribution: .normal(mean: 0, standardDeviation: 0.1), seed: 2)
        let plan = try DirectBackend().makePlan(descriptor: layer, weights: w, options: PlanOptions(threads: 2))
        let y = try plan(x)                                   // N×K×Ho×Wo, float32
        let truth = try ReferenceConvolution.compute(descriptor: layer, input: x, weights: w)
        let report = try AccuracyChecker.compare(output: y, reference: truth, errorBound: plan.expectedErrorBound)
        print(y.shape, report.maxRelativeError, report.passed)  // [1, 64, 56, 56] ~2e-7 true
        // --- README example ends ---
        #expect(y.shape == [1, 64, 56, 56])
        #expect(report.passed)
    }

    @Test func readmeBackwardExample() throws {
        // --- README backward example begins ---
        let layer = try ConvolutionDescriptor(batch: 8, inputChannels: 64, inputHeight: 28, inputWidth: 28,
                                              outputChannels: 128, kernelHeight: 3, kernelWidth: 3,
                                              strideHeight: 2, strideWidth: 2, padding: .same)
        let x = try Tensor<Float>.random(shape: layer.inputShape, seed: 1)
        let w = try Tensor<Float>.random(shape: layer.weightShape, seed: 2)
        let dy = try Tensor<Float>.random(shape: layer.outputShape, seed: 3)     // the gradient of the loss in y
        let data = try Im2colBackend().makePlan(pass: .backwardData, descriptor: layer, weights: w,
                                                options: PlanOptions(threads: 2))
        let dx = try data.run(dy)                                                 // N×C×H×W
        let update = try DirectBackend().makePlan(pass: .backwardWeights, descriptor: layer, weights: nil,
                                                  options: PlanOptions(threads: 2))
        let dw = try update.run(x, gradOutput: dy)                                // K×(C/G)×R×S
        let truth = try ReferenceConvolution.backwardWeights(descriptor: layer, input: x, gradOutput: dy)
        let report = try AccuracyChecker.compare(output: dw, reference: truth, errorBound: update.summary.errorBound)
        print(dx.shape, dw.shape, report.maxRelativeError, report.passed)        // [8, 64, 28, 28] [128, 64, 3, 3] ~1e-7 true
        // --- README backward example ends ---
        #expect(dx.shape == layer.inputShape && dw.shape == layer.weightShape)
        #expect(report.passed)
    }
}

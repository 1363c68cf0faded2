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
}

import ConvLab
import Testing

/// The backward references are proved against the forward one without sharing its loops: for any x, w and dy,
///     ⟨conv(x, w), dy⟩ = ⟨dgrad(dy, w), x⟩ = ⟨wgrad(x, dy), w⟩
/// (the two backward passes are the adjoints of the forward map in x and in w). In float64 the three sums agree to
/// ~1e-15 of Σ|terms|; a wrong index, a missing tap or a mishandled stride, padding, dilation or group breaks it by
/// O(1). Plus the hand-checkable cases the identities cannot see (a scale error common to all three would pass).
@Suite struct GradientReferenceTests {
    static let descriptors = RandomDescriptors.make(count: 250, seed: 0x6AD)

    static func dot(_ a: Tensor<Double>, _ b: Tensor<Float>) -> (value: Double, scale: Double) {
        let (x, y) = (a.scalars, b.scalars)
        var (sum, scale) = (0.0, 0.0)
        for i in 0..<x.count {
            sum += x[i] * Double(y[i])
            scale += abs(x[i] * Double(y[i]))
        }
        return (sum, scale)
    }

    @Test func backwardPassesAreTheAdjointsOfTheForwardPass() throws {
        for (index, d) in Self.descriptors.enumerated() {
            let seed = UInt64(index) * 3
            let x = try Tensor<Float>.random(shape: d.inputShape, distribution: .normal(mean: 0, standardDeviation: 1), seed: seed)
            let w = try Tensor<Float>.random(shape: d.weightShape, distribution: .normal(mean: 0, standardDeviation: 1), seed: seed + 1)
            let dy = try Tensor<Float>.random(shape: d.outputShape, distribution: .normal(mean: 0, standardDeviation: 1), seed: seed + 2)
            let y = try ReferenceConvolution.compute(descriptor: d, input: x, weights: w, threads: 2).output
            let dx = try ReferenceConvolution.backwardData(descriptor: d, gradOutput: dy, weights: w, threads: 2).output
            let dw = try ReferenceConvolution.backwardWeights(descriptor: d, input: x, gradOutput: dy, threads: 2).output
            let forward = Self.dot(y, dy), data = Self.dot(dx, x), weights = Self.dot(dw, w)
            let scale = max(forward.scale, 1e-300)
            let error = max(abs(forward.value - data.value), abs(forward.value - weights.value)) / scale
            #expect(error < 1e-12, "\(d): ⟨y,dy⟩ \(forward.value), ⟨dx,x⟩ \(data.value), ⟨dw,w⟩ \(weights.value)")
            #expect(dx.shape == d.inputShape && dw.shape == d.weightShape)
        }
    }

    /// A 1-channel 3×3 input, a 2×2 kernel, stride 1, no padding: every gradient entry written out by hand.
    @Test func aSmallCaseByHand() throws {
        let d = try ConvolutionDescriptor(inputChannels: 1, inputHeight: 3, inputWidth: 3, outputChannels: 1,
                                          kernelHeight: 2, kernelWidth: 2)
        let x = try Tensor<Float>(shape: d.inputShape, scalars: [1, 2, 3, 4, 5, 6, 7, 8, 9])
        let w = try Tensor<Float>(shape: d.weightShape, scalars: [1, 10, 100, 1000])
        let dy = try Tensor<Float>(shape: d.outputShape, scalars: [1, 2, 3, 4])
        // dx[i][j] = Σ_{oh,ow} dy[oh][ow]·w[i−oh][j−ow].
        let dx = try ReferenceConvolution.backwardData(descriptor: d, gradOutput: dy, weights: w).output.scalars
        #expect(dx == [1, 12, 20, 103, 1234, 2040, 300, 3400, 4000])
        // dw[r][s] = Σ dy[oh][ow]·x[oh+r][ow+s].
        let dw = try ReferenceConvolution.backwardWeights(descriptor: d, input: x, gradOutput: dy).output.scalars
        #expect(dw == [37, 47, 67, 77])  // 1·1 + 2·2 + 3·4 + 4·5, …
    }

    /// Stride 2 leaves the inputs no output window reads with a zero gradient, and a tap the padding hides gets none.
    @Test func stridedAndPaddedGradientsSkipWhatTheForwardPassSkips() throws {
        let d = try ConvolutionDescriptor(inputChannels: 1, inputHeight: 4, inputWidth: 4, outputChannels: 1,
                                          kernelHeight: 1, kernelWidth: 1, strideHeight: 2, strideWidth: 2)
        let dy = try Tensor<Float>(shape: d.outputShape, scalars: [1, 2, 3, 4])
        let w = try Tensor<Float>(shape: d.weightShape, scalars: [5])
        let dx = try ReferenceConvolution.backwardData(descriptor: d, gradOutput: dy, weights: w).output.scalars
        #expect(dx == [5, 0, 10, 0, 0, 0, 0, 0, 15, 0, 20, 0, 0, 0, 0, 0])
    }
}

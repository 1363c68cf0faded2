import ConvLabCore

/// The convolution's definition evaluated in float64 on float64 activations: the float64 run of a whole network
/// (`ModelInference.float64`) feeds each layer the previous layer's float64 result, so its logits carry no float32
/// rounding at all. The single-layer reference (`ReferenceConvolution`) takes float32 inputs and cannot chain.
enum Float64Convolution {
    static func apply(_ d: ConvolutionDescriptor, input x: Tensor<Double>, weights: Tensor<Float>, threads: Int)
        throws -> Tensor<Double> {
        var y = try Tensor<Double>(shape: d.outputShape)
        let w = weights.scalars.map(Double.init)
        let (H, W, Ho, Wo) = (d.inputHeight, d.inputWidth, d.outputHeight, d.outputWidth)
        let (R, S, Cg) = (d.kernelHeight, d.kernelWidth, d.channelsPerGroup)
        x.withUnsafeBufferPointer { src in
            y.withUnsafeMutableBufferPointer { out in
                let buffers = UncheckedSendable((src, out))
                Parallel.forEach(taskCount: d.batch * d.outputChannels, threads: threads) { _, task in
                    let (src, out) = buffers.value
                    let (n, k) = (task / d.outputChannels, task % d.outputChannels)
                    let group = k / d.outputChannelsPerGroup
                    for oh in 0..<Ho {
                        for ow in 0..<Wo {
                            var sum = 0.0
                            for c in 0..<Cg {
                                let inBase = (n * d.inputChannels + group * Cg + c) * H * W
                                for r in 0..<R {
                                    let ih = oh * d.strideHeight + r * d.dilationHeight - d.padding.top
                                    if ih < 0 || ih >= H { continue }
                                    for s in 0..<S {
                                        let iw = ow * d.strideWidth + s * d.dilationWidth - d.padding.left
                                        if iw < 0 || iw >= W { continue }
                                        sum += w[((k * Cg + c) * R + r) * S + s] * src[inBase + ih * W + iw]
                                    }
                                }
                            }
                            out[((n * d.outputChannels + k) * Ho + oh) * Wo + ow] = sum
                        }
                    }
                }
            }
        }
        return y
    }
}

/// Adds bias[k] to every element of output channel k of an N×K×H×W tensor (what a convolution layer's bias does).
public func addChannelBias(_ bias: Tensor<Float>, to output: inout Tensor<Float>) throws {
    guard output.shape.count == 4 else {
        throw ConvLabError.shapeMismatch(what: "output for bias", expected: "4 dimensions (N, K, H, W)",
                                         actual: "\(output.shape)")
    }
    let (batch, channels, plane) = (output.shape[0], output.shape[1], output.shape[2] * output.shape[3])
    guard bias.count == channels, bias.shape.count == 1 else {
        throw ConvLabError.shapeMismatch(what: "bias", expected: "[\(channels)] (one value per output channel)",
                                         actual: "\(bias.shape)")
    }
    let values = bias.scalars
    output.withUnsafeMutableBufferPointer { y in
        for n in 0..<batch {
            for k in 0..<channels {
                let base = (n * channels + k) * plane
                for i in 0..<plane { y[base + i] += values[k] }
            }
        }
    }
}

import ConvLabCore

/// The backward passes' ground truth: float64 sums straight from the definitions in `ConvolutionPass`, written
/// independently of the forward loops (gather form for backward-data: each dx visits the taps and outputs that read
/// it), so the adjoint identities ⟨conv(x,w), dy⟩ = ⟨dgrad(dy,w), x⟩ = ⟨wgrad(x,dy), w⟩ test one against the other.
/// Each returns, per result element, the Σ|a|·|b| of its own products (the checker's scale) and a typical scale per
/// plane (the checker's floor), as the forward reference does.
extension ReferenceConvolution {
    /// dx (N×C×H×W) from dy (N×K×Ho×Wo) and w.
    public static func backwardData(descriptor d: ConvolutionDescriptor, gradOutput dy: Tensor<Float>,
                                    weights: Tensor<Float>, threads: Int = Parallel.defaultThreadCount) throws
        -> ReferenceResult {
        try check(dy, d.outputShape, "gradient of the output")
        try check(weights, d.weightShape, "weights")
        var output = try Tensor<Double>(shape: d.inputShape)
        var magnitude = try Tensor<Double>(shape: d.inputShape)
        let (H, W, Ho, Wo) = (d.inputHeight, d.inputWidth, d.outputHeight, d.outputWidth)
        let (R, S, Cg, Kg) = (d.kernelHeight, d.kernelWidth, d.channelsPerGroup, d.outputChannelsPerGroup)
        dy.withUnsafeBufferPointer { g in
            weights.withUnsafeBufferPointer { w in
                output.withUnsafeMutableBufferPointer { y in
                    magnitude.withUnsafeMutableBufferPointer { m in
                        let shared = UncheckedSendable((g, w, y, m))
                        Parallel.forEach(taskCount: d.batch * d.inputChannels, threads: threads) { _, task in
                            let (g, w, y, m) = shared.value
                            let (n, channel) = (task / d.inputChannels, task % d.inputChannels)
                            let (group, c) = (channel / Cg, channel % Cg)
                            for ih in 0..<H {
                                for iw in 0..<W {
                                    var (sum, scale) = (0.0, 0.0)
                                    for r in 0..<R {
                                        let rowOffset = ih + d.padding.top - r * d.dilationHeight
                                        guard rowOffset >= 0, rowOffset % d.strideHeight == 0 else { continue }
                                        let oh = rowOffset / d.strideHeight
                                        guard oh < Ho else { continue }
                                        for s in 0..<S {
                                            let columnOffset = iw + d.padding.left - s * d.dilationWidth
                                            guard columnOffset >= 0, columnOffset % d.strideWidth == 0 else { continue }
                                            let ow = columnOffset / d.strideWidth
                                            guard ow < Wo else { continue }
                                            for kk in 0..<Kg {
                                                let k = group * Kg + kk
                                                let a = Double(g[((n * d.outputChannels + k) * Ho + oh) * Wo + ow])
                                                let b = Double(w[((k * Cg + c) * R + r) * S + s])
                                                sum += a * b
                                                scale += abs(a) * abs(b)
                                            }
                                        }
                                    }
                                    y[((n * d.inputChannels + channel) * H + ih) * W + iw] = sum
                                    m[((n * d.inputChannels + channel) * H + ih) * W + iw] = scale
                                }
                            }
                        }
                    }
                }
            }
        }
        // Typical scale of dx[n, c]: Σ|w[·, c]| over the group's K/G filters (at least the group's mean) · rms(dy) over
        // image n's K/G channels of the group — the forward reference's rule with the roles of C and K swapped.
        var typical = try Tensor<Double>(shape: [d.batch, d.inputChannels])
        let (g, w) = (dy.scalars, weights.scalars)
        let outputPlane = Ho * Wo
        typical.withUnsafeMutableBufferPointer { t in
            for group in 0..<d.groups {
                let sums = (0..<Cg).map { c in
                    (0..<Kg).reduce(0.0) { total, kk in
                        let base = ((group * Kg + kk) * Cg + c) * R * S
                        return total + w[base..<(base + R * S)].reduce(0.0) { $0 + abs(Double($1)) }
                    }
                }
                let mean = sums.reduce(0, +) / Double(max(Cg, 1))
                for n in 0..<d.batch {
                    let start = (n * d.outputChannels + group * Kg) * outputPlane
                    let rms = (g[start..<(start + Kg * outputPlane)].reduce(0.0) { $0 + Double($1) * Double($1) }
                               / Double(max(Kg * outputPlane, 1))).squareRoot()
                    for c in 0..<Cg { t[n * d.inputChannels + group * Cg + c] = max(sums[c], mean) * rms }
                }
            }
        }
        return ReferenceResult(output: output, magnitude: magnitude, typicalMagnitude: typical)
    }

    /// dw (K×C/G×R×S) from x (N×C×H×W) and dy (N×K×Ho×Wo), summed over the batch.
    public static func backwardWeights(descriptor d: ConvolutionDescriptor, input x: Tensor<Float>,
                                       gradOutput dy: Tensor<Float>, threads: Int = Parallel.defaultThreadCount) throws
        -> ReferenceResult {
        try check(x, d.inputShape, "input")
        try check(dy, d.outputShape, "gradient of the output")
        var output = try Tensor<Double>(shape: d.weightShape)
        var magnitude = try Tensor<Double>(shape: d.weightShape)
        let (H, W, Ho, Wo) = (d.inputHeight, d.inputWidth, d.outputHeight, d.outputWidth)
        let (R, S, Cg, Kg) = (d.kernelHeight, d.kernelWidth, d.channelsPerGroup, d.outputChannelsPerGroup)
        x.withUnsafeBufferPointer { x in
            dy.withUnsafeBufferPointer { g in
                output.withUnsafeMutableBufferPointer { y in
                    magnitude.withUnsafeMutableBufferPointer { m in
                        let shared = UncheckedSendable((x, g, y, m))
                        Parallel.forEach(taskCount: d.outputChannels * Cg, threads: threads) { _, task in
                            let (x, g, y, m) = shared.value
                            let (k, c) = (task / Cg, task % Cg)
                            let channel = (k / Kg) * Cg + c
                            for r in 0..<R {
                                for s in 0..<S {
                                    var (sum, scale) = (0.0, 0.0)
                                    for n in 0..<d.batch {
                                        for oh in 0..<Ho {
                                            let ih = oh * d.strideHeight - d.padding.top + r * d.dilationHeight
                                            guard ih >= 0 && ih < H else { continue }
                                            for ow in 0..<Wo {
                                                let iw = ow * d.strideWidth - d.padding.left + s * d.dilationWidth
                                                guard iw >= 0 && iw < W else { continue }
                                                let a = Double(g[((n * d.outputChannels + k) * Ho + oh) * Wo + ow])
                                                let b = Double(x[((n * d.inputChannels + channel) * H + ih) * W + iw])
                                                sum += a * b
                                                scale += abs(a) * abs(b)
                                            }
                                        }
                                    }
                                    y[((k * Cg + c) * R + r) * S + s] = sum
                                    m[((k * Cg + c) * R + r) * S + s] = scale
                                }
                            }
                        }
                    }
                }
            }
        }
        // Typical scale of dw[k, c]: Σ|dy_k| over batch and positions · rms(x) over the group's input channels (the
        // dot product's "weights" are dy's), at least the group's mean over k.
        var typical = try Tensor<Double>(shape: [d.outputChannels, Cg])
        let (xs, gs) = (x.scalars, dy.scalars)
        typical.withUnsafeMutableBufferPointer { t in
            for group in 0..<d.groups {
                var squares = 0.0
                for n in 0..<d.batch {
                    let start = (n * d.inputChannels + group * Cg) * H * W
                    squares += xs[start..<(start + Cg * H * W)].reduce(0.0) { $0 + Double($1) * Double($1) }
                }
                let rms = (squares / Double(max(d.batch * Cg * H * W, 1))).squareRoot()
                let sums = (0..<Kg).map { kk in
                    (0..<d.batch).reduce(0.0) { total, n in
                        let start = (n * d.outputChannels + group * Kg + kk) * Ho * Wo
                        return total + gs[start..<(start + Ho * Wo)].reduce(0.0) { $0 + abs(Double($1)) }
                    }
                }
                let mean = sums.reduce(0, +) / Double(max(Kg, 1))
                for kk in 0..<Kg {
                    for c in 0..<Cg { t[(group * Kg + kk) * Cg + c] = max(sums[kk], mean) * rms }
                }
            }
        }
        return ReferenceResult(output: output, magnitude: magnitude, typicalMagnitude: typical)
    }

    /// The float64 result of `pass` on its operands (weights for forward and backward-data, `gradOutput` for
    /// backward-weights).
    public static func compute(_ pass: ConvolutionPass, descriptor d: ConvolutionDescriptor, input: Tensor<Float>,
                               weights: Tensor<Float>?, gradOutput: Tensor<Float>?,
                               threads: Int = Parallel.defaultThreadCount) throws -> ReferenceResult {
        func required(_ tensor: Tensor<Float>?, _ what: String) throws -> Tensor<Float> {
            guard let tensor else {
                throw ConvLabError.invalidArgument(name: what, reason: "the \(pass) pass needs it")
            }
            return tensor
        }
        switch pass {
        case .forward:
            return try compute(descriptor: d, input: input, weights: try required(weights, "weights"), threads: threads)
        case .backwardData:
            return try backwardData(descriptor: d, gradOutput: input, weights: try required(weights, "weights"),
                                    threads: threads)
        case .backwardWeights:
            return try backwardWeights(descriptor: d, input: input, gradOutput: try required(gradOutput, "gradient of the output"),
                                       threads: threads)
        }
    }

    private static func check(_ tensor: Tensor<Float>, _ shape: [Int], _ what: String) throws {
        guard tensor.shape == shape else {
            throw ConvLabError.shapeMismatch(what: what, expected: "\(shape)", actual: "\(tensor.shape)")
        }
    }
}

import ConvLabCore

/// The ground truth: the convolution sum evaluated term by term in float64, straight from the definition in
/// `ConvolutionDescriptor`. Products of two float32 values are exact in float64 and the sums carry ~(C·R·S)·2⁻⁵³
/// relative error, negligible beside float32 results, so every backend is judged against this.
///
/// It also returns, per output, the forward-error scale Σ|w|·|x| that the accuracy checker divides by.
public struct ReferenceResult: Sendable {
    /// y in float64, shape N×K×Ho×Wo.
    public var output: Tensor<Double>
    /// Σ|w|·|x| over the same terms, shape N×K×Ho×Wo.
    public var magnitude: Tensor<Double>
    /// Per image and output channel, Σ|w_k|·rms(x) over the group's input channels, shape N×K: the scale of an
    /// output whose window lies wholly inside the image. Methods with a global error (FFT, Winograd tiles) err in
    /// proportion to it, even at outputs whose own Σ|w|·|x| is tiny or zero (e.g. windows in the padding, or all-zero
    /// windows of post-ReLU data). RMS rather than mean|x|: a transform mixes every entry of its tile, so its rounding
    /// error follows the tile's L2 norm; on half-zero ReLU data mean|x| understates that by 1.8×.
    public var typicalMagnitude: Tensor<Double>?

    public init(output: Tensor<Double>, magnitude: Tensor<Double>, typicalMagnitude: Tensor<Double>? = nil) {
        self.output = output
        self.magnitude = magnitude
        self.typicalMagnitude = typicalMagnitude
    }
}

public enum ReferenceConvolution {
    /// Evaluates the definition directly. Parallel over (n, k); slow by design (clarity over speed).
    public static func compute(descriptor d: ConvolutionDescriptor, input: Tensor<Float>, weights: Tensor<Float>,
                               threads: Int = Parallel.defaultThreadCount) throws -> ReferenceResult {
        try checkShapes(d, input: input.shape, weights: weights.shape)
        var output = try Tensor<Double>(shape: d.outputShape)
        var magnitude = try Tensor<Double>(shape: d.outputShape)
        input.withUnsafeBufferPointer { x in
            weights.withUnsafeBufferPointer { w in
                output.withUnsafeMutableBufferPointer { y in
                    magnitude.withUnsafeMutableBufferPointer { m in
                        let buffers = UncheckedSendable((x, w, y, m))
                        Parallel.forEach(taskCount: d.batch * d.outputChannels, threads: threads) { _, task in
                            let (x, w, y, m) = buffers.value
                            evaluatePlane(d, n: task / d.outputChannels, k: task % d.outputChannels,
                                          x: x, w: w, y: y, m: m)
                        }
                    }
                }
            }
        }
        return ReferenceResult(output: output, magnitude: magnitude,
                               typicalMagnitude: try typicalMagnitude(d, input: input, weights: weights))
    }

    /// max(Σ|w_k|, mean over k's group of Σ|w_k'|) · rms(x) over image n's channels of k's group, for every (n, k).
    /// The group mean covers Strassen, which mixes output channels: a channel whose weights are all zero still gets
    /// rounding noise of the group's scale, where a componentwise method would return exact zeros.
    static func typicalMagnitude(_ d: ConvolutionDescriptor, input: Tensor<Float>, weights: Tensor<Float>) throws
        -> Tensor<Double> {
        var typical = try Tensor<Double>(shape: [d.batch, d.outputChannels])
        let planeSize = d.inputHeight * d.inputWidth
        let x = input.scalars, w = weights.scalars
        typical.withUnsafeMutableBufferPointer { t in
            for n in 0..<d.batch {
                for g in 0..<d.groups {
                    let start = (n * d.inputChannels + g * d.channelsPerGroup) * planeSize
                    let meanSquare = x[start..<(start + d.channelsPerGroup * planeSize)]
                        .reduce(0.0) { $0 + Double($1) * Double($1) } / Double(max(d.channelsPerGroup * planeSize, 1))
                    let rmsInput = meanSquare.squareRoot()
                    let channels = (g * d.outputChannelsPerGroup)..<((g + 1) * d.outputChannelsPerGroup)
                    let weightSums = channels.map { k in
                        w[(k * d.reductionLength)..<((k + 1) * d.reductionLength)].reduce(0.0) { $0 + abs(Double($1)) }
                    }
                    let groupMean = weightSums.reduce(0, +) / Double(max(weightSums.count, 1))
                    for (k, weightSum) in zip(channels, weightSums) {
                        t[n * d.outputChannels + k] = max(weightSum, groupMean) * rmsInput
                    }
                }
            }
        }
        return typical
    }

    /// The definition on float64 activations (no magnitude): the float64 run of a whole network feeds each layer
    /// the previous layer's float64 result, which the float32-input `compute` cannot take.
    public static func compute(descriptor d: ConvolutionDescriptor, float64Input input: Tensor<Double>,
                               weights: Tensor<Float>, threads: Int = Parallel.defaultThreadCount) throws
        -> Tensor<Double> {
        try checkShapes(d, input: input.shape, weights: weights.shape)
        var output = try Tensor<Double>(shape: d.outputShape)
        input.withUnsafeBufferPointer { x in
            weights.withUnsafeBufferPointer { w in
                output.withUnsafeMutableBufferPointer { y in
                    let buffers = UncheckedSendable((x, w, y))
                    Parallel.forEach(taskCount: d.batch * d.outputChannels, threads: threads) { _, task in
                        let (x, w, y) = buffers.value
                        evaluatePlane(d, n: task / d.outputChannels, k: task % d.outputChannels, x: x, w: w, y: y, m: nil)
                    }
                }
            }
        }
        return output
    }

    private static func checkShapes(_ d: ConvolutionDescriptor, input: [Int], weights: [Int]) throws {
        guard input == d.inputShape else {
            throw ConvLabError.shapeMismatch(what: "input", expected: "\(d.inputShape)", actual: "\(input)")
        }
        guard weights == d.weightShape else {
            throw ConvLabError.shapeMismatch(what: "weights", expected: "\(d.weightShape)", actual: "\(weights)")
        }
    }

    /// One output plane y[n, k, :, :] and, when `m` is given, its magnitude plane.
    private static func evaluatePlane<X: BinaryFloatingPoint>(
        _ d: ConvolutionDescriptor, n: Int, k: Int, x: UnsafeBufferPointer<X>, w: UnsafeBufferPointer<Float>,
        y: UnsafeMutableBufferPointer<Double>, m: UnsafeMutableBufferPointer<Double>?) {
        let (H, W, Ho, Wo) = (d.inputHeight, d.inputWidth, d.outputHeight, d.outputWidth)
        let (R, S, Cg) = (d.kernelHeight, d.kernelWidth, d.channelsPerGroup)
        let group = k / d.outputChannelsPerGroup
        let outBase = (n * d.outputChannels + k) * Ho * Wo
        for oh in 0..<Ho {
            for ow in 0..<Wo {
                var sum = 0.0
                var scale = 0.0
                for c in 0..<Cg {
                    let inBase = (n * d.inputChannels + group * Cg + c) * H * W
                    for r in 0..<R {
                        let ih = oh * d.strideHeight + r * d.dilationHeight - d.padding.top
                        if ih < 0 || ih >= H { continue }
                        for s in 0..<S {
                            let iw = ow * d.strideWidth + s * d.dilationWidth - d.padding.left
                            if iw < 0 || iw >= W { continue }
                            let weight = Double(w[((k * Cg + c) * R + r) * S + s])
                            let value = Double(x[inBase + ih * W + iw])
                            sum += weight * value
                            scale += abs(weight) * abs(value)
                        }
                    }
                }
                y[outBase + oh * Wo + ow] = sum
                m?[outBase + oh * Wo + ow] = scale
            }
        }
    }
}

/// The reference as a backend (`reference`), so it can be timed and listed beside the others.
/// Its float32 output is the float64 result rounded once, hence the bound of one rounding.
public struct ReferenceBackend: Convolution {
    public init() {}

    static let backendName = "reference"

    public var name: String { Self.backendName }

    /// The ground truth, not a fast path: never chosen by the selector.
    public var isSelectable: Bool { false }

    public func support(for descriptor: ConvolutionDescriptor) -> SupportStatus { .supported }

    public func describe(_ d: ConvolutionDescriptor, options: PlanOptions) throws -> PlanDescription {
        try validate(d, options: options)
        // Rounding the result to float32 (u·|y| ≤ u·Σ|w||x|) plus the float64 sum's own error. The reference
        // allocates its float64 planes itself (it is the slow ground truth, not a fast path), so no workspace.
        // Typically the rounding to float32 alone: a quarter of u of |y|, itself ~Σ|w||x|/√n for random data.
        return PlanDescription(backend: name, errorBound: float32UnitRoundoff + Double(d.reductionLength) * 0x1p-53,
                               typicalError: float32UnitRoundoff / 4 / Double(d.reductionLength).squareRoot(),
                               workspaceBytes: 0, persistentBytes: d.weightCount * 4, work: nil)
    }

    public func makePlan(descriptor: ConvolutionDescriptor, weights: Tensor<Float>, options: PlanOptions) throws
        -> any ConvolutionPlan {
        let summary = try describe(descriptor, options: options)
        try validate(weights: weights, for: descriptor)
        return ReferencePlan(descriptor: descriptor, summary: summary, weights: weights, threads: options.threads)
    }

    // MARK: The backward passes

    public func support(for descriptor: ConvolutionDescriptor, pass: ConvolutionPass) -> SupportStatus { .supported }

    public func describe(_ d: ConvolutionDescriptor, pass: ConvolutionPass, options: PlanOptions) throws
        -> PlanDescription {
        var summary = try describe(d, options: options)
        summary.pass = pass
        summary.errorBound = float32UnitRoundoff + Double(d.reductionLength(for: pass)) * 0x1p-53
        summary.typicalError = float32UnitRoundoff / 4 / Double(d.reductionLength(for: pass)).squareRoot()
        return summary
    }

    public func makePlan(pass: ConvolutionPass, descriptor: ConvolutionDescriptor, weights: Tensor<Float>?,
                         options: PlanOptions) throws -> any PassPlan {
        if pass == .forward {
            return try makePlan(descriptor: descriptor, weights: try requiredWeights(weights, pass: pass), options: options)
        }
        let summary = try describe(descriptor, pass: pass, options: options)
        let fixed = pass == .backwardData ? try requiredWeights(weights, pass: pass) : nil
        if let fixed { try validate(weights: fixed, for: descriptor) }
        return ReferenceGradientPlan(descriptor: descriptor, summary: summary, weights: fixed, threads: options.threads)
    }
}

/// The float64 loops of the backward passes as a plan (allocating, like the forward reference plan: it is the ground
/// truth, timed only to show how slow the definition is).
struct ReferenceGradientPlan: PassPlan {
    let descriptor: ConvolutionDescriptor
    let summary: PlanDescription
    let weights: Tensor<Float>?
    let threads: Int

    func execute(_ operands: PassOperands, workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?) throws {
        try validate(operands, workspace: workspace)
        let shapes = descriptor.shapes(for: pass)
        let input = try Tensor<Float>(shape: shapes.input, scalars: Array(operands.input))
        let gradOutput = try shapes.gradOutput.map { try Tensor<Float>(shape: $0, scalars: Array(operands.gradOutput)) }
        let result = try measurePhase("float64 loops", in: profile) {
            try ReferenceConvolution.compute(pass, descriptor: descriptor, input: input, weights: weights,
                                             gradOutput: gradOutput, threads: threads)
        }
        result.output.withUnsafeBufferPointer { y in
            for i in 0..<operands.output.count { operands.output[i] = Float(y[i]) }
        }
    }
}

struct ReferencePlan: ConvolutionPlan {
    let descriptor: ConvolutionDescriptor
    let summary: PlanDescription
    let weights: Tensor<Float>
    let threads: Int

    func execute(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
                 workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?) throws {
        try validateBuffers(input: input, output: output, workspace: workspace)
        let inputTensor = try Tensor<Float>(shape: descriptor.inputShape, scalars: Array(input))
        let result = try measurePhase("float64 loops", in: profile) {
            try ReferenceConvolution.compute(descriptor: descriptor, input: inputTensor, weights: weights,
                                             threads: threads)
        }
        result.output.withUnsafeBufferPointer { y in
            for i in 0..<output.count { output[i] = Float(y[i]) }
        }
    }
}

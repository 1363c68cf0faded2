/// One 2-D convolution problem: float32 input N×C×H×W (NCHW), weights K×(C/groups)×R×S (KCRS), output N×K×Ho×Wo.
///
/// Like a oneDNN primitive descriptor it is created once, validated once, and then describes the problem to every
/// backend. "Convolution" means what CNN frameworks compute, i.e. cross-correlation:
///
///     y[n,k,oh,ow] = Σ_{c,r,s} w[k,c,r,s] · x[n, g·C/G + c, oh·sh + r·dh − pt, ow·sw + s·dw − pl]
///
/// where g = k / (K/G) is the group of output channel k and samples outside the input are zero.
public struct ConvolutionDescriptor: Hashable, Sendable, CustomStringConvertible {
    public let batch: Int
    public let inputChannels: Int
    public let inputHeight: Int
    public let inputWidth: Int
    public let outputChannels: Int
    public let kernelHeight: Int
    public let kernelWidth: Int
    public let strideHeight: Int
    public let strideWidth: Int
    public let padding: Padding
    public let dilationHeight: Int
    public let dilationWidth: Int
    public let groups: Int

    /// Validates every field; throws `ConvLabError.invalidDescriptor` naming the first bad field, or
    /// `.memoryLimitExceeded` when input + weights + output would not fit under `limits.maxTensorBytes`.
    public init(
        batch: Int = 1,
        inputChannels: Int,
        inputHeight: Int,
        inputWidth: Int,
        outputChannels: Int,
        kernelHeight: Int,
        kernelWidth: Int,
        strideHeight: Int = 1,
        strideWidth: Int = 1,
        padding: PaddingRule = .valid,
        dilationHeight: Int = 1,
        dilationWidth: Int = 1,
        groups: Int = 1,
        limits: ResourceLimits = .default
    ) throws {
        let positive: [(String, Int)] = [
            ("batch", batch), ("inputChannels", inputChannels), ("inputHeight", inputHeight),
            ("inputWidth", inputWidth), ("outputChannels", outputChannels), ("kernelHeight", kernelHeight),
            ("kernelWidth", kernelWidth), ("strideHeight", strideHeight), ("strideWidth", strideWidth),
            ("dilationHeight", dilationHeight), ("dilationWidth", dilationWidth), ("groups", groups),
        ]
        for (field, value) in positive where value < 1 {
            throw ConvLabError.invalidDescriptor(field: field, reason: "must be at least 1 (got \(value))")
        }
        // Bound single sizes so that index arithmetic (e.g. ·dh) can never overflow; tensor sizes are
        // bounded much more tightly by the memory limit below.
        let maxSize = 1 << 31
        for (field, value) in positive where value > maxSize {
            throw ConvLabError.invalidDescriptor(field: field, reason: "\(value) is larger than 2^31")
        }
        if inputChannels % groups != 0 {
            throw ConvLabError.invalidDescriptor(
                field: "groups", reason: "inputChannels \(inputChannels) is not divisible by groups \(groups)")
        }
        if outputChannels % groups != 0 {
            throw ConvLabError.invalidDescriptor(
                field: "groups", reason: "outputChannels \(outputChannels) is not divisible by groups \(groups)")
        }

        let resolved: Padding
        switch padding {
        case .valid:
            resolved = .zero
        case .same:
            let h = PaddingRule.sameAxis(input: inputHeight, kernel: kernelHeight, stride: strideHeight,
                                         dilation: dilationHeight)
            let w = PaddingRule.sameAxis(input: inputWidth, kernel: kernelWidth, stride: strideWidth,
                                         dilation: dilationWidth)
            resolved = Padding(top: h.before, bottom: h.after, left: w.before, right: w.after)
        case .explicit(let p):
            for (field, value) in [("padding.top", p.top), ("padding.bottom", p.bottom),
                                   ("padding.left", p.left), ("padding.right", p.right)] {
                if value < 0 {
                    throw ConvLabError.invalidDescriptor(field: field, reason: "must not be negative (got \(value))")
                }
                if value > maxSize {
                    throw ConvLabError.invalidDescriptor(field: field, reason: "\(value) is larger than 2^31")
                }
            }
            resolved = p
        }

        let extentH = (kernelHeight - 1) * dilationHeight + 1
        let extentW = (kernelWidth - 1) * dilationWidth + 1
        let paddedH = inputHeight + resolved.top + resolved.bottom
        let paddedW = inputWidth + resolved.left + resolved.right
        if extentH > paddedH {
            throw ConvLabError.invalidDescriptor(
                field: "kernelHeight",
                reason: "dilated kernel extent \(extentH) exceeds the padded input height \(paddedH), "
                    + "so the output would be empty")
        }
        if extentW > paddedW {
            throw ConvLabError.invalidDescriptor(
                field: "kernelWidth",
                reason: "dilated kernel extent \(extentW) exceeds the padded input width \(paddedW), "
                    + "so the output would be empty")
        }

        self.batch = batch
        self.inputChannels = inputChannels
        self.inputHeight = inputHeight
        self.inputWidth = inputWidth
        self.outputChannels = outputChannels
        self.kernelHeight = kernelHeight
        self.kernelWidth = kernelWidth
        self.strideHeight = strideHeight
        self.strideWidth = strideWidth
        self.padding = resolved
        self.dilationHeight = dilationHeight
        self.dilationWidth = dilationWidth
        self.groups = groups

        // Element counts with overflow checks: a request like 100,000 x 100,000 must fail here, at once.
        typealias Checked = CheckedArithmetic
        guard let inputCount = Checked.product(batch, inputChannels, inputHeight, inputWidth),
              let weightCount = Checked.product(outputChannels, inputChannels / groups, kernelHeight, kernelWidth),
              let outputCount = Checked.product(batch, outputChannels, outputHeight, outputWidth),
              let total = Checked.sum(inputCount, weightCount, outputCount),
              let bytes = Checked.product(total, MemoryLayout<Float>.stride),
              Checked.product(outputCount, 2, inputChannels / groups, kernelHeight, kernelWidth) != nil
        else {
            throw ConvLabError.invalidDescriptor(
                field: "sizes", reason: "element counts overflow a 64-bit integer")
        }
        try ResourceLimits.check("the input, weight and output tensors", bytes: bytes, limit: limits.maxTensorBytes)
    }

    // MARK: Derived sizes

    public var channelsPerGroup: Int { inputChannels / groups }
    public var outputChannelsPerGroup: Int { outputChannels / groups }
    /// Rows covered by the dilated kernel: (R − 1)·dh + 1.
    public var kernelExtentHeight: Int { (kernelHeight - 1) * dilationHeight + 1 }
    /// Columns covered by the dilated kernel: (S − 1)·dw + 1.
    public var kernelExtentWidth: Int { (kernelWidth - 1) * dilationWidth + 1 }
    public var paddedHeight: Int { inputHeight + padding.top + padding.bottom }
    public var paddedWidth: Int { inputWidth + padding.left + padding.right }
    /// Ho = ⌊(H + pt + pb − extentH) / sh⌋ + 1.
    public var outputHeight: Int { (paddedHeight - kernelExtentHeight) / strideHeight + 1 }
    /// Wo = ⌊(W + pl + pr − extentW) / sw⌋ + 1.
    public var outputWidth: Int { (paddedWidth - kernelExtentWidth) / strideWidth + 1 }
    /// Padded input rows that `rows` consecutive output rows read: (rows − 1)·sh + extentH.
    public func inputRows(forOutputRows rows: Int) -> Int { (rows - 1) * strideHeight + kernelExtentHeight }
    /// The kernel rows r whose input row oy·sh − pt + r·dh lies inside the image for output row `oy`: the others read
    /// padding, so kernels that skip zero products sum only these.
    package func kernelRowsInside(outputRow oy: Int) -> Range<Int> {
        validOutputRange(outputSize: kernelHeight, stride: dilationHeight, offset: oy * strideHeight - padding.top,
                         inputSize: inputHeight)
    }

    public var inputShape: [Int] { [batch, inputChannels, inputHeight, inputWidth] }
    public var weightShape: [Int] { [outputChannels, channelsPerGroup, kernelHeight, kernelWidth] }
    public var outputShape: [Int] { [batch, outputChannels, outputHeight, outputWidth] }
    public var inputCount: Int { inputShape.reduce(1, *) }
    public var weightCount: Int { weightShape.reduce(1, *) }
    public var outputCount: Int { outputShape.reduce(1, *) }

    /// Terms in each output's dot product: (C/groups)·R·S. Error bounds of every method scale with it.
    public var reductionLength: Int { channelsPerGroup * kernelHeight * kernelWidth }

    // MARK: Cost accounting

    /// Direct-method FLOPs, 2·N·K·(C/groups)·R·S·Ho·Wo (one multiply and one add per weight use).
    /// Every backend's "effective GFLOP/s" divides this count by its time, so fast algorithms that do fewer
    /// multiplications show up as > 100% of the machine's peak rather than being penalised.
    public var directFLOPs: Int { 2 * outputCount * reductionLength }

    /// Trainable weights (no bias): K·(C/groups)·R·S.
    public var parameterCount: Int { weightCount }

    /// Bytes a naive implementation moves if each tensor crosses memory exactly once: (input + weights + output)·4.
    public var naiveBytesMoved: Int { (inputCount + weightCount + outputCount) * MemoryLayout<Float>.stride }

    // MARK: Predicates used by backends

    public var isStrideOne: Bool { strideHeight == 1 && strideWidth == 1 }
    public var isUndilated: Bool { dilationHeight == 1 && dilationWidth == 1 }
    public var isDepthwise: Bool { groups == inputChannels && groups > 1 }

    /// A compact, stable key (benchdnn-like), e.g. `n1c64h56w56k64r3s3sh1sw1p1,1,1,1dh1dw1g1`; used in CSV rows
    /// and wisdom files.
    public var key: String {
        "n\(batch)c\(inputChannels)h\(inputHeight)w\(inputWidth)k\(outputChannels)r\(kernelHeight)s\(kernelWidth)"
            + "sh\(strideHeight)sw\(strideWidth)p\(padding.top),\(padding.bottom),\(padding.left),\(padding.right)"
            + "dh\(dilationHeight)dw\(dilationWidth)g\(groups)"
    }

    public var description: String {
        var text = "N=\(batch) C=\(inputChannels) \(inputHeight)x\(inputWidth) -> K=\(outputChannels) "
            + "\(outputHeight)x\(outputWidth), kernel \(kernelHeight)x\(kernelWidth)"
        if !isStrideOne { text += ", stride \(strideHeight)x\(strideWidth)" }
        if !padding.isZero { text += ", pad \(padding)" }
        if !isUndilated { text += ", dilation \(dilationHeight)x\(dilationWidth)" }
        if groups > 1 { text += ", groups \(groups)" }
        return text
    }
}

extension ConvolutionDescriptor: Codable {
    enum CodingKeys: String, CodingKey {
        case batch, inputChannels, inputHeight, inputWidth, outputChannels, kernelHeight, kernelWidth
        case strideHeight, strideWidth, padding, dilationHeight, dilationWidth, groups
    }

    /// Decoding re-validates, so a hand-edited or corrupt file cannot produce an impossible descriptor.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try self.init(
            batch: try c.decode(Int.self, forKey: .batch),
            inputChannels: try c.decode(Int.self, forKey: .inputChannels),
            inputHeight: try c.decode(Int.self, forKey: .inputHeight),
            inputWidth: try c.decode(Int.self, forKey: .inputWidth),
            outputChannels: try c.decode(Int.self, forKey: .outputChannels),
            kernelHeight: try c.decode(Int.self, forKey: .kernelHeight),
            kernelWidth: try c.decode(Int.self, forKey: .kernelWidth),
            strideHeight: try c.decode(Int.self, forKey: .strideHeight),
            strideWidth: try c.decode(Int.self, forKey: .strideWidth),
            padding: .explicit(try c.decode(Padding.self, forKey: .padding)),
            dilationHeight: try c.decode(Int.self, forKey: .dilationHeight),
            dilationWidth: try c.decode(Int.self, forKey: .dilationWidth),
            groups: try c.decode(Int.self, forKey: .groups))
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(batch, forKey: .batch)
        try c.encode(inputChannels, forKey: .inputChannels)
        try c.encode(inputHeight, forKey: .inputHeight)
        try c.encode(inputWidth, forKey: .inputWidth)
        try c.encode(outputChannels, forKey: .outputChannels)
        try c.encode(kernelHeight, forKey: .kernelHeight)
        try c.encode(kernelWidth, forKey: .kernelWidth)
        try c.encode(strideHeight, forKey: .strideHeight)
        try c.encode(strideWidth, forKey: .strideWidth)
        try c.encode(padding, forKey: .padding)
        try c.encode(dilationHeight, forKey: .dilationHeight)
        try c.encode(dilationWidth, forKey: .dilationWidth)
        try c.encode(groups, forKey: .groups)
    }
}

import ConvLabCore

/// Writes a network down the way its paper draws it: convolutions and poolings applied to a running activation shape
/// (channels, height, width), with branches that start from a saved shape. Only convolutions become layers; pooling
/// and concatenation just change the shape the next convolution sees. Every descriptor is validated as it is made, so
/// a batch or input size too small for the network is a typed error naming the layer.
public struct ArchitectureBuilder {
    /// The activation shape a layer reads.
    public struct Shape: Hashable, Sendable {
        public var channels: Int
        public var height: Int
        public var width: Int
    }

    public let batch: Int
    public private(set) var shape: Shape
    public private(set) var layers: [NetworkLayer] = []
    let limits: ResourceLimits

    public init(batch: Int, channels: Int = 3, height: Int, width: Int, limits: ResourceLimits = .default) {
        self.batch = batch
        shape = Shape(channels: channels, height: height, width: width)
        self.limits = limits
    }

    /// A k×k convolution (kernelWidth for non-square kernels) with symmetric padding `pad` (default: (k−1)/2·dilation,
    /// i.e. "same" at stride 1), from the current shape or from `from`. Returns the output shape, which becomes the
    /// current shape.
    @discardableResult
    public mutating func conv(_ name: String, _ outputChannels: Int, kernel: Int, kernelWidth: Int? = nil,
                              stride: Int = 1, pad: Int? = nil, padWidth: Int? = nil, groups: Int = 1,
                              dilation: Int = 1, from: Shape? = nil) throws -> Shape {
        let input = from ?? shape
        let s = kernelWidth ?? kernel
        let padH = pad ?? (kernel - 1) / 2 * dilation
        let padW = padWidth ?? pad ?? (s - 1) / 2 * dilation
        let descriptor: ConvolutionDescriptor
        do {
            descriptor = try ConvolutionDescriptor(
                batch: batch, inputChannels: input.channels, inputHeight: input.height, inputWidth: input.width,
                outputChannels: outputChannels, kernelHeight: kernel, kernelWidth: s, strideHeight: stride,
                strideWidth: stride, padding: .explicit(Padding(top: padH, bottom: padH, left: padW, right: padW)),
                dilationHeight: dilation, dilationWidth: dilation, groups: groups, limits: limits)
        } catch let error as ConvLabError {
            throw ConvLabError.invalidArgument(name: name, reason: "\(error)")
        }
        layers.append(NetworkLayer(name: name, descriptor: descriptor))
        shape = Shape(channels: outputChannels, height: descriptor.outputHeight, width: descriptor.outputWidth)
        return shape
    }

    /// A depthwise k×k convolution (groups = channels = output channels).
    @discardableResult
    public mutating func depthwise(_ name: String, kernel: Int, stride: Int = 1, pad: Int? = nil,
                                   dilation: Int = 1, from: Shape? = nil) throws -> Shape {
        let channels = (from ?? shape).channels
        return try conv(name, channels, kernel: kernel, stride: stride, pad: pad, groups: channels,
                        dilation: dilation, from: from)
    }

    /// Max or average pooling: changes the spatial size only (floor mode, as PyTorch's default; `ceil` for the
    /// networks that use ceil mode).
    public mutating func pool(kernel: Int, stride: Int, pad: Int = 0, ceil: Bool = false, name: String = "pool")
        throws {
        func out(_ n: Int) -> Int {
            let span = n + 2 * pad - kernel
            return (ceil ? (span + stride - 1) / stride : span / stride) + 1
        }
        guard kernel >= 1, stride >= 1, shape.height + 2 * pad >= kernel, shape.width + 2 * pad >= kernel else {
            throw ConvLabError.invalidArgument(
                name: name, reason: "a \(kernel)x\(kernel) pooling does not fit a \(shape.height)x\(shape.width) map")
        }
        shape.height = out(shape.height)
        shape.width = out(shape.width)
    }

    /// Sets the channel count after a concatenation of branches (ShuffleNet, Inception).
    public mutating func concatenated(channels: Int, from other: Shape? = nil) {
        if let other { shape = other }
        shape.channels = channels
    }

    /// Makes `other` the current shape (the end of a branch).
    public mutating func resume(_ other: Shape) { shape = other }
}

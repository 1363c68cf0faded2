import ConvLabCore

/// One convolution of a network, in the order the network runs them, with the name its architecture gives it
/// (`layer3.2.conv2`, `features.4.conv.1`): the unit of every network table.
public struct NetworkLayer: Sendable, Hashable {
    public var name: String
    public var descriptor: ConvolutionDescriptor

    public init(name: String, descriptor: ConvolutionDescriptor) {
        self.name = name
        self.descriptor = descriptor
    }

    /// Multiply-adds, N·K·(C/G)·R·S·Ho·Wo: half the direct FLOPs, the count papers publish ("4.1 G for ResNet-50").
    public var multiplyAdds: Int { descriptor.directFLOPs / 2 }
}

extension NetworkLayer {
    /// The class of layer the performance literature groups by: `stem` (≤ 4 input channels), `depthwise k×k`,
    /// `grouped k×k`, `pointwise` (1×1), `dense k×k`; ` /s` marks a strided one. Network totals are broken down by
    /// it, so "depthwise is 3% of the FLOPs and 30% of the time" is one line.
    public var layerClass: String {
        let d = descriptor
        let kernel = "\(d.kernelHeight)x\(d.kernelWidth)"
        let base: String
        if d.inputChannels <= 4 {
            base = "stem \(kernel)"
        } else if d.isDepthwise {
            base = "depthwise \(kernel)"
        } else if d.groups > 1 {
            base = "grouped \(kernel)"
        } else if d.kernelHeight == 1 && d.kernelWidth == 1 {
            base = "pointwise"
        } else {
            base = "dense \(kernel)"
        }
        return d.isStrideOne ? base : base + " /\(max(d.strideHeight, d.strideWidth))"
    }
}

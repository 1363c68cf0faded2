import ConvLabCore
import ConvLabSelection

/// The layer designs convlab compares for one C→K, k×k layer on N×C×H×W inputs (stride 1).
public struct LayerSpec: Sendable, Hashable {
    public var batch: Int
    public var inputChannels: Int
    public var outputChannels: Int
    public var kernel: Int
    public var height: Int
    public var width: Int
    /// Symmetric padding of the k×k layer; nil: "same" ((k − 1)/2).
    public var padding: Int?
    /// Channel multiplier of the depthwise-separable design.
    public var depthwiseMultiplier: Int
    /// Groups of the grouped + shuffle design.
    public var groups: Int
    /// Channel reduction of the bottleneck: C/reduction channels inside.
    public var bottleneckReduction: Int

    public init(batch: Int = 1, inputChannels: Int, outputChannels: Int, kernel: Int, height: Int, width: Int,
                padding: Int? = nil, depthwiseMultiplier: Int = 1, groups: Int = 4, bottleneckReduction: Int = 4) {
        self.batch = batch
        self.inputChannels = inputChannels
        self.outputChannels = outputChannels
        self.kernel = kernel
        self.height = height
        self.width = width
        self.padding = padding
        self.depthwiseMultiplier = depthwiseMultiplier
        self.groups = groups
        self.bottleneckReduction = bottleneckReduction
    }

    var pad: Int { padding ?? (kernel - 1) / 2 }
}

public enum LayerDesigns {
    /// Every design that applies to `spec` (in a fixed order), with seeded N(0, 1/fan-in) weights; designs that do not
    /// apply (e.g. ShuffleNet V2 needs C = K) are left out.
    public static func all(for spec: LayerSpec, seed: UInt64 = 1) throws -> [LayerDesign] {
        let builders: [(LayerSpec, UInt64) throws -> LayerDesign?] = [
            standard, fullyConnected, spatiallySeparable, factorized, stacked3x3, bottleneck, depthwiseSeparable,
            groupedShuffle, shuffleNetV2, twoThin, wider,
        ]
        return try builders.enumerated().compactMap { index, build in try build(spec, seed &+ UInt64(index) * 1000) }
    }

    /// A convolution stage on `input` (N×C×H×W) with the given geometry and random weights.
    static func conv(_ label: String, input: [Int], output k: Int, kernelHeight r: Int, kernelWidth s: Int,
                     padding: Padding, groups: Int = 1, seed: UInt64) throws -> ConvolutionStage {
        let d = try ConvolutionDescriptor(batch: input[0], inputChannels: input[1], inputHeight: input[2],
                                          inputWidth: input[3], outputChannels: k, kernelHeight: r, kernelWidth: s,
                                          padding: .explicit(padding), groups: groups)
        let fanIn = Double(d.reductionLength)
        return ConvolutionStage(label: label, descriptor: d,
                                weights: try Tensor.random(shape: d.weightShape,
                                                           distribution: .normal(mean: 0, standardDeviation: 1 / fanIn.squareRoot()),
                                                           seed: seed))
    }

    static func design(_ name: String, _ spec: LayerSpec, _ stages: [LayerDesign.Step]) -> LayerDesign {
        var shape = [spec.batch, spec.inputChannels, spec.height, spec.width]
        var stash: [Int]?
        for step in stages {
            switch step {
            case .convolution(let stage, _): shape = stage.descriptor.outputShape
            case .splitHalves:
                stash = [shape[0], shape[1] - shape[1] / 2, shape[2], shape[3]]
                shape[1] /= 2
            case .concatStash: shape[1] += stash?[1] ?? 0
            default: break
            }
        }
        return LayerDesign(name: name, steps: stages, inputShape: [spec.batch, spec.inputChannels, spec.height, spec.width],
                           outputShape: shape)
    }


    /// One k×k convolution C→K.
    public static func standard(_ spec: LayerSpec, _ seed: UInt64) throws -> LayerDesign? {
        let input = [spec.batch, spec.inputChannels, spec.height, spec.width]
        let k = spec.kernel
        return design("standard \(k)x\(k)", spec, [
            .convolution(try conv("\(k)x\(k) \(spec.inputChannels)→\(spec.outputChannels)", input: input,
                                  output: spec.outputChannels, kernelHeight: k, kernelWidth: k,
                                  padding: Padding(spec.pad), seed: seed), uniqueWeights: nil),
        ])
    }

    /// A fully connected layer on the whole H×W×C input (a convolution whose kernel is the image): H·W·C·K weights.
    public static func fullyConnected(_ spec: LayerSpec, _ seed: UInt64) throws -> LayerDesign? {
        let input = [spec.batch, spec.inputChannels, spec.height, spec.width]
        return design("fully connected", spec, [
            .convolution(try conv("dense \(spec.height)x\(spec.width)x\(spec.inputChannels)→\(spec.outputChannels)",
                                  input: input, output: spec.outputChannels, kernelHeight: spec.height,
                                  kernelWidth: spec.width, padding: .zero, seed: seed), uniqueWeights: nil),
        ])
    }

    /// Spatially separable, rank 1 in space: w[k,c,r,s] = u[c,r]·v[k,s]. A per-channel k×1 filter (C·k weights) then
    /// one 1×k filter per output channel applied to every channel and summed (K·k weights): for 5×5×3→1 on 12×12,
    /// 15 + 5 = 20 weights and 1,440 + 960 = 2,400 multiplications instead of 75 and 4,800.
    public static func spatiallySeparable(_ spec: LayerSpec, _ seed: UInt64) throws -> LayerDesign? {
        let (c, k, kk) = (spec.inputChannels, spec.outputChannels, spec.kernel)
        guard kk > 1 else { return nil }
        let input = [spec.batch, c, spec.height, spec.width]
        let vertical = try conv("depthwise \(kk)x1 (\(c))", input: input, output: c, kernelHeight: kk, kernelWidth: 1,
                                padding: Padding(top: spec.pad, bottom: spec.pad, left: 0, right: 0), groups: c,
                                seed: seed)
        var horizontal = try conv("1x\(kk) \(c)→\(k), tied over channels", input: vertical.descriptor.outputShape,
                                  output: k, kernelHeight: 1, kernelWidth: kk,
                                  padding: Padding(top: 0, bottom: 0, left: spec.pad, right: spec.pad), seed: seed + 1)
        // Tie the 1×k filter across input channels: weight[k][c][0][s] = v[k][s].
        let v = try Tensor<Float>.random(shape: [k, kk], distribution: .normal(mean: 0, standardDeviation: 1 / Double(c * kk).squareRoot()),
                                         seed: seed + 2).scalars
        horizontal.weights = try Tensor(shape: [k, c, 1, kk],
                                        scalars: (0..<(k * c * kk)).map { v[($0 / (c * kk)) * kk + $0 % kk] })
        return design("spatially separable (rank-1)", spec, [
            .convolution(vertical, uniqueWeights: nil),
            .convolution(horizontal, uniqueWeights: k * kk),
        ])
    }

    /// Inception-style factorisation: k×1 conv C→C then 1×k conv C→K (full channel mixing in both).
    public static func factorized(_ spec: LayerSpec, _ seed: UInt64) throws -> LayerDesign? {
        let (c, k, kk) = (spec.inputChannels, spec.outputChannels, spec.kernel)
        guard kk > 1 else { return nil }
        let first = try conv("\(kk)x1 \(c)→\(c)", input: [spec.batch, c, spec.height, spec.width], output: c,
                             kernelHeight: kk, kernelWidth: 1,
                             padding: Padding(top: spec.pad, bottom: spec.pad, left: 0, right: 0), seed: seed)
        let second = try conv("1x\(kk) \(c)→\(k)", input: first.descriptor.outputShape, output: k, kernelHeight: 1,
                              kernelWidth: kk, padding: Padding(top: 0, bottom: 0, left: spec.pad, right: spec.pad),
                              seed: seed + 1)
        return design("factorized \(kk)x1 + 1x\(kk)", spec, [.convolution(first, uniqueWeights: nil),
                                                              .convolution(second, uniqueWeights: nil)])
    }

    /// (k − 1)/2 stacked 3×3 convolutions with the receptive field of one k×k (odd k ≥ 5): 9·n·C² versus k²·C².
    public static func stacked3x3(_ spec: LayerSpec, _ seed: UInt64) throws -> LayerDesign? {
        let k = spec.kernel
        guard k >= 5 && k % 2 == 1 else { return nil }
        let layers = (k - 1) / 2
        // Spread the k×k padding over the layers so the output size matches the k×k layer.
        var pads = [Int](repeating: 0, count: layers)
        for i in 0..<min(spec.pad, layers) { pads[i] = 1 }
        if spec.pad > layers { pads[0] += spec.pad - layers }
        var shape = [spec.batch, spec.inputChannels, spec.height, spec.width]
        var steps: [LayerDesign.Step] = []
        for i in 0..<layers {
            let out = i == layers - 1 ? spec.outputChannels : spec.inputChannels
            let stage = try conv("3x3 \(shape[1])→\(out)", input: shape, output: out, kernelHeight: 3, kernelWidth: 3,
                                 padding: Padding(pads[i]), seed: seed + UInt64(i))
            steps.append(.convolution(stage, uniqueWeights: nil))
            shape = stage.descriptor.outputShape
        }
        return design("stacked \(layers)x 3x3", spec, steps)
    }

    /// Two thin k×k layers in series, C→C→K: the depth that `wider` trades for width.
    public static func twoThin(_ spec: LayerSpec, _ seed: UInt64) throws -> LayerDesign? {
        let (c, k, kk) = (spec.inputChannels, spec.outputChannels, spec.kernel)
        let first = try conv("\(kk)x\(kk) \(c)→\(c)", input: [spec.batch, c, spec.height, spec.width], output: c,
                             kernelHeight: kk, kernelWidth: kk, padding: Padding(spec.pad), seed: seed)
        let second = try conv("\(kk)x\(kk) \(c)→\(k)", input: first.descriptor.outputShape, output: k,
                              kernelHeight: kk, kernelWidth: kk, padding: Padding(spec.pad), seed: seed + 1)
        return design("2 thin \(kk)x\(kk) in series", spec, [.convolution(first, uniqueWeights: nil),
                                                           .convolution(second, uniqueWeights: nil)])
    }

    /// Wider convolutions: two thin layers merged into one k×k layer √2 times wider (width × √(layers merged): two
    /// 96-channel 3×3 layers become one of 136). Inside a trunk, where input and output widen alike, that keeps the
    /// multiplications (2·w² = (√2·w)²; `ShuffleNetGuidelines` runs that trade); from this layer's fixed C inputs it
    /// is C→⌈√2·K⌉, 1/√2 of the two thin layers' work at C = K. Fewer, fatter layers: one pass over memory instead of
    /// two, longer dot products.
    public static func wider(_ spec: LayerSpec, _ seed: UInt64) throws -> LayerDesign? {
        let (c, kk) = (spec.inputChannels, spec.kernel)
        let wide = Int((Double(spec.outputChannels) * 2.0.squareRoot()).rounded(.up))
        let stage = try conv("\(kk)x\(kk) \(c)→\(wide)", input: [spec.batch, c, spec.height, spec.width], output: wide,
                             kernelHeight: kk, kernelWidth: kk, padding: Padding(spec.pad), seed: seed)
        return design("wider: 1 \(kk)x\(kk) x√2 (vs 2 thin)", spec, [.convolution(stage, uniqueWeights: nil)])
    }

    /// Bottleneck: 1×1 C→C/r, k×k C/r→C/r, 1×1 C/r→K (ResNet's bottleneck block without the residual).
    public static func bottleneck(_ spec: LayerSpec, _ seed: UInt64) throws -> LayerDesign? {
        let inner = max(spec.inputChannels / spec.bottleneckReduction, 1)
        let input = [spec.batch, spec.inputChannels, spec.height, spec.width]
        let reduce = try conv("1x1 \(spec.inputChannels)→\(inner)", input: input, output: inner, kernelHeight: 1,
                              kernelWidth: 1, padding: .zero, seed: seed)
        let middle = try conv("\(spec.kernel)x\(spec.kernel) \(inner)→\(inner)", input: reduce.descriptor.outputShape,
                              output: inner, kernelHeight: spec.kernel, kernelWidth: spec.kernel,
                              padding: Padding(spec.pad), seed: seed + 1)
        let expand = try conv("1x1 \(inner)→\(spec.outputChannels)", input: middle.descriptor.outputShape,
                              output: spec.outputChannels, kernelHeight: 1, kernelWidth: 1, padding: .zero, seed: seed + 2)
        return design("bottleneck 1x1-\(spec.kernel)x\(spec.kernel)-1x1 (C/\(spec.bottleneckReduction))", spec, [
            .convolution(reduce, uniqueWeights: nil), .convolution(middle, uniqueWeights: nil),
            .convolution(expand, uniqueWeights: nil),
        ])
    }

    /// Depthwise separable (MobileNet): depthwise k×k with channel multiplier m (C·m·k² weights), then pointwise
    /// 1×1 C·m→K; cost ratio to standard ≈ 1/K + 1/k².
    public static func depthwiseSeparable(_ spec: LayerSpec, _ seed: UInt64) throws -> LayerDesign? {
        let (c, m, k) = (spec.inputChannels, spec.depthwiseMultiplier, spec.kernel)
        let depthwise = try conv("depthwise \(k)x\(k) \(c)→\(c * m)", input: [spec.batch, c, spec.height, spec.width],
                                 output: c * m, kernelHeight: k, kernelWidth: k, padding: Padding(spec.pad), groups: c,
                                 seed: seed)
        let pointwise = try conv("1x1 \(c * m)→\(spec.outputChannels)", input: depthwise.descriptor.outputShape,
                                 output: spec.outputChannels, kernelHeight: 1, kernelWidth: 1, padding: .zero,
                                 seed: seed + 1)
        return design("depthwise separable (x\(m))", spec, [.convolution(depthwise, uniqueWeights: nil),
                                                            .convolution(pointwise, uniqueWeights: nil)])
    }

    /// Grouped k×k convolution (G groups, C·K·k²/G weights) followed by a channel shuffle (ShuffleNet).
    public static func groupedShuffle(_ spec: LayerSpec, _ seed: UInt64) throws -> LayerDesign? {
        let g = spec.groups
        guard g > 1, spec.inputChannels % g == 0, spec.outputChannels % g == 0 else { return nil }
        let grouped = try conv("\(spec.kernel)x\(spec.kernel) \(spec.inputChannels)→\(spec.outputChannels), \(g) groups",
                               input: [spec.batch, spec.inputChannels, spec.height, spec.width],
                               output: spec.outputChannels, kernelHeight: spec.kernel, kernelWidth: spec.kernel,
                               padding: Padding(spec.pad), groups: g, seed: seed)
        return design("grouped (\(g)) + shuffle", spec, [.convolution(grouped, uniqueWeights: nil),
                                                          .channelShuffle(groups: g)])
    }

    /// ShuffleNet V2 unit (stride 1): channel split; one half through 1×1 → ReLU → depthwise k×k → 1×1 → ReLU;
    /// concat with the other half; channel shuffle. Needs C = K, even.
    public static func shuffleNetV2(_ spec: LayerSpec, _ seed: UInt64) throws -> LayerDesign? {
        let c = spec.inputChannels
        guard c == spec.outputChannels, c % 2 == 0, c >= 2 else { return nil }
        let half = [spec.batch, c / 2, spec.height, spec.width]
        let first = try conv("1x1 \(c / 2)→\(c / 2)", input: half, output: c / 2, kernelHeight: 1, kernelWidth: 1,
                             padding: .zero, seed: seed)
        let depthwise = try conv("depthwise \(spec.kernel)x\(spec.kernel) (\(c / 2))", input: half, output: c / 2,
                                 kernelHeight: spec.kernel, kernelWidth: spec.kernel, padding: Padding(spec.pad),
                                 groups: c / 2, seed: seed + 1)
        let last = try conv("1x1 \(c / 2)→\(c / 2)", input: depthwise.descriptor.outputShape, output: c / 2,
                            kernelHeight: 1, kernelWidth: 1, padding: .zero, seed: seed + 2)
        guard depthwise.descriptor.outputHeight == spec.height, depthwise.descriptor.outputWidth == spec.width else {
            return nil  // the concat needs both halves the same size ("same" padding)
        }
        return design("ShuffleNet V2 unit", spec, [
            .splitHalves, .convolution(first, uniqueWeights: nil), .relu, .convolution(depthwise, uniqueWeights: nil),
            .convolution(last, uniqueWeights: nil), .relu, .concatStash, .channelShuffle(groups: 2),
        ])
    }
}

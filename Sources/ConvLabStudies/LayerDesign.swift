import ConvLabSelection

/// A layer design of the CNN-efficiency literature as a short program over the current tensor: convolutions and the
/// element-wise steps that ShuffleNet V2 shows are not free (channel shuffle, ReLU, residual add, channel split and
/// concat with one stashed tensor).
public struct LayerDesign: Sendable {
    public enum Step: Sendable {
        /// A convolution of the current tensor. `uniqueWeights` overrides the parameter count for tied weights.
        case convolution(ConvolutionStage, uniqueWeights: Int?)
        /// Channel shuffle with `groups` groups (reshape G×(C/G) → transpose → flatten).
        case channelShuffle(groups: Int)
        case relu
        /// Add the design's input (a residual connection).
        case residualAdd
        /// Keep the first half of the channels as current, stash the second half (ShuffleNet V2's channel split).
        case splitHalves
        /// Concatenate the current tensor with the stash along channels.
        case concatStash
    }

    public var name: String
    public var steps: [Step]
    /// Shape of the design's input and output, N×C×H×W.
    public var inputShape: [Int]
    public var outputShape: [Int]

    public init(name: String, steps: [Step], inputShape: [Int], outputShape: [Int]) {
        self.name = name
        self.steps = steps
        self.inputShape = inputShape
        self.outputShape = outputShape
    }

    public var convolutions: [ConvolutionStage] {
        steps.compactMap { if case .convolution(let stage, _) = $0 { return stage } else { return nil } }
    }

    /// Cost per the formulas in `LayerCost`.
    public var cost: LayerCost {
        var cost = LayerCost()
        var shape = inputShape
        var stash: [Int]?
        func elements(_ s: [Int]) -> Int { s.reduce(1, *) }
        for step in steps {
            switch step {
            case let .convolution(stage, unique):
                let d = stage.descriptor
                let terms = d.reductionLength
                cost.parameters += unique ?? d.weightCount
                cost.multiplications += d.outputCount * terms
                cost.additions += d.outputCount * (terms - 1)
                cost.memoryAccessBytes += (d.inputCount + (unique ?? d.weightCount) + d.outputCount) * 4
                shape = d.outputShape
            case .channelShuffle:
                cost.memoryAccessBytes += 2 * elements(shape) * 4
            case .relu:
                cost.elementwiseOperations += elements(shape)
                cost.memoryAccessBytes += 2 * elements(shape) * 4
            case .residualAdd:
                cost.additions += elements(shape)
                cost.elementwiseOperations += elements(shape)
                cost.memoryAccessBytes += 3 * elements(shape) * 4
            case .splitHalves:
                let half = [shape[0], shape[1] / 2, shape[2], shape[3]]
                stash = [shape[0], shape[1] - half[1], shape[2], shape[3]]
                cost.memoryAccessBytes += 2 * elements(shape) * 4
                shape = half
            case .concatStash:
                if let s = stash { shape = [shape[0], shape[1] + s[1], shape[2], shape[3]] }
                cost.memoryAccessBytes += 2 * elements(shape) * 4
                stash = nil
            }
        }
        return cost
    }
}

/// What a design costs, counted the way the efficiency literature counts:
/// - parameters: trainable weights (no biases), tied weights counted once;
/// - multiplications: Σ over convolutions of outputs × (C/G)·R·S; additions: outputs × ((C/G)·R·S − 1) plus
///   residual adds (FLOPs = multiplications + additions);
/// - memory access cost (MAC, ShuffleNet V2): bytes read and written assuming every tensor crosses memory once per
///   step — a convolution reads its input and weights and writes its output (for a 1×1 conv on h×w×c₁ → c₂ that is
///   hw(c₁ + c₂) + c₁c₂ elements, minimal at c₁ = c₂ for fixed FLOPs); shuffle, split and concat read and write
///   their tensor, ReLU reads and writes, an add reads two and writes one.
public struct LayerCost: Sendable, Hashable {
    public var parameters = 0
    public var multiplications = 0
    public var additions = 0
    public var elementwiseOperations = 0
    public var memoryAccessBytes = 0

    public var flops: Int { multiplications + additions }
}

import Foundation

/// Which of a layer's three computations a plan performs — oneDNN's `prop_kind`. With y = conv(x, w) for one
/// `ConvolutionDescriptor` (stride s, padding p, dilation d, groups):
///
///     forward:           y[n,k,oh,ow]  = Σ_{c,r,s} w[k,c,r,s] · x[n,c, oh·s − p + r·d, ow·s − p + s·d]
///     backward-data:     dx[n,c,ih,iw] = Σ_{k,r,s} dy[n,k,oh,ow] · w[k,c,r,s]   over oh·s − p + r·d = ih (and for w)
///     backward-weights:  dw[k,c,r,s]   = Σ_{n,oh,ow} dy[n,k,oh,ow] · x[n,c, oh·s − p + r·d, ow·s − p + s·d]
///
/// (c within k's group). backward-data is the transposed convolution and backward-weights a correlation of x with
/// dy as the "filter"; both are what `torch.nn.grad.conv2d_input` / `conv2d_weight` compute. Every pass does the same
/// direct-method FLOPs, 2·N·K·(C/G)·R·S·Ho·Wo, which is what GFLOP/s are counted in for all three.
public enum ConvolutionPass: String, CaseIterable, Sendable, Codable, Hashable, CustomStringConvertible {
    case forward
    case backwardData = "backward-data"
    case backwardWeights = "backward-weights"

    public var description: String { rawValue }

    /// Parses `forward`, `backward-data` / `dgrad`, `backward-weights` / `wgrad` (and oneDNN's underscore spellings).
    public init(parsing text: String) throws {
        switch text.lowercased().replacingOccurrences(of: "_", with: "-") {
        case "forward", "fwd": self = .forward
        case "backward-data", "dgrad", "bwd-data": self = .backwardData
        case "backward-weights", "wgrad", "bwd-weights": self = .backwardWeights
        default:
            throw ConvLabError.unknownName(kind: "pass", name: text, known: Self.allCases.map(\.rawValue))
        }
    }
}

extension ConvolutionDescriptor {
    /// The tensors of one execution of `pass`: the data it reads (`input`, and for backward-weights also
    /// `gradOutput`) and what it writes. Weights of forward and backward-data are fixed at plan time.
    public func shapes(for pass: ConvolutionPass) -> (input: [Int], gradOutput: [Int]?, output: [Int]) {
        switch pass {
        case .forward: return (inputShape, nil, outputShape)
        case .backwardData: return (outputShape, nil, inputShape)
        case .backwardWeights: return (inputShape, outputShape, weightShape)
        }
    }

    /// Terms in the dot product behind each result of `pass` (its worst case over positions): (C/G)·R·S forward,
    /// (K/G)·R·S for backward-data (fewer where stride skips taps), N·Ho·Wo for backward-weights — which grows with
    /// batch and image, and with it the pass's rounding error.
    public func reductionLength(for pass: ConvolutionPass) -> Int {
        switch pass {
        case .forward: return reductionLength
        case .backwardData: return outputChannelsPerGroup * kernelHeight * kernelWidth
        case .backwardWeights: return batch * outputHeight * outputWidth
        }
    }
}

import ConvLabCore

/// One layer's share of a training step: its forward, backward-data and backward-weights passes, each by the
/// fastest backend that passed its accuracy check, and their sum — beside the step time of every backend that ran
/// all three passes on its own, so "the best algorithm per pass" can be compared with "one algorithm for the step".
public struct TrainingStep: Codable, Sendable {
    public struct PassBest: Codable, Sendable {
        public var pass: String
        public var backend: String
        public var variant: String?
        public var msMedian: Double
    }

    public var name: String?
    /// The shape, as `ConvolutionDescriptor.description` prints it.
    public var layer: String
    /// In pass order (forward, backward-data, backward-weights); a pass without a passing backend is missing.
    public var passes: [PassBest]
    /// Sum of `passes`; nil unless all three passes have a backend.
    public var totalMs: Double?
    /// Per backend that measured and passed every pass: the sum of its three medians.
    public var singleBackendMs: [String: Double]

    /// The best single backend for the whole step, and how much the per-pass mix saves over it (≥ 1).
    public var bestSingleBackend: (name: String, ms: Double)? {
        singleBackendMs.min { $0.value < $1.value }.map { ($0.key, $0.value) }
    }

    /// Groups `records` by layer (name and shape) and summarises each layer that has at least one pass measured.
    /// A record counts if it measured (`status == "ok"`) and did not fail its accuracy check.
    public static func summarise(_ records: [MeasurementRecord]) -> [TrainingStep] {
        var order: [String] = []
        var groups: [String: [MeasurementRecord]] = [:]
        for record in records {
            let key = "\(record.name ?? "")|\(record.layerKey)"
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append(record)
        }
        return order.compactMap { key in
            let group = groups[key]!
            let usable = group.filter { $0.status == "ok" && $0.passed != false && $0.msMedian != nil }
            var passes: [PassBest] = []
            for pass in ConvolutionPass.allCases {
                guard let best = usable.filter({ $0.pass == pass.rawValue }).min(by: { $0.msMedian! < $1.msMedian! })
                else { continue }
                passes.append(PassBest(pass: pass.rawValue, backend: best.backend, variant: best.variant,
                                       msMedian: best.msMedian!))
            }
            guard !passes.isEmpty else { return nil }
            var single: [String: Double] = [:]
            for backend in Set(usable.map(\.backend)) {
                let times = ConvolutionPass.allCases.compactMap { pass in
                    usable.first { $0.backend == backend && $0.pass == pass.rawValue }?.msMedian
                }
                if times.count == ConvolutionPass.allCases.count { single[backend] = times.reduce(0, +) }
            }
            let total = passes.count == ConvolutionPass.allCases.count ? passes.map(\.msMedian).reduce(0, +) : nil
            return TrainingStep(name: group[0].name, layer: group[0].layerDescription, passes: passes,
                                totalMs: total, singleBackendMs: single)
        }
    }
}

extension MeasurementRecord {
    /// The shape columns, joined: records of one layer share it whatever their pass or backend.
    var layerKey: String {
        [N, C, H, W, K, R, S, strideH, strideW, padTop, padBottom, padLeft, padRight, dilationH, dilationW, groups,
         threads].map(String.init).joined(separator: ",")
    }

    /// A short human form of the shape: N×C×H×W → K×R×S, with stride, padding, dilation and groups when not trivial.
    var layerDescription: String {
        var text = "\(N)x\(C)x\(H)x\(W) -> \(K) \(R)x\(S)"
        if strideH != 1 || strideW != 1 { text += " stride \(strideH)x\(strideW)" }
        if padTop != 0 || padBottom != 0 || padLeft != 0 || padRight != 0 {
            text += " pad \(padTop),\(padBottom),\(padLeft),\(padRight)"
        }
        if dilationH != 1 || dilationW != 1 { text += " dilation \(dilationH)x\(dilationW)" }
        if groups != 1 { text += " groups \(groups)" }
        return text
    }
}

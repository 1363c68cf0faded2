import ConvLabCore
import Foundation

/// What `convlab infer` reports: the float32 network's top classes beside the float64 network's, how far its logits
/// are from float64, and where its time goes, node by node (medians over the runs).
public struct InferenceReport: Sendable, Codable {
    public var model: String
    public var policy: String
    public var inputShape: [Int]
    /// Top classes per image; empty for a model whose output is not N × classes (a feature extractor such as the
    /// HED VGG-16 trunk, judged by its output error alone).
    public var top: [TopClasses.Entry]
    /// The float64 run's top classes (empty when it was skipped).
    public var referenceTop: [TopClasses.Entry]
    /// The output's shape (N × classes for a classifier).
    public var outputShape: [Int]
    /// max |logit₃₂ − logit₆₄|, and that over max |logit₆₄| (the model's output, whatever it is).
    public var maxLogitError: Double?
    public var relativeLogitError: Double?
    /// Images whose top-1 class, and whose ordered top-k list, equal the float64 run's.
    public var top1Agreement: Int?
    public var topKAgreement: Int?
    public var nodes: [Node]
    public var totalSeconds: Double

    public struct Node: Sendable, Codable {
        public var name: String
        public var operation: String
        public var backend: String?
        public var flops: Int?
        public var seconds: Double
    }

    /// Runs `inference` `repeats` times after warming up (at least 3 runs and 50 ms: the worker threads start, pages
    /// are touched; measured, the first 5 runs of a small network took 2 ms per layer that later took 5 µs) and,
    /// unless `checkFloat64` is false, once in float64. Returns the report and the last run's output (logits or
    /// features), so a caller that keeps the output need not run the network again.
    public static func measure(_ inference: ModelInference, input: Tensor<Float>, top: Int, repeats: Int,
                               checkFloat64: Bool = true) throws -> (report: InferenceReport, output: Tensor<Float>) {
        guard (1...10_000).contains(repeats) else {
            throw ConvLabError.invalidArgument(name: "repeat", reason: "must be 1...10000 (got \(repeats))")
        }
        guard top >= 1 else { throw ConvLabError.invalidArgument(name: "top", reason: "must be at least 1 (got \(top))") }
        var (output, _) = try inference.run(input)
        let warmupStart = MonotonicClock.now()
        for _ in 0..<2 { (output, _) = try inference.run(input) }
        while MonotonicClock.now() - warmupStart < 0.05 { (output, _) = try inference.run(input) }
        var perStep = Array(repeating: [Double](), count: inference.graph.steps.count)
        for _ in 0..<repeats {
            let (y, seconds) = try inference.run(input)
            output = y
            for (i, s) in seconds.enumerated() { perStep[i].append(s) }
        }
        let medians = perStep.map { times in times.sorted()[times.count / 2] }
        let labels = inference.graph.labels
        let classifies = output.shape.count == 2
        var report = InferenceReport(
            model: inference.graph.name, policy: inference.policy.description, inputShape: input.shape,
            top: classifies ? TopClasses.of(output, top: top, labels: labels) : [], referenceTop: [],
            outputShape: output.shape, nodes: [], totalSeconds: medians.reduce(0, +))
        let backends = inference.backends, descriptors = inference.descriptors
        for (i, step) in inference.graph.steps.enumerated() {
            report.nodes.append(Node(name: step.name, operation: step.operation.rawValue, backend: backends[i],
                                     flops: descriptors[i]?.directFLOPs, seconds: medians[i]))
        }
        if checkFloat64 {
            let reference = try inference.float64(input)
            report.referenceTop = classifies ? TopClasses.of(reference, top: top, labels: labels) : []
            var maxError = 0.0, scale = 0.0
            let ours = output.scalars, theirs = reference.scalars
            for (a, b) in zip(ours, theirs) {
                maxError = max(maxError, abs(Double(a) - b))
                scale = max(scale, abs(b))
            }
            report.maxLogitError = maxError
            report.relativeLogitError = scale > 0 ? maxError / scale : maxError
            let images = input.shape[0]
            func list(_ entries: [TopClasses.Entry], _ image: Int) -> [Int] {
                entries.filter { $0.image == image }.map(\.classIndex)
            }
            guard classifies else { return (report, output) }
            report.top1Agreement = (0..<images).filter { list(report.top, $0).first == list(report.referenceTop, $0).first }
                .count
            report.topKAgreement = (0..<images).filter { list(report.top, $0) == list(report.referenceTop, $0) }.count
        }
        return (report, output)
    }
}

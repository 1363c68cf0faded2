import ConvLabBackends
import ConvLabCore
import ConvLabSelection
import Foundation

/// A trained model ready to run on a batch: every convolution planned once under a policy (the selector's choice,
/// one backend everywhere, or one backend wherever it applies), workspaces allocated once. `run` is the float32
/// network with per-node times; `float64` is the same network evaluated in float64 from the definition, the
/// reference its logits are judged against.
public struct ModelInference {
    public let graph: ModelGraph
    public let batch: Int
    public let policy: NetworkPolicy
    public let shapes: [[Int]]
    /// Per step: its convolution's plan (nil for other operations).
    let plans: [(any ConvolutionPlan)?]
    let workspaces: [Workspace?]
    /// Per step with a plan: its output tensor, allocated once and reused by every run, as a framework's memory
    /// planner would; a fresh 14 MB tensor per layer and run made page faults a quarter of a layer's time.
    let outputs: OutputBuffers

    final class OutputBuffers {
        var tensors: [Tensor<Float>?]
        init(_ tensors: [Tensor<Float>?]) { self.tensors = tensors }
    }
    let threads: Int

    public init(graph: ModelGraph, batch: Int, policy: NetworkPolicy = .selector, selector: Selector = Selector(),
                options: PlanOptions = PlanOptions()) throws {
        try options.validate()
        self.graph = graph
        self.batch = batch
        self.policy = policy
        threads = options.threads
        shapes = try graph.shapes(batch: batch, limits: options.limits)
        var plans: [(any ConvolutionPlan)?] = []
        for (index, step) in graph.steps.enumerated() {
            guard step.operation == .conv || step.operation == .linear, let weights = step.weight else {
                plans.append(nil)
                continue
            }
            let d = try graph.descriptor(of: step, input: shapes[step.inputs[0]], limits: options.limits)
            let kernelWeights = try weights.reshaped(d.weightShape)
            plans.append(try Self.plan(d, weights: kernelWeights, policy: policy, selector: selector, options: options,
                                       node: graph.steps[index].name))
        }
        self.plans = plans
        outputs = OutputBuffers(try plans.map { plan in try plan.map { try Tensor<Float>(shape: $0.descriptor.outputShape) } })
        workspaces = try plans.map { plan in try plan.flatMap { $0.workspaceBytes > 0 ? try $0.makeWorkspace() : nil } }
    }

    static func plan(_ d: ConvolutionDescriptor, weights: Tensor<Float>, policy: NetworkPolicy, selector: Selector,
                     options: PlanOptions, node: String) throws -> any ConvolutionPlan {
        let choice = try policy.resolve(.forward, of: d, selector: selector, options: options)
        guard let backend = choice.backend else {
            throw ConvLabError.unsupported(backend: policy.description, reason: "node '\(node)': \(choice.note ?? "")")
        }
        return try backend.makePlan(descriptor: d, weights: weights, options: options)
    }

    /// Per convolution step: the backend (and variant) that runs it.
    public var backends: [String?] {
        plans.map { plan in plan.map { $0.backendName + ($0.summary.variant.isEmpty ? "" : " \($0.summary.variant)") } }
    }

    /// Per convolution step: its descriptor.
    public var descriptors: [ConvolutionDescriptor?] { plans.map { $0?.descriptor } }

    func checkInput<S>(_ x: Tensor<S>) throws {
        guard x.shape == shapes[0] else {
            throw ConvLabError.shapeMismatch(what: "model input '\(graph.manifest.input.name)'",
                                             expected: "\(shapes[0])", actual: "\(x.shape)")
        }
    }

    /// The float32 network: the output (logits) and each step's wall time in seconds.
    public func run(_ x: Tensor<Float>) throws -> (output: Tensor<Float>, seconds: [Double]) {
        try checkInput(x)
        var seconds = Array(repeating: 0.0, count: graph.steps.count)
        let output = try GraphEvaluator<Float>(graph: graph, shapes: shapes, threads: threads).run(x, convolve: { index, input in
            let plan = plans[index]!
            let input4 = input.shape.count == 4 ? input : try input.reshaped(plan.descriptor.inputShape)
            try plan.execute(input4, into: &outputs.tensors[index]!, workspace: workspaces[index])
            let y = outputs.tensors[index]!
            return graph.steps[index].operation == .linear ? try y.reshaped(shapes[index + 1]) : y
        }, onStep: { seconds[$0] = $1 })
        return (output, seconds)
    }

    /// The same network in float64 from the definition (no plan, no float32 rounding).
    public func float64(_ x: Tensor<Float>) throws -> Tensor<Double> {
        try checkInput(x)
        return try GraphEvaluator<Double>(graph: graph, shapes: shapes, threads: threads).run(x.converted(to: Double.self),
                                                                            convolve: { index, input in
            let d = plans[index]!.descriptor
            let y = try ReferenceConvolution.compute(descriptor: d, float64Input: input.reshaped(d.inputShape),
                                                     weights: graph.steps[index].weight!.reshaped(d.weightShape),
                                                     threads: threads)
            return graph.steps[index].operation == .linear ? try y.reshaped(shapes[index + 1]) : y
        })
    }
}

/// Softmax probabilities and the top classes of logits N×classes.
public enum TopClasses {
    public struct Entry: Sendable, Codable, Hashable {
        public var image: Int
        public var rank: Int
        public var classIndex: Int
        public var probability: Double
        public var label: String?
    }

    public static func softmax(_ logits: [Double]) -> [Double] {
        let top = logits.max() ?? 0
        let e = logits.map { Foundation.exp($0 - top) }
        let sum = e.reduce(0, +)
        return e.map { $0 / sum }
    }

    /// The `top` most probable classes of every image (ties by class index).
    public static func of<S: BinaryFloatingPoint & Sendable>(_ logits: Tensor<S>, top: Int, labels: [String] = [])
        -> [Entry] {
        let (n, classes) = (logits.shape[0], logits.count / max(logits.shape[0], 1))
        let values = logits.scalars.map { Double($0) }
        var entries: [Entry] = []
        for image in 0..<n {
            let p = softmax(Array(values[(image * classes)..<((image + 1) * classes)]))
            let order = p.indices.sorted { p[$0] != p[$1] ? p[$0] > p[$1] : $0 < $1 }
            for (rank, c) in order.prefix(top).enumerated() {
                entries.append(Entry(image: image, rank: rank + 1, classIndex: c, probability: p[c],
                                     label: c < labels.count ? labels[c] : nil))
            }
        }
        return entries
    }
}

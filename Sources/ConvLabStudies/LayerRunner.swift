import ConvLabBackends
import ConvLabBenchmark
import ConvLabCore
import ConvLabSelection

/// Runs a `LayerDesign`: every convolution planned once (through the selector, or a given backend), buffers and
/// workspaces allocated once, then the whole design timed under a `TimingPolicy`.
public struct LayerRunner {
    let design: LayerDesign
    let plans: [any ConvolutionPlan]
    let workspaces: [Workspace?]

    public init(design: LayerDesign, options: PlanOptions = PlanOptions(), backend: (any Convolution)? = nil) throws {
        self.design = design
        var plans: [any ConvolutionPlan] = []
        for stage in design.convolutions {
            if let backend {
                plans.append(try backend.makePlan(descriptor: stage.descriptor, weights: stage.weights, options: options))
            } else {
                plans.append(try ConvLabSelection.convolution(for: stage.descriptor, weights: stage.weights, options: options))
            }
        }
        self.plans = plans
        workspaces = try plans.map { $0.workspaceBytes > 0 ? try $0.makeWorkspace() : nil }
    }

    /// The backends chosen for the convolutions, in order.
    public var backendNames: [String] { plans.map(\.backendName) }

    public func callAsFunction(_ input: Tensor<Float>) throws -> Tensor<Float> {
        try run(input)
    }

    func run(_ input: Tensor<Float>) throws -> Tensor<Float> {
        guard input.shape == design.inputShape else {
            throw ConvLabError.shapeMismatch(what: "design input", expected: "\(design.inputShape)", actual: "\(input.shape)")
        }
        var current = input
        var stash: Tensor<Float>?
        var planIndex = 0
        for step in design.steps {
            switch step {
            case .convolution:
                var output = try Tensor<Float>(shape: plans[planIndex].descriptor.outputShape)
                try plans[planIndex].execute(current, into: &output, workspace: workspaces[planIndex])
                current = output
                planIndex += 1
            case .channelShuffle(let groups): current = try ChannelOperations.shuffle(current, groups: groups)
            case .relu:
                current.withUnsafeMutableBufferPointer { b in for i in b.indices { b[i] = max(b[i], 0) } }
            case .residualAdd:
                guard input.shape == current.shape else {
                    throw ConvLabError.shapeMismatch(what: "residual add", expected: "\(input.shape)",
                                                     actual: "\(current.shape)")
                }
                input.withUnsafeBufferPointer { x in
                    current.withUnsafeMutableBufferPointer { y in for i in y.indices { y[i] += x[i] } }
                }
            case .splitHalves:
                let (first, second) = try ChannelOperations.split(current, at: current.shape[1] / 2)
                (current, stash) = (first, second)
            case .concatStash:
                if let s = stash { current = try ChannelOperations.concat(current, s) }
                stash = nil
            }
        }
        return current
    }

    /// Times the whole design on `input`.
    public func time(_ input: Tensor<Float>, policy: TimingPolicy = TimingPolicy()) throws -> TimingResult {
        try Timing.measure(policy: policy) { _ = try run(input) }
    }
}

/// Channel-wise tensor operations of the layer designs (NCHW).
public enum ChannelOperations {
    /// ShuffleNet's channel shuffle: channel g·(C/G) + i moves to i·G + g.
    public static func shuffle(_ x: Tensor<Float>, groups: Int) throws -> Tensor<Float> {
        let (n, c, plane) = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3])
        guard groups >= 1, c % groups == 0 else {
            throw ConvLabError.invalidArgument(name: "shuffle groups", reason: "\(groups) does not divide \(c) channels")
        }
        var y = try Tensor<Float>(shape: x.shape)
        let perGroup = c / groups
        x.withUnsafeBufferPointer { src in
            y.withUnsafeMutableBufferPointer { dst in
                for image in 0..<n {
                    for g in 0..<groups {
                        for i in 0..<perGroup {
                            let from = (image * c + g * perGroup + i) * plane
                            let to = (image * c + i * groups + g) * plane
                            for p in 0..<plane { dst[to + p] = src[from + p] }
                        }
                    }
                }
            }
        }
        return y
    }

    public static func split(_ x: Tensor<Float>, at channel: Int) throws -> (Tensor<Float>, Tensor<Float>) {
        let (n, c, plane) = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3])
        var first = try Tensor<Float>(shape: [n, channel, x.shape[2], x.shape[3]])
        var second = try Tensor<Float>(shape: [n, c - channel, x.shape[2], x.shape[3]])
        x.withUnsafeBufferPointer { src in
            first.withUnsafeMutableBufferPointer { a in
                second.withUnsafeMutableBufferPointer { b in
                    for image in 0..<n {
                        for p in 0..<(channel * plane) { a[image * channel * plane + p] = src[image * c * plane + p] }
                        for p in 0..<((c - channel) * plane) {
                            b[image * (c - channel) * plane + p] = src[(image * c + channel) * plane + p]
                        }
                    }
                }
            }
        }
        return (first, second)
    }

    public static func concat(_ a: Tensor<Float>, _ b: Tensor<Float>) throws -> Tensor<Float> {
        guard a.shape[0] == b.shape[0], a.shape[2] == b.shape[2], a.shape[3] == b.shape[3] else {
            throw ConvLabError.shapeMismatch(what: "concat", expected: "same N, H, W", actual: "\(a.shape) and \(b.shape)")
        }
        let (n, ca, cb, plane) = (a.shape[0], a.shape[1], b.shape[1], a.shape[2] * a.shape[3])
        var y = try Tensor<Float>(shape: [n, ca + cb, a.shape[2], a.shape[3]])
        a.withUnsafeBufferPointer { x in
            b.withUnsafeBufferPointer { z in
                y.withUnsafeMutableBufferPointer { out in
                    for image in 0..<n {
                        for p in 0..<(ca * plane) { out[image * (ca + cb) * plane + p] = x[image * ca * plane + p] }
                        for p in 0..<(cb * plane) { out[(image * (ca + cb) + ca) * plane + p] = z[image * cb * plane + p] }
                    }
                }
            }
        }
        return y
    }
}

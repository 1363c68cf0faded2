import ConvLabBenchmark
import ConvLabCore
import Foundation

/// A model directory loaded and checked: every node's inputs resolved to earlier values, every tensor read and its
/// shape checked against its node, the attributes complete. Anything wrong is a typed error that names the node and
/// the tensor (`.invalidFile` for a missing or malformed file, `.shapeMismatch` for a tensor of the wrong shape).
public struct ModelGraph: Sendable {
    public let name: String
    public let directory: String
    public let manifest: ModelManifest
    /// Class names, in class order (empty when the model has none).
    public let labels: [String]
    public let steps: [Step]
    /// The value slot of the output: 0 is the model input, i + 1 is step i.
    public let outputSlot: Int

    /// One node, resolved.
    public struct Step: Sendable {
        public var name: String
        public var operation: ModelManifest.Operation
        /// Value slots this node reads: 0 is the model input, i + 1 is step i's result.
        public var inputs: [Int]
        public var activation: ModelManifest.Activation?
        public var weight: Tensor<Float>?
        public var bias: Tensor<Float>?
        public var stride = (1, 1)
        public var padding = Padding.zero
        public var dilation = (1, 1)
        public var groups = 1
        public var kernel = (1, 1)
    }

    public static func load(directory: String, limits: ResourceLimits = .default) throws -> ModelGraph {
        let manifest = try ModelManifest.read(directory: directory)
        let manifestPath = (directory as NSString).appendingPathComponent("manifest.json")
        func invalid(_ reason: String) -> ConvLabError { .invalidFile(path: manifestPath, reason: reason) }
        guard manifest.input.shape.count == 3, manifest.input.shape.allSatisfy({ $0 >= 1 && $0 <= 1 << 20 }) else {
            throw invalid("input.shape must be three positive sizes C, H, W (got \(manifest.input.shape))")
        }
        var slots = [manifest.input.name: 0]
        var steps: [Step] = []
        for (index, node) in manifest.nodes.enumerated() {
            let label = "node '\(node.name)'"
            guard !node.name.isEmpty, slots[node.name] == nil else {
                throw invalid("\(label) (nodes[\(index)]): the name is empty or already used")
            }
            let arity: ClosedRange<Int>
            switch node.op {
            case .add: arity = 2...2
            case .concat: arity = 2...64
            default: arity = 1...1
            }
            guard arity.contains(node.inputs.count) else {
                throw invalid("\(label): \(node.op.rawValue) takes \(arity.lowerBound == arity.upperBound ? "\(arity.lowerBound)" : "\(arity.lowerBound) or more") input(s), got \(node.inputs.count)")
            }
            var step = Step(name: node.name, operation: node.op, inputs: [], activation: node.activation)
            for input in node.inputs {
                guard let slot = slots[input] else {
                    throw invalid("\(label): input '\(input)' is neither the model input nor an earlier node")
                }
                step.inputs.append(slot)
            }
            func pair(_ value: [Int]?, _ field: String, default fallback: Int, minimum: Int) throws -> (Int, Int) {
                guard let value else { return (fallback, fallback) }
                guard value.count == 2, value.allSatisfy({ $0 >= minimum && $0 <= 1 << 16 }) else {
                    throw invalid("\(label): \(field) must be two integers in \(minimum)...65536 (got \(value))")
                }
                return (value[0], value[1])
            }
            step.stride = try pair(node.stride, "stride", default: 1, minimum: 1)
            step.dilation = try pair(node.dilation, "dilation", default: 1, minimum: 1)
            step.kernel = try pair(node.kernel, "kernel", default: 1, minimum: 1)
            if let padding = node.padding {
                guard padding.count == 4, padding.allSatisfy({ $0 >= 0 && $0 <= 1 << 16 }) else {
                    throw invalid("\(label): padding must be four integers top, bottom, left, right in 0...65536 "
                                  + "(got \(padding))")
                }
                step.padding = Padding(top: padding[0], bottom: padding[1], left: padding[2], right: padding[3])
            }
            step.groups = node.groups ?? 1
            guard (1...(1 << 20)).contains(step.groups) else { throw invalid("\(label): groups must be at least 1") }
            switch node.op {
            case .conv, .linear:
                let rank = node.op == .conv ? 4 : 2
                guard let weightFile = node.weight else { throw invalid("\(label): \(node.op.rawValue) needs a weight") }
                let weight = try tensor(weightFile, of: node, in: directory, limits: limits)
                guard weight.shape.count == rank, weight.shape.allSatisfy({ $0 >= 1 }) else {
                    throw ConvLabError.shapeMismatch(what: "\(label) weight '\(weightFile)'",
                                                     expected: node.op == .conv ? "K x C/groups x R x S" : "outputs x inputs",
                                                     actual: "\(weight.shape)")
                }
                if node.op == .conv && weight.shape[0] % step.groups != 0 {
                    throw ConvLabError.shapeMismatch(what: "\(label) weight '\(weightFile)'",
                                                     expected: "K divisible by groups \(step.groups)",
                                                     actual: "K = \(weight.shape[0])")
                }
                step.weight = weight
                if let biasFile = node.bias {
                    let bias = try tensor(biasFile, of: node, in: directory, limits: limits)
                    guard bias.shape == [weight.shape[0]] else {
                        throw ConvLabError.shapeMismatch(what: "\(label) bias '\(biasFile)'",
                                                         expected: "[\(weight.shape[0])]", actual: "\(bias.shape)")
                    }
                    step.bias = bias
                }
            case .maxPool, .averagePool:
                guard node.kernel != nil else { throw invalid("\(label): \(node.op.rawValue) needs a kernel") }
            case .add, .concat, .globalAveragePool:
                break
            }
            steps.append(step)
            slots[node.name] = steps.count
        }
        guard let outputSlot = slots[manifest.output], outputSlot > 0 else {
            throw invalid("output '\(manifest.output)' is not a node")
        }
        var labels: [String] = []
        if let labelsFile = manifest.labels {
            let path = try safePath(labelsFile, in: directory, what: "labels")
            labels = try FileInput.text(at: path, what: "the labels file").split(separator: "\n", omittingEmptySubsequences: false)
                .map(String.init)
            if labels.last == "" { labels.removeLast() }
        }
        let graph = ModelGraph(name: manifest.name, directory: directory, manifest: manifest, labels: labels,
                               steps: steps, outputSlot: outputSlot)
        _ = try graph.shapes(batch: 1)
        return graph
    }

    /// A tensor file named by the manifest: a plain file name inside the directory (no paths, so a manifest cannot
    /// point outside its model), float data.
    static func tensor(_ file: String, of node: ModelManifest.Node, in directory: String, limits: ResourceLimits) throws
        -> Tensor<Float> {
        let path = try safePath(file, in: directory, what: "tensor of node '\(node.name)'")
        guard FileManager.default.fileExists(atPath: path) else {
            throw ConvLabError.invalidFile(path: path, reason: "tensor '\(file)' of node '\(node.name)' is missing")
        }
        do {
            return try NumpyArray.read(contentsOf: path, limits: limits).float32Tensor()
        } catch let error as ConvLabError {
            if case .invalidFile(_, let reason) = error {
                throw ConvLabError.invalidFile(path: path, reason: "tensor '\(file)' of node '\(node.name)': \(reason)")
            }
            throw error
        }
    }

    static func safePath(_ file: String, in directory: String, what: String) throws -> String {
        guard !file.isEmpty, !file.contains("/"), !file.contains("\\"), file != ".", file != ".." else {
            throw ConvLabError.invalidFile(path: (directory as NSString).appendingPathComponent("manifest.json"),
                                           reason: "\(what) '\(file)' must be a plain file name in the model directory")
        }
        return (directory as NSString).appendingPathComponent(file)
    }

    /// The convolution a conv step performs on an input of `shape` (N×C×H×W), validated. A linear step is the
    /// convolution whose kernel covers its whole input (weights O×(C·H·W) read as O×C×H×W), so the classifier runs
    /// through the same plans and the same float64 definition as every other layer.
    public func descriptor(of step: Step, input shape: [Int], limits: ResourceLimits = .default) throws
        -> ConvolutionDescriptor {
        if step.operation == .linear, let weight = step.weight {
            let map = shape.count == 4 ? [shape[1], shape[2], shape[3]] : shape.count == 2 ? [shape[1], 1, 1] : []
            guard map.count == 3, map.reduce(1, *) == weight.shape[1] else {
                throw ConvLabError.shapeMismatch(what: "node '\(step.name)' input", expected: "\(weight.shape[1]) features",
                                                 actual: "\(shape)")
            }
            do {
                return try ConvolutionDescriptor(batch: shape[0], inputChannels: map[0], inputHeight: map[1],
                                                 inputWidth: map[2], outputChannels: weight.shape[0],
                                                 kernelHeight: map[1], kernelWidth: map[2], limits: limits)
            } catch let error as ConvLabError {
                throw ConvLabError.invalidArgument(name: "node '\(step.name)'", reason: "\(error)")
            }
        }
        guard let weight = step.weight, shape.count == 4 else {
            throw ConvLabError.shapeMismatch(what: "node '\(step.name)' input", expected: "N x C x H x W",
                                             actual: "\(shape)")
        }
        guard shape[1] == weight.shape[1] * step.groups else {
            throw ConvLabError.shapeMismatch(what: "node '\(step.name)' input channels",
                                             expected: "\(weight.shape[1] * step.groups) (weight C/groups "
                                                 + "\(weight.shape[1]) x groups \(step.groups))",
                                             actual: "\(shape[1])")
        }
        do {
            return try ConvolutionDescriptor(
                batch: shape[0], inputChannels: shape[1], inputHeight: shape[2], inputWidth: shape[3],
                outputChannels: weight.shape[0], kernelHeight: weight.shape[2], kernelWidth: weight.shape[3],
                strideHeight: step.stride.0, strideWidth: step.stride.1, padding: .explicit(step.padding),
                dilationHeight: step.dilation.0, dilationWidth: step.dilation.1, groups: step.groups, limits: limits)
        } catch let error as ConvLabError {
            throw ConvLabError.invalidArgument(name: "node '\(step.name)'", reason: "\(error)")
        }
    }

    /// Every value's shape for a batch of `batch` images: [input, step 0, step 1, ...]. Throws at the first node
    /// whose inputs do not fit it.
    public func shapes(batch: Int, limits: ResourceLimits = .default) throws -> [[Int]] {
        var shapes = [[batch] + manifest.input.shape]
        for step in steps {
            let inputs = step.inputs.map { shapes[$0] }
            let first = inputs[0]
            func mismatch(_ expected: String, _ actual: [Int]) -> ConvLabError {
                .shapeMismatch(what: "node '\(step.name)' input", expected: expected, actual: "\(actual)")
            }
            switch step.operation {
            case .conv:
                shapes.append(try descriptor(of: step, input: first, limits: limits).outputShape)
            case .linear:
                shapes.append([first[0], try descriptor(of: step, input: first, limits: limits).outputChannels])
            case .add:
                guard inputs[1] == first else { throw mismatch("\(first) (the first input's shape)", inputs[1]) }
                shapes.append(first)
            case .concat:
                guard inputs.allSatisfy({ $0.count == 4 && $0[0] == first[0] && $0[2] == first[2] && $0[3] == first[3] })
                else { throw mismatch("N x C x \(first.dropFirst(2).map(String.init).joined(separator: " x ")) for every input",
                                      inputs.first { $0.count != 4 || $0[2] != first[2] || $0[3] != first[3] } ?? first) }
                shapes.append([first[0], inputs.reduce(0) { $0 + $1[1] }, first[2], first[3]])
            case .maxPool, .averagePool:
                guard first.count == 4 else { throw mismatch("N x C x H x W", first) }
                let p = step.padding
                let paddedH = first[2] + p.top + p.bottom, paddedW = first[3] + p.left + p.right
                guard paddedH >= step.kernel.0, paddedW >= step.kernel.1 else {
                    throw mismatch("at least the \(step.kernel.0)x\(step.kernel.1) pooling window", first)
                }
                shapes.append([first[0], first[1], (paddedH - step.kernel.0) / step.stride.0 + 1,
                               (paddedW - step.kernel.1) / step.stride.1 + 1])
            case .globalAveragePool:
                guard first.count == 4 else { throw mismatch("N x C x H x W", first) }
                shapes.append([first[0], first[1], 1, 1])
            }
        }
        return shapes
    }
}

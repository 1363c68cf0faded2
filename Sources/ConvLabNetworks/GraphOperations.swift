import ConvLabCore

/// The non-convolution operations of a model graph, for float32 and float64 alike (the float64 run of the same
/// network uses these very functions, so the two differ only in precision and in the convolution algorithm).
enum GraphOperations {
    /// y[n, k, ...] += bias[k], then the activation, in place: one pass over each plane with its bias in a register
    /// (an index division per element made this cost more than the depthwise convolutions it follows).
    static func finish<S>(_ y: inout Tensor<S>, bias: Tensor<Float>?, activation: ModelManifest.Activation?) {
        guard bias != nil || activation != nil else { return }
        let channels = y.shape.count > 1 ? y.shape[1] : 1
        let plane = y.shape.count > 2 ? y.shape.dropFirst(2).reduce(1, *) : 1
        let b = bias?.scalars ?? []
        let (low, high): (S, S) = activation == .relu6 ? (0, 6) : (activation == .relu ? (0, .infinity)
                                                                  : (-.infinity, .infinity))
        y.withUnsafeMutableBufferPointer { v in
            guard let base = v.baseAddress else { return }
            for p in 0..<(v.count / plane) {
                let offset: S = b.isEmpty ? 0 : S(b[p % channels])
                let row = base + p * plane
                for i in 0..<plane { row[i] = min(max(row[i] + offset, low), high) }
            }
        }
    }

    static func add<S>(_ a: Tensor<S>, _ b: Tensor<S>) throws -> Tensor<S> {
        var y = a
        b.withUnsafeBufferPointer { x in y.withUnsafeMutableBufferPointer { v in for i in v.indices { v[i] += x[i] } } }
        return y
    }

    /// Concatenation along channels.
    static func concat<S>(_ inputs: [Tensor<S>]) throws -> Tensor<S> {
        let (n, plane) = (inputs[0].shape[0], inputs[0].shape[2] * inputs[0].shape[3])
        let channels = inputs.reduce(0) { $0 + $1.shape[1] }
        var y = try Tensor<S>(shape: [n, channels, inputs[0].shape[2], inputs[0].shape[3]])
        y.withUnsafeMutableBufferPointer { out in
            var offset = 0
            for x in inputs {
                let c = x.shape[1]
                x.withUnsafeBufferPointer { src in
                    for image in 0..<n {
                        for i in 0..<(c * plane) { out[(image * channels + offset) * plane + i] = src[image * c * plane + i] }
                    }
                }
                offset += c
            }
        }
        return y
    }

    /// Max or average pooling (the average counts padded zeros, PyTorch's default count_include_pad), parallel over
    /// planes; the bounds tests run per window row, not per tap (a per-tap test made VGG's pools 9% of its time).
    static func pool<S>(_ x: Tensor<S>, outputShape: [Int], kernel: (Int, Int), stride: (Int, Int), padding: Padding,
                        maximum: Bool, threads: Int) throws -> Tensor<S> {
        var y = try Tensor<S>(shape: outputShape)
        let (H, W, Ho, Wo) = (x.shape[2], x.shape[3], outputShape[2], outputShape[3])
        let window = S(kernel.0 * kernel.1)
        x.withUnsafeBufferPointer { src in
            y.withUnsafeMutableBufferPointer { out in
                let buffers = UncheckedSendable((src.baseAddress!, out.baseAddress!))
                Parallel.forEach(taskCount: x.shape[0] * x.shape[1], threads: threads) { _, plane in
                    let (input, output) = buffers.value
                    let source = input + plane * H * W, target = output + plane * Ho * Wo
                    for oh in 0..<Ho {
                        let top = oh * stride.0 - padding.top
                        let rows = max(top, 0)..<min(top + kernel.0, H)
                        for ow in 0..<Wo {
                            let left = ow * stride.1 - padding.left
                            let columns = max(left, 0)..<min(left + kernel.1, W)
                            var value: S = maximum ? -.infinity : 0
                            for ih in rows {
                                let row = source + ih * W
                                if maximum {
                                    for iw in columns { value = max(value, row[iw]) }
                                } else {
                                    for iw in columns { value += row[iw] }
                                }
                            }
                            target[oh * Wo + ow] = maximum ? value : value / window
                        }
                    }
                }
            }
        }
        return y
    }

    static func globalAveragePool<S>(_ x: Tensor<S>) throws -> Tensor<S> {
        var y = try Tensor<S>(shape: [x.shape[0], x.shape[1], 1, 1])
        let plane = x.shape[2] * x.shape[3]
        x.withUnsafeBufferPointer { src in
            y.withUnsafeMutableBufferPointer { out in
                for p in out.indices {
                    var sum: S = 0
                    for i in 0..<plane { sum += src[p * plane + i] }
                    out[p] = sum / S(plane)
                }
            }
        }
        return y
    }
}

/// Evaluates a graph in order, with the convolutions (and the linear layers, convolutions over their whole input)
/// supplied by the caller (a plan in float32, the definition in float64); each value is released after its last use, so a batch-32 network holds only its live activations.
struct GraphEvaluator<S: BinaryFloatingPoint & Sendable> {
    let graph: ModelGraph
    let shapes: [[Int]]
    let threads: Int

    func run(_ input: Tensor<S>, convolve: (Int, Tensor<S>) throws -> Tensor<S>,
             onStep: (Int, Double) -> Void = { _, _ in }) throws -> Tensor<S> {
        var lastUse = Array(repeating: -1, count: graph.steps.count + 1)
        for (index, step) in graph.steps.enumerated() { for slot in step.inputs { lastUse[slot] = index } }
        lastUse[graph.outputSlot] = graph.steps.count
        var values: [Tensor<S>?] = [input] + Array(repeating: nil, count: graph.steps.count)
        for (index, step) in graph.steps.enumerated() {
            let start = MonotonicClock.now()
            let inputs = step.inputs.map { values[$0]! }
            var y: Tensor<S>
            switch step.operation {
            case .conv, .linear: y = try convolve(index, inputs[0])
            case .add: y = try GraphOperations.add(inputs[0], inputs[1])
            case .concat: y = try GraphOperations.concat(inputs)
            case .maxPool, .averagePool:
                y = try GraphOperations.pool(inputs[0], outputShape: shapes[index + 1], kernel: step.kernel,
                                             stride: step.stride, padding: step.padding,
                                             maximum: step.operation == .maxPool, threads: threads)
            case .globalAveragePool: y = try GraphOperations.globalAveragePool(inputs[0])
            }
            GraphOperations.finish(&y, bias: step.bias, activation: step.activation)
            values[index + 1] = y
            for slot in step.inputs where lastUse[slot] == index { values[slot] = nil }
            onStep(index, MonotonicClock.now() - start)
        }
        return values[graph.outputSlot]!
    }
}

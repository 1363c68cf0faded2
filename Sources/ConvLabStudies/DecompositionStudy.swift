import ConvLabBackends
import ConvLabBenchmark
import ConvLabCore
import ConvLabSelection

/// Measures what a kernel decomposition buys: weight and output error, parameters and FLOPs before and after, and
/// measured time before and after (each side planned by the selector, so e.g. a Tucker-2 core can run as Winograd).
public struct DecompositionRecord: Codable, Sendable {
    public var method: String
    public var ranks: [Int]
    public var weightError: Double
    /// ‖y_decomposed − y‖ / ‖y‖ on the sample input, y from the float64 reference of the original layer.
    public var outputError: Double
    public var parametersBefore: Int
    public var parametersAfter: Int
    public var flopsBefore: Int
    public var flopsAfter: Int
    public var millisecondsBefore: Double?
    public var millisecondsAfter: Double?
    public var backendsBefore: String?
    public var backendsAfter: String?
    public var iterations: Int?
    public var stopReason: String?

    public var flopReduction: Double { Double(flopsBefore) / Double(max(flopsAfter, 1)) }
    public var speedup: Double? { millisecondsBefore.flatMap { b in millisecondsAfter.map { b / $0 } } }
}

public enum DecompositionStudy {
    public static func evaluate(_ decomposition: KernelDecomposition, weights: Tensor<Float>,
                                layer d: ConvolutionDescriptor, input: Tensor<Float>, options: PlanOptions,
                                timing: TimingPolicy?) throws -> DecompositionRecord {
        let reference = try ReferenceConvolution.compute(descriptor: d, input: input, weights: weights,
                                                         threads: options.threads).output.scalars
        let chain = LayerDesign(name: "decomposed", steps: decomposition.stages.map { .convolution($0, uniqueWeights: nil) },
                                inputShape: d.inputShape, outputShape: d.outputShape)
        let runner = try LayerRunner(design: chain, options: options)
        let approximated = try runner(input).scalars
        var (difference, norm) = (0.0, 0.0)
        for (a, b) in zip(approximated, reference) {
            difference += (Double(a) - b) * (Double(a) - b)
            norm += b * b
        }
        var record = DecompositionRecord(
            method: decomposition.method.rawValue, ranks: decomposition.ranks,
            weightError: decomposition.reconstructionError(of: weights),
            outputError: norm > 0 ? (difference / norm).squareRoot() : 0,
            parametersBefore: d.parameterCount, parametersAfter: decomposition.parameterCount,
            flopsBefore: d.directFLOPs, flopsAfter: decomposition.directFLOPs,
            iterations: decomposition.iterations, stopReason: decomposition.stopReason)
        if let timing {
            let original = LayerDesign(name: "original",
                                       steps: [.convolution(ConvolutionStage(label: "original", descriptor: d, weights: weights),
                                                            uniqueWeights: nil)],
                                       inputShape: d.inputShape, outputShape: d.outputShape)
            let before = try LayerRunner(design: original, options: options)
            record.millisecondsBefore = try before.time(input, policy: timing).median * 1e3
            record.millisecondsAfter = try runner.time(input, policy: timing).median * 1e3
            record.backendsBefore = before.backendNames.joined(separator: "+")
            record.backendsAfter = runner.backendNames.joined(separator: "+")
        }
        return record
    }

    /// The smallest rank whose output error on `input` is at most `maxOutputError`, by bisection over 1…`maxRank`
    /// (output error falls with rank). Tucker uses r for both ranks, capped at C and K. Returns nil if even the
    /// largest rank misses the budget.
    public static func smallestRank(_ method: KernelDecomposition.Method, weights: Tensor<Float>,
                                    layer d: ConvolutionDescriptor, input: Tensor<Float>, maxOutputError: Double,
                                    maxRank: Int, options: PlanOptions, seed: UInt64 = 1) throws
        -> (rank: Int, decomposition: KernelDecomposition, tried: [(Int, Double)])? {
        var tried: [(Int, Double)] = []
        func attempt(_ rank: Int) throws -> (KernelDecomposition, Double) {
            let ranks = KernelDecomposition.ranks(method, rank: rank, layer: d)
            let decomposition = try KernelDecomposition.decompose(method, weights: weights, layer: d, ranks: ranks,
                                                                  seed: seed)
            let error = try evaluate(decomposition, weights: weights, layer: d, input: input, options: options,
                                     timing: nil).outputError
            tried.append((rank, error))
            return (decomposition, error)
        }
        var (low, high) = (1, maxRank)
        var best: (Int, KernelDecomposition)?
        let (top, topError) = try attempt(high)
        guard topError <= maxOutputError else { return nil }
        best = (high, top)
        while low < high {
            let middle = (low + high) / 2
            let (decomposition, error) = try attempt(middle)
            if error <= maxOutputError {
                best = (middle, decomposition)
                high = middle
            } else {
                low = middle + 1
            }
        }
        return best.map { ($0.0, $0.1, tried.sorted { $0.0 < $1.0 }) }
    }

    /// A "trained-like" kernel for studies when no trained weights are at hand: Σᵢ 0.6ⁱ·(rank-1 term) over
    /// min(K, C·R·S) terms plus 5% Gaussian noise — a decaying spectrum like real filters, unlike pure noise.
    public static func syntheticKernel(shape: [Int], seed: UInt64) throws -> Tensor<Float> {
        guard shape.count == 4, shape.allSatisfy({ $0 >= 1 }) else {
            throw ConvLabError.invalidArgument(name: "synthetic", reason: "\(shape) is not K,C,R,S")
        }
        // The float64 accumulator and the float32 result, before either is allocated.
        guard let count = CheckedArithmetic.product(shape), let bytes = CheckedArithmetic.product(count, 12) else {
            throw ConvLabError.sizeOverflow(what: "a synthetic kernel of shape \(shape)")
        }
        try ResourceLimits.check("a synthetic kernel of shape \(shape)", bytes: bytes,
                                 limit: ResourceLimits.default.maxTensorBytes)
        let (K, C, R, S) = (shape[0], shape[1], shape[2], shape[3])
        var generator = SeededGenerator(seed: seed)
        var values = [Double](repeating: 0, count: K * C * R * S)
        for term in 0..<min(K, C * R * S) {
            let weight = pow(0.6, Double(term))
            let a = (0..<K).map { _ in generator.nextNormal() }, b = (0..<C).map { _ in generator.nextNormal() }
            let u = (0..<R).map { _ in generator.nextNormal() }, v = (0..<S).map { _ in generator.nextNormal() }
            for k in 0..<K { for c in 0..<C { for r in 0..<R { for s in 0..<S {
                values[((k * C + c) * R + r) * S + s] += weight * a[k] * b[c] * u[r] * v[s]
            } } } }
        }
        let scale = (values.reduce(0) { $0 + $1 * $1 } / Double(values.count)).squareRoot()
        return try Tensor(shape: shape, scalars: values.map { Float($0 / max(scale, 1e-30) + 0.05 * generator.nextNormal()) })
    }
}

import Foundation

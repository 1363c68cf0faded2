import ConvLabCore
import Foundation

/// One convolution of a chain (a decomposed layer or a layer design): its problem and weights.
public struct ConvolutionStage: Sendable {
    public var label: String
    public var descriptor: ConvolutionDescriptor
    public var weights: Tensor<Float>
}

/// A K×C×R×S kernel approximated by a chain of cheaper convolutions (the low-rank schemes of the CNN-speed-up
/// literature). `approximation` is the chain's equivalent kernel, for the weight reconstruction error.
public struct KernelDecomposition: Sendable {
    public enum Method: String, CaseIterable, Sendable {
        /// Jaderberg et al. 2014: W reshaped to (C·R) × (K·S), truncated SVD → R×1 conv (C→t) then 1×S conv (t→K).
        case svd
        /// Lebedev et al. 2015: CP rank-r by ALS → 1×1 (C→r), depthwise R×1, depthwise 1×S, 1×1 (r→K).
        case cp
        /// Kim et al. 2016: Tucker-2 on the K and C modes (HOSVD init, HOOI refinement) → 1×1 (C→r₁),
        /// R×S core (r₁→r₂), 1×1 (r₂→K).
        case tucker
        /// Tensor train (Oseledets 2011; for convolutions Garipov et al. 2016, Novikov et al. 2015) in the mode order
        /// C, R, S, K by TT-SVD: W[k,c,r,s] = Σ G₁[c,a]·G₂[a,r,b]·G₃[b,s,d]·G₄[d,k] → 1×1 (C→r₁), R×1 (r₁→r₂),
        /// 1×S (r₂→r₃), 1×1 (r₃→K). CP is the special case with diagonal middle cores (its R×1 and 1×S are
        /// depthwise); Tucker-2 the one that keeps R and S together in one core.
        case tt
    }

    /// The ranks `method` takes for one requested rank r (the CLI's `--rank r`): [r] for svd and cp; for tucker
    /// [min(r, C), min(r, K)]; for tt [r, r, r], each capped at the largest rank its unfolding has.
    public static func ranks(_ method: Method, rank r: Int, layer d: ConvolutionDescriptor) -> [Int] {
        let (K, C, R, S) = (d.outputChannels, d.channelsPerGroup, d.kernelHeight, d.kernelWidth)
        switch method {
        case .svd, .cp: return [r]
        case .tucker: return [min(r, C), min(r, K)]
        case .tt:
            let r1 = min(r, C, R * S * K)
            let r2 = min(r, r1 * R, S * K)
            return [r1, r2, min(r, r2 * S, K)]
        }
    }

    public var method: Method
    public var ranks: [Int]
    public var stages: [ConvolutionStage]
    public var approximation: Tensor<Float>
    /// Iterations run and why they stopped (ALS and HOOI; nil for the closed-form SVD).
    public var iterations: Int?
    public var stopReason: String?

    /// ‖W − Ŵ‖_F / ‖W‖_F.
    public func reconstructionError(of weights: Tensor<Float>) -> Double {
        let (w, a) = (weights.scalars, approximation.scalars)
        let difference = zip(w, a).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
        let norm = w.reduce(0.0) { $0 + Double($1) * Double($1) }
        return norm > 0 ? (difference / norm).squareRoot() : 0
    }

    /// Trainable weights of the chain.
    public var parameterCount: Int { stages.reduce(0) { $0 + $1.weights.count } }
    /// Direct-method FLOPs of the chain.
    public var directFLOPs: Int { stages.reduce(0) { $0 + $1.descriptor.directFLOPs } }

    // MARK: Construction

    /// Decomposes `weights` of layer `d` (groups must be 1). `ranks`: [t] for svd, [r] for cp, [r₁, r₂] for tucker
    /// (input-side and output-side ranks). ALS/HOOI stop when the relative error changes by less than `tolerance`
    /// between iterations or after `maxIterations`; deterministic for a seed.
    public static func decompose(_ method: Method, weights: Tensor<Float>, layer d: ConvolutionDescriptor,
                                 ranks: [Int], tolerance: Double = 1e-7, maxIterations: Int = 200,
                                 seed: UInt64 = 1) throws -> KernelDecomposition {
        guard d.groups == 1 else {
            throw ConvLabError.unsupported(backend: "decompose", reason: "kernel decompositions need groups = 1")
        }
        guard weights.shape == d.weightShape else {
            throw ConvLabError.shapeMismatch(what: "weights", expected: "\(d.weightShape)", actual: "\(weights.shape)")
        }
        let (K, C, R, S) = (d.outputChannels, d.inputChannels, d.kernelHeight, d.kernelWidth)
        let expected = method == .tucker ? 2 : method == .tt ? 3 : 1
        guard ranks.count == expected, ranks.allSatisfy({ $0 >= 1 }) else {
            throw ConvLabError.invalidArgument(name: "ranks", reason: "\(method.rawValue) needs \(expected) positive rank"
                                               + (expected == 2 ? "s (r1 for C, r2 for K)"
                                                  : expected == 3 ? "s (r1 after C, r2 after R, r3 after S)" : ""))
        }
        let x = weights.scalars.map(Double.init)
        switch method {
        case .svd:
            let limit = min(C * R, K * S)
            guard ranks[0] <= limit else {
                throw ConvLabError.invalidArgument(name: "rank", reason: "SVD rank is at most min(C·R, K·S) = \(limit)")
            }
            return try spatialSVD(x, d, rank: ranks[0], K: K, C: C, R: R, S: S)
        case .cp:
            return try cpALS(x, d, rank: ranks[0], K: K, C: C, R: R, S: S, tolerance: tolerance,
                             maxIterations: maxIterations, seed: seed)
        case .tucker:
            guard ranks[0] <= C, ranks[1] <= K else {
                throw ConvLabError.invalidArgument(name: "ranks", reason: "Tucker-2 ranks need r1 ≤ C = \(C), r2 ≤ K = \(K)")
            }
            return try tucker2(x, d, inputRank: ranks[0], outputRank: ranks[1], K: K, C: C, R: R, S: S,
                               tolerance: tolerance, maxIterations: maxIterations)
        case .tt:
            let limits = Self.ranks(.tt, rank: Int.max, layer: d)
            let capped = [min(ranks[0], limits[0]), min(ranks[1], ranks[0] * R, S * K), min(ranks[2], ranks[1] * S, K)]
            guard capped == ranks else {
                throw ConvLabError.invalidArgument(
                    name: "ranks", reason: "TT ranks need r1 ≤ min(C, R·S·K), r2 ≤ min(r1·R, S·K), "
                        + "r3 ≤ min(r2·S, K); \(ranks) exceeds that (largest allowed: \(capped))")
            }
            return try tensorTrain(x, d, ranks: ranks, K: K, C: C, R: R, S: S)
        }
    }

    /// Descriptor of one stage of the chain for layer `d`. `height`/`width` say whether this stage carries the
    /// original's geometry (stride, padding, dilation) along that axis; each method gives each axis to exactly one
    /// stage, so the chain produces the original output size.
    static func stage(_ d: ConvolutionDescriptor, input c: Int, height h: Int, width w: Int, output k: Int,
                      kernelHeight r: Int, kernelWidth s: Int, groups: Int = 1, carriesHeight: Bool,
                      carriesWidth: Bool) throws -> ConvolutionDescriptor {
        try ConvolutionDescriptor(
            batch: d.batch, inputChannels: c, inputHeight: h, inputWidth: w, outputChannels: k,
            kernelHeight: r, kernelWidth: s,
            strideHeight: carriesHeight ? d.strideHeight : 1, strideWidth: carriesWidth ? d.strideWidth : 1,
            padding: .explicit(Padding(top: carriesHeight ? d.padding.top : 0,
                                       bottom: carriesHeight ? d.padding.bottom : 0,
                                       left: carriesWidth ? d.padding.left : 0,
                                       right: carriesWidth ? d.padding.right : 0)),
            dilationHeight: carriesHeight ? d.dilationHeight : 1, dilationWidth: carriesWidth ? d.dilationWidth : 1,
            groups: groups)
    }

    static func tensor(_ shape: [Int], _ values: [Double]) throws -> Tensor<Float> {
        try Tensor(shape: shape, scalars: values.map { Float($0) })
    }

    // MARK: SVD (Jaderberg)

    private static func spatialSVD(_ x: [Double], _ d: ConvolutionDescriptor, rank t: Int, K: Int, C: Int, R: Int,
                                   S: Int) throws -> KernelDecomposition {
        var m = Matrix(rows: C * R, columns: K * S)
        for k in 0..<K { for c in 0..<C { for r in 0..<R { for s in 0..<S {
            m[c * R + r, k * S + s] = x[((k * C + c) * R + r) * S + s]
        } } } }
        let (u, sigma, v) = m.singularValueDecomposition()
        var vertical = [Double](repeating: 0, count: t * C * R), horizontal = [Double](repeating: 0, count: K * t * S)
        for i in 0..<t {
            let root = sigma[i].squareRoot()
            for c in 0..<C { for r in 0..<R { vertical[(i * C + c) * R + r] = root * u[c * R + r, i] } }
            for k in 0..<K { for s in 0..<S { horizontal[(k * t + i) * S + s] = root * v[k * S + s, i] } }
        }
        var approximation = [Double](repeating: 0, count: K * C * R * S)
        for k in 0..<K { for c in 0..<C { for r in 0..<R { for s in 0..<S {
            var sum = 0.0
            for i in 0..<t { sum += vertical[(i * C + c) * R + r] * horizontal[(k * t + i) * S + s] }
            approximation[((k * C + c) * R + r) * S + s] = sum
        } } } }
        let first = try stage(d, input: C, height: d.inputHeight, width: d.inputWidth, output: t, kernelHeight: R,
                              kernelWidth: 1, carriesHeight: true, carriesWidth: false)
        let second = try stage(d, input: t, height: first.outputHeight, width: first.outputWidth, output: K,
                               kernelHeight: 1, kernelWidth: S, carriesHeight: false, carriesWidth: true)
        return KernelDecomposition(
            method: .svd, ranks: [t],
            stages: [ConvolutionStage(label: "\(R)x1 conv \(C)→\(t)", descriptor: first,
                                      weights: try tensor([t, C, R, 1], vertical)),
                     ConvolutionStage(label: "1x\(S) conv \(t)→\(K)", descriptor: second,
                                      weights: try tensor([K, t, 1, S], horizontal))],
            approximation: try tensor([K, C, R, S], approximation), iterations: nil, stopReason: nil)
    }

    // MARK: Tensor train (TT-SVD)

    /// TT-SVD: the kernel as a C × (R·S·K) matrix, truncated SVD to r₁, the remainder Σ·Vᵀ reshaped (r₁·R) × (S·K),
    /// SVD to r₂, and so on. Each step is the best rank-rᵢ approximation of its unfolding, so the error is at most
    /// √(Σ of the dropped σ² of every step) (Oseledets' bound) and exact at full ranks.
    private static func tensorTrain(_ x: [Double], _ d: ConvolutionDescriptor, ranks: [Int], K: Int, C: Int, R: Int,
                                    S: Int) throws -> KernelDecomposition {
        // Reorder K×C×R×S into C×R×S×K (the train's mode order).
        var remainder = Matrix(rows: C, columns: R * S * K)
        for k in 0..<K { for c in 0..<C { for r in 0..<R { for s in 0..<S {
            remainder[c, (r * S + s) * K + k] = x[((k * C + c) * R + r) * S + s]
        } } } }
        var cores: [Matrix] = []  // core i: (r_{i-1}·n_i) × r_i, with r_0 = 1
        var previousRank = 1
        for (mode, size) in [C, R, S].enumerated() {
            let rank = ranks[mode]
            let unfolding = Matrix(rows: previousRank * size, columns: remainder.values.count / (previousRank * size),
                                   values: remainder.values)
            let (u, sigma, v) = unfolding.singularValueDecomposition()
            var core = Matrix(rows: unfolding.rows, columns: rank)
            var next = Matrix(rows: rank, columns: unfolding.columns)
            for j in 0..<min(rank, sigma.count) {
                for i in 0..<unfolding.rows { core[i, j] = u[i, j] }
                for i in 0..<unfolding.columns { next[j, i] = sigma[j] * v[i, j] }
            }
            cores.append(core)
            remainder = next
            previousRank = rank
        }
        let (r1, r2, r3) = (ranks[0], ranks[1], ranks[2])
        let (g1, g2, g3, g4) = (cores[0], cores[1], cores[2], remainder)  // C×r1, (r1·R)×r2, (r2·S)×r3, r3×K
        // The train contracted left to right as three matrix products (a per-entry triple sum over the ranks was
        // 77 G operations at 512 channels and rank 256; these are 1 G):
        // (C × r1)·(r1 × R·r2) → (C·R × r2)·(r2 × S·r3) → (C·R·S × r3)·(r3 × K).
        let t1 = g1 * Matrix(rows: r1, columns: R * r2, values: g2.values)
        let t2 = Matrix(rows: C * R, columns: r2, values: t1.values) * Matrix(rows: r2, columns: S * r3, values: g3.values)
        let t3 = Matrix(rows: C * R * S, columns: r3, values: t2.values) * g4
        var approximation = [Double](repeating: 0, count: x.count)
        for crs in 0..<(C * R * S) {
            for k in 0..<K { approximation[k * C * R * S + crs] = t3[crs, k] }
        }
        var first = [Double](repeating: 0, count: r1 * C), vertical = [Double](repeating: 0, count: r2 * r1 * R)
        var horizontal = [Double](repeating: 0, count: r3 * r2 * S), last = [Double](repeating: 0, count: K * r3)
        for a in 0..<r1 { for c in 0..<C { first[a * C + c] = g1[c, a] } }
        for b in 0..<r2 { for a in 0..<r1 { for r in 0..<R { vertical[(b * r1 + a) * R + r] = g2[a * R + r, b] } } }
        for e in 0..<r3 { for b in 0..<r2 { for s in 0..<S { horizontal[(e * r2 + b) * S + s] = g3[b * S + s, e] } } }
        for k in 0..<K { for e in 0..<r3 { last[k * r3 + e] = g4[e, k] } }
        let pointwiseIn = try stage(d, input: C, height: d.inputHeight, width: d.inputWidth, output: r1,
                                    kernelHeight: 1, kernelWidth: 1, carriesHeight: false, carriesWidth: false)
        let verticalStage = try stage(d, input: r1, height: d.inputHeight, width: d.inputWidth, output: r2,
                                      kernelHeight: R, kernelWidth: 1, carriesHeight: true, carriesWidth: false)
        let horizontalStage = try stage(d, input: r2, height: verticalStage.outputHeight,
                                        width: verticalStage.outputWidth, output: r3, kernelHeight: 1, kernelWidth: S,
                                        carriesHeight: false, carriesWidth: true)
        let pointwiseOut = try stage(d, input: r3, height: horizontalStage.outputHeight,
                                     width: horizontalStage.outputWidth, output: K, kernelHeight: 1, kernelWidth: 1,
                                     carriesHeight: false, carriesWidth: false)
        return KernelDecomposition(
            method: .tt, ranks: ranks,
            stages: [
                ConvolutionStage(label: "1x1 conv \(C)→\(r1)", descriptor: pointwiseIn,
                                 weights: try tensor([r1, C, 1, 1], first)),
                ConvolutionStage(label: "\(R)x1 conv \(r1)→\(r2)", descriptor: verticalStage,
                                 weights: try tensor([r2, r1, R, 1], vertical)),
                ConvolutionStage(label: "1x\(S) conv \(r2)→\(r3)", descriptor: horizontalStage,
                                 weights: try tensor([r3, r2, 1, S], horizontal)),
                ConvolutionStage(label: "1x1 conv \(r3)→\(K)", descriptor: pointwiseOut,
                                 weights: try tensor([K, r3, 1, 1], last)),
            ],
            approximation: try tensor([K, C, R, S], approximation), iterations: nil, stopReason: nil)
    }

    // MARK: CP (ALS)

    private static func cpALS(_ x: [Double], _ d: ConvolutionDescriptor, rank: Int, K: Int, C: Int, R: Int, S: Int,
                              tolerance: Double, maxIterations: Int, seed: UInt64) throws -> KernelDecomposition {
        let dims = [K, C, R, S]
        let strides = [C * R * S, R * S, S, 1]
        var generator = SeededGenerator(seed: seed)
        // Initialise from the leading singular vectors of each unfolding (HOSVD), random where the rank exceeds
        // the mode's size: deterministic, and exact for tensors of that CP rank in practice.
        var factors: [Matrix] = (0..<4).map { mode in
            let unfolding = unfold(x, dims: dims, mode: mode)
            let leading = unfolding.leadingLeftSingularVectors(min(rank, dims[mode]))
            var f = Matrix(rows: dims[mode], columns: rank)
            for i in 0..<dims[mode] {
                for j in 0..<rank { f[i, j] = j < leading.columns ? leading[i, j] : generator.nextNormal() * 0.1 }
            }
            return f
        }
        let norm = x.reduce(0.0) { $0 + $1 * $1 }.squareRoot()
        var previous = Double.infinity
        var iterations = 0
        var reason = "iteration cap (\(maxIterations))"
        var error = 1.0
        while iterations < maxIterations {
            iterations += 1
            for mode in 0..<4 {
                // MTTKRP: M[i][j] = Σ over the other indices of X · Π_{other modes} factor[index][j].
                var mttkrp = Matrix(rows: dims[mode], columns: rank)
                for index in 0..<x.count where x[index] != 0 {
                    let idx = (0..<4).map { (index / strides[$0]) % dims[$0] }
                    for j in 0..<rank {
                        var product = x[index]
                        for other in 0..<4 where other != mode { product *= factors[other][idx[other], j] }
                        mttkrp[idx[mode], j] += product
                    }
                }
                var gram = Matrix(rows: rank, columns: rank, values: [Double](repeating: 1, count: rank * rank))
                for other in 0..<4 where other != mode {
                    let g = factors[other].transposed * factors[other]
                    for i in 0..<rank * rank { gram.values[i] *= g.values[i] }
                }
                factors[mode] = Matrix.solveRight(mttkrp, gram)
            }
            error = relativeCPError(x, factors, dims: dims, strides: strides, rank: rank, norm: norm)
            if abs(previous - error) < tolerance * max(previous, 1e-300) || error < 1e-12 {
                reason = "converged (relative change < \(tolerance))"
                break
            }
            previous = error
        }
        let (A, B, U, V) = (factors[0], factors[1], factors[2], factors[3])
        var approximation = [Double](repeating: 0, count: x.count)
        for index in 0..<x.count {
            let (k, c, r, s) = (index / strides[0], (index / strides[1]) % C, (index / strides[2]) % R, index % S)
            var sum = 0.0
            for j in 0..<rank { sum += A[k, j] * B[c, j] * U[r, j] * V[s, j] }
            approximation[index] = sum
        }
        let pointwiseIn = try stage(d, input: C, height: d.inputHeight, width: d.inputWidth, output: rank,
                                    kernelHeight: 1, kernelWidth: 1, carriesHeight: false, carriesWidth: false)
        let vertical = try stage(d, input: rank, height: d.inputHeight, width: d.inputWidth, output: rank,
                                 kernelHeight: R, kernelWidth: 1, groups: rank, carriesHeight: true, carriesWidth: false)
        let horizontal = try stage(d, input: rank, height: vertical.outputHeight, width: vertical.outputWidth,
                                   output: rank, kernelHeight: 1, kernelWidth: S, groups: rank, carriesHeight: false,
                                   carriesWidth: true)
        let pointwiseOut = try stage(d, input: rank, height: horizontal.outputHeight, width: horizontal.outputWidth,
                                     output: K, kernelHeight: 1, kernelWidth: 1, carriesHeight: false,
                                     carriesWidth: false)
        return KernelDecomposition(
            method: .cp, ranks: [rank],
            stages: [
                ConvolutionStage(label: "1x1 conv \(C)→\(rank)", descriptor: pointwiseIn,
                                 weights: try tensor([rank, C, 1, 1], B.transposed.values)),
                ConvolutionStage(label: "depthwise \(R)x1 (\(rank))", descriptor: vertical,
                                 weights: try tensor([rank, 1, R, 1], U.transposed.values)),
                ConvolutionStage(label: "depthwise 1x\(S) (\(rank))", descriptor: horizontal,
                                 weights: try tensor([rank, 1, 1, S], V.transposed.values)),
                ConvolutionStage(label: "1x1 conv \(rank)→\(K)", descriptor: pointwiseOut,
                                 weights: try tensor([K, rank, 1, 1], A.values)),
            ],
            approximation: try tensor([K, C, R, S], approximation), iterations: iterations, stopReason: reason)
    }

    private static func relativeCPError(_ x: [Double], _ f: [Matrix], dims: [Int], strides: [Int], rank: Int,
                                        norm: Double) -> Double {
        var sum = 0.0
        for index in 0..<x.count {
            var value = 0.0
            let idx = (0..<4).map { (index / strides[$0]) % dims[$0] }
            for j in 0..<rank { value += f[0][idx[0], j] * f[1][idx[1], j] * f[2][idx[2], j] * f[3][idx[3], j] }
            sum += (x[index] - value) * (x[index] - value)
        }
        return norm > 0 ? sum.squareRoot() / norm : 0
    }

    /// Mode-n unfolding of a 4-way tensor: rows are the mode's index, columns the others in order.
    static func unfold(_ x: [Double], dims: [Int], mode: Int) -> Matrix {
        let strides = [dims[1] * dims[2] * dims[3], dims[2] * dims[3], dims[3], 1]
        var m = Matrix(rows: dims[mode], columns: x.count / dims[mode])
        var columnCounters = [Int](repeating: 0, count: dims[mode])
        for index in 0..<x.count {
            let i = (index / strides[mode]) % dims[mode]
            m[i, columnCounters[i]] = x[index]
            columnCounters[i] += 1
        }
        return m
    }

    // MARK: Tucker-2 (HOSVD + HOOI)

    private static func tucker2(_ x: [Double], _ d: ConvolutionDescriptor, inputRank r1: Int, outputRank r2: Int,
                                K: Int, C: Int, R: Int, S: Int, tolerance: Double, maxIterations: Int) throws
        -> KernelDecomposition {
        let dims = [K, C, R, S]
        var uk = unfold(x, dims: dims, mode: 0).leadingLeftSingularVectors(r2)  // K×r2
        var uc = unfold(x, dims: dims, mode: 1).leadingLeftSingularVectors(r1)  // C×r1
        let norm = x.reduce(0.0) { $0 + $1 * $1 }.squareRoot()
        var previous = Double.infinity
        var iterations = 0
        var reason = "iteration cap (\(maxIterations))"
        var core = tuckerCore(x, uk: uk, uc: uc, K: K, C: C, R: R, S: S)
        while iterations < maxIterations {
            let error = tuckerError(x, core: core, uk: uk, uc: uc, K: K, C: C, R: R, S: S, norm: norm)
            if abs(previous - error) < tolerance * max(previous, 1e-300) || error < 1e-12 {
                reason = iterations == 0 ? "HOSVD exact" : "converged (relative change < \(tolerance))"
                break
            }
            previous = error
            iterations += 1
            // HOOI: each factor from the leading singular vectors of X projected on the other.
            // (matrix products: the per-entry sums took seconds per iteration at 512 channels)
            let projectedC = projectOnInputChannels(x, uc: uc, K: K, C: C, R: R, S: S)  // X ×₁ U_Cᵀ
            uk = unfold(projectedC, dims: [K, r1, R, S], mode: 0).leadingLeftSingularVectors(r2)
            let projectedK = (uk.transposed * Matrix(rows: K, columns: C * R * S, values: x)).values  // X ×₀ U_Kᵀ
            uc = unfold(projectedK, dims: [r2, C, R, S], mode: 1).leadingLeftSingularVectors(r1)
            core = tuckerCore(x, uk: uk, uc: uc, K: K, C: C, R: R, S: S)
        }
        // X̂ = G ×₀ U_K ×₁ U_C as two matrix products: (K × r2)·(r2 × r1·RS), then per k (r1 × RS)ᵀ by U_Cᵀ.
        let coreByOutput = uk * Matrix(rows: r2, columns: r1 * R * S, values: core)  // K × (r1·RS)
        var approximation = [Double](repeating: 0, count: x.count)
        for k in 0..<K {
            let slice = Matrix(rows: r1, columns: R * S, values: Array(coreByOutput.values[(k * r1 * R * S)..<((k + 1) * r1 * R * S)]))
            let block = uc * slice  // C × RS
            for i in 0..<(C * R * S) { approximation[k * C * R * S + i] = block.values[i] }
        }
        let reduce = try stage(d, input: C, height: d.inputHeight, width: d.inputWidth, output: r1, kernelHeight: 1,
                               kernelWidth: 1, carriesHeight: false, carriesWidth: false)
        let coreStage = try stage(d, input: r1, height: d.inputHeight, width: d.inputWidth, output: r2, kernelHeight: R,
                                  kernelWidth: S, carriesHeight: true, carriesWidth: true)
        let expand = try stage(d, input: r2, height: coreStage.outputHeight, width: coreStage.outputWidth, output: K,
                               kernelHeight: 1, kernelWidth: 1, carriesHeight: false, carriesWidth: false)
        return KernelDecomposition(
            method: .tucker, ranks: [r1, r2],
            stages: [
                ConvolutionStage(label: "1x1 conv \(C)→\(r1)", descriptor: reduce,
                                 weights: try tensor([r1, C, 1, 1], uc.transposed.values)),
                ConvolutionStage(label: "\(R)x\(S) core \(r1)→\(r2)", descriptor: coreStage,
                                 weights: try tensor([r2, r1, R, S], core)),
                ConvolutionStage(label: "1x1 conv \(r2)→\(K)", descriptor: expand,
                                 weights: try tensor([K, r2, 1, 1], uk.values)),
            ],
            approximation: try tensor([K, C, R, S], approximation), iterations: iterations, stopReason: reason)
    }

    /// G = X ×₀ U_Kᵀ ×₁ U_Cᵀ, r2 × r1 × R × S, as matrix products: per k, U_Cᵀ·X[k] (r1 × RS), then U_Kᵀ on the
    /// K mode (the per-entry sum over k and c was 154 G operations at 512 channels and ranks 256).
    private static func tuckerCore(_ x: [Double], uk: Matrix, uc: Matrix, K: Int, C: Int, R: Int, S: Int) -> [Double] {
        let projected = projectOnInputChannels(x, uc: uc, K: K, C: C, R: R, S: S)
        return (uk.transposed * Matrix(rows: K, columns: uc.columns * R * S, values: projected)).values  // r2 × (r1·RS)
    }

    /// X ×₁ U_Cᵀ, K × r1 × R × S: per output channel k, U_Cᵀ·X[k] (r1 × RS).
    private static func projectOnInputChannels(_ x: [Double], uc: Matrix, K: Int, C: Int, R: Int, S: Int) -> [Double] {
        let r1 = uc.columns
        let ucT = uc.transposed
        var projected = [Double](repeating: 0, count: K * r1 * R * S)
        for k in 0..<K {
            let block = ucT * Matrix(rows: C, columns: R * S, values: Array(x[(k * C * R * S)..<((k + 1) * C * R * S)]))
            for i in 0..<(r1 * R * S) { projected[k * r1 * R * S + i] = block.values[i] }
        }
        return projected
    }

    private static func tuckerError(_ x: [Double], core: [Double], uk: Matrix, uc: Matrix, K: Int, C: Int, R: Int,
                                    S: Int, norm: Double) -> Double {
        // U_K and U_C are orthonormal, so ‖X − X̂‖² = ‖X‖² − ‖G‖².
        let coreNorm = core.reduce(0.0) { $0 + $1 * $1 }
        return norm > 0 ? max(norm * norm - coreNorm, 0).squareRoot() / norm : 0
    }
}

import ConvLab
import Foundation
import Testing

@Suite struct LayerCostTests {
    static func design(_ designs: [LayerDesign], _ prefix: String) throws -> LayerDesign {
        try #require(designs.first { $0.name.hasPrefix(prefix) })
    }

    /// The worked examples of the literature, exactly.
    @Test func workedExamplesOfTheLiterature() throws {
        let small = try LayerDesigns.all(for: LayerSpec(inputChannels: 3, outputChannels: 1, kernel: 5, height: 12,
                                                         width: 12, padding: 0))
        let standard = try Self.design(small, "standard").cost
        #expect(standard.parameters == 75 && standard.multiplications == 4_800)
        let separable = try Self.design(small, "spatially separable")
        #expect(separable.cost.parameters == 15 + 5)
        #expect(separable.convolutions.map { $0.descriptor.outputCount * $0.descriptor.reductionLength } == [1_440, 960])
        #expect(separable.cost.multiplications == 2_400)
        let depthwise = try Self.design(small, "depthwise separable").cost
        #expect(depthwise.parameters == 75 + 3 && depthwise.multiplications == 4_800 + 192)

        // 4,800 + 192·N versus 4,800·N for N output channels (N = 256: 53,952 versus 1,228,800).
        let wide = try LayerDesigns.all(for: LayerSpec(inputChannels: 3, outputChannels: 256, kernel: 5, height: 12,
                                                        width: 12, padding: 0))
        #expect(try Self.design(wide, "depthwise separable").cost.multiplications == 4_800 + 192 * 256)
        #expect(try Self.design(wide, "standard").cost.multiplications == 4_800 * 256)

        // A dense 12×12×3 → 64 layer has 27,648 weights.
        let dense = try LayerDesigns.all(for: LayerSpec(inputChannels: 3, outputChannels: 64, kernel: 5, height: 12,
                                                         width: 12, padding: 0))
        #expect(try Self.design(dense, "fully connected").cost.parameters == 27_648)

        // One 7×7 layer: 49·H·W·C²; three 3×3: 27·H·W·C² (C → C, same padding).
        let (h, w, c) = (20, 24, 16)
        let seven = try LayerDesigns.all(for: LayerSpec(inputChannels: c, outputChannels: c, kernel: 7, height: h, width: w))
        #expect(try Self.design(seven, "standard").cost.multiplications == 49 * h * w * c * c)
        #expect(try Self.design(seven, "stacked 3x").cost.multiplications == 27 * h * w * c * c)

        // Two thin 3×3 layers at 96 channels, and the one √2-wider layer (136 outputs) that replaces them.
        let (m, n) = (96, 14)
        let seed = try LayerDesigns.all(for: LayerSpec(inputChannels: m, outputChannels: m, kernel: 3, height: n, width: n))
        #expect(try Self.design(seed, "2 thin").cost.multiplications == 2 * 9 * n * n * m * m)
        let wider = try Self.design(seed, "wider")
        #expect(wider.outputShape == [1, 136, n, n])
        #expect(wider.cost.multiplications == 9 * n * n * m * 136)
        #expect(wider.cost.parameters == 9 * m * 136)
    }

    @Test func memoryAccessCostOfAPointwiseConvolution() throws {
        // MAC of a 1×1 conv h×w×c1 → c2: hw(c1 + c2) + c1·c2 elements (ShuffleNet V2, guideline 1).
        let (h, w, c1, c2) = (7, 9, 12, 20)
        let d = try LayerDesigns.all(for: LayerSpec(inputChannels: c1, outputChannels: c2, kernel: 1, height: h, width: w))
        #expect(try Self.design(d, "standard").cost.memoryAccessBytes == 4 * (h * w * (c1 + c2) + c1 * c2))
    }

    /// The tied spatially separable design computes exactly the convolution with kernel u[c,r]·v[k,s].
    @Test func spatiallySeparableEqualsItsRankOneKernel() throws {
        let spec = LayerSpec(batch: 2, inputChannels: 4, outputChannels: 3, kernel: 5, height: 11, width: 9)
        let design = try #require(try LayerDesigns.spatiallySeparable(spec, 5))
        let (first, second) = (design.convolutions[0], design.convolutions[1])
        let u = first.weights.scalars, v2 = second.weights.scalars  // u: [C,1,k,1]; v2: [K,C,1,k] tied
        var full = [Float](repeating: 0, count: 3 * 4 * 5 * 5)
        for k in 0..<3 { for c in 0..<4 { for r in 0..<5 { for s in 0..<5 {
            full[((k * 4 + c) * 5 + r) * 5 + s] = u[c * 5 + r] * v2[(k * 4 + c) * 5 + s]
        } } } }
        let layer = try ConvolutionDescriptor(batch: 2, inputChannels: 4, inputHeight: 11, inputWidth: 9, outputChannels: 3,
                                              kernelHeight: 5, kernelWidth: 5, padding: .same)
        let x = try Tensor<Float>.random(shape: layer.inputShape, seed: 1)
        let expected = try ReferenceConvolution.compute(descriptor: layer, input: x,
                                                        weights: try Tensor(shape: layer.weightShape, scalars: full)).output.scalars
        let got = try LayerRunner(design: design, backend: ReferenceBackend())(x).scalars
        let worst = zip(got, expected).map { abs(Double($0) - $1) }.max() ?? 0
        #expect(worst < 1e-4)
    }

    /// Every design, run through the selector's backends, agrees with the same design run on the reference.
    @Test(arguments: [(16, 16, 3), (8, 24, 5), (12, 12, 7)])
    func designsRunCorrectlyThroughTheSelector(c: Int, k: Int, kernel: Int) throws {
        let spec = LayerSpec(batch: 2, inputChannels: c, outputChannels: k, kernel: kernel, height: 14, width: 10)
        let x = try Tensor<Float>.random(shape: [2, c, 14, 10], seed: 3)
        for design in try LayerDesigns.all(for: spec) {
            let fast = try LayerRunner(design: design, options: PlanOptions(threads: 2))(x)
            let reference = try LayerRunner(design: design, backend: ReferenceBackend())(x)
            #expect(fast.shape == design.outputShape)
            let scale = reference.scalars.map { abs(Double($0)) }.max() ?? 1
            let worst = zip(fast.scalars, reference.scalars).map { abs(Double($0 - $1)) }.max() ?? 0
            #expect(worst <= 1e-4 * max(scale, 1), "\(design.name)")
        }
    }

    @Test func channelShuffleIsAPermutationUndoneByTheTransposedShuffle() throws {
        let x = try Tensor<Float>.random(shape: [2, 12, 3, 4], seed: 2)
        let shuffled = try ChannelOperations.shuffle(x, groups: 3)
        #expect(shuffled.scalars.sorted() == x.scalars.sorted())
        #expect(shuffled != x)
        #expect(try ChannelOperations.shuffle(shuffled, groups: 4) == x)
        #expect(throws: ConvLabError.self) { try ChannelOperations.shuffle(x, groups: 5) }
        let (a, b) = try ChannelOperations.split(x, at: 5)
        #expect(try ChannelOperations.concat(a, b) == x)
    }

    @Test func guidelinesRunAndTheirCountsFollowTheFormulas() throws {
        let rows = try ShuffleNetGuidelines.run(height: 8, width: 8, channels: 16, options: PlanOptions(threads: 2),
                                                timing: TimingPolicy(minRepeats: 2, maxSeconds: 0.02))
        #expect(rows.count == 4 + 4 + 3 + 2 + 6)
        // Depth against width: each thin trunk and its wide counterpart (√2 wider, half the layers) do the same
        // multiplications up to the rounding of √2·c (16 → 23: 529 against 512).
        let g3b = rows.filter { $0.experiment.hasPrefix("G3b") }
        #expect(g3b.count == 6)
        for pair in stride(from: 0, to: g3b.count, by: 2) {
            let ratio = Double(g3b[pair + 1].cost.multiplications) / Double(g3b[pair].cost.multiplications)
            #expect(abs(ratio - 1) < 0.05, "\(g3b[pair].setting): \(ratio)")
        }
        let g1 = rows.filter { $0.experiment.hasPrefix("G1") }
        #expect(zip(g1, g1.dropFirst()).allSatisfy { $0.cost.memoryAccessBytes <= $1.cost.memoryAccessBytes })
        let g4 = rows.filter { $0.experiment.hasPrefix("G4") }
        #expect(g4[0].cost.flops < g4[1].cost.flops && g4[0].cost.elementwiseOperations == 0)
        #expect(rows.allSatisfy { $0.seconds > 0 })
    }
}

@Suite struct DecompositionTests {
    static let layer = try! ConvolutionDescriptor(batch: 1, inputChannels: 6, inputHeight: 13, inputWidth: 11,
                                                  outputChannels: 5, kernelHeight: 3, kernelWidth: 3, strideHeight: 2,
                                                  strideWidth: 1,
                                                  padding: .explicit(Padding(top: 2, bottom: 0, left: 1, right: 2)))

    static func lowRank(_ method: KernelDecomposition.Method, rank: Int, seed: UInt64) throws -> Tensor<Float> {
        let (K, C, R, S) = (5, 6, 3, 3)
        var generator = SeededGenerator(seed: seed)
        func random(_ n: Int) -> [Double] { (0..<n).map { _ in generator.nextNormal() } }
        var w = [Double](repeating: 0, count: K * C * R * S)
        switch method {
        case .svd:  // Σᵢ v_i[c,r]·h_i[k,s]
            for _ in 0..<rank {
                let v = random(C * R), h = random(K * S)
                for k in 0..<K { for c in 0..<C { for r in 0..<R { for s in 0..<S {
                    w[((k * C + c) * R + r) * S + s] += v[c * R + r] * h[k * S + s]
                } } } }
            }
        case .cp:  // Σᵢ a⊗b⊗u⊗v
            for _ in 0..<rank {
                let a = random(K), b = random(C), u = random(R), v = random(S)
                for k in 0..<K { for c in 0..<C { for r in 0..<R { for s in 0..<S {
                    w[((k * C + c) * R + r) * S + s] += a[k] * b[c] * u[r] * v[s]
                } } } }
            }
        case .tt:  // Σ G1[c,a]·G2[a,r,b]·G3[b,s,d]·G4[d,k], every rank `rank`
            let g1 = random(C * rank), g2 = random(rank * R * rank), g3 = random(rank * S * rank), g4 = random(rank * K)
            for k in 0..<K { for c in 0..<C { for r in 0..<R { for s in 0..<S {
                var sum = 0.0
                for a in 0..<rank { for b in 0..<rank { for e in 0..<rank {
                    sum += g1[c * rank + a] * g2[(a * R + r) * rank + b] * g3[(b * S + s) * rank + e] * g4[e * K + k]
                } } }
                w[((k * C + c) * R + r) * S + s] = sum
            } } } }
        case .tucker:  // core (rank × rank × R × S) ×₀ A (K×rank) ×₁ B (C×rank)
            let core = random(rank * rank * R * S), a = random(K * rank), b = random(C * rank)
            for k in 0..<K { for c in 0..<C { for rs in 0..<(R * S) {
                var sum = 0.0
                for i in 0..<rank { for j in 0..<rank { sum += a[k * rank + i] * core[(i * rank + j) * R * S + rs] * b[c * rank + j] } }
                w[(k * C + c) * R * S + rs] = sum
            } } }
        }
        return try Tensor(shape: [K, C, R, S], scalars: w.map { Float($0) })
    }

    @Test(arguments: KernelDecomposition.Method.allCases)
    func tensorsOfKnownRankAreRecovered(method: KernelDecomposition.Method) throws {
        let rank = 2
        let w = try Self.lowRank(method, rank: rank, seed: 11)
        let ranks = KernelDecomposition.ranks(method, rank: rank, layer: Self.layer)
        let decomposition = try KernelDecomposition.decompose(method, weights: w, layer: Self.layer, ranks: ranks,
                                                              maxIterations: 2000)
        #expect(decomposition.reconstructionError(of: w) < (method == .cp ? 1e-4 : 1e-5), "\(method)")
    }

    @Test(arguments: [KernelDecomposition.Method.svd, .tucker, .cp, .tt])
    func errorFallsWithRank(method: KernelDecomposition.Method) throws {
        let w = try Tensor<Float>.random(shape: Self.layer.weightShape, seed: 4)
        let ranks = method == .svd ? [1, 3, 6, 12, 15] : method == .tucker ? [1, 2, 4, 6] : method == .tt
            ? [1, 2, 4, 8, 15] : [1, 4, 12, 30]
        let errors = try ranks.map { r in
            try KernelDecomposition.decompose(method, weights: w, layer: Self.layer,
                                              ranks: KernelDecomposition.ranks(method, rank: r, layer: Self.layer))
                .reconstructionError(of: w)
        }
        if method == .cp {
            #expect(errors.last! < errors.first! / 2)
        } else {
            #expect(zip(errors, errors.dropFirst()).allSatisfy { $0 >= $1 - 1e-9 }, "\(errors)")
            #expect(errors.last! < 1e-5)  // full rank reproduces the kernel
        }
    }

    /// Stage shapes, and the chain computing exactly the convolution with the approximated kernel — with stride 2
    /// and asymmetric padding carried by the right stages.
    @Test(arguments: KernelDecomposition.Method.allCases)
    func factorShapesAndChainGeometry(method: KernelDecomposition.Method) throws {
        let d = Self.layer
        let w = try Tensor<Float>.random(shape: d.weightShape, seed: 8)
        let ranks = method == .tucker ? [4, 3] : method == .tt ? [3, 4, 2] : [3]
        let decomposition = try KernelDecomposition.decompose(method, weights: w, layer: d, ranks: ranks)
        let shapes = decomposition.stages.map(\.weights.shape)
        switch method {
        case .svd: #expect(shapes == [[3, 6, 3, 1], [5, 3, 1, 3]])
        case .cp: #expect(shapes == [[3, 6, 1, 1], [3, 1, 3, 1], [3, 1, 1, 3], [5, 3, 1, 1]])
        case .tucker: #expect(shapes == [[4, 6, 1, 1], [3, 4, 3, 3], [5, 3, 1, 1]])
        case .tt: #expect(shapes == [[3, 6, 1, 1], [4, 3, 3, 1], [2, 4, 1, 3], [5, 2, 1, 1]])
        }
        #expect(decomposition.stages.last?.descriptor.outputShape == d.outputShape)
        let x = try Tensor<Float>.random(shape: d.inputShape, seed: 9)
        let chain = LayerDesign(name: "chain", steps: decomposition.stages.map { .convolution($0, uniqueWeights: nil) },
                                inputShape: d.inputShape, outputShape: d.outputShape)
        let got = try LayerRunner(design: chain, backend: ReferenceBackend())(x).scalars
        let expected = try ReferenceConvolution.compute(descriptor: d, input: x, weights: decomposition.approximation).output.scalars
        let worst = zip(got, expected).map { abs(Double($0) - $1) }.max() ?? 0
        #expect(worst < 1e-4, "\(method)")
        #expect(decomposition.parameterCount == decomposition.stages.map(\.weights.count).reduce(0, +))
    }

    /// TT-SVD truncated only at its first step is the best rank-r approximation of the C × (R·S·K) unfolding: its
    /// error is exactly that unfolding's singular-value tail (Eckart–Young), and ranks beyond the limits are refused.
    @Test func tensorTrainFirstStepIsEckartYoung() throws {
        let d = Self.layer
        let (K, C, R, S) = (d.outputChannels, d.inputChannels, d.kernelHeight, d.kernelWidth)
        let w = try Tensor<Float>.random(shape: d.weightShape, seed: 21)
        let x = w.scalars.map(Double.init)
        var unfolding = Matrix(rows: C, columns: R * S * K)
        for k in 0..<K { for c in 0..<C { for r in 0..<R { for s in 0..<S {
            unfolding[c, (r * S + s) * K + k] = x[((k * C + c) * R + r) * S + s]
        } } } }
        let sigma = unfolding.singularValueDecomposition().sigma
        let total = sigma.reduce(0) { $0 + $1 * $1 }
        for rank in 1...5 {
            let tail = sigma.dropFirst(rank).reduce(0) { $0 + $1 * $1 }
            let full = KernelDecomposition.ranks(.tt, rank: Int.max, layer: d)
            let decomposition = try KernelDecomposition.decompose(.tt, weights: w, layer: d,
                                                                  ranks: [rank, min(full[1], rank * R), full[2]])
            #expect(abs(decomposition.reconstructionError(of: w) - (tail / total).squareRoot()) < 1e-5, "rank \(rank)")
        }
        #expect(throws: ConvLabError.self) { try KernelDecomposition.decompose(.tt, weights: w, layer: d, ranks: [2, 7, 2]) }
        #expect(throws: ConvLabError.self) { try KernelDecomposition.decompose(.tt, weights: w, layer: d, ranks: [2, 2]) }
    }

    /// LAPACK's SVD against the Jacobi one on tall, wide and square matrices: the same singular values, U and V
    /// orthonormal, and U·Σ·Vᵀ reproducing A.
    @Test(arguments: [(7, 3), (3, 7), (12, 12), (40, 9)])
    func lapackSVDAgreesWithJacobi(rows: Int, columns: Int) throws {
        var generator = SeededGenerator(seed: UInt64(rows * 100 + columns))
        let a = Matrix(rows: rows, columns: columns, values: (0..<(rows * columns)).map { _ in generator.nextNormal() })
        let (u, sigma, v) = a.singularValueDecomposition()
        let jacobi = a.jacobiSingularValueDecomposition().sigma
        let k = min(rows, columns)
        #expect(u.rows == rows && u.columns == k && v.rows == columns && v.columns == k && sigma.count == k)
        #expect(zip(sigma, jacobi).allSatisfy { abs($0 - $1) < 1e-10 * max(sigma[0], 1) })
        #expect(zip(sigma, sigma.dropFirst()).allSatisfy { $0 >= $1 })
        var worst = 0.0
        for i in 0..<rows { for j in 0..<columns {
            var sum = 0.0
            for t in 0..<k { sum += u[i, t] * sigma[t] * v[j, t] }
            worst = max(worst, abs(sum - a[i, j]))
        } }
        #expect(worst < 1e-10)
        let gram = u.transposed * u
        for i in 0..<k { for j in 0..<k { #expect(abs(gram[i, j] - (i == j ? 1 : 0)) < 1e-10) } }
    }

    @Test func alsReportsWhyItStoppedAndIsDeterministic() throws {
        let w = try Tensor<Float>.random(shape: Self.layer.weightShape, seed: 5)
        let capped = try KernelDecomposition.decompose(.cp, weights: w, layer: Self.layer, ranks: [5], maxIterations: 3)
        #expect(capped.iterations == 3 && capped.stopReason?.contains("cap") == true)
        let again = try KernelDecomposition.decompose(.cp, weights: w, layer: Self.layer, ranks: [5], maxIterations: 3)
        #expect(again.approximation == capped.approximation)
    }

    @Test func badRequestsAreErrors() throws {
        let w = try Tensor<Float>.random(shape: Self.layer.weightShape, seed: 5)
        #expect(throws: ConvLabError.self) {
            try KernelDecomposition.decompose(.tucker, weights: w, layer: Self.layer, ranks: [3])
        }
        #expect(throws: ConvLabError.self) {
            try KernelDecomposition.decompose(.svd, weights: w, layer: Self.layer, ranks: [0])
        }
        #expect(throws: ConvLabError.self) {
            try KernelDecomposition.decompose(.svd, weights: w, layer: Self.layer, ranks: [100])
        }
        let grouped = try ConvolutionDescriptor(inputChannels: 4, inputHeight: 8, inputWidth: 8, outputChannels: 4,
                                                kernelHeight: 3, kernelWidth: 3, groups: 2)
        #expect(throws: ConvLabError.self) {
            try KernelDecomposition.decompose(.cp, weights: try Tensor(shape: grouped.weightShape), layer: grouped,
                                              ranks: [2])
        }
    }

    @Test func rankByOutputErrorBudget() throws {
        let d = try ConvolutionDescriptor(inputChannels: 8, inputHeight: 12, inputWidth: 12, outputChannels: 8,
                                          kernelHeight: 3, kernelWidth: 3, padding: .same)
        let w = try DecompositionStudy.syntheticKernel(shape: d.weightShape, seed: 3)
        let x = try Tensor<Float>.random(shape: d.inputShape, seed: 4)
        let found = try #require(try DecompositionStudy.smallestRank(.svd, weights: w, layer: d, input: x,
                                                                     maxOutputError: 0.1, maxRank: 24,
                                                                     options: PlanOptions(threads: 2)))
        let record = try DecompositionStudy.evaluate(found.decomposition, weights: w, layer: d, input: x,
                                                     options: PlanOptions(threads: 2), timing: nil)
        #expect(record.outputError <= 0.1)
        if found.rank > 1 {
            let smaller = try KernelDecomposition.decompose(.svd, weights: w, layer: d, ranks: [found.rank - 1])
            let worse = try DecompositionStudy.evaluate(smaller, weights: w, layer: d, input: x,
                                                        options: PlanOptions(threads: 2), timing: nil)
            #expect(worse.outputError > 0.1)
        }
    }
}

@Suite struct LayerCLITests {
    @Test func layersPrintsTheWorkedExample() throws {
        let result = try CLITests.run(["layers", "--in", "3", "--out", "1", "--kernel", "5", "--size", "12", "--pad", "0",
                                       "--no-run", "--format", "csv"])
        #expect(result.status == 0, "\(result.stderr)")
        let rows = CSVReader.rows(result.stdout)
        let byName = Dictionary(rows.map { ($0["design"] ?? "", $0) }, uniquingKeysWith: { a, _ in a })
        #expect(byName["standard 5x5"]?["params"] == "75" && byName["standard 5x5"]?["multiplications"] == "4800")
        #expect(byName["spatially separable (rank-1)"]?["multiplications"] == "2400")
        #expect(byName["depthwise separable (x1)"]?["params"] == "78")
    }

    @Test func decomposeWritesFactorsAndRejectsBadInput() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("convlab-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let weights = directory + "/w.npy"
        try NumpyArray(try DecompositionStudy.syntheticKernel(shape: [8, 6, 3, 3], seed: 1)).write(to: weights)
        let result = try CLITests.run(["decompose", "--method", "tucker", "--ranks", "3,4", "--weights", weights,
                                       "--size", "10", "--output-prefix", directory + "/f", "--no-run"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("output error"))
        for i in 1...3 { #expect(FileManager.default.fileExists(atPath: directory + "/f-\(i).npy")) }
        #expect(try NumpyArray.read(contentsOf: directory + "/f-2.npy").shape == [4, 3, 3, 3])
        let bad = try CLITests.run(["decompose", "--method", "qr", "--rank", "2", "--weights", weights])
        #expect(bad.status != 0 && bad.stderr.contains("qr"))
    }
}

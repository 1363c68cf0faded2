import ConvLab
import Testing

@Suite struct WinogradTransformTests {
    static let sizes: [(Int, Int)] = [(2, 3), (4, 3), (6, 3), (8, 3), (2, 5), (4, 5), (2, 7), (3, 2), (1, 3), (5, 1)]

    /// Every generated set satisfies the exact identity, for every fraction placement.
    @Test(arguments: sizes.indices)
    func generatedTransformsAreExact(index: Int) throws {
        let (m, r) = Self.sizes[index]
        for placement in WinogradTransform.FractionPlacement.allCases {
            let t = try WinogradTransform(outputSize: m, kernelSize: r, fractions: placement)
            #expect(try t.verify(), "\(t)")
            #expect(t.AT.count == m && t.AT[0].count == m + r - 1)
            #expect(t.G.count == m + r - 1 && t.G[0].count == r)
            #expect(t.BT.count == m + r - 1 && t.BT[0].count == m + r - 1)
        }
    }

    /// Independent of `verify()`: apply the transforms to random rational tiles and compare with the correlation.
    @Test func transformsReproduceCorrelationOnRandomRationals() throws {
        var generator = SeededGenerator(seed: 42)
        for (m, r) in Self.sizes {
            let t = try WinogradTransform(outputSize: m, kernelSize: r, points: nil, fractions: .a)
            let n = m + r - 1
            for _ in 0..<5 {
                let d = try (0..<n).map { _ in try Rational(Int.random(in: -9...9, using: &generator), Int.random(in: 1...7, using: &generator)) }
                let g = try (0..<r).map { _ in try Rational(Int.random(in: -9...9, using: &generator), Int.random(in: 1...7, using: &generator)) }
                let gt = try t.G.map { row in try zip(row, g).reduce(Rational.zero) { try $0.adding($1.0.multiplied(by: $1.1)) } }
                let bd = try t.BT.map { row in try zip(row, d).reduce(Rational.zero) { try $0.adding($1.0.multiplied(by: $1.1)) } }
                let product = try zip(gt, bd).map { try $0.multiplied(by: $1) }
                for i in 0..<m {
                    let winograd = try zip(t.AT[i], product).reduce(Rational.zero) { try $0.adding($1.0.multiplied(by: $1.1)) }
                    let direct = try (0..<r).reduce(Rational.zero) { try $0.adding(g[$1].multiplied(by: d[i + $1])) }
                    #expect(winograd == direct, "F(\(m),\(r)) output \(i)")
                }
            }
        }
    }

    @Test func f23MatchesTheClassicLavinGrayMatrices() throws {
        // With points 0, 1, −1 and fractions in G, Bᵀ and Aᵀ are the familiar integer matrices (up to row signs
        // and order of the interpolation points).
        let t = try WinogradTransform(outputSize: 2, kernelSize: 3, points: [0, 1, -1])
        #expect(t.AT == [[1, 1, 1, 0], [0, 1, -1, 1]])
        #expect(t.multiplications2D == (16, 36))
        for row in t.BT { #expect(row.allSatisfy { $0.denominator == 1 }) }
        #expect(t.G.contains { row in row.contains { $0.denominator == 2 } })
    }

    @Test func customPointsAndBadPoints() throws {
        let custom = try WinogradTransform(outputSize: 4, kernelSize: 3,
                                           points: [0, 1, -1, try Rational(1, 2), try Rational(-1, 2)])
        #expect(try custom.verify())
        #expect(throws: ConvLabError.self) { try WinogradTransform(outputSize: 4, kernelSize: 3, points: [0, 1, -1, 2]) }
        #expect(throws: ConvLabError.self) { try WinogradTransform(outputSize: 4, kernelSize: 3, points: [0, 1, -1, 2, 2]) }
        #expect(throws: ConvLabError.self) { try WinogradTransform(outputSize: 0, kernelSize: 3) }
        #expect(throws: ConvLabError.self) { try WinogradTransform(outputSize: 14, kernelSize: 5) }
    }

    @Test func defaultPointCounts() {
        for count in 0...12 { #expect(WinogradTransform.defaultPoints(count: count).count == count) }
    }

    @Test func errorGrowthIncreasesWithTheTile() throws {
        let growth = try [2, 4, 6, 8].map { try WinogradTransform(outputSize: $0, kernelSize: 3).errorGrowth }
        #expect(growth == growth.sorted())
        #expect(growth[0] >= 1)
        let identity = try WinogradTransform(outputSize: 4, kernelSize: 1)
        #expect(try identity.verify())
    }

    @Test func rationalParsingAndArithmetic() throws {
        #expect(try Rational(parsing: "-1/2") == Rational(-1, 2))
        #expect(try Rational(parsing: "0.25") == Rational(1, 4))
        #expect(try Rational(parsing: " 3 ") == 3)
        #expect(throws: ConvLabError.self) { try Rational(parsing: "1/0") }
        #expect(throws: ConvLabError.self) { try Rational(parsing: "x") }
        #expect(try Rational(2, 4).adding(Rational(1, 3)) == Rational(5, 6))
        #expect(throws: ConvLabError.self) { try Rational(Int.max / 2).multiplied(by: 4) }
    }
}

@Suite struct WinogradBackendTests {
    @Test func pointSearchRanksByMeasuredErrorAndBeatsTheNaiveF83Points() throws {
        let ranked = try WinogradPointSearch.search(outputSize: 8, kernelSize: 3, tiles: 48, limit: 60)
        #expect(ranked.count >= 30)
        #expect(zip(ranked, ranked.dropFirst()).allSatisfy { $0.meanRelativeError <= $1.meanRelativeError })
        let naive = try WinogradTransform(outputSize: 8, kernelSize: 3,
                                          points: WinogradTransform.defaultPoints(count: 9))
        let recommended = try WinogradTransform(outputSize: 8, kernelSize: 3)
        let naiveError = WinogradPointSearch.measureError(naive, channels: 16, tiles: 64, seed: 5)
        let recommendedError = WinogradPointSearch.measureError(recommended, channels: 16, tiles: 64, seed: 5)
        #expect(recommendedError.mean < naiveError.mean / 1.5)
        #expect(try recommended.verify())
    }

    @Test func customPointsAndFractionPlacementsRunThroughTheBackend() throws {
        let d = try ConvolutionDescriptor(batch: 2, inputChannels: 20, inputHeight: 17, inputWidth: 23,
                                          outputChannels: 18, kernelHeight: 3, kernelWidth: 3, padding: .same)
        for placement in WinogradTransform.FractionPlacement.allCases {
            let backend = WinogradBackend(outputTile: 4, points: [0, 1, -1, try Rational(1, 2), try Rational(-1, 2)],
                                          fractions: placement)
            let report = try AccuracyChecker.check(backend: backend, descriptor: d, seed: 3)
            #expect(report.passed, "fractions in \(placement): \(report)")
        }
    }

    @Test func stridedAndMismatchedKernelsAreUnsupportedWithReasons() throws {
        // A strided layer runs as the stride-1 layer over its phases (StrideAsPhasesTests) — unless that layer's
        // kernel is 1×1, as a 2×2 stride-2 layer's is.
        let strided = try ConvolutionDescriptor(inputChannels: 4, inputHeight: 9, inputWidth: 9, outputChannels: 4,
                                                kernelHeight: 2, kernelWidth: 2, strideHeight: 2, strideWidth: 2)
        // Dilation alone runs on the phases (DilationPhaseTests); with a stride it is refused.
        let dilated = try ConvolutionDescriptor(inputChannels: 4, inputHeight: 9, inputWidth: 9, outputChannels: 4,
                                                kernelHeight: 3, kernelWidth: 3, strideHeight: 1, strideWidth: 2,
                                                dilationHeight: 2, dilationWidth: 2)
        #expect(WinogradBackend().support(for: try ConvolutionDescriptor(
            inputChannels: 4, inputHeight: 9, inputWidth: 9, outputChannels: 4, kernelHeight: 3, kernelWidth: 3,
            dilationHeight: 2, dilationWidth: 2)).isSupported)
        let rectangular = try ConvolutionDescriptor(inputChannels: 4, inputHeight: 9, inputWidth: 9, outputChannels: 4,
                                                    kernelHeight: 3, kernelWidth: 5)
        let pointwise = try ConvolutionDescriptor(inputChannels: 4, inputHeight: 9, inputWidth: 9, outputChannels: 4,
                                                  kernelHeight: 1, kernelWidth: 1)
        for d in [strided, dilated, rectangular, pointwise] {
            guard case .unsupported(let reason) = WinogradBackend().support(for: d) else {
                Issue.record("\(d) should be unsupported")
                continue
            }
            #expect(!reason.isEmpty)
            #expect(throws: ConvLabError.self) {
                try WinogradBackend().makePlan(descriptor: d, weights: try Tensor(shape: d.weightShape),
                                               options: PlanOptions())
            }
        }
        let threeTap = try ConvolutionDescriptor(inputChannels: 4, inputHeight: 9, inputWidth: 9, outputChannels: 4,
                                                 kernelHeight: 5, kernelWidth: 5)
        #expect(!WinogradBackend(outputTile: 4, kernelSize: 3).support(for: threeTap).isSupported)
    }

    @Test func strassenRunsTheWinogradGemmsWithinTheCompoundedBound() throws {
        let d = try ConvolutionDescriptor(inputChannels: 64, inputHeight: 40, inputWidth: 40, outputChannels: 64,
                                          kernelHeight: 3, kernelWidth: 3, padding: .same)
        let engine = MatrixEngine.strassen(depth: 2, base: .native, cutoff: 4)
        // The compounded bound (1.4e-2) is above the default accuracy ceiling: refused unless allowed, and then
        // within its bound but `unbounded`, not a pass.
        #expect(throws: ConvLabError.self) {
            _ = try WinogradBackend(outputTile: 4).describe(d, options: PlanOptions(threads: 2, matrixEngine: engine))
        }
        let report = try AccuracyChecker.check(backend: WinogradBackend(outputTile: 4), descriptor: d, seed: 1,
                                               options: PlanOptions(threads: 2, matrixEngine: engine,
                                                                    accuracy: AccuracyCeiling(allowsInaccurate: true)))
        let classical = try AccuracyChecker.check(backend: WinogradBackend(outputTile: 4), descriptor: d, seed: 1,
                                                  options: PlanOptions(threads: 2))
        #expect(report.maxRelativeError <= report.errorBound && report.verdict == .unbounded)
        #expect(classical.passed)
        #expect(report.errorBound == classical.errorBound * 36)
        #expect(report.meanRelativeError > classical.meanRelativeError)  // Strassen really ran and adds error
    }
}

import ConvLab
import Testing

/// What each backend does with one NaN or ±Inf in its input — the behaviour the README documents:
/// - reference, im2col, direct: local. Exactly the outputs whose window reads the pixel (every output channel of its
///   group) become NaN, or ±Inf for an Inf; everything else stays finite and correct.
/// - winograd: the output tiles whose input tile reads the pixel (a superset of the window, at most m + r − 1
///   outputs away), NaN for NaN and Inf alike (the input transform subtracts Inf from Inf).
/// - fft-tiled: every output of the tiles that read the pixel; fft: the whole output plane. NaN for NaN and Inf.
/// - any GEMM-based backend with a Strassen engine: across the GEMM quadrants (other pixels and channels).
/// Other groups and other images of the batch are never touched, and the checker counts every mismatch.
@Suite struct NonFiniteTests {
    static let descriptor = try! ConvolutionDescriptor(batch: 2, inputChannels: 8, inputHeight: 30, inputWidth: 27,
                                                       outputChannels: 16, kernelHeight: 3, kernelWidth: 3,
                                                       padding: .same, groups: 2)
    /// The poisoned pixel: image 1, channel 5 (group 1), row 13, column 9.
    static let pixel = (n: 1, c: 5, row: 13, column: 9)

    /// Outputs whose window reads the pixel.
    static func window(_ d: ConvolutionDescriptor) -> Set<Int> {
        var result = Set<Int>()
        let group = pixel.c / d.channelsPerGroup
        for k in (group * d.outputChannelsPerGroup)..<((group + 1) * d.outputChannelsPerGroup) {
            for oy in 0..<d.outputHeight {
                for ox in 0..<d.outputWidth {
                    let dy = pixel.row - (oy - d.padding.top), dx = pixel.column - (ox - d.padding.left)
                    if (0..<d.kernelHeight).contains(dy) && (0..<d.kernelWidth).contains(dx) {
                        result.insert(((pixel.n * d.outputChannels + k) * d.outputHeight + oy) * d.outputWidth + ox)
                    }
                }
            }
        }
        return result
    }

    /// Where outputs may be non-finite at all: the pixel's image and group.
    static func sameImageAndGroup(_ d: ConvolutionDescriptor, _ i: Int) -> Bool {
        let plane = d.outputHeight * d.outputWidth
        let (n, k) = ((i / plane) / d.outputChannels, (i / plane) % d.outputChannels)
        return n == pixel.n && k / d.outputChannelsPerGroup == pixel.c / d.channelsPerGroup
    }

    static func distance(_ d: ConvolutionDescriptor, _ i: Int) -> Int {
        let within = i % (d.outputHeight * d.outputWidth)
        let (oy, ox) = (within / d.outputWidth, within % d.outputWidth)
        return max(abs(oy - pixel.row), abs(ox - pixel.column))
    }

    static func run(_ backend: String, value: Float, engine: MatrixEngine = .native) throws
        -> (output: Tensor<Float>, report: AccuracyReport) {
        let d = descriptor
        var x = try Tensor<Float>.random(shape: d.inputShape, seed: 3)
        x.withUnsafeMutableBufferPointer {
            $0[((pixel.n * d.inputChannels + pixel.c) * d.inputHeight + pixel.row) * d.inputWidth + pixel.column] = value
        }
        // Positive weights: an Inf times a weight keeps its sign, so direct methods give Inf, not NaN.
        let w = try Tensor<Float>.random(shape: d.weightShape, distribution: .uniform(low: 0.1, high: 1), seed: 4)
        let reference = try ReferenceConvolution.compute(descriptor: d, input: x, weights: w)
        // A fixed 16×16 tile, so fft-tiled has several tiles whatever its cost model measures on this build.
        let plan = try BackendRegistry.backend(named: backend, settings: BackendSettings(fftTile: 16)).makePlan(
            descriptor: d, weights: w, options: PlanOptions(threads: 2, matrixEngine: engine))
        return try AccuracyChecker.check(plan: plan, input: x, reference: reference)
    }

    @Test(arguments: ["reference", "im2col", "direct"])
    func directMethodsKeepNaNAndInfLocal(backend: String) throws {
        let window = Self.window(Self.descriptor)
        #expect(window.count == 8 * 9)
        for value in [Float.nan, .infinity, -.infinity] {
            let (y, report) = try Self.run(backend, value: value)
            let bad = Set(y.scalars.indices.filter { !y.scalars[$0].isFinite })
            #expect(bad == window, "\(backend) \(value)")
            if value.isNaN {
                #expect(window.allSatisfy { y.scalars[$0].isNaN })
            } else {
                #expect(window.allSatisfy { y.scalars[$0] == value }, "\(backend) \(value): sign kept")
            }
            #expect(report.passed && report.nanMismatches == 0 && report.infinityMismatches == 0)
            #expect(report.comparedCount == y.count - window.count)
        }
    }

    @Test(arguments: ["winograd-f2x3", "winograd-f4x3", "winograd-f6x3"])
    func winogradSpreadsWithinItsTiles(backend: String) throws {
        let m = Int(backend.dropFirst("winograd-f".count).prefix(1))!
        let d = Self.descriptor
        let window = Self.window(d)
        for value in [Float.nan, .infinity] {
            let (y, report) = try Self.run(backend, value: value)
            let bad = Set(y.scalars.indices.filter { !y.scalars[$0].isFinite })
            #expect(bad.isSuperset(of: window), "\(backend) \(value)")
            #expect(bad.allSatisfy { y.scalars[$0].isNaN }, "\(backend): Inf becomes NaN in the transforms")
            #expect(bad.allSatisfy { Self.sameImageAndGroup(d, $0) && Self.distance(d, $0) <= m + 2 })
            // F(2,3) tiles: outputs beyond the window but in the same tile are NaN, and the checker says so.
            #expect(report.nanMismatches + report.infinityMismatches == bad.count - (value.isNaN ? window.count : 0))
            #expect(report.passed == (bad == window && value.isNaN))
        }
    }

    @Test(arguments: ["fft", "fft-tiled"])
    func fftSpreadsOverItsTransform(backend: String) throws {
        let d = Self.descriptor
        let plane = d.outputHeight * d.outputWidth
        for value in [Float.nan, .infinity] {
            let (y, report) = try Self.run(backend, value: value)
            let bad = Set(y.scalars.indices.filter { !y.scalars[$0].isFinite })
            #expect(bad.isSuperset(of: Self.window(d)))
            #expect(bad.allSatisfy { y.scalars[$0].isNaN && Self.sameImageAndGroup(d, $0) })
            if backend == "fft" {
                #expect(bad.count == d.outputChannelsPerGroup * plane, "the whole plane of each channel in the group")
            } else {
                #expect(bad.count < d.outputChannelsPerGroup * plane, "only the tiles that read the pixel")
            }
            #expect(!report.passed && report.nanMismatches > 0)
        }
    }

    /// Strassen adds quadrants of the GEMM operands before multiplying, so a NaN reaches other pixels' columns.
    @Test func strassenSpreadsAcrossQuadrants() throws {
        let d = Self.descriptor
        let (y, _) = try Self.run("im2col", value: .nan, engine: .strassen(depth: 1, base: .native, cutoff: 2))
        let bad = Set(y.scalars.indices.filter { y.scalars[$0].isNaN })
        #expect(bad.isSuperset(of: Self.window(d)) && bad.count > Self.window(d).count)
        #expect(bad.allSatisfy { Self.sameImageAndGroup(d, $0) })
    }
}

import ConvLab
import Testing

@Suite struct AccuracyCheckerTests {
    static func reference(_ values: [Double], scale: [Double]) throws -> ReferenceResult {
        ReferenceResult(output: try Tensor(shape: [1, 1, 1, values.count], scalars: values),
                        magnitude: try Tensor(shape: [1, 1, 1, values.count], scalars: scale))
    }

    @Test func relativeErrorIsNormalisedByTheScale() throws {
        let reference = try Self.reference([1, -2, 0], scale: [4, 2, 1])
        let output = try Tensor<Float>(shape: [1, 1, 1, 3], scalars: [1.5, -2, 0.25])
        let report = try AccuracyChecker.compare(output: output, reference: reference, errorBound: 0.2)
        #expect(report.maxAbsoluteError == 0.5)
        #expect(report.maxRelativeError == 0.25)        // 0.25 / 1 beats 0.5 / 4
        #expect(abs(report.meanRelativeError - (0.125 + 0 + 0.25) / 3) < 1e-15)
        #expect(!report.passed)
        // Within a bound of 0.25: a pass only under a ceiling that admits such a bound; under the default 1e-2
        // ceiling the bound promises nothing and the verdict is `unbounded`.
        #expect(try AccuracyChecker.compare(output: output, reference: reference, errorBound: 0.25, ceiling: 1).passed)
        let loose = try AccuracyChecker.compare(output: output, reference: reference, errorBound: 0.25)
        #expect(loose.verdict == .unbounded && !loose.passed)
        #expect(try AccuracyChecker.compare(output: output, reference: reference, errorBound: 0.2).verdict == .fail)
    }

    @Test func nanAndInfinityMismatchesFailTheCheck() throws {
        let reference = try Self.reference([.nan, 1, .infinity, 2], scale: [1, 1, .infinity, 1])
        let matching = try Tensor<Float>(shape: [1, 1, 1, 4], scalars: [.nan, 1, .infinity, 2])
        let report = try AccuracyChecker.compare(output: matching, reference: reference, errorBound: 1e-6)
        #expect(report.passed && report.nanMismatches == 0 && report.infinityMismatches == 0)
        #expect(report.comparedCount == 2)
        let wrong = try Tensor<Float>(shape: [1, 1, 1, 4], scalars: [0, .nan, -.infinity, 2])
        let bad = try AccuracyChecker.compare(output: wrong, reference: reference, errorBound: 1)
        #expect(bad.nanMismatches == 2 && bad.infinityMismatches == 1 && !bad.passed)
    }

    @Test func allZeroScaleDemandsAnExactZero() throws {
        let reference = try Self.reference([0, 0], scale: [0, 0])
        let report = try AccuracyChecker.compare(output: try Tensor(shape: [1, 1, 1, 2], scalars: [0, 1e-30]),
                                                 reference: reference, errorBound: 1)
        #expect(report.maxRelativeError == .infinity && !report.passed)
    }

    /// An output with a (near) zero scale, e.g. entirely in the padding, is normalised by a quarter of the typical
    /// scale Σ|w_k|·mean|x| of its channel.
    @Test func tinyScalesAreNormalisedByTheTypicalScaleFloor() throws {
        let reference = ReferenceResult(output: try Tensor(shape: [1, 1, 1, 3], scalars: [0, 1, 1]),
                                        magnitude: try Tensor(shape: [1, 1, 1, 3], scalars: [0, 4, 0.5]),
                                        typicalMagnitude: try Tensor(shape: [1, 1], scalars: [8]))
        let output = try Tensor<Float>(shape: [1, 1, 1, 3], scalars: [0.25, 1, 1.5])
        let report = try AccuracyChecker.compare(output: output, reference: reference, errorBound: 1)
        #expect(report.maxRelativeError == 0.25)  // 0.25 / max(0, 8/4) = 0.125; 0.5 / max(0.5, 8/4) = 0.25
        #expect(abs(report.meanRelativeError - (0.125 + 0 + 0.25) / 3) < 1e-12)
    }

    @Test func ulpDistance() {
        #expect(ConvLab.ulpDistance(1, 1) == 0)
        #expect(ConvLab.ulpDistance(1, Float(1).nextUp) == 1)
        #expect(ConvLab.ulpDistance(0, -0) == 0)
        #expect(ConvLab.ulpDistance(Float.leastNonzeroMagnitude, -Float.leastNonzeroMagnitude) == 2)
        #expect(ConvLab.ulpDistance(1, 2) == 1 << 23)
    }

    @Test func shapeMismatchIsAnError() throws {
        let reference = try Self.reference([1, 2], scale: [1, 1])
        #expect(throws: ConvLabError.self) {
            try AccuracyChecker.compare(output: try Tensor(shape: [1, 1, 2, 1]), reference: reference, errorBound: 1)
        }
    }

    /// Direct methods keep a NaN local: only outputs whose window contains it become NaN, and the checker sees
    /// the reference agree.
    @Test(arguments: ["im2col", "direct"])
    func directMethodsKeepANaNLocal(backendName: String) throws {
        let d = try ConvolutionDescriptor(inputChannels: 2, inputHeight: 12, inputWidth: 12, outputChannels: 3,
                                          kernelHeight: 3, kernelWidth: 3, padding: .same)
        var x = try Tensor<Float>.random(shape: d.inputShape, seed: 1)
        x.withUnsafeMutableBufferPointer { $0[5 * 12 + 5] = .nan }
        let w = try Tensor<Float>.random(shape: d.weightShape, seed: 2)
        let reference = try ReferenceConvolution.compute(descriptor: d, input: x, weights: w)
        let plan = try BackendRegistry.backend(named: backendName).makePlan(descriptor: d, weights: w,
                                                                              options: PlanOptions())
        let (output, report) = try AccuracyChecker.check(plan: plan, input: x, reference: reference)
        #expect(report.passed)
        #expect(output.scalars.filter(\.isNaN).count == 3 * 9)
    }
}

@Suite struct TimingTests {
    @Test func stopsOnceTheMedianIsPinnedDown() {
        var calls = 0
        let result = Timing.measure(policy: TimingPolicy(warmupRuns: 2, minRepeats: 5, maxRepeats: 50,
                                                         minSeconds: 0, maxSeconds: 10)) { calls += 1 }
        #expect(result.repeats >= 5 && result.repeats <= 50)
        #expect(calls == result.repeats + 2)
        #expect(result.minimum <= result.median)
        #expect(result.confidenceLow <= result.median && result.median <= result.confidenceHigh)
    }

    @Test func respectsTheRepeatCap() {
        let result = Timing.measure(policy: TimingPolicy(warmupRuns: 0, minRepeats: 3, maxRepeats: 3, minSeconds: 5,
                                                         maxSeconds: 10)) {}
        #expect(result.repeats == 3)
    }
}

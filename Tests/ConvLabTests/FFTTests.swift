import ConvLab
import Foundation
import Testing

@Suite struct FFTTests {
    static let gaussBackends: [FFTBackend] = [FFTBackend(tiling: .wholeImage, product: .gauss),
                                              FFTBackend(tiling: .tiled(size: nil), product: .gauss)]

    /// The Gauss (3-multiplication) product on the same random shapes as every other backend.
    @Test(arguments: [0, 1])
    func gaussProductAgreesWithReference(which: Int) throws {
        let backend = Self.gaussBackends[which]
        for (index, descriptor) in BackendAgreementTests.descriptors.enumerated() {
            let report = try AccuracyChecker.check(backend: backend, descriptor: descriptor, seed: UInt64(index),
                                                   options: PlanOptions(threads: 2))
            #expect(report.passed, "\(backend.name) 3m on \(descriptor): \(report)")
        }
    }

    @Test(arguments: [8, 12, 16, 32])
    func forcedTileSizesAgreeWithReference(tile: Int) throws {
        let backend = FFTBackend(tiling: .tiled(size: tile))
        var checked = 0
        for (index, descriptor) in BackendAgreementTests.descriptors.prefix(80).enumerated()
        where backend.support(for: descriptor).isSupported {
            let report = try AccuracyChecker.check(backend: backend, descriptor: descriptor, seed: UInt64(index))
            #expect(report.passed, "tile \(tile) on \(descriptor): \(report)")
            checked += 1
        }
        #expect(checked > 20)
    }

    @Test func tileSmallerThanTheKernelIsUnsupportedWithAReason() throws {
        let d = try ConvolutionDescriptor(inputChannels: 2, inputHeight: 30, inputWidth: 30, outputChannels: 2,
                                          kernelHeight: 9, kernelWidth: 3, padding: .same)
        let status = FFTBackend(tiling: .tiled(size: 8)).support(for: d)
        guard case .unsupported(let reason) = status else {
            Issue.record("tile 8 should not support a 9x3 kernel")
            return
        }
        #expect(reason.contains("9"))
        #expect(throws: ConvLabError.self) {
            try FFTBackend(tiling: .tiled(size: 8)).makePlan(descriptor: d, weights: try Tensor(shape: d.weightShape),
                                                             options: PlanOptions())
        }
    }

    @Test func costModelPicksATileThatHoldsTheKernel() throws {
        for kernel in [1, 3, 7, 13] {
            let d = try ConvolutionDescriptor(inputChannels: 16, inputHeight: 64, inputWidth: 64, outputChannels: 16,
                                              kernelHeight: kernel, kernelWidth: kernel, padding: .same)
            let size = try FFTBackend(tiling: .tiled(size: nil)).transformSize(for: d, options: PlanOptions(threads: 2))
            #expect(size.height > kernel && size.height == size.width)
            #expect(size.height <= 256)
        }
    }

    @Test func wholeImageTransformsAreFastSizesCoveringThePaddedInput() throws {
        let d = try ConvolutionDescriptor(inputChannels: 1, inputHeight: 100, inputWidth: 61, outputChannels: 1,
                                          kernelHeight: 7, kernelWidth: 5, padding: .same)
        let size = try FFTBackend().transformSize(for: d)
        #expect(size.height >= 106 && size.width >= 65)
        for n in [size.height, size.width] {
            var m = n
            for p in [2, 3, 5, 7] { while m % p == 0 { m /= p } }
            #expect(m == 1, "\(n) has a prime factor above 7")
        }
    }

    @Test func workspaceBeyondTheLimitIsRefusedWithTheAmountNeeded() throws {
        let d = try ConvolutionDescriptor(inputChannels: 32, inputHeight: 128, inputWidth: 128, outputChannels: 32,
                                          kernelHeight: 5, kernelWidth: 5, padding: .same)
        let options = PlanOptions(limits: ResourceLimits(maxTensorBytes: 1 << 30, maxWorkspaceBytes: 1 << 20))
        #expect {
            try FFTBackend().makePlan(descriptor: d, weights: try Tensor(shape: d.weightShape), options: options)
        } throws: { error in
            guard case ConvLabError.memoryLimitExceeded(let what, let required, let limit) = error else { return false }
            return what.contains("FFT") && required > limit
        }
    }

    /// Documented behaviour: one NaN in the input turns every output of the tiles that read it into NaN (the FFT
    /// mixes all samples of a tile), and the checker reports the mismatches against the reference, which keeps the
    /// NaN local.
    @Test func aNaNSpreadsOverItsTilesAndTheCheckerSaysSo() throws {
        let d = try ConvolutionDescriptor(inputChannels: 1, inputHeight: 24, inputWidth: 24, outputChannels: 1,
                                          kernelHeight: 3, kernelWidth: 3, padding: .same)
        var x = try Tensor<Float>.random(shape: d.inputShape, seed: 1)
        x.withUnsafeMutableBufferPointer { $0[12 * 24 + 12] = .nan }
        let w = try Tensor<Float>.random(shape: d.weightShape, seed: 2)
        let reference = try ReferenceConvolution.compute(descriptor: d, input: x, weights: w)
        let plan = try FFTBackend().makePlan(descriptor: d, weights: w, options: PlanOptions())
        let (output, report) = try AccuracyChecker.check(plan: plan, input: x, reference: reference)
        #expect(output.scalars.allSatisfy { $0.isNaN })
        #expect(report.nanMismatches == 24 * 24 - 9)
        #expect(!report.passed)
    }

    @Test(arguments: [FFTPlanningEffort.estimate, .measure])
    func planningEffortsGiveTheSameResultWithinTheBound(effort: FFTPlanningEffort) throws {
        let d = try ConvolutionDescriptor(batch: 2, inputChannels: 3, inputHeight: 20, inputWidth: 18,
                                          outputChannels: 5, kernelHeight: 5, kernelWidth: 5, padding: .same)
        let report = try AccuracyChecker.check(backend: FFTBackend(tiling: .tiled(size: 16), effort: effort),
                                               descriptor: d, seed: 3)
        #expect(report.passed)
    }

    @Test func wisdomRoundTripsThroughAFile() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("convlab-\(UUID()).wisdom").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let d = try ConvolutionDescriptor(inputChannels: 2, inputHeight: 14, inputWidth: 14, outputChannels: 2,
                                          kernelHeight: 3, kernelWidth: 3, padding: .same)
        _ = try FFTBackend(tiling: .tiled(size: 12), effort: .measure)
            .makePlan(descriptor: d, weights: try Tensor(shape: d.weightShape), options: PlanOptions())
        try FFTWisdom.save(to: path)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.contains("fftw"))
        try FFTWisdom.load(from: path)
        #expect(throws: ConvLabError.self) { try FFTWisdom.load(from: path + ".missing") }
    }

    @Test func strideAndDilationFollowTheReferenceDefinition() throws {
        let d = try ConvolutionDescriptor(batch: 2, inputChannels: 4, inputHeight: 33, inputWidth: 29,
                                          outputChannels: 6, kernelHeight: 3, kernelWidth: 5, strideHeight: 2,
                                          strideWidth: 3, padding: .explicit(Padding(top: 2, bottom: 0, left: 1, right: 3)),
                                          dilationHeight: 3, dilationWidth: 2, groups: 2)
        for backend in [FFTBackend(), FFTBackend(tiling: .tiled(size: nil)), FFTBackend(tiling: .tiled(size: 20))] {
            let report = try AccuracyChecker.check(backend: backend, descriptor: d, seed: 9)
            #expect(report.passed, "\(backend.name): \(report)")
        }
    }
}

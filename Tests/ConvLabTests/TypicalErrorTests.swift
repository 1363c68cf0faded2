import ConvLab
import Foundation
import Testing

/// The typical-error estimates (`TypicalError`) against measured mean errors, on random shapes the constants were not
/// fitted on: stride, dilation, padding, groups, depthwise, batch, odd and non-square sizes, every backend and pass.
@Suite struct TypicalErrorTests {
    struct Case: CustomStringConvertible {
        var backend: String, pass: ConvolutionPass, descriptor: ConvolutionDescriptor
        var measured: Double, estimate: Double
        var ratio: Double { measured / estimate }
        var description: String { "\(backend) \(pass) \(descriptor): measured \(measured), estimate \(estimate)" }
    }

    /// Measured mean relative error within 10× of the estimate on at least 95% of (shape, backend, pass) cases, for
    /// uniform and normal data; and the estimate is informative: the geometric mean of measured / estimate is within
    /// 2× of 1 (an estimate 10× off everywhere would not meet that).
    @Test func estimatesMatchMeasuredMeansOnHeldOutShapes() throws {
        let shapes = RandomDescriptors.make(count: 36, seed: 0x7E57) { d in
            d.outputHeight * d.outputWidth >= 4 && d.reductionLength >= 2
        } + RandomDescriptors.make(count: 24, seed: 0x7E58, maxStride: 1, maxDilation: 1, kernelSizes: [3, 3, 5, 7]) {
            $0.outputHeight * $0.outputWidth >= 4
        }
        var cases: [Case] = []
        for (index, d) in shapes.enumerated() {
            let distribution: Distribution = index % 2 == 0 ? .uniform(low: -1, high: 1)
                : .normal(mean: 0, standardDeviation: 1)
            for backend in BackendRegistry.all() where backend.name != "reference" {
                for pass in ConvolutionPass.allCases where backend.support(for: d, pass: pass).isSupported {
                    let options = PlanOptions(threads: 2)
                    guard (try? backend.describe(d, pass: pass, options: options)) != nil else { continue }
                    let report = try AccuracyChecker.check(backend: backend, pass: pass, descriptor: d,
                                                           seed: UInt64(index), distribution: distribution,
                                                           options: options)
                    guard let estimate = report.typicalError, report.meanRelativeError > 0 else { continue }
                    cases.append(Case(backend: backend.name, pass: pass, descriptor: d,
                                      measured: report.meanRelativeError, estimate: estimate))
                }
            }
        }
        #expect(cases.count >= 300, "\(cases.count) cases")
        let outside = cases.filter { $0.ratio > 10 || $0.ratio < 0.1 }
        #expect(Double(outside.count) <= 0.05 * Double(cases.count),
                "\(outside.count) of \(cases.count) outside 10x: \(outside.prefix(6))")
        let logMean = cases.map { log($0.ratio) }.reduce(0, +) / Double(max(cases.count, 1))
        #expect(abs(logMean) < log(2), "geometric mean of measured/estimate \(exp(logMean))")
        print("typical-error check: \(cases.count) cases, \(outside.count) outside 10x, geometric mean of "
              + "measured/estimate \(exp(logMean)), range \(cases.map(\.ratio).min() ?? 0)–\(cases.map(\.ratio).max() ?? 0)")
        // Every family contributes.
        let families = Set(cases.map { $0.backend.hasPrefix("winograd") ? "winograd" : $0.backend })
        #expect(families.isSuperset(of: ["direct", "im2col", "fft", "fft-tiled", "winograd"]), "\(families)")
    }

    /// The estimate follows the structure of the sums: the native GEMM's 128-term blocks make long sums more accurate
    /// than one chain; Winograd grows with the tile; Strassen grows it per level.
    @Test func estimatesOrderPlansAsTheirSumsDo() throws {
        let wide = try ConvolutionDescriptor(inputChannels: 256, inputHeight: 16, inputWidth: 16, outputChannels: 32,
                                             kernelHeight: 3, kernelWidth: 3, padding: .same)
        let options = PlanOptions(threads: 1)
        let direct = try DirectBackend().describe(wide, options: options).typicalError
        let im2col = try Im2colBackend().describe(wide, options: options).typicalError
        #expect(im2col < direct / 3)
        let f2 = try WinogradBackend(outputTile: 2).describe(wide, options: options).typicalError
        let f6 = try WinogradBackend(outputTile: 6).describe(wide, options: options).typicalError
        #expect(f6 > 4 * f2)
        let strassen = PlanOptions(threads: 1, matrixEngine: .strassen(depth: 2, base: .native, cutoff: 8))
        #expect(abs(try Im2colBackend().describe(wide, options: strassen).typicalError / im2col - 6) < 1e-9)
        // Worst case ≫ typical for every plan (the reason to report both).
        for backend in BackendRegistry.all() where backend.support(for: wide).isSupported {
            let plan = try backend.describe(wide, options: options)
            #expect(plan.errorBound > 10 * plan.typicalError, "\(backend.name)")
        }
    }

    /// `--tolerance-mode typical`: a tolerance between the typical errors of F(2,3) and F(4,3) keeps the first and
    /// drops the second, where the same tolerance on worst-case bounds admits nothing at all; the default typical
    /// tolerance keeps the F(6,3) class, as the worst-case default does.
    @Test func selectorFiltersOnTheTypicalEstimate() throws {
        let d = try ConvolutionDescriptor(inputChannels: 64, inputHeight: 56, inputWidth: 56, outputChannels: 64,
                                          kernelHeight: 3, kernelWidth: 3, padding: .same)
        let options = PlanOptions(threads: 2)
        let f2 = try WinogradBackend(outputTile: 2).describe(d, options: options).typicalError
        let f4 = try WinogradBackend(outputTile: 4).describe(d, options: options).typicalError
        let tolerance = (f2 * f4).squareRoot()
        let typical = Selector(tolerance: tolerance, toleranceMode: .typical).select(for: d, threads: 2)
        let eligible = Set(typical.ranked.map(\.backend.name))
        #expect(eligible.contains("winograd-f2x3") && !eligible.contains("winograd-f4x3"), "\(eligible)")
        #expect(typical.all.contains { c in
            if case .tooInaccurate(let judged, _) = c.status { return judged == f4 } else { return false }
        })
        #expect(Selector(tolerance: tolerance).select(for: d, threads: 2).choice == nil)
        // The library entry point takes the mode too; the plan it returns meets the tolerance by its typical error.
        let plan = try ConvLab.plan(for: .forward, descriptor: d, weights: try Tensor<Float>(shape: d.weightShape),
                                    tolerance: tolerance, options: options, toleranceMode: .typical)
        #expect(plan.summary.typicalError <= tolerance && plan.summary.errorBound > tolerance)
        let byDefault = Set(Selector(toleranceMode: .typical).select(for: d, threads: 2).ranked.map(\.backend.name))
        #expect(byDefault.isSuperset(of: ["winograd-f4x3", "winograd-f6x3", "direct", "im2col"]), "\(byDefault)")
    }
}

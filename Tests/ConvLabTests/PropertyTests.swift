import Foundation
import ConvLab
import Testing

/// Property: for a random problem and a random backend configuration, a backend either says it supports the problem
/// and then agrees with the float64 reference within its declared bound, or refuses with a reason — and then
/// planning anyway fails with `.unsupported` naming it, never a crash or a wrong answer.
@Suite struct PropertyTests {
    /// Everything a case varies besides the shape.
    struct Setup: CustomStringConvertible {
        var backend: any Convolution
        var options: PlanOptions
        var distribution: Distribution
        var seed: UInt64
        var description: String {
            "\(backend.name) threads \(options.threads) engine \(options.matrixEngine) \(distribution) seed \(seed)"
        }
    }

    static func randomSetup(_ g: inout SeededGenerator, seed: UInt64) -> Setup {
        let settings = BackendSettings(
            fftTile: [nil, nil, 8, 16, 32].randomElement(using: &g)!,
            fftProduct: ComplexProduct.allCases.randomElement(using: &g)!,
            winogradTile: [nil, 2, 3, 4, 5, 6].randomElement(using: &g)!)
        let backends = BackendRegistry.all(settings).filter { $0.name != "reference" }
        let engine: MatrixEngine = [.native, .native, .blas, .strassen(depth: 1, base: .native, cutoff: 4),
                                    .strassen(depth: 2, base: .blas, cutoff: 2)].randomElement(using: &g)!
        let distribution: Distribution = [.uniform(low: -1, high: 1), .normal(mean: 0, standardDeviation: 1),
                                          .rectifiedNormal, .uniform(low: 0, high: 1)].randomElement(using: &g)!
        return Setup(backend: backends.randomElement(using: &g)!,
                     options: PlanOptions(threads: Int.random(in: 1...3, using: &g), matrixEngine: engine),
                     distribution: distribution, seed: seed)
    }

    /// Supported cases to check: 3,000, or `CONVLAB_PROPERTY_CASES` (the AddressSanitizer pass of `.ci/run` runs 300).
    static let cases = ProcessInfo.processInfo.environment["CONVLAB_PROPERTY_CASES"].flatMap(Int.init) ?? 3000

    /// 3,000 supported (shape, backend, configuration) cases, plus every refusal met on the way.
    @Test func everyBackendAgreesWithTheReferenceOrRefusesWithAReason() throws {
        let fallbacks = ScratchFallbacks.total
        var g = SeededGenerator(seed: 0xC0_47_1AB)
        // Half the shapes come from the narrow domain of the fast algorithms (stride 1, no dilation), so every
        // backend gets supported cases; the other half exercise stride, dilation and the refusals.
        let wide = RandomDescriptors.make(count: 700, seed: 0xA11)
        let narrow = RandomDescriptors.make(count: 700, seed: 0xB22, maxStride: 1, maxDilation: 1,
                                            kernelSizes: [1, 2, 3, 3, 3, 4, 5, 5, 6, 7])
        var (agreed, refused, tooInaccurate, failures) = (0, 0, 0, [String]())
        var perBackend: [String: Int] = [:]
        var index = 0
        while agreed < Self.cases {
            let descriptor = index % 2 == 0 ? wide[(index / 2) % wide.count] : narrow[(index / 2) % narrow.count]
            let setup = Self.randomSetup(&g, seed: UInt64(index))
            index += 1
            switch setup.backend.support(for: descriptor) {
            case .unsupported(let reason):
                refused += 1
                if reason.isEmpty { failures.append("\(setup.backend.name) refused \(descriptor) without a reason") }
                let weights = try Tensor<Float>(shape: descriptor.weightShape)
                do {
                    _ = try setup.backend.makePlan(descriptor: descriptor, weights: weights, options: setup.options)
                    failures.append("\(setup.backend.name) planned \(descriptor) after refusing it")
                } catch ConvLabError.unsupported(let backend, let why) where backend == setup.backend.name && !why.isEmpty {
                } catch {
                    failures.append("\(setup.backend.name) on refused \(descriptor): \(error)")
                }
            case .supported:
                let report: AccuracyReport
                do {
                    report = try AccuracyChecker.check(backend: setup.backend, descriptor: descriptor, seed: setup.seed,
                                                       distribution: setup.distribution, options: setup.options)
                } catch ConvLabError.tooInaccurate(let backend, _, let bound, let ceiling, _) {
                    // Refused for a bound above the accuracy ceiling (large tiles on Strassen): a refusal, with why.
                    if backend != setup.backend.name || !(bound > ceiling) {
                        failures.append("\(setup.backend.name) refused \(descriptor) as too inaccurate: \(bound)")
                    }
                    tooInaccurate += 1
                    continue
                }
                if report.passed && report.comparedCount == descriptor.outputCount {
                    agreed += 1
                    perBackend[setup.backend.name, default: 0] += 1
                } else {
                    failures.append("\(setup) on \(descriptor): \(report)")
                }
            }
            if failures.count > 10 || index > 50_000 { break }
        }
        #expect(failures.isEmpty, "\(failures.prefix(5))")
        // Refusals for accuracy stay rare: only large tiles compounded with Strassen reach the ceiling.
        #expect(tooInaccurate <= Self.cases / 20, "\(tooInaccurate) refused as too inaccurate")
        #expect(agreed >= Self.cases && refused >= Self.cases / 6, "agreed \(agreed), refused \(refused)")
        // Every backend got its share of supported cases.
        #expect(perBackend.count == BackendRegistry.names.count - 1
                    && perBackend.values.allSatisfy { $0 >= Self.cases / 100 }, "\(perBackend)")
        #expect(ScratchFallbacks.total == fallbacks, "a GEMM got less workspace than it declared")
    }
}

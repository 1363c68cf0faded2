import ConvLabBackends
import ConvLabCore

/// Error statistics of backends over several seeds and data distributions: what the Winograd tile study, the point
/// search and the Strassen study measure. Every run compares with the float64 reference (`AccuracyChecker`).
public struct AccuracyRecord: Codable, Sendable {
    public var backend: String
    public var pass: ConvolutionPass
    public var variant: String
    public var distribution: String
    public var seeds: Int
    /// Mean over seeds of each run's mean relative error.
    public var meanRelativeError: Double
    /// Largest relative error over all runs.
    public var maxRelativeError: Double
    public var errorBound: Double
    /// The plan's estimate of the mean relative error (`TypicalError`), to set beside `meanRelativeError`.
    public var typicalError: Double
    public var passed: Bool
    /// The worst verdict over the seeds: fail, else unbounded, else pass; `refused` when the plan was refused (the
    /// reason is in `message`).
    public var check: String
    public var message: String?
}

public enum AccuracyStudy {
    /// Data (x, and dy for the backward passes) follow each distribution; weights are N(0, 1).
    public static func run(descriptor: ConvolutionDescriptor, backends: [any Convolution],
                           distributions: [Distribution], seeds: Int, options: PlanOptions = PlanOptions(),
                           pass: ConvolutionPass = .forward) throws -> [AccuracyRecord] {
        var records: [AccuracyRecord] = []
        let d = descriptor
        for distribution in distributions {
            // The same inputs for every backend, so their errors are directly comparable.
            var cases: [(input: Tensor<Float>, w: Tensor<Float>, dy: Tensor<Float>?, reference: ReferenceResult)] = []
            for seed in 0..<seeds {
                let x = try Tensor<Float>.random(shape: d.inputShape, distribution: distribution, seed: UInt64(1000 + seed))
                let w = try Tensor<Float>.random(shape: d.weightShape, distribution: .normal(mean: 0, standardDeviation: 1),
                                                 seed: UInt64(2000 + seed))
                let dy = pass == .forward ? nil
                    : try Tensor<Float>.random(shape: d.outputShape, distribution: distribution, seed: UInt64(3000 + seed))
                let input = pass == .backwardData ? dy! : x
                cases.append((input, w, dy, try ReferenceConvolution.compute(pass, descriptor: d, input: input, weights: w,
                                                                             gradOutput: dy, threads: options.threads)))
            }
            for backend in backends where backend.support(for: d, pass: pass).isSupported {
                var (meanSum, worst, bound, typical, passed, variant) = (0.0, 0.0, 0.0, 0.0, true, "")
                var verdicts: Set<AccuracyReport.Verdict> = []
                do {
                    _ = try backend.describe(d, pass: pass, options: options)
                } catch let error as ConvLabError {
                    guard case .tooInaccurate = error else { throw error }
                    records.append(AccuracyRecord(backend: backend.name, pass: pass, variant: "",
                                                  distribution: distribution.name, seeds: 0, meanRelativeError: .nan,
                                                  maxRelativeError: .nan, errorBound: .nan, typicalError: .nan,
                                                  passed: false,
                                                  check: "refused", message: error.description))
                    continue
                }
                for (input, w, dy, reference) in cases {
                    let plan = try backend.makePlan(pass: pass, descriptor: d, weights: w, options: options)
                    let output = try plan.run(input, gradOutput: pass == .backwardWeights ? dy : nil)
                    let report = try AccuracyChecker.compare(output: output, reference: reference,
                                                             errorBound: plan.summary.errorBound,
                                                             ceiling: options.accuracy.ceiling,
                                                             typicalError: plan.summary.typicalError)
                    meanSum += report.meanRelativeError
                    worst = max(worst, report.maxRelativeError)
                    bound = report.errorBound
                    typical = plan.summary.typicalError
                    passed = passed && report.passed
                    verdicts.insert(report.verdict)
                    variant = plan.summary.variant
                }
                records.append(AccuracyRecord(backend: backend.name, pass: pass, variant: variant,
                                              distribution: distribution.name, seeds: seeds,
                                              meanRelativeError: meanSum / Double(max(seeds, 1)),
                                              maxRelativeError: worst, errorBound: bound, typicalError: typical,
                                              passed: passed,
                                              check: (verdicts.contains(.fail) ? AccuracyReport.Verdict.fail
                                                      : verdicts.contains(.unbounded) ? .unbounded : .pass).rawValue))
            }
        }
        return records
    }
}

extension Distribution {
    /// Short names for the CLI: uniform (−1..1), normal (0, 1), relu (max(0, N(0, 1))).
    public init(named name: String) throws {
        switch name.lowercased() {
        case "uniform": self = .uniform(low: -1, high: 1)
        case "normal", "gaussian": self = .normal(mean: 0, standardDeviation: 1)
        case "relu": self = .rectifiedNormal
        default: throw ConvLabError.unknownName(kind: "distribution", name: name, known: ["uniform", "normal", "relu"])
        }
    }

    public var name: String {
        switch self {
        case .uniform: return "uniform"
        case .normal: return "normal"
        case .rectifiedNormal: return "relu"
        }
    }
}

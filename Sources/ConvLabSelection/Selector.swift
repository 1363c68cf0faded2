import ConvLabBackends
import ConvLabCore
import ConvLabMatMul

/// Picks the backend for a convolution: from measured wisdom when there is a matching entry, otherwise from the
/// `CostModel`'s predictions — in both cases only among candidates that support the shape, whose declared error bound
/// is within the tolerance, and (at plan time) whose workspace fits the cap.
public struct Selector: Sendable {
    /// Why a candidate is or is not in the running.
    public enum Status: Sendable, Hashable {
        case eligible
        case unsupported(String)
        case tooInaccurate(bound: Double, tolerance: Double)
        case failedWhenMeasured(String)
    }

    public struct Candidate: Sendable {
        public var backend: any Convolution
        public var status: Status
        /// The cost model's prediction (heuristic) or the measured median (wisdom), in seconds.
        public var seconds: Double?
        public var errorBound: Double
    }

    public enum Source: Sendable, Hashable {
        case heuristic
        case wisdom
    }

    public struct Selection: Sendable {
        /// Eligible candidates, fastest first: the choice and the fall-backs if its workspace is over the cap.
        public var ranked: [Candidate]
        /// Every candidate, in registry order, with its status.
        public var all: [Candidate]
        public var source: Source
        public var tolerance: Double
        public var choice: Candidate? { ranked.first }
    }

    public var costModel: CostModel
    /// Largest acceptable error bound (relative, the checker's normalisation); nil: `defaultTolerance(for:)`.
    public var tolerance: Double?
    public var matrixEngine: MatrixEngine
    public var settings: BackendSettings
    public var wisdom: WisdomStore?

    public init(costModel: CostModel = CostModel(), tolerance: Double? = nil, matrixEngine: MatrixEngine = .native,
                settings: BackendSettings = BackendSettings(), wisdom: WisdomStore? = nil) {
        self.costModel = costModel
        self.tolerance = tolerance
        self.matrixEngine = matrixEngine
        self.settings = settings
        self.wisdom = wisdom
    }

    /// Factor over the float32 direct-method bound γₙ that the default tolerance allows: 32 keeps FFT and Winograd
    /// F(2,3)…F(6,3), F(2,5), F(4,5) on typical layers (their bounds are 1–25× γₙ) and drops F(8,3)-class tiles.
    public static let defaultToleranceFactor = 32.0

    public static func defaultTolerance(for d: ConvolutionDescriptor) -> Double {
        defaultToleranceFactor * dotProductErrorBound(terms: d.reductionLength)
    }

    /// The backends the selector chooses among: every registered backend except the float64 reference and the
    /// generic `winograd` (the fixed Winograd variants cover it).
    public static func candidates(settings: BackendSettings = BackendSettings()) -> [any Convolution] {
        BackendRegistry.all(settings).filter { $0.name != "reference" && $0.name != "winograd" }
    }

    public func select(for d: ConvolutionDescriptor, threads: Int) -> Selection {
        let tolerance = self.tolerance ?? Self.defaultTolerance(for: d)
        let entry = wisdom?.entry(for: d, threads: threads)
        var all: [Candidate] = []
        for backend in Self.candidates(settings: settings) {
            let bound = backend.expectedErrorBound(for: d) * (backend is DirectBackend || backend is FFTBackend
                                                              ? 1 : matrixEngine.errorGrowth)
            var candidate = Candidate(backend: backend, status: .eligible, seconds: nil, errorBound: bound)
            if case .unsupported(let reason) = backend.support(for: d) {
                candidate.status = .unsupported(reason)
            } else if bound > tolerance {
                candidate.status = .tooInaccurate(bound: bound, tolerance: tolerance)
            } else if let entry {
                if let record = entry.candidates.first(where: { $0.backend == backend.name }) {
                    if record.status == "ok", let seconds = record.seconds {
                        candidate.seconds = seconds
                    } else {
                        candidate.status = .failedWhenMeasured(record.message ?? record.status)
                    }
                }
            } else {
                candidate.seconds = costModel.predictedSeconds(backend, d, threads: threads)
            }
            all.append(candidate)
        }
        let ranked = all.filter { $0.status == .eligible && $0.seconds != nil }
            .sorted { ($0.seconds ?? .infinity) < ($1.seconds ?? .infinity) }
        return Selection(ranked: ranked, all: all, source: entry == nil ? .heuristic : .wisdom, tolerance: tolerance)
    }
}

/// A ready plan from the selector: what a researcher writes in an experiment,
///
///     let conv = try ConvLab.convolution(for: descriptor, weights: w, tolerance: 1e-4)
///     let y = try conv(x)
///
/// Candidates are planned fastest-first until one fits `maxWorkspaceBytes`; throws `.unsupported` when none is
/// eligible (e.g. a tolerance below every backend's bound).
public func convolution(for descriptor: ConvolutionDescriptor, weights: Tensor<Float>, tolerance: Double? = nil,
                        maxWorkspaceBytes: Int? = nil, options: PlanOptions = PlanOptions(),
                        wisdom: WisdomStore? = nil) throws -> any ConvolutionPlan {
    let selector = Selector(tolerance: tolerance, matrixEngine: options.matrixEngine, wisdom: wisdom)
    let selection = selector.select(for: descriptor, threads: options.threads)
    var reasons: [String] = []
    for candidate in selection.ranked {
        let plan = try candidate.backend.makePlan(descriptor: descriptor, weights: weights, options: options)
        if let cap = maxWorkspaceBytes, plan.workspaceBytes > cap {
            reasons.append("\(candidate.backend.name) needs \(formatBytes(plan.workspaceBytes)) of workspace")
            continue
        }
        return plan
    }
    throw ConvLabError.unsupported(
        backend: "selector",
        reason: "no backend meets tolerance \(selection.tolerance)"
            + (maxWorkspaceBytes.map { " and workspace cap \(formatBytes($0))" } ?? "")
            + (reasons.isEmpty ? "" : " (" + reasons.joined(separator: "; ") + ")"))
}

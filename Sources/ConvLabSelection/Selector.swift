import ConvLabBackends
import ConvLabCore
import ConvLabMatMul

/// Picks the backend for a convolution: from measured wisdom when there is a matching entry, otherwise from the
/// `CostModel`'s predictions — in both cases only among registered, selectable backends that support the shape,
/// whose declared error bound is within the tolerance and whose workspace fits the cap. Every candidate is judged by
/// its own `describe`, so what is ranked is exactly what would be planned; nothing is timed.
public struct Selector: Sendable {
    /// Why a candidate is or is not in the running.
    public enum Status: Sendable, Hashable {
        case eligible
        case unsupported(String)
        case tooInaccurate(bound: Double, tolerance: Double)
        case workspaceOverCap(bytes: Int, cap: Int)
        case failedWhenMeasured(String)
        /// The backend does not estimate its work and wisdom has no measurement of it.
        case noEstimate
    }

    /// Which error the tolerance is compared with: the declared worst-case bound, or the typical-error estimate
    /// (`TypicalError`, the mean error on random data; 10²–10⁴× smaller). Either way a plan above the accuracy
    /// ceiling is refused.
    public enum ToleranceMode: String, Sendable, Hashable, CaseIterable {
        case worst
        case typical
    }

    public struct Candidate: Sendable {
        public var backend: any Convolution
        public var status: Status
        /// The cost model's prediction (heuristic) or the measured median (wisdom), in seconds.
        public var seconds: Double?
        public var errorBound: Double
        /// The plan's typical-error estimate (infinite when it cannot run the shape).
        public var typicalError: Double = .infinity
        /// What the backend would plan (variant, workspace), when it can run the shape.
        public var plan: PlanDescription?
    }

    public enum Source: Sendable, Hashable {
        case heuristic
        case wisdom
    }

    public struct Selection: Sendable {
        /// Eligible candidates, fastest first: the choice and its fall-backs.
        public var ranked: [Candidate]
        /// Every candidate, in registry order, with its status.
        public var all: [Candidate]
        public var source: Source
        public var tolerance: Double
        public var toleranceMode: ToleranceMode = .worst
        public var choice: Candidate? { ranked.first }
    }

    public var costModel: CostModel
    /// Largest acceptable error bound (relative, the checker's normalisation); nil: `defaultTolerance(for:)`.
    public var tolerance: Double?
    /// Largest acceptable workspace in bytes; nil: no cap beyond the plan options' memory limits.
    public var maxWorkspaceBytes: Int?
    public var matrixEngine: MatrixEngine
    /// The backends to choose among (`registry.selectable`): the standard ones unless an experiment registers more.
    public var registry: BackendRegistry
    public var wisdom: WisdomStore?
    /// Candidates above its ceiling are refused when described (as too inaccurate), and the default tolerance never
    /// exceeds it.
    public var accuracy: AccuracyCeiling
    public var toleranceMode: ToleranceMode

    public init(costModel: CostModel = CostModel(), tolerance: Double? = nil, maxWorkspaceBytes: Int? = nil,
                matrixEngine: MatrixEngine = .native, settings: BackendSettings = BackendSettings(),
                registry: BackendRegistry? = nil, wisdom: WisdomStore? = nil, accuracy: AccuracyCeiling = .default,
                toleranceMode: ToleranceMode = .worst) {
        self.accuracy = accuracy
        self.toleranceMode = toleranceMode
        self.costModel = costModel
        self.tolerance = tolerance
        self.maxWorkspaceBytes = maxWorkspaceBytes
        self.matrixEngine = matrixEngine
        self.registry = registry ?? BackendRegistry.standard(settings)
        self.wisdom = wisdom
    }

    /// Factor over the float32 direct-method bound γₙ that the default tolerance allows: 32 keeps FFT and Winograd
    /// F(2,3)…F(6,3), F(2,5), F(4,5) on typical layers (their bounds are 1–25× γₙ) and drops F(8,3)-class tiles.
    public static let defaultToleranceFactor = 32.0

    public static func defaultTolerance(for d: ConvolutionDescriptor, pass: ConvolutionPass = .forward) -> Double {
        defaultToleranceFactor * dotProductErrorBound(terms: d.reductionLength(for: pass))
    }

    /// The same factor over the direct method's typical error (one chain per output), for `--tolerance-mode typical`:
    /// it keeps and drops the same tile classes on typical layers (F(6,3) ≈ 8× direct's typical error, F(8,3) ≈ 70×).
    public static func defaultTypicalTolerance(for d: ConvolutionDescriptor, pass: ConvolutionPass = .forward) -> Double {
        defaultToleranceFactor * TypicalError.sequentialDotProduct(terms: d.reductionLength(for: pass))
    }

    /// The standard backends the selector chooses among (`BackendRegistry.selectable`).
    public static func candidates(settings: BackendSettings = BackendSettings()) -> [any Convolution] {
        BackendRegistry.standard(settings).selectable
    }

    /// The ranking for `pass` of `d` (forward unless asked): every pass is chosen for on its own, since the fastest
    /// algorithm often differs between them.
    public func select(for d: ConvolutionDescriptor, threads: Int, pass: ConvolutionPass = .forward) -> Selection {
        let tolerance = self.tolerance ?? (toleranceMode == .worst
            ? min(Self.defaultTolerance(for: d, pass: pass), accuracy.ceiling)
            : Self.defaultTypicalTolerance(for: d, pass: pass))
        let options = PlanOptions(threads: threads, matrixEngine: matrixEngine, accuracy: accuracy)
        let entry = wisdom?.entry(for: d, threads: threads, pass: pass)
        var all: [Candidate] = []
        for backend in registry.selectable {
            var candidate = Candidate(backend: backend, status: .eligible, seconds: nil, errorBound: .infinity)
            all.append(candidate)
            if case .unsupported(let reason) = backend.support(for: d, pass: pass) {
                all[all.count - 1].status = .unsupported(reason)
                continue
            }
            let plan: PlanDescription
            do {
                plan = try backend.describe(d, pass: pass, options: options)
            } catch ConvLabError.tooInaccurate(_, _, let bound, let ceiling, _) {
                // Above the accuracy ceiling: as too inaccurate as a bound over the tolerance.
                all[all.count - 1].errorBound = bound
                all[all.count - 1].status = .tooInaccurate(bound: bound, tolerance: ceiling)
                continue
            } catch {
                all[all.count - 1].status = .unsupported(String(describing: error))
                continue
            }
            candidate.plan = plan
            candidate.errorBound = plan.errorBound
            candidate.typicalError = plan.typicalError
            let judged = toleranceMode == .worst ? plan.errorBound : plan.typicalError
            if judged > tolerance {
                candidate.status = .tooInaccurate(bound: judged, tolerance: tolerance)
            } else if let cap = maxWorkspaceBytes, plan.workspaceBytes > cap {
                candidate.status = .workspaceOverCap(bytes: plan.workspaceBytes, cap: cap)
            } else if let entry {
                if let record = entry.candidates.first(where: { $0.backend == backend.name }) {
                    if record.status == "ok", let seconds = record.seconds {
                        candidate.seconds = seconds
                    } else {
                        candidate.status = .failedWhenMeasured(record.message ?? record.status)
                    }
                } else {
                    candidate.status = .noEstimate
                }
            } else if let seconds = costModel.predictedSeconds(plan, descriptor: d, threads: threads) {
                candidate.seconds = seconds
            } else {
                candidate.status = .noEstimate
            }
            all[all.count - 1] = candidate
        }
        let ranked = all.filter { $0.status == .eligible && $0.seconds != nil }
            .sorted { ($0.seconds ?? .infinity) < ($1.seconds ?? .infinity) }
        return Selection(ranked: ranked, all: all, source: entry == nil ? .heuristic : .wisdom, tolerance: tolerance,
                         toleranceMode: toleranceMode)
    }
}

/// A ready plan from the selector: what a researcher writes in an experiment,
///
///     let conv = try ConvLab.convolution(for: descriptor, weights: w, tolerance: 1e-4)
///     let y = try conv(x)
///
/// Throws `.unsupported` when no candidate is eligible (e.g. a tolerance below every backend's bound, or a workspace
/// cap below every plan's workspace), naming why each was excluded.
public func convolution(for descriptor: ConvolutionDescriptor, weights: Tensor<Float>, tolerance: Double? = nil,
                        maxWorkspaceBytes: Int? = nil, options: PlanOptions = PlanOptions(),
                        wisdom: WisdomStore? = nil, registry: BackendRegistry? = nil,
                        toleranceMode: Selector.ToleranceMode = .worst) throws -> any ConvolutionPlan {
    try options.validate()
    let selector = Selector(tolerance: tolerance, maxWorkspaceBytes: maxWorkspaceBytes,
                            matrixEngine: options.matrixEngine, registry: registry, wisdom: wisdom,
                            accuracy: options.accuracy, toleranceMode: toleranceMode)
    let selection = selector.select(for: descriptor, threads: options.threads)
    guard let choice = selection.choice else {
        let reasons = selection.all.compactMap { candidate -> String? in
            switch candidate.status {
            case .workspaceOverCap(let bytes, _): return "\(candidate.backend.name) needs \(formatBytes(bytes)) of workspace"
            case .tooInaccurate(let bound, _): return "\(candidate.backend.name) bound \(bound)"
            default: return nil
            }
        }
        throw ConvLabError.unsupported(
            backend: "selector",
            reason: "no backend meets tolerance \(selection.tolerance)"
                + (maxWorkspaceBytes.map { " and workspace cap \(formatBytes($0))" } ?? "")
                + (reasons.isEmpty ? "" : " (" + reasons.joined(separator: "; ") + ")"))
    }
    return try choice.backend.makePlan(descriptor: descriptor, weights: weights, options: options)
}

/// The selector's plan for any pass: `weights` for forward and backward-data, nil for backward-weights.
///
///     let dgrad = try ConvLab.plan(for: .backwardData, descriptor: layer, weights: w)
///     let dx = try dgrad.run(dy)
public func plan(for pass: ConvolutionPass, descriptor: ConvolutionDescriptor, weights: Tensor<Float>?,
                 tolerance: Double? = nil, maxWorkspaceBytes: Int? = nil, options: PlanOptions = PlanOptions(),
                 wisdom: WisdomStore? = nil, registry: BackendRegistry? = nil,
                 toleranceMode: Selector.ToleranceMode = .worst) throws -> any PassPlan {
    try options.validate()
    let selector = Selector(tolerance: tolerance, maxWorkspaceBytes: maxWorkspaceBytes,
                            matrixEngine: options.matrixEngine, registry: registry, wisdom: wisdom,
                            accuracy: options.accuracy, toleranceMode: toleranceMode)
    let selection = selector.select(for: descriptor, threads: options.threads, pass: pass)
    guard let choice = selection.choice else {
        throw ConvLabError.unsupported(backend: "selector", reason: "no backend runs \(pass) of \(descriptor) within "
                                           + "tolerance \(selection.tolerance)")
    }
    return try choice.backend.makePlan(pass: pass, descriptor: descriptor, weights: weights, options: options)
}

import ConvLabCore

/// The largest error bound a plan may declare and still run. A bound is a promise only while it is small: F(2×2, 15×15)
/// declares 27.9 (its transforms grow rounding error ~10⁷×), i.e. "up to 2,790% of the output's scale", and any
/// answer, right or wrong, would pass a check against it. Such plans are refused at plan time with the reason
/// (`ConvLabError.tooInaccurate`), unless the caller allows them explicitly; the checker then reports their results
/// as `unbounded`, never as a pass.
///
/// Why 1e-2 by default: an honest float32 bound stays far below it for every layer of the networks in `bench/`
/// (the longest sums, backward-weights over N·Ho·Wo = 32·112·112 terms, are blocked: ~1e-3), while transforms
/// that grow error beyond ~10⁴× (Winograd F(2, 9) and larger, Strassen at depth 4) cross it.
public struct AccuracyCeiling: Sendable, Hashable, Codable {
    public static let defaultCeiling = 1e-2
    public static let `default` = AccuracyCeiling()

    /// Largest admissible error bound, relative to Σ|w|·|x| (the checker's normalisation).
    public var ceiling: Double
    /// Run plans above the ceiling anyway (their checks say `unbounded`).
    public var allowsInaccurate: Bool

    public init(ceiling: Double = defaultCeiling, allowsInaccurate: Bool = false) {
        self.ceiling = ceiling
        self.allowsInaccurate = allowsInaccurate
    }

    /// Whether a plan with this bound gives a meaningful promise.
    public func isMeaningful(_ bound: Double) -> Bool { bound <= ceiling }

    /// Throws `.tooInaccurate` for a plan above the ceiling, unless inaccurate plans are allowed.
    public func admit(_ summary: PlanDescription) throws {
        if !allowsInaccurate && !isMeaningful(summary.errorBound) {
            throw ConvLabError.tooInaccurate(backend: summary.backend, variant: summary.variant,
                                             bound: summary.errorBound, ceiling: ceiling, source: summary.errorSource)
        }
    }

    /// Throws for a ceiling that is not a positive finite number.
    public func validate() throws {
        if !(ceiling > 0 && ceiling.isFinite) {
            throw ConvLabError.invalidArgument(name: "accuracy ceiling",
                                               reason: "must be a positive finite number (got \(ceiling))")
        }
    }
}

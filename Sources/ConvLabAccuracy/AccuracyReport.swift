import ConvLabBackends

/// How far a float32 result is from the float64 reference.
///
/// The relative error of output i is |yᵢ − refᵢ| / Σ|w|·|x| (the forward-error scale of that output's dot product),
/// not |yᵢ − refᵢ| / |refᵢ|: an output that is a near-cancellation of large terms has a tiny |ref| and would show a
/// huge "relative" error for any correct float32 method. Dividing by the scale makes error bounds of the form
/// c·n·u meaningful for every output.
public struct AccuracyReport: Sendable, Codable, Hashable {
    public var maxAbsoluteError: Double = 0
    public var maxRelativeError: Double = 0
    public var meanRelativeError: Double = 0
    public var rmsRelativeError: Double = 0
    /// Largest distance in units in the last place between the result and the reference rounded to float32.
    public var maxULPDistance: UInt64 = 0
    /// Outputs where exactly one of result and reference is NaN.
    public var nanMismatches: Int = 0
    /// Outputs where the result and the reference disagree about being ±infinity (finite vs infinite or sign).
    public var infinityMismatches: Int = 0
    /// Outputs compared (finite reference and scale).
    public var comparedCount: Int = 0
    /// The backend's declared bound for this descriptor.
    public var errorBound: Double = 0
    /// The plan's estimate of the mean relative error on random data (`TypicalError`), when known.
    public var typicalError: Double?
    /// The accuracy ceiling the plan ran under: a bound above it promises nothing (`AccuracyCeiling`).
    public var ceiling: Double = AccuracyCeiling.defaultCeiling

    /// The outcome of a check.
    public enum Verdict: String, Sendable, Codable {
        /// Every finite output within a meaningful bound, no NaN/Inf mismatch.
        case pass
        /// An output beyond the bound, or a NaN/Inf mismatch.
        case fail
        /// Within a bound above the accuracy ceiling: the bound is too loose for staying inside it to mean anything.
        case unbounded
    }

    public var verdict: Verdict {
        if nanMismatches > 0 || infinityMismatches > 0 || maxRelativeError > errorBound { return .fail }
        return errorBound <= ceiling ? .pass : .unbounded
    }

    /// Pass: every finite output within a bound at or below the ceiling, and no NaN/Inf mismatch.
    public var passed: Bool { verdict == .pass }
}

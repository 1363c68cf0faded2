import Foundation

/// Estimates of the mean error users actually see, beside the worst-case bounds (`ErrorBounds.swift`), which are
/// 10²–10⁴× larger because they assume every rounding error points the same way. Like the bounds they are relative
/// to Σ|a|·|b| of each output's products (the checker's normalisation), for zero-mean random data (uniform or normal);
/// data with a large mean (post-ReLU activations) drift further, as a random walk with a bias does.
///
/// The forms come from how random rounding errors add; the constants were fitted on a calibration sweep (82 shapes ×
/// every backend × three passes × two distributions, `scripts/typical-error-calibration.sh`,
/// notebooks-data/typical-error-calibration.csv: every one of its 2,960 rows within 0.34–2.7× of the estimate) and
/// are checked on held-out random shapes by `TypicalErrorTests`: the measured mean within 10× of the estimate on at
/// least 95% of them (902 cases: all but 2).
public enum TypicalError {
    /// Fitted: mean |error| / (u·√((b + p)/n)) over the direct and im2col plans, 0.64–1.52× of it.
    public static let summationConstant = 0.32
    /// Fitted: Winograd's mean error ≈ 0.39·u·√G·n^−0.22 (G: the worst-case transform growth, both axes).
    public static let winogradConstant = 0.39
    public static let winogradReductionExponent = -0.22
    /// Fitted: an FFT convolution's mean error ≈ 3.5·u/√n.
    public static let fftConstant = 3.5
    /// Measured per Strassen level on the mean error: 1.9–2.8× (`convlab accuracy --gemm strassen`); √6 ≈ 2.45, the
    /// root of the worst-case factor per level.
    public static let strassenLevelGrowth = 6.0.squareRoot()

    /// A dot product of n random terms summed as `partials` partial sums of at most `blockTerms` terms each, added
    /// in sequence. A rounding error is proportional to the partial sum it rounds, and for random signs a partial
    /// sum of j terms is ~√j of one: the errors add up to ~√(b·n/2 + p·n/2)·u terms' worth, against Σ|a||b| ~ n, so
    /// the mean relative error is κ·u·√((b + p)/n) — constant for one long chain, smaller for blocked sums.
    public static func dotProduct(terms n: Int, blockTerms b: Int, partials p: Int) -> Double {
        let n = max(n, 1)
        return summationConstant * float32UnitRoundoff * (Double(min(b, n) + max(p, 1)) / Double(n)).squareRoot()
    }

    /// One chain of n terms (the direct kernels: each output sums its taps in order).
    public static func sequentialDotProduct(terms n: Int) -> Double {
        dotProduct(terms: n, blockTerms: n, partials: 1)
    }

    /// Winograd F(m, r) over a reduction of n terms whose transforms grow the worst case by `growth` (G_h·G_w): the
    /// transforms' errors are sums of random roundings, so they grow the mean like √G rather than G; longer channel
    /// sums average them a little (the fitted n^−0.22).
    public static func winograd(reduction n: Int, growth: Double) -> Double {
        winogradConstant * float32UnitRoundoff * growth.squareRoot()
            * pow(Double(max(n, 1)), winogradReductionExponent)
    }

    /// FFT convolution over a reduction of n terms: its error is normwise, ~u·‖w‖₂·‖x‖₂ per output, against
    /// Σ|w|·|x| ≈ √n·‖w‖₂·‖x‖₂ for random data.
    public static func fft(reduction n: Int) -> Double {
        fftConstant * float32UnitRoundoff / Double(max(n, 1)).squareRoot()
    }
}

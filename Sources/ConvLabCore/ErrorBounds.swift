/// Unit roundoff of float32, u = 2⁻²⁴: the relative error of one correctly rounded operation.
public let float32UnitRoundoff = 0x1p-24

/// Worst-case bound for a float32 dot product of n terms in any summation order (Higham, Thm 3.1),
/// γₙ = n·u / (1 − n·u), relative to Σ|wᵢ|·|xᵢ|. Direct methods (reference loops, im2col + GEMM, direct SIMD) all
/// sum (C/groups)·R·S products per output, so this is their bound; typical errors are ~√n·u.
public func dotProductErrorBound(terms n: Int) -> Double {
    let nu = Double(n) * float32UnitRoundoff
    return nu < 0.5 ? nu / (1 - nu) : 1
}

/// Worst-case bound for a float32 dot product whose terms are summed in blocks: `partials` partial sums, each of at
/// most `blockTerms` products accumulated from zero, are added up in sequence. Each product meets at most
/// blockTerms + partials roundings, so the bound is γ_{b+p} (Higham §4.2; Blanchard, Higham & Mary 2020) — e.g.
/// γ_{128 + n/128} for the native GEMM's 128-term blocks instead of γₙ — and never more than the unblocked γₙ.
public func blockedDotProductErrorBound(terms n: Int, blockTerms b: Int, partials p: Int) -> Double {
    dotProductErrorBound(terms: min(n, b + p))
}

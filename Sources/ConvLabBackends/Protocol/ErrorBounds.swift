/// Unit roundoff of float32, u = 2⁻²⁴: the relative error of one correctly rounded operation.
public let float32UnitRoundoff = 0x1p-24

/// Worst-case bound for a float32 dot product of n terms in any summation order (Higham, Thm 3.1),
/// γₙ = n·u / (1 − n·u), relative to Σ|wᵢ|·|xᵢ|. Direct methods (reference loops, im2col + GEMM, direct SIMD) all
/// sum (C/groups)·R·S products per output, so this is their bound; typical errors are ~√n·u.
public func dotProductErrorBound(terms n: Int) -> Double {
    let nu = Double(n) * float32UnitRoundoff
    return nu < 0.5 ? nu / (1 - nu) : 1
}

import ConvLabCore

/// Winograd minimal filtering F(m, r) (Lavin & Gray 2016) with transforms generated from interpolation points in
/// exact arithmetic — the Cook–Toom construction, as in andravin/wincnn — instead of hand-typed tables.
///
/// 1-D correlation of an n = m + r − 1 input tile d with an r-tap filter g, y_i = Σ_j g_j·d_{i+j} (i < m), is
///
///     y = Aᵀ [(G g) ⊙ (Bᵀ d)]          Aᵀ: m×n,  G: n×r,  Bᵀ: n×n,
///
/// n multiplications instead of m·r. Derivation: linear convolution s = g * h (deg s = n − 1) is fixed by s at n − 1
/// finite points aᵢ plus its leading coefficient (the point at infinity), so s = C[(V_r g) ⊙ (V_m h)] with V_k the
/// n×k evaluation matrix (rows [1, aᵢ, …, aᵢ^{k−1}] and a last row picking the top coefficient) and C = V_n⁻¹, whose
/// columns are the Lagrange polynomials ∏_{k≠i}(x − a_k)/fᵢ, fᵢ = ∏_{k≠i}(aᵢ − a_k), and ∏_k(x − a_k). Correlation is
/// the transpose of convolution in h (transposition principle): y = V_mᵀ[(V_r g) ⊙ (Cᵀ d)]. The diagonal
/// D = diag(fᵢ, 1) can be moved into G (default), A or B without changing the result; where the fractions sit changes
/// float32 rounding. 2-D is the nested form Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A.
///
/// Why error grows with m: the entries of Aᵀ, G and Bᵀ grow like powers of the points (and their reciprocals),
/// so intermediate values are larger than the result and their rounding errors do not cancel; see `errorGrowth`.
public struct WinogradTransform: Hashable, Sendable, CustomStringConvertible {
    public enum FractionPlacement: String, CaseIterable, Sendable, Codable {
        case g = "G", a = "A", b = "B"
    }

    /// Outputs per tile, filter taps, and input tile size n = m + r − 1.
    public let outputSize: Int
    public let kernelSize: Int
    public var tileSize: Int { outputSize + kernelSize - 1 }
    /// The n − 1 finite interpolation points (the point at infinity is implicit).
    public let points: [Rational]
    public let fractions: FractionPlacement
    public let AT: [[Rational]]
    public let G: [[Rational]]
    public let BT: [[Rational]]

    /// Default points 0, 1, −1, 2, −2, 1/2, −1/2, 4, −4, 1/4, −1/4, … (the small integers and their reciprocals of
    /// wincnn's examples and NNPACK's F(6,3)).
    public static func defaultPoints(count: Int) -> [Rational] {
        guard count > 0 else { return [] }
        var points: [Rational] = [0]
        var magnitude = 1
        while points.count < count {
            let candidates: [Rational] = magnitude == 1
                ? [1, -1]
                : [Rational(integerLiteral: magnitude), Rational(integerLiteral: -magnitude),
                   (try? Rational(1, magnitude)) ?? 0, (try? Rational(-1, magnitude)) ?? 0]
            for point in candidates where points.count < count { points.append(point) }
            magnitude *= 2
        }
        return points
    }

    /// Point sets chosen by `convlab transforms --search` on this machine (float32, 2-D tiles, 32 channels), where they
    /// beat `defaultPoints`. F(8,3): {0, ±1, ±2, ±1/3, ±3/4} has 2.8× lower mean and 7.5× lower max error than
    /// {0, ±1, ±2, ±1/2, ±4}; through the backend 3.0× / 8.3×. (For F(6,3) the default {0, ±1, ±2, ±1/2} ranked first.)
    static let searchedPoints: [[Int]: [Rational]] = [
        [8, 3]: (try? [0, 1, -1, 2, -2, Rational(1, 3), Rational(-1, 3), Rational(3, 4), Rational(-3, 4)]) ?? [],
    ]

    /// The points used when none are given: a searched set for (m, r) when there is one, else `defaultPoints`.
    public static func recommendedPoints(outputSize m: Int, kernelSize r: Int) -> [Rational] {
        if let searched = searchedPoints[[m, r]], searched.count == m + r - 2 { return searched }
        return defaultPoints(count: m + r - 2)
    }

    /// Generates F(m, r) from `points` (n − 1 distinct values; default `recommendedPoints`). Throws for sizes below 1,
    /// a wrong number of points, repeated points, or exact arithmetic overflow.
    public init(outputSize m: Int, kernelSize r: Int, points: [Rational]? = nil, fractions: FractionPlacement = .g)
        throws {
        guard m >= 1, r >= 1, m <= 16, r <= 16, m + r - 1 <= 16 else {
            throw ConvLabError.invalidArgument(name: "Winograd F(m, r)",
                                               reason: "need m ≥ 1, r ≥ 1 and m + r − 1 ≤ 16 (got m = \(m), r = \(r))")
        }
        let n = m + r - 1
        let finite = points ?? Self.recommendedPoints(outputSize: m, kernelSize: r)
        guard finite.count == n - 1 else {
            throw ConvLabError.invalidArgument(name: "points", reason: "F(\(m),\(r)) needs \(n - 1) finite points "
                                               + "(the point at infinity is implicit), got \(finite.count)")
        }
        guard Set(finite).count == finite.count else {
            throw ConvLabError.invalidArgument(name: "points", reason: "interpolation points must be distinct")
        }
        outputSize = m
        kernelSize = r
        self.points = finite
        self.fractions = fractions

        // V_k: n×k evaluation matrix, last row = the point at infinity (picks the top coefficient).
        func evaluation(_ k: Int) throws -> [[Rational]] {
            var rows = try finite.map { a in try (0..<k).map { try a.power($0) } }
            rows.append((0..<k).map { $0 == k - 1 ? Rational.one : Rational.zero })
            return rows
        }
        // Coefficients (lowest first, length n) of ∏ (x − a) over `roots`.
        func polynomial(_ roots: [Rational]) throws -> [Rational] {
            var coefficients: [Rational] = [1]
            for a in roots {
                var next = [Rational](repeating: 0, count: coefficients.count + 1)
                for (j, c) in coefficients.enumerated() {
                    next[j + 1] = try next[j + 1].adding(c)
                    next[j] = try next[j].subtracting(c.multiplied(by: a))
                }
                coefficients = next
            }
            return coefficients + [Rational](repeating: 0, count: n - coefficients.count)
        }
        // f_i = ∏_{k≠i} (a_i − a_k) and D = diag(f_i, 1), sign-normalised so that D[0][0] > 0 (wincnn's convention).
        var diagonal: [Rational] = try (0..<(n - 1)).map { i in
            try (0..<(n - 1)).filter { $0 != i }.reduce(Rational.one) { try $0.multiplied(by: finite[i].subtracting(finite[$1])) }
        }
        let f = diagonal
        if let first = diagonal.first, first < 0 { diagonal[0] = first.negated() }
        diagonal.append(1)
        // C = V_n⁻¹: column i = Lagrange polynomial i; the last column = ∏(x − a_k).
        var columns: [[Rational]] = try (0..<(n - 1)).map { i in
            try polynomial(finite.enumerated().filter { $0.offset != i }.map(\.element)).map { try $0.divided(by: f[i]) }
        }
        columns.append(try polynomial(finite))
        let cTransposed = columns  // Cᵀ[t][l] = C[l][t] = columns[t][l]

        let vm = try evaluation(m), vr = try evaluation(r)
        var at = (0..<m).map { i in (0..<n).map { t in vm[t][i] } }
        var g = vr
        var bt = cTransposed
        switch fractions {
        case .g:
            g = try g.enumerated().map { t, row in try row.map { try $0.divided(by: diagonal[t]) } }
            bt = try bt.enumerated().map { t, row in try row.map { try $0.multiplied(by: diagonal[t]) } }
        case .a:
            at = try at.map { row in try row.enumerated().map { t, value in try value.divided(by: diagonal[t]) } }
            bt = try bt.enumerated().map { t, row in try row.map { try $0.multiplied(by: diagonal[t]) } }
        case .b:
            break
        }
        AT = at
        G = g
        BT = bt
    }

    /// The exact identity every output must satisfy for every input tile and filter:
    /// Σ_t Aᵀ[i][t]·G[t][j]·Bᵀ[t][l] = 1 if l = i + j, else 0. Holding for all (i, j, l) is equivalent to
    /// Aᵀ[(G g) ⊙ (Bᵀ d)] = correlation(d, g) for all d and g, since both sides are bilinear in (g, d).
    public func verify() throws -> Bool {
        for i in 0..<outputSize {
            for j in 0..<kernelSize {
                for l in 0..<tileSize {
                    var sum = Rational.zero
                    for t in 0..<tileSize {
                        sum = try sum.adding(AT[i][t].multiplied(by: G[t][j]).multiplied(by: BT[t][l]))
                    }
                    if sum != (l == i + j ? Rational.one : Rational.zero) { return false }
                }
            }
        }
        return true
    }

    /// Multiplications per 2-D tile, Winograd versus direct: n² versus m²·r².
    public var multiplications2D: (winograd: Int, direct: Int) {
        (tileSize * tileSize, outputSize * outputSize * kernelSize * kernelSize)
    }

    /// How much larger than the direct method's the rounding error of one 1-D application can get: for unit-bounded
    /// inputs, max over outputs of Σ_t |Aᵀ_it|·‖G_t‖₁·‖Bᵀ_t‖₁ divided by r (the direct method's Σ|g||d|). 1 for the
    /// identity; grows quickly with m. The 2-D factor is its square.
    public var errorGrowth: Double {
        var worst = 0.0
        for i in 0..<outputSize {
            var sum = 0.0
            for t in 0..<tileSize {
                let g = G[t].reduce(0.0) { $0 + abs($1.doubleValue) }
                let b = BT[t].reduce(0.0) { $0 + abs($1.doubleValue) }
                sum += abs(AT[i][t].doubleValue) * g * b
            }
            worst = max(worst, sum)
        }
        return worst / Double(kernelSize)
    }

    /// The same transform with the diagonal of the construction in A instead of G (itself when it is not in G), so
    /// that G = V, the plain evaluation matrix: what `FilterTransformingProduct` computes in float32. The error
    /// growth is unchanged: column t of Aᵀ and row t of G are scaled by reciprocal factors.
    func withFractionsOutsideG() throws -> WinogradTransform {
        fractions == .g ? try WinogradTransform(outputSize: outputSize, kernelSize: kernelSize, points: points,
                                                fractions: .a) : self
    }

    /// The matrices rounded once to float32, row-major.
    var floatAT: [Float] { AT.flatMap { $0.map { Float($0.doubleValue) } } }
    var floatG: [Float] { G.flatMap { $0.map { Float($0.doubleValue) } } }
    var floatBT: [Float] { BT.flatMap { $0.map { Float($0.doubleValue) } } }

    public var description: String {
        "F(\(outputSize),\(kernelSize)) points [" + points.map(\.description).joined(separator: ", ")
            + "], fractions in \(fractions.rawValue)"
    }
}

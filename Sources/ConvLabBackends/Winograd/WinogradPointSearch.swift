import ConvLabCore

/// Ranks interpolation point sets for F(m, r) by *measured* float32 error (the conditioning of one matrix is not a
/// proxy: RESEARCH.md §5 shows sets with 100× better cond(Bᵀ) and no better error).
///
/// Candidates are 0, ±1 plus pairs ±v drawn from small fractions (2, 1/2, 3, 1/3, 3/2, 2/3, …), which include the
/// {±c, ±1/c} family of Alam et al. (2022); a set needing an odd number of extra points takes one extra single point.
/// Each candidate runs a float32 simulation of 2-D Winograd on random tiles with channel accumulation — exactly the
/// arithmetic of the backend (transforms rounded once to float32, products summed over channels) — against float64,
/// with errors normalised like the accuracy checker's.
public enum WinogradPointSearch {
    public struct Candidate: Sendable {
        public var points: [Rational]
        public var meanRelativeError: Double
        public var maxRelativeError: Double
    }

    static let pairValues: [Rational] = (try? [
        Rational(2), Rational(1, 2), Rational(3), Rational(1, 3), Rational(3, 2), Rational(2, 3), Rational(4),
        Rational(1, 4), Rational(5, 2), Rational(2, 5), Rational(4, 3), Rational(3, 4), Rational(5, 4), Rational(4, 5),
        Rational(5, 3), Rational(3, 5), Rational(6, 5), Rational(5, 6), Rational(7, 6), Rational(6, 7),
        Rational(7, 4), Rational(4, 7),
    ]) ?? []

    /// Every candidate point set for F(m, r): 0, ±1, then pairs (and one single point if the count is odd).
    static func candidates(outputSize m: Int, kernelSize r: Int, limit: Int) -> [[Rational]] {
        let needed = m + r - 2
        let base: [Rational] = Array([0, 1, -1].prefix(needed))
        let extra = needed - base.count
        guard extra > 0 else { return [base] }
        var result: [[Rational]] = []
        func choosePairs(_ start: Int, _ remaining: Int, _ chosen: [Rational]) {
            if result.count >= limit { return }
            if remaining == 0 {
                result.append(base + chosen)
                return
            }
            if remaining == 1 {
                for value in pairValues where !chosen.contains(value) {
                    result.append(base + chosen + [value])
                    if result.count >= limit { return }
                }
                return
            }
            guard start < pairValues.count else { return }
            for index in start..<pairValues.count {
                let v = pairValues[index]
                choosePairs(index + 1, remaining - 2, chosen + [v, v.negated()])
            }
        }
        choosePairs(0, extra, [])
        return result
    }

    /// Ranks candidates (best first by mean error).
    public static func search(outputSize m: Int, kernelSize r: Int, fractions: WinogradTransform.FractionPlacement = .g,
                              channels: Int = 32, tiles: Int = 256, seed: UInt64 = 1, limit: Int = 400) throws
        -> [Candidate] {
        var ranked: [Candidate] = []
        for points in candidates(outputSize: m, kernelSize: r, limit: limit) {
            guard let transform = try? WinogradTransform(outputSize: m, kernelSize: r, points: points,
                                                         fractions: fractions) else { continue }
            let (mean, max) = measureError(transform, channels: channels, tiles: tiles, seed: seed)
            ranked.append(Candidate(points: points, meanRelativeError: mean, maxRelativeError: max))
        }
        return ranked.sorted { $0.meanRelativeError < $1.meanRelativeError }
    }

    /// Mean and max relative error of 2-D F(m×m, r×r) in float32 on random tiles (inputs N(0,1), filters N(0,1)),
    /// accumulated over `channels`, normalised per output as the accuracy checker does (`ErrorNormalisation`): typical
    /// scale Σ|g| · rms(d) over the tile's channels, neighbourhood the tile (every output of an m×m tile, m ≤ 8, is
    /// within the checker's radius of the others).
    public static func measureError(_ t: WinogradTransform, channels: Int, tiles: Int, seed: UInt64)
        -> (mean: Double, max: Double) {
        let (m, r, n) = (t.outputSize, t.kernelSize, t.tileSize)
        let at = t.floatAT, g = t.floatG, bt = t.floatBT
        var generator = SeededGenerator(seed: seed)
        var (sum, worst, count) = (0.0, 0.0, 0)
        var accumulated = [Float](repeating: 0, count: n * n)
        var d = [Float](repeating: 0, count: n * n), w = [Float](repeating: 0, count: r * r)
        var exact = [Double](repeating: 0, count: m * m), scale = [Double](repeating: 0, count: m * m)
        for _ in 0..<tiles {
            for i in 0..<accumulated.count { accumulated[i] = 0 }
            for i in 0..<exact.count { exact[i] = 0; scale[i] = 0 }
            var (weightMagnitude, inputSquares) = (0.0, 0.0)
            for _ in 0..<channels {
                for i in 0..<d.count { d[i] = Float(generator.nextNormal()) }
                for i in 0..<w.count { w[i] = Float(generator.nextNormal()) }
                // V = Bᵀ d B and U = G g Gᵀ in float32, then the element-wise product summed over channels.
                let v = sandwich(bt, d, rows: n, inner: n)
                let u = sandwich(g, w, rows: n, inner: r)
                for i in 0..<n * n { accumulated[i] = accumulated[i].addingProduct(u[i], v[i]) }  // the GEMM's FMA
                for oy in 0..<m {
                    for ox in 0..<m {
                        for ky in 0..<r {
                            for kx in 0..<r {
                                let product = Double(w[ky * r + kx]) * Double(d[(oy + ky) * n + ox + kx])
                                exact[oy * m + ox] += product
                                scale[oy * m + ox] += abs(product)
                            }
                        }
                    }
                }
                weightMagnitude += w.reduce(0.0) { $0 + abs(Double($1)) }
                inputSquares += d.reduce(0.0) { $0 + Double($1) * Double($1) }
            }
            let typical = weightMagnitude * (inputSquares / Double(channels * n * n)).squareRoot()
            let neighbourhood = scale.max() ?? 0
            // Y = Aᵀ M A in float32.
            let y = sandwich(at, accumulated, rows: m, inner: n)
            for i in 0..<m * m {
                let relative = abs(Double(y[i]) - exact[i])
                    / ErrorNormalisation.denominator(scale: scale[i], typical: typical, neighbourhood: neighbourhood)
                sum += relative
                worst = max(worst, relative)
                count += 1
            }
        }
        return (sum / Double(max(count, 1)), worst)
    }

    /// L · X · Lᵀ for L (rows × inner) and X (inner × inner), in float32.
    static func sandwich(_ l: [Float], _ x: [Float], rows: Int, inner: Int) -> [Float] {
        var left = [Float](repeating: 0, count: rows * inner)
        for i in 0..<rows {
            for j in 0..<inner {
                var s: Float = 0
                for k in 0..<inner { s += l[i * inner + k] * x[k * inner + j] }
                left[i * inner + j] = s
            }
        }
        var result = [Float](repeating: 0, count: rows * rows)
        for i in 0..<rows {
            for j in 0..<rows {
                var s: Float = 0
                for k in 0..<inner { s += left[i * inner + k] * l[j * inner + k] }
                result[i * rows + j] = s
            }
        }
        return result
    }
}

import ConvLabCore
import Synchronization

/// Transform sizes for FFT convolution. FFTW's time depends more on the factorisation of a size than on its
/// magnitude (here a 1030² transform, 1030 = 2·5·103, took 4× longer than 1050² = (2·3·5²·7)²), so candidates are
/// even sizes whose prime factors are 2, 3, 5 and 7, and among the first few that fit, the cheapest wins:
/// - under `FFTPlanningEffort.estimate` (the default) by formula, `estimatedCost` — nothing is timed, so the choice
///   is the same on every run and costs nothing (FFTW's own estimate mode works the same way);
/// - under `measure` and `patient` by timing each candidate once per process (`roundTripSeconds`).
enum FFTSizes {
    private static let measured = Locked<[SizeKey: Double]>([:])
    /// How many timings this process has made (sizes and product rates): stays 0 under the default effort.
    static let timedMeasurements = Atomic<Int>(0)

    private struct SizeKey: Hashable {
        var height: Int
        var width: Int
    }

    /// Largest transform side convlab plans: FFTW takes 32-bit sizes, and a side this long already needs gigabytes.
    static let maximumSide = 1 << 24

    /// Even 7-smooth numbers: the sizes FFTW has fast codelets for.
    static func isFast(_ n: Int) -> Bool {
        guard n > 0 && n % 2 == 0 else { return false }
        var m = n
        for p in [2, 3, 5, 7] { while m % p == 0 { m /= p } }
        return m == 1
    }

    /// The first `count` fast sizes ≥ n.
    static func candidates(atLeast n: Int, count: Int) -> [Int] {
        var result: [Int] = []
        var size = max(n, 2)
        while result.count < count {
            if isFast(size) { result.append(size) }
            size += 1
        }
        return result
    }

    /// Cost of one real 2-D transform of height × width, in units of a radix-2 pass over one point:
    /// h·w · (Σ over the prime factors p of h and of w of `radixCost[p]` + `perPointCost`). A mixed-radix FFT makes
    /// one pass per prime factor, odd radices cost more per pass, and every point is also loaded and stored. The
    /// weights are a least-squares fit (log time) to FFTW's estimate-mode r2c + c2r round trips of every even
    /// 7-smooth size from 8 to 1100, square and 2:1, on the Intel machine: 90% of sizes within 0.77–1.29× of the
    /// formula, where two timings of the same size differ by up to 1.55× (p90) on this shared machine — the formula
    /// is steadier than a measurement.
    static func estimatedCost(height: Int, width: Int) -> Double {
        Double(height) * Double(width) * (passCost(height) + passCost(width) + perPointCost)
    }

    static let radixCost: [(prime: Int, cost: Double)] = [(2, 1.0), (3, 3.85), (5, 4.37), (7, 6.26)]
    static let perPointCost = 10.0

    static func passCost(_ n: Int) -> Double {
        var (m, total) = (n, 0.0)
        for (p, cost) in radixCost {
            while m % p == 0 {
                m /= p
                total += cost
            }
        }
        // Anything left is a large prime, for which FFTW falls back to far slower algorithms.
        return m == 1 ? total : total + 8 * Double(m)
    }

    /// Seconds for one forward plus one inverse real 2-D transform of height × width (measured once, cached).
    /// Only under `measure`/`patient` effort; callers have checked the size against the memory limits.
    static func roundTripSeconds(height: Int, width: Int) throws -> Double {
        let key = SizeKey(height: height, width: width)
        if let cached = measured.withLock({ $0[key] }) { return cached }
        // Timed with estimate-mode plans: ranking sizes needs their relative speed, not each one's best plan (which
        // under FFTW_MEASURE would cost seconds per candidate to make).
        let forward = try FFTW.transform(.forward, height: height, width: width)
        let inverse = try FFTW.transform(.inverse, height: height, width: width)
        let realCount = height * width
        let spectraCount = 2 * FFTW.bins(height: height, width: width)
        let real = UnsafeMutableRawPointer.allocate(byteCount: realCount * 4, alignment: 64)
            .bindMemory(to: Float.self, capacity: realCount)
        let spectra = UnsafeMutableRawPointer.allocate(byteCount: spectraCount * 4, alignment: 64)
            .bindMemory(to: Float.self, capacity: spectraCount)
        defer {
            UnsafeMutableRawPointer(real).deallocate()
            UnsafeMutableRawPointer(spectra).deallocate()
        }
        real.initialize(repeating: 0.5, count: realCount)
        timedMeasurements.add(1, ordering: .relaxed)
        // Enough repetitions for ~2 ms of work, best of three batches.
        let repetitions = max(1, min(1000, 2_000_000 / max(realCount, 1) / 8))
        var best = Double.infinity
        for _ in 0..<3 {
            let start = MonotonicClock.now()
            for _ in 0..<repetitions {
                forward.forward(real: real, spectrum: spectra)
                inverse.inverse(spectrum: spectra, real: real)
            }
            best = min(best, (MonotonicClock.now() - start) / Double(repetitions))
        }
        measured.withLock { $0[key] = best }
        return best
    }

    /// The cheapest (height, width) with height ≥ minHeight and width ≥ minWidth among the first three candidates per
    /// dimension: by formula under `estimate`, by timing otherwise.
    static func fastestTransform(minHeight: Int, minWidth: Int, effort: FFTPlanningEffort) throws
        -> (height: Int, width: Int) {
        var best = (height: 0, width: 0, cost: Double.infinity)
        for h in candidates(atLeast: minHeight, count: 3) {
            for w in candidates(atLeast: minWidth, count: 3) {
                let cost = effort == .estimate ? estimatedCost(height: h, width: w)
                                               : try roundTripSeconds(height: h, width: w)
                if cost < best.cost { best = (h, w, cost) }
            }
        }
        return (best.height, best.width)
    }
}

/// What FFT planning did in this process, for tests and curious users: under the default `estimate` effort
/// `timedMeasurements` stays 0 — sizes and tiles come from formulas, so describing or planning never times anything.
public enum FFTPlanningDiagnostics {
    public static var timedMeasurements: Int { FFTSizes.timedMeasurements.load(ordering: .relaxed) }
}

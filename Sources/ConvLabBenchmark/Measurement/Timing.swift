import ConvLabCore

/// When to stop repeating a timed run. Benchmarks on a shared 2-core machine are noisy, so convlab repeats until
/// the median is pinned down rather than for a fixed count: it stops once the approximate 95% confidence interval of
/// the median (order statistics n/2 ± 0.98·√n) is narrower than `relativePrecision` of the median, after at least
/// `minRepeats` runs and `minSeconds`; `maxSeconds` and `maxRepeats` cap the cost of a noisy or slow case.
public struct TimingPolicy: Hashable, Sendable, Codable {
    public var warmupRuns: Int
    public var minRepeats: Int
    public var maxRepeats: Int
    public var minSeconds: Double
    public var maxSeconds: Double
    public var relativePrecision: Double

    public init(warmupRuns: Int = 1, minRepeats: Int = 5, maxRepeats: Int = 500, minSeconds: Double = 0.05,
                maxSeconds: Double = 1.5, relativePrecision: Double = 0.03) {
        self.warmupRuns = warmupRuns
        self.minRepeats = minRepeats
        self.maxRepeats = maxRepeats
        self.minSeconds = minSeconds
        self.maxSeconds = maxSeconds
        self.relativePrecision = relativePrecision
    }
}

/// Summary of repeated timings, in seconds.
public struct TimingResult: Hashable, Sendable, Codable {
    public var median: Double
    public var minimum: Double
    public var confidenceLow: Double
    public var confidenceHigh: Double
    public var repeats: Int

    init(samples: [Double]) {
        let sorted = samples.sorted()
        let n = sorted.count
        median = n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2
        minimum = sorted.first ?? 0
        let (lo, hi) = Self.medianConfidenceIndices(n)
        confidenceLow = sorted[lo]
        confidenceHigh = sorted[hi]
        repeats = n
    }

    /// Order-statistic indices bracketing the median with ~95% confidence (binomial, normal approximation).
    static func medianConfidenceIndices(_ n: Int) -> (Int, Int) {
        let half = 0.98 * Double(n).squareRoot()
        let lo = max(Int((Double(n) / 2 - half).rounded(.down)), 0)
        let hi = min(Int((Double(n) / 2 + half).rounded(.up)), n - 1)
        return (lo, max(lo, hi))
    }
}

public enum Timing {
    /// Seconds since an arbitrary fixed point (monotonic).
    public static func now() -> Double { MonotonicClock.now() }

    /// Times `body` under `policy` (warm-up runs are not recorded). The first call in a process first keeps every
    /// core busy for 0.1 s (`wakeCores`).
    public static func measure(policy: TimingPolicy = TimingPolicy(), _ body: () throws -> Void) rethrows
        -> TimingResult {
        _ = wakeCores
        for _ in 0..<policy.warmupRuns { try body() }
        var samples: [Double] = []
        let start = now()
        while true {
            let t0 = now()
            try body()
            samples.append(now() - t0)
            let elapsed = now() - start
            if samples.count >= policy.maxRepeats || elapsed >= policy.maxSeconds { break }
            if samples.count >= policy.minRepeats && elapsed >= policy.minSeconds {
                let summary = TimingResult(samples: samples)
                let width = summary.confidenceHigh - summary.confidenceLow
                if width <= policy.relativePrecision * summary.median { break }
            }
        }
        return TimingResult(samples: samples)
    }

    /// Once per process: 0.1 s of 1 ms tasks on every core through the worker pool. On the project's 2-core VMs the
    /// first layer a process timed often ran at one thread's speed for its whole measurement (0.64 ms where the same
    /// layer's later rows took 0.33, in 3 of 4 processes), the idle second core being slow to come back; every
    /// `vs-onednn.sh` row is its own process, so its first backend paid for it. Later rows never did.
    private static let wakeCores: Void = {
        let cores = Parallel.defaultThreadCount
        let end = now() + 0.1
        while now() < end {
            Parallel.forEach(taskCount: 4 * cores, threads: cores) { _, _ in
                let stop = now() + 0.001
                while now() < stop {}
            }
        }
    }()
}

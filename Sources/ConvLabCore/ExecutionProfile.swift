import Dispatch

/// Per-phase wall-clock times of one or more plan executions (cf. NNPACK's `nnp_profile`): e.g. "input transform",
/// "multiply", "output transform". Pass one to `execute` to see where a backend spends its time; phases with the
/// same name accumulate. Not thread-safe: one profile per executing thread.
public final class ExecutionProfile {
    public private(set) var phases: [(name: String, seconds: Double)] = []

    public init() {}

    public var totalSeconds: Double { phases.reduce(0) { $0 + $1.seconds } }

    public func add(_ name: String, seconds: Double) {
        if let index = phases.firstIndex(where: { $0.name == name }) {
            phases[index].seconds += seconds
        } else {
            phases.append((name, seconds))
        }
    }

    public func reset() { phases.removeAll() }
}

/// Runs `body`, adding its duration to `profile` under `name` when a profile is given.
@inline(__always)
package func measurePhase<R>(_ name: String, in profile: ExecutionProfile?, _ body: () throws -> R) rethrows -> R {
    guard let profile else { return try body() }
    let start = DispatchTime.now().uptimeNanoseconds
    let result = try body()
    profile.add(name, seconds: Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9)
    return result
}


/// Per-stage CPU time summed over workers, for schedules where one task runs several stages (e.g. fused Winograd):
/// workers add what they measured, the caller copies the totals into an `ExecutionProfile`. Does nothing (and reads
/// no clock) unless profiling.
package final class StageTimes: Sendable {
    private let totals: Locked<[(name: String, nanoseconds: Int)]>
    let enabled: Bool

    package init(enabled: Bool) {
        self.enabled = enabled
        totals = Locked([])
    }

    /// Nanoseconds on a monotonic clock (0 when disabled).
    package func now() -> Int { enabled ? Int(DispatchTime.now().uptimeNanoseconds) : 0 }

    package func add(_ name: String, nanoseconds: Int) {
        guard enabled else { return }
        totals.withLock { totals in
            if let index = totals.firstIndex(where: { $0.name == name }) {
                totals[index].nanoseconds += nanoseconds
            } else {
                totals.append((name, nanoseconds))
            }
        }
    }

    package func report(into profile: ExecutionProfile?) {
        guard let profile else { return }
        for (name, nanoseconds) in totals.withLock({ $0 }) { profile.add(name, seconds: Double(nanoseconds) * 1e-9) }
    }
}

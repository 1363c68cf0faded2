import ConvLab
import Foundation
import Synchronization
import Testing

/// `Parallel.forEach` on the persistent worker pool: every task runs exactly once, worker indices stay in range and
/// are never shared by two tasks at once, across calls that find the helpers spinning, asleep (gaps longer than their
/// 2 ms poll) and busy with another caller's job. A lost wake-up hangs, and the time limit turns that into a failure.
@Suite(.timeLimit(.minutes(2))) struct ParallelTests {
    /// Bookkeeping under an NSLock (a pthread mutex, which ThreadSanitizer understands; it does not see the
    /// futex inside Synchronization's Mutex and reports its critical sections as races).
    final class Ledger: @unchecked Sendable {
        let lock = NSLock()
        var runs: [Int]
        var busyWorkers = Set<Int>()
        var bad = 0
        init(taskCount: Int) { runs = Array(repeating: 0, count: taskCount) }
    }

    static func checkedRun(taskCount: Int, threads: Int) -> Bool {
        let ledger = Ledger(taskCount: taskCount)
        Parallel.forEach(taskCount: taskCount, threads: threads) { worker, task in
            ledger.lock.lock()
            let fresh = ledger.busyWorkers.insert(worker).inserted
            if worker < 0 || worker >= threads || !fresh { ledger.bad += 1 }
            ledger.runs[task] += 1
            ledger.lock.unlock()
            ledger.lock.lock()
            ledger.busyWorkers.remove(worker)
            ledger.lock.unlock()
        }
        return ledger.bad == 0 && ledger.runs.allSatisfy { $0 == 1 }
    }

    @Test func everyTaskOnceThroughSpinningAndSleepingHelpers() {
        var failures = 0
        for call in 0..<300 {
            if call % 25 == 0 { Thread.sleep(forTimeInterval: 0.004) }  // helpers go to sleep
            let taskCount = [1, 2, 3, 7, 64, 1000][call % 6]
            if !Self.checkedRun(taskCount: taskCount, threads: 1 + call % 4) { failures += 1 }
        }
        #expect(failures == 0)
    }

    @Test func concurrentCallersShareThePoolOrFallBack() {
        let failures = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 8) { caller in
            for call in 0..<60 {
                if call % 20 == caller % 20 { Thread.sleep(forTimeInterval: 0.003) }
                if !Self.checkedRun(taskCount: 17 + call, threads: 2 + caller % 2) { failures.add(1, ordering: .relaxed) }
            }
        }
        #expect(failures.load(ordering: .relaxed) == 0)
    }
}

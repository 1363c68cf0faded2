import Dispatch
import Foundation
import Synchronization

/// The one place convlab runs work on several threads. Every backend calls `Parallel.forEach`, so the thread
/// count setting means the same thing everywhere and Swift 6's sendability rules are dealt with once, here.
public enum Parallel {
    /// All cores of this machine: the default for `PlanOptions.threads` and the CLI's `--threads`.
    public static var defaultThreadCount: Int { min(max(ProcessInfo.processInfo.activeProcessorCount, 1), maxThreads) }

    /// The most workers convlab accepts. Far above any machine it runs on, and low enough that per-worker workspaces
    /// and task counts (8 tasks per thread and the like) stay small, exact integers.
    public static let maxThreads = 1024

    /// Throws `.invalidArgument(name: "threads")` unless 1 ≤ `threads` ≤ `maxThreads`.
    public static func validate(threads: Int) throws {
        guard threads >= 1 && threads <= maxThreads else {
            throw ConvLabError.invalidArgument(
                name: "threads", reason: "must be 1...\(maxThreads) (got \(threads))")
        }
    }

    /// Workers a stage of `tasks` independent tasks can use: no more threads, and no per-worker workspace, than
    /// there is work for.
    public static func workers(threads: Int, tasks: Int) -> Int { max(1, min(threads, tasks, maxThreads)) }

    /// Calls `body(worker, task)` once for every `task` in `0..<taskCount`, on up to `threads` workers.
    ///
    /// Workers are `WorkerPool`'s persistent threads when it is free (worker w is the same thread in every call and
    /// starts on the same share of tasks, so repeated calls find their data in that core's cache), else Dispatch's
    /// with one shared counter. Either way tasks are handed out dynamically, so uneven tasks balance; `worker` is in
    /// `0..<min(threads, taskCount)` and is unique among concurrently running calls, so a backend can give each
    /// worker its own slice of a workspace. With one thread (or one task) everything runs inline on the caller.
    public static func forEach(taskCount: Int, threads: Int, _ body: (_ worker: Int, _ task: Int) -> Void) {
        let workers = min(max(threads, 1), taskCount, maxThreads)
        if workers <= 1 {
            for task in 0..<taskCount { body(0, task) }
            return
        }
        if WorkerPool.isEnabled, WorkerPool.shared.run(taskCount: taskCount, workers: workers, body) { return }
        let nextTask = Atomic<Int>(0)
        withoutActuallyEscaping(body) { body in
            let shared = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                while true {
                    let task = nextTask.add(1, ordering: .relaxed).oldValue
                    if task >= taskCount { break }
                    shared.value(worker, task)
                }
            }
        }
    }
}

/// Wraps a value the compiler cannot prove sendable (raw pointers into buffers that the caller partitions
/// between workers). Used only at the parallel-for boundary.
package struct UncheckedSendable<Value>: @unchecked Sendable {
    package let value: Value
    package init(_ value: Value) { self.value = value }
}

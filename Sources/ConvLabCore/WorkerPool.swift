import Dispatch
import Foundation
import Synchronization

/// Persistent helper threads for `Parallel.forEach`, so that worker w is the same OS thread in every call.
///
/// Why: a plan executed again and again (a benchmark, a training loop over one layer's shape) touches the same
/// data in the same split. With a fixed worker → thread mapping and a static first share of tasks per worker, each
/// core finds its share still in its own L2 from the previous call; with Dispatch's pool and a shared task counter
/// the shares land on arbitrary cores and come from L3 (measured on Emerald Rapids, depthwise 3×3 on 32 channels at
/// 112², 3.2 MB: oneDNN's static OpenMP split scaled 2.4× from one to two threads; our dynamic one 1.2–1.5×).
///
/// Schedule: worker w first runs its own contiguous share [w·T/W, (w+1)·T/W) through its own counter, then helps
/// with the others' shares — balanced when tasks are even, still balanced when they are not. Which worker runs a task
/// never changes a result (every backend's arithmetic is fixed by its plan's shape), only where its data is cached.
///
/// Helpers spin for `spinSeconds` after a job (so back-to-back calls do not pay a wake-up) and then sleep on a
/// semaphore. One job at a time: a caller that finds the pool busy (another thread's job, or a nested call) gets
/// `false` from `run` and uses the dynamic path.
///
/// The caller waits only for helpers that joined its job. A helper joins by incrementing the job's admission count
/// while the job is open; the caller, once every task is claimed, closes the job when no joined helper is left
/// inside, and a helper that arrives later skips it without touching it. (When every helper had to acknowledge every
/// job, a helper woken from its semaphore, or queued behind the caller on the same core, held a 30 µs layer for the
/// 4 ms of a scheduler tick: rows of the suite timed at 4.00 ms in some processes and 0.03 ms in others.)
final class WorkerPool: @unchecked Sendable {
    static let shared = WorkerPool(helpers: max(ProcessInfo.processInfo.activeProcessorCount, 1) - 1)

    /// `CONVLAB_WORKER_POOL=off` sends every call down the Dispatch path, for A/B measurements of the pool itself
    /// (Intel kind, 2 threads, suite rows in all three passes: the pool was 1.1–1.3× faster on 22 of 24 rows ×
    /// passes, from depthwise 3×3 to FFT-tiled 11×11).
    static let isEnabled = ProcessInfo.processInfo.environment["CONVLAB_WORKER_POOL"]?.lowercased() != "off"

    /// How long an idle helper keeps polling before it sleeps.
    static let spinSeconds = 0.002

    private let helperCount: Int
    private let busy = Atomic<Bool>(false)
    private let generation = AtomicCounter()
    /// The current job's admission: its generation times `admissionUnit`, plus `closed` once the caller has closed
    /// it, plus the number of helpers inside it.
    private let admission = AtomicCounter()
    private static let admissionUnit = 1 << 20
    private static let closed = 1 << 19
    private let asleep: [AtomicFlag]
    private let wakeups: [DispatchSemaphore]
    /// Next task of each worker's share, and the share's end.
    private let cursors: [AtomicCounter]
    private var ends: [Int]
    /// The current job, published by the release increment of `generation` and read after its acquire load.
    private var job: UncheckedSendable<(Int, Int) -> Void>?
    private var jobWorkers = 0
    private var started = false
    private let startLock = Mutex<Bool>(false)

    private init(helpers: Int) {
        helperCount = max(0, min(helpers, Parallel.maxThreads - 1))
        asleep = (0..<helperCount).map { _ in AtomicFlag() }
        wakeups = (0..<helperCount).map { _ in DispatchSemaphore(value: 0) }
        cursors = (0...helperCount).map { _ in AtomicCounter() }
        ends = Array(repeating: 0, count: helperCount + 1)
    }

    /// Runs `body(worker, task)` for every task on `workers` workers (the caller is worker 0). Returns false, having
    /// run nothing, when the pool is busy or has too few helpers.
    func run(taskCount: Int, workers: Int, _ body: (Int, Int) -> Void) -> Bool {
        guard workers >= 2, workers - 1 <= helperCount,
              busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
        defer { busy.store(false, ordering: .releasing) }
        startHelpersOnce()
        withoutActuallyEscaping(body) { body in
            for w in 0..<workers {
                cursors[w].value.store(w * taskCount / workers, ordering: .relaxed)
                ends[w] = (w + 1) * taskCount / workers
            }
            job = UncheckedSendable(body)
            jobWorkers = workers
            let next = generation.value.load(ordering: .relaxed) &+ 1
            admission.value.store(next &* Self.admissionUnit, ordering: .relaxed)
            // Sequentially consistent, with the helper's store of `asleep` and load of `generation` (a Dekker
            // pair): with release/acquire only, the helper's load may pass its store (x86 allows store→load
            // reordering), both sides miss each other, and the helper sleeps through a job it could have shared.
            generation.value.add(1, ordering: .sequentiallyConsistent)
            for helper in 0..<helperCount where asleep[helper].value.exchange(false, ordering: .sequentiallyConsistent) {
                wakeups[helper].signal()
            }
            work(as: 0, workers: workers, body)
            // Every task is claimed. Close the job once no joined helper is inside; poll, then yield the core (a
            // joined helper preempted by other work must get to run).
            var polls = 0
            while true {
                let state = admission.value.load(ordering: .acquiring)
                if state % Self.admissionUnit == 0,
                   admission.value.compareExchange(expected: state, desired: state | Self.closed,
                                                   ordering: .acquiringAndReleasing).exchanged { break }
                polls += 1
                if polls > 4096 { sched_yield() }
            }
            job = nil
        }
        return true
    }

    /// Own share first, then the others' in turn. The share's counter object and end are read once, not per task:
    /// indexed per task, `cursors[share]` was retained and released around every claim (two more atomic writes, to
    /// the counter's own cache line) and `ends[share]` cost an exclusivity check; and `add` traps on overflow, so it
    /// compiled to a compare-exchange loop where `wrappingAdd` is one `lock xadd`. (A task index cannot overflow.)
    private func work(as worker: Int, workers: Int, _ body: (Int, Int) -> Void) {
        for offset in 0..<workers {
            let share = (worker + offset) % workers
            let (cursor, end) = (cursors[share], ends[share])
            while true {
                let task = cursor.value.wrappingAdd(1, ordering: .relaxed).oldValue
                if task >= end { break }
                body(worker, task)
            }
        }
    }

    private func startHelpersOnce() {
        startLock.withLock { started in
            guard !started else { return }
            started = true
            // Read before this job's increment: a helper that starts late must still see the job as new.
            let start = generation.value.load(ordering: .acquiring)
            for helper in 0..<helperCount {
                let thread = Thread { [self] in self.helperLoop(helper, seen: start) }
                thread.stackSize = 8 << 20
                thread.name = "convlab worker \(helper + 1)"
                thread.start()
            }
        }
    }

    private func helperLoop(_ helper: Int, seen start: Int) {
        var seen = start
        while true {
            var spinStart = MonotonicClock.now()
            var polls = 0
            var current = generation.value.load(ordering: .acquiring)
            while current == seen {
                polls += 1
                if polls % 1024 == 0 && MonotonicClock.now() - spinStart > Self.spinSeconds {
                    asleep[helper].value.store(true, ordering: .sequentiallyConsistent)
                    current = generation.value.load(ordering: .sequentiallyConsistent)
                    if current != seen {
                        // A job arrived while falling asleep; if its caller already signalled, the stale signal only
                        // costs one extra pass round this loop later.
                        _ = asleep[helper].value.exchange(false, ordering: .sequentiallyConsistent)
                        break
                    }
                    wakeups[helper].wait()
                    spinStart = MonotonicClock.now()
                }
                current = generation.value.load(ordering: .acquiring)
            }
            seen = current
            guard join(generation: current) else { continue }
            let workers = jobWorkers
            if helper + 1 < workers, let job { work(as: helper + 1, workers: workers, job.value) }
            admission.value.subtract(1, ordering: .releasing)
        }
    }
}

extension WorkerPool {
    /// Enters job `generation` if it is still open (then the caller waits for this helper); false if it is closed or
    /// already followed by another, which this helper must not touch.
    fileprivate func join(generation: Int) -> Bool {
        while true {
            let state = admission.value.load(ordering: .acquiring)
            guard state / Self.admissionUnit == generation, state & Self.closed == 0 else { return false }
            if admission.value.compareExchange(expected: state, desired: state + 1,
                                               ordering: .acquiringAndReleasing).exchanged {
                return true
            }
        }
    }
}

/// An atomic alone on its cache line (the 128 bytes after it are never written, and an object starts at most 16
/// bytes before its first stored property). Why: a helper spins on `generation` while the caller writes the job, and
/// each worker claims from its own cursor while the others claim from theirs; sharing a line with anything written
/// by another core, every one of those reads and writes would fetch the line back from that core. (Atomics cannot
/// live in arrays, not being copyable; one small object each can.)
private final class AtomicCounter: Sendable {
    let value = Atomic<Int>(0)
    private let padding = InlineArray<16, Int>(repeating: 0)
}

private final class AtomicFlag: Sendable {
    let value = Atomic<Bool>(false)
    private let padding = InlineArray<16, Int>(repeating: 0)
}

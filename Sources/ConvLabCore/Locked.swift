import Foundation

/// A value behind a lock, for the few process-wide caches (FFTW plans, measured FFT rates, profile totals).
///
/// Built on `NSLock` (a pthread mutex) rather than `Synchronization.Mutex`: on Linux, ThreadSanitizer does not see
/// `Mutex`'s futex-based locking and reports races inside `withLock` on correct code (reproduced with a 15-line
/// program), and TSan is part of convlab's checks (`scripts/check-sanitizers.sh`).
public final class Locked<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()

    public init(_ value: Value) {
        self.value = value
    }

    /// Runs `body` with exclusive access to the value.
    public func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

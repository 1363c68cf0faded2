import Dispatch

/// Seconds on a monotonic clock, for every timing convlab does: benchmark repeats, FFT planning under
/// `--fft-effort measure`, execution profiles.
public enum MonotonicClock {
    /// Seconds since an arbitrary fixed point.
    public static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 }
}

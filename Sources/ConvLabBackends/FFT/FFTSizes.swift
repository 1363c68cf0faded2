import ConvLabCore

/// Transform sizes for FFT convolution, chosen by measurement rather than "next power of two": FFTW's time depends
/// more on the factorisation of a size than on its magnitude (here a 1030² transform, 1030 = 2·5·103, took 4× longer
/// than 1050² = (2·3·5²·7)²). Candidates are even sizes whose prime factors are 2, 3, 5 and 7; each is timed once per
/// process (estimate-mode plans, best of a few runs) and remembered.
package enum FFTSizes {
    private static let measured = Locked<[SizeKey: Double]>([:])

    private struct SizeKey: Hashable {
        var height: Int
        var width: Int
    }

    /// Even 7-smooth numbers: the sizes FFTW has fast codelets for.
    static func isFast(_ n: Int) -> Bool {
        guard n > 0 && n % 2 == 0 else { return false }
        var m = n
        for p in [2, 3, 5, 7] { while m % p == 0 { m /= p } }
        return m == 1
    }

    /// The first `count` fast sizes ≥ n.
    package static func candidates(atLeast n: Int, count: Int) -> [Int] {
        var result: [Int] = []
        var size = max(n, 2)
        while result.count < count {
            if isFast(size) { result.append(size) }
            size += 1
        }
        return result
    }

    /// Seconds for one forward plus one inverse real 2-D transform of height × width (measured once, cached).
    static func roundTripSeconds(height: Int, width: Int) throws -> Double {
        let key = SizeKey(height: height, width: width)
        if let cached = measured.withLock({ $0[key] }) { return cached }
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

    /// The fastest measured (height, width) with height ≥ minHeight and width ≥ minWidth, among the first three
    /// candidates per dimension.
    static func fastestTransform(minHeight: Int, minWidth: Int) throws -> (height: Int, width: Int) {
        var best = (height: 0, width: 0, seconds: Double.infinity)
        for h in candidates(atLeast: minHeight, count: 3) {
            for w in candidates(atLeast: minWidth, count: 3) {
                let seconds = try roundTripSeconds(height: h, width: w)
                if seconds < best.seconds { best = (h, w, seconds) }
            }
        }
        return (best.height, best.width)
    }
}

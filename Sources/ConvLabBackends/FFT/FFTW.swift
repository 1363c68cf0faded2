import CFFTW
import ConvLabCore

/// How hard FFTW searches for a fast algorithm when it makes a plan (FFTW's planner flags). `estimate` plans in
/// microseconds from heuristics, the default for one-off CLI use; `measure` and `patient` time candidate algorithms
/// (milliseconds to seconds per size), worth it when a plan is reused or when tuning, and best kept in wisdom.
public enum FFTPlanningEffort: String, CaseIterable, Sendable, Codable {
    case estimate, measure, patient

    var flags: UInt32 {
        switch self {
        case .estimate: return UInt32(FFTW_ESTIMATE)
        case .measure: return UInt32(FFTW_MEASURE)
        case .patient: return UInt32(FFTW_PATIENT)
        }
    }
}

/// One 2-D real transform of height × width between a real array (row-major) and its interleaved complex spectrum
/// (height × (width/2 + 1) bins, re/im pairs). Interleaved rather than split: FFTW's SIMD codelets work on
/// interleaved data, and split plans measured 1.5–2× slower here. Plans are immutable and FFTW's execute functions
/// are thread-safe, so one object serves every thread; arrays passed at execution must be 64-byte aligned like the
/// planning arrays (FFTW's new-array execution requires the same alignment).
final class FFTWTransform: @unchecked Sendable {
    enum Direction: Hashable, Sendable { case forward, inverse }

    struct Key: Hashable, Sendable {
        var direction: Direction
        var height: Int
        var width: Int
        var effort: FFTPlanningEffort
        /// Threads FFTW itself uses inside one transform (for phases with fewer transforms than cores).
        var threads: Int
    }

    let key: Key
    private let plan: fftwf_plan

    fileprivate init(key: Key, plan: fftwf_plan) {
        self.key = key
        self.plan = plan
    }

    /// real → spectrum: unnormalised forward DFT.
    func forward(real: UnsafeMutablePointer<Float>, spectrum: UnsafeMutablePointer<Float>) {
        fftwf_execute_dft_r2c(plan, real, UnsafeMutableRawPointer(spectrum).assumingMemoryBound(to: fftwf_complex.self))
    }

    /// spectrum → real: unnormalised inverse DFT (scaled by height·width). Overwrites the spectrum.
    func inverse(spectrum: UnsafeMutablePointer<Float>, real: UnsafeMutablePointer<Float>) {
        fftwf_execute_dft_c2r(plan, UnsafeMutableRawPointer(spectrum).assumingMemoryBound(to: fftwf_complex.self), real)
    }
}

/// The process-wide FFTW planner. FFTW's planner is not thread-safe (only `fftwf_execute*` is): every plan creation,
/// wisdom import and export goes through one lock, and plans are cached so each (size, effort, threads) is planned
/// once per process.
enum FFTW {
    private static let planner = Locked<[FFTWTransform.Key: FFTWTransform]>([:])
    private static let threadsReady: Bool = fftwf_init_threads() != 0

    static func bins(height: Int, width: Int) -> Int { height * (width / 2 + 1) }

    static func transform(_ direction: FFTWTransform.Direction, height: Int, width: Int,
                          effort: FFTPlanningEffort = .estimate, threads: Int = 1) throws -> FFTWTransform {
        let key = FFTWTransform.Key(direction: direction, height: height, width: width, effort: effort,
                                    threads: threadsReady ? max(threads, 1) : 1)
        let transform: FFTWTransform? = planner.withLock { cache in
            if let cached = cache[key] { return cached }
            let transform = makeTransform(key)
            cache[key] = transform
            return transform
        }
        guard let transform else {
            throw ConvLabError.unsupported(backend: "fft", reason: "FFTW cannot plan a \(height)x\(width) transform")
        }
        return transform
    }

    /// Called with the planner lock held.
    private static func makeTransform(_ key: FFTWTransform.Key) -> FFTWTransform? {
        let realCount = key.height * key.width
        let complexCount = 2 * bins(height: key.height, width: key.width)
        // Scratch arrays for planning (FFTW_MEASURE overwrites them), aligned like convlab's workspaces.
        let real = UnsafeMutableRawPointer.allocate(byteCount: realCount * 4, alignment: 64)
            .bindMemory(to: Float.self, capacity: realCount)
        let spectrum = UnsafeMutableRawPointer.allocate(byteCount: complexCount * 4, alignment: 64)
        defer {
            UnsafeMutableRawPointer(real).deallocate()
            spectrum.deallocate()
        }
        real.initialize(repeating: 0, count: realCount)
        spectrum.initializeMemory(as: Float.self, repeating: 0, count: complexCount)
        let complex = spectrum.bindMemory(to: fftwf_complex.self, capacity: complexCount / 2)
        if threadsReady { fftwf_plan_with_nthreads(Int32(key.threads)) }
        let (h, w) = (Int32(key.height), Int32(key.width))
        let plan = key.direction == .forward
            ? fftwf_plan_dft_r2c_2d(h, w, real, complex, key.effort.flags)
            : fftwf_plan_dft_c2r_2d(h, w, complex, real, key.effort.flags | UInt32(FFTW_DESTROY_INPUT))
        return plan.map { FFTWTransform(key: key, plan: $0) }
    }

    /// Loads FFTW wisdom (previously measured plans) from a file, so a tuned machine does not re-plan.
    static func importWisdom(from path: String) throws {
        let ok = planner.withLock { _ in fftwf_import_wisdom_from_filename(path) }
        if ok == 0 { throw ConvLabError.invalidFile(path: path, reason: "not a readable FFTW wisdom file") }
    }

    static func exportWisdom(to path: String) throws {
        let ok = planner.withLock { _ in fftwf_export_wisdom_to_filename(path) }
        if ok == 0 { throw ConvLabError.invalidFile(path: path, reason: "cannot write FFTW wisdom") }
    }
}

/// Public entry points for FFTW wisdom (`convlab compare --fftw-wisdom PATH`, `convlab tune`).
public enum FFTWisdom {
    public static func load(from path: String) throws { try FFTW.importWisdom(from: path) }
    public static func save(to path: String) throws { try FFTW.exportWisdom(to: path) }
}

import ConvLabBackends
import ConvLabBenchmark
import ConvLabCore
import Foundation

/// One measured candidate of an autotuned problem: cuDNN's perf record with accuracy added.
public struct WisdomRecord: Codable, Sendable, Hashable {
    public var backend: String
    public var variant: String?
    /// "ok", "unsupported" or "error".
    public var status: String
    public var seconds: Double?
    public var workspaceBytes: Int?
    public var deterministic: Bool?
    public var meanRelativeError: Double?
    public var maxRelativeError: Double?
    public var errorBound: Double?
    public var message: String?

    public init(_ m: BackendMeasurement) {
        backend = m.backend
        variant = m.variant
        status = m.statusWord
        seconds = m.timing?.median
        workspaceBytes = m.workspaceBytes
        deterministic = m.isDeterministic
        meanRelativeError = m.accuracy?.meanRelativeError
        maxRelativeError = m.accuracy?.maxRelativeError
        errorBound = m.accuracy?.errorBound
        message = m.statusMessage
    }
}

/// All candidates measured for one (descriptor, thread count).
public struct WisdomEntry: Codable, Sendable {
    public var key: String
    public var threads: Int
    /// The pass measured (files from before passes existed hold forward entries).
    public var pass: ConvolutionPass?
    public var descriptor: ConvolutionDescriptor
    public var candidates: [WisdomRecord]
    public var measuredAt: String

    public init(key: String, threads: Int, descriptor: ConvolutionDescriptor, candidates: [WisdomRecord],
                measuredAt: String, pass: ConvolutionPass = .forward) {
        self.key = key
        self.threads = threads
        self.pass = pass
        self.descriptor = descriptor
        self.candidates = candidates
        self.measuredAt = measuredAt
    }

    /// The fastest candidate that ran, within `tolerance` (declared bound) and `maxWorkspaceBytes`.
    public func best(tolerance: Double, maxWorkspaceBytes: Int? = nil) -> WisdomRecord? {
        candidates.filter { record in
            record.status == "ok" && record.seconds != nil && (record.errorBound ?? 0) <= tolerance
                && (maxWorkspaceBytes.map { (record.workspaceBytes ?? 0) <= $0 } ?? true)
        }.min { ($0.seconds ?? .infinity) < ($1.seconds ?? .infinity) }
    }
}

/// The on-disk format of convlab wisdom (JSON), tied to the machine it was measured on.
public struct WisdomFile: Codable, Sendable {
    public static let formatName = "convlab-wisdom"
    public static let currentVersion = 1

    public var format: String
    public var version: Int
    public var machine: MachineSignature
    public var entries: [WisdomEntry]
}

/// Autotuning results keyed by descriptor, thread count and machine signature. Loading a corrupt file, another
/// format version or another machine's wisdom is reported (`warning`) and starts empty, never fatal; saving writes a
/// temporary file and renames it over the target, so an interrupted tune never leaves a broken file.
public final class WisdomStore: @unchecked Sendable {
    public let path: String
    public private(set) var entries: [String: WisdomEntry] = [:]
    /// Why an existing file was ignored, if it was.
    public private(set) var warning: String?
    private let lock = NSLock()

    /// `$XDG_CACHE_HOME/convlab/wisdom.json`, or `~/.cache/convlab/wisdom.json`.
    public static var defaultPath: String {
        let environment = ProcessInfo.processInfo.environment
        let cache = environment["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (NSHomeDirectory() + "/.cache")
        return cache + "/convlab/wisdom.json"
    }

    /// FFTW wisdom is saved next to convlab's: same directory, `fftw-wisdom.txt`.
    public var fftwWisdomPath: String {
        (path as NSString).deletingLastPathComponent + "/fftw-wisdom.txt"
    }

    public init(path: String = WisdomStore.defaultPath, machine: MachineSignature = .current) {
        self.path = path
        guard FileManager.default.fileExists(atPath: path) else { return }
        let data: Data
        do {
            data = try FileInput.data(at: path, limit: FileInput.maximumTextBytes, what: "convlab wisdom")
        } catch {
            warning = "\(error); ignored"
            return
        }
        do {
            let file = try JSONDecoder().decode(WisdomFile.self, from: data)
            guard file.format == WisdomFile.formatName, file.version == WisdomFile.currentVersion else {
                warning = "\(path): not convlab wisdom version \(WisdomFile.currentVersion) (found \(file.format) "
                    + "\(file.version)); ignored"
                return
            }
            guard file.machine == machine else {
                warning = "\(path): wisdom measured on another machine (\(file.machine)); ignored"
                return
            }
            for entry in file.entries {
                entries[Self.key(entry.descriptor, threads: entry.threads, pass: entry.pass ?? .forward)] = entry
            }
        } catch {
            warning = "\(path): corrupt wisdom file (\(error.localizedDescription)); ignored"
        }
    }

    /// Entries are per (descriptor, threads, pass); forward keeps the key it had before passes existed.
    static func key(_ d: ConvolutionDescriptor, threads: Int, pass: ConvolutionPass = .forward) -> String {
        "\(d.key)@\(threads)" + (pass == .forward ? "" : "#\(pass)")
    }

    public func entry(for d: ConvolutionDescriptor, threads: Int, pass: ConvolutionPass = .forward) -> WisdomEntry? {
        lock.withLock { entries[Self.key(d, threads: threads, pass: pass)] }
    }

    public func insert(_ entry: WisdomEntry) {
        lock.withLock {
            entries[Self.key(entry.descriptor, threads: entry.threads, pass: entry.pass ?? .forward)] = entry
        }
    }

    /// Writes the store atomically (temporary file in the same directory, then rename).
    public func save(machine: MachineSignature = .current) throws {
        let file = WisdomFile(format: WisdomFile.formatName, version: WisdomFile.currentVersion, machine: machine,
                              entries: lock.withLock { entries.values.sorted { $0.key < $1.key } })
        try AtomicFile.writeJSON(file, to: path, what: "wisdom")
    }
}

/// Measures every selector candidate for a problem and records them as a wisdom entry.
public enum Autotuner {
    public static func tune(descriptor: ConvolutionDescriptor, options: PlanOptions, timing: TimingPolicy,
                            settings: BackendSettings = BackendSettings(), checkAccuracy: Bool = true,
                            seed: UInt64 = 1, pass: ConvolutionPass = .forward) throws -> WisdomEntry {
        let runner = ComparisonRunner(descriptor: descriptor, options: options, timing: timing, seed: seed,
                                      checkAccuracy: checkAccuracy, pass: pass)
        let candidates = Selector.candidates(settings: settings).filter {
            $0.support(for: descriptor, pass: pass).isSupported
        }
        let measurements = try runner.run(backends: candidates)
        return WisdomEntry(key: descriptor.key, threads: options.threads, descriptor: descriptor,
                           candidates: measurements.map(WisdomRecord.init),
                           measuredAt: ISO8601DateFormatter().string(from: Date()), pass: pass)
    }
}

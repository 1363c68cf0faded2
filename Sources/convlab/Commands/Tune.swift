import ArgumentParser
import ConvLab
import Foundation

/// `convlab tune`: measure every candidate on each suite row and store the results as wisdom.
struct Tune: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Autotune: measure every backend on each suite row and save the results (wisdom) for `select`.",
        discussion: """
        Wisdom is JSON keyed by descriptor, thread count and machine signature (CPU model, cores), holding for each \
        candidate its time, workspace, determinism, errors and status; `select` and `ConvLab.convolution(for:…)` use \
        the fastest one within the tolerance and workspace cap. FFTW wisdom is saved next to it (fftw-wisdom.txt). \
        Files are written atomically; a corrupt or foreign file is reported and replaced.
        """)

    @Option(help: "Suite CSV (format of shared/bench/suite.csv).")
    var suite: String

    @Option(help: "Wisdom file (default: \(WisdomStore.defaultPath)).")
    var wisdom: String?

    @OptionGroup var runOptions: RunOptions

    @Option(name: .customLong("fft-effort"), help: "FFTW planning effort while tuning: estimate, measure or patient.")
    var fftEffort = "measure"

    @Flag(name: .customLong("no-check"), help: "Skip the accuracy check (records then carry no measured errors).")
    var noCheck = false

    func run() throws {
        let rows = try SuiteFile.read(contentsOf: suite)
        let store = WisdomStore(path: wisdom ?? WisdomStore.defaultPath)
        if let warning = store.warning { printError("tune: \(warning); starting afresh") }
        guard let effort = FFTPlanningEffort(rawValue: fftEffort) else {
            throw ConvLabError.unknownName(kind: "FFT planning effort", name: fftEffort,
                                           known: FFTPlanningEffort.allCases.map(\.rawValue))
        }
        if FileManager.default.fileExists(atPath: store.fftwWisdomPath) { try? FFTWisdom.load(from: store.fftwWisdomPath) }
        let options = try runOptions.planOptions()
        let passes = try runOptions.passes()
        for row in rows {
            var stepSeconds: Double? = 0
            for pass in passes {
                let entry = try Autotuner.tune(descriptor: row.descriptor, options: options,
                                               timing: try runOptions.timingPolicy(),
                                               settings: BackendSettings(fftEffort: effort), checkAccuracy: !noCheck,
                                               seed: runOptions.seed, pass: pass)
                store.insert(entry)
                try store.save()  // after every row and pass: an interrupted tune keeps what it measured
                let best = entry.best(tolerance: Selector.defaultTolerance(for: row.descriptor, pass: pass))
                stepSeconds = best?.seconds.flatMap { s in stepSeconds.map { $0 + s } }
                print("\(row.name)\(passes == [.forward] ? "" : " \(pass)"): best \(best?.backend ?? "-") "
                      + "\(Format.ms(best?.seconds.map { $0 * 1e3 })) ms (\(entry.candidates.count) candidates)")
            }
            if runOptions.isTraining {
                print("\(row.name) training step: \(Format.ms(stepSeconds.map { $0 * 1e3 })) ms")
            }
        }
        try FFTWisdom.save(to: store.fftwWisdomPath)
        printError("tune: wisdom in \(store.path), FFTW wisdom in \(store.fftwWisdomPath)")
    }
}

import ArgumentParser
import ConvLab
import Foundation

/// `convlab calibrate`: measure this machine and save a cost-model profile the selector then uses.
struct Calibrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure this machine (peak rate, memory bandwidth, per-backend corrections) and save a cost-model profile.",
        discussion: """
        Measures one core's FMA peak and memory bandwidth, times every selectable backend on a calibration sweep of \
        --shapes layers (none from the benchmark suite or the network tables), fits per backend measured ≈ scale × \
        estimate + overhead, and saves the profile beside the wisdom (keyed by the machine's kind: vendor, family, \
        model). `select` then uses it and says so in --explain. A few minutes on 2 cores at the defaults.
        """)

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int = Parallel.defaultThreadCount

    @Option(help: "Layers in the calibration sweep (4…400).")
    var shapes = 80

    @Option(name: .customLong("max-time"), help: "Stop timing a backend on a layer after this many seconds.")
    var maxTime = 0.2

    @Option(help: "Passes to calibrate: forward, backward-data, backward-weights or training (all three).")
    var pass = "training"

    @Option(help: "Profile store to update (default: \(MachineProfileStore.defaultPath)).")
    var profiles: String?

    @Option(help: "Also write the new profile alone to this JSON file.")
    var output: String?

    @Option(help: "Also write the sweep's timings to this CSV (bench's columns), for --refit.")
    var measurements: String?

    @Option(help: ArgumentHelp(stringLiteral: "Refit from a CSV of timings written by --measurements (or bench, "
        + "sweep) instead of running the sweep; only the rates are measured again."))
    var refit: String?

    @Option(help: ArgumentHelp(stringLiteral: "Built-in profile to start from (default: this kind's, else the "
        + "closest): another kind's shows what calibrating a kind no profile has seen gives ("
        + MachineProfiles.builtIn.map(\.name).joined(separator: ", ") + ")."))
    var base: String?

    @Flag(name: .customLong("no-save"), help: "Do not update the profile store.")
    var noSave = false

    func run() throws {
        try Validation.threads(threads)
        try Validation.integer(shapes, "shapes", in: 4...400)
        try Validation.seconds(maxTime, "max-time")
        let store = MachineProfileStore(path: profiles ?? MachineProfileStore.defaultPath)
        if let warning = store.warning { printError("calibrate: \(warning)") }
        let baseProfile = try base.map { name in
            guard let profile = MachineProfiles.builtIn(named: name) else {
                throw ConvLabError.unknownName(kind: "built-in profile", name: name,
                                               known: MachineProfiles.builtIn.map(\.name))
            }
            return profile
        }
        let saved = try refit.map {
            try MeasurementRecord.records(csv: try FileInput.text(at: $0, what: "the timings to refit from"))
        }
        let result = try Calibration.run(threads: threads, shapes: Calibration.shapes(count: shapes),
                                         timing: TimingPolicy(minRepeats: 3, minSeconds: min(0.02, maxTime),
                                                              maxSeconds: maxTime),
                                         passes: try PassOption.passes(pass), base: baseProfile, measurements: saved,
                                         progress: { printError("calibrate: \($0)") })
        if let measurements {
            let text = ([MeasurementRecord.csvHeader] + result.measurements.map(\.csvRow)).joined(separator: "\n") + "\n"
            try AtomicFile.write(Data(text.utf8), to: measurements, what: "the calibration timings")
            print("wrote \(measurements)")
        }
        var table = TextTable(header: ["correction", "rows", "scale", "overhead µs", "90% within", "was (base profile)"])
        for fit in result.fits {
            let was = result.base.model.corrections[fit.key]
            table.add([fit.key, "\(fit.rows)", String(format: "%.3f", fit.correction.scale),
                       String(format: "%.1f", fit.correction.overhead * 1e6), String(format: "%.2fx", fit.spread),
                       was.map { String(format: "%.3f, %.1f µs", $0.scale, $0.overhead * 1e6) } ?? "none"])
        }
        print("convlab calibrate: \(result.profile.identity)")
        print(String(format: "core peak %.0f GFLOP/s, bandwidth %.1f GB/s per core; %d measurements on %d layers\n",
                     result.profile.model.coreFLOPs / 1e9, result.profile.model.bandwidth / 1e9, result.rows.count,
                     Set(result.measurements.map { $0.name ?? "" }).count))
        print(table.render())
        if let output {
            try AtomicFile.writeJSON(result.profile, to: output, what: "the profile")
            print("wrote \(output)")
        }
        if !noSave {
            store.insert(result.profile)
            try store.save()
            print("saved the profile to \(store.path); `convlab select --explain` now uses it")
        }
    }
}

import ArgumentParser
import ConvLab
import Foundation

/// `convlab bench`: the performance harness. Every suite row through every backend that supports it.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run every row of a benchmark suite through every backend; one CSV row per (row, backend).",
        discussion: """
        The suite is CSV with columns name,N,C,H,W,K,R,S,stride,pad,groups and an optional dilation column \
        (see shared/bench/suite.csv). Rows a backend does not support are skipped with a note on stderr. \
        Compare with the peer in the same session: shared/anchors/run_onednn.sh SUITE 2.
        """)

    @Option(help: "Suite CSV file.")
    var suite: String

    @Option(help: "Comma-separated backends (default: every backend except 'reference').")
    var backends: String?

    @OptionGroup var runOptions: RunOptions
    @OptionGroup var backendOptions: BackendOptions

    @Option(help: "Output format: csv, table or json.")
    var format: OutputFormat = .csv

    @Flag(name: .customLong("no-check"), help: "Skip the accuracy check against the float64 reference.")
    var noCheck = false

    @Flag(help: "Also record per-phase times (json output).")
    var profile = false

    @Option(name: .customLong("steps-out"), help: "With --pass training: also write the per-row training-step summary CSV here.")
    var stepsOut: String?

    func run() throws {
        let rows = try SuiteFile.read(contentsOf: suite)
        let options = try runOptions.planOptions()
        let selected = try backendOptions.backends(backends)
        let passes = try runOptions.passes()
        if stepsOut != nil && !runOptions.isTraining {
            throw ConvLabError.invalidArgument(name: "steps-out", reason: "needs --pass training")
        }
        // An unwritable summary path fails now, not after the whole suite has been measured.
        if let stepsOut { try writeSteps([], to: stepsOut) }
        if format == .csv { print(MeasurementRecord.csvHeader) }
        var all: [MeasurementRecord] = []
        for row in rows {
            for pass in passes {
                let runner = ComparisonRunner(descriptor: row.descriptor, options: options,
                                              timing: try runOptions.timingPolicy(), seed: runOptions.seed,
                                              checkAccuracy: !noCheck, profile: profile, pass: pass,
                                              layouts: try runOptions.layouts())
                let supported = selected.filter { backend in
                    if case .unsupported(let reason) = backend.support(for: row.descriptor, pass: pass) {
                        if backends != nil { printError("bench: \(row.name): \(backend.name) skipped: \(reason)") }
                        return false
                    }
                    return true
                }
                let measurements = try backendOptions.withWisdom { try runner.run(backends: supported) }
                let records = MeasurementRecord.records(measurements, name: row.name)
                if format == .csv {
                    for record in records { print(record.csvRow) }
                    fflush(nil)
                }
                all += records
            }
        }
        let steps = runOptions.isTraining ? TrainingStep.summarise(all) : []
        if let stepsOut { try writeSteps(steps, to: stepsOut) }
        switch format {
        case .csv: break
        case .json:
            if runOptions.isTraining {
                print(try jsonString(TrainingReport(records: all, steps: steps)))
            } else {
                print(try jsonString(all))
            }
        case .table:
            for name in rows.map(\.name) {
                for pass in passes {
                    print("\n\(name)" + (passes.count > 1 ? " \(pass)" : ""))
                    print(comparisonTable(all.filter { $0.name == name && $0.pass == pass.rawValue }))
                }
            }
            if runOptions.isTraining {
                print("\ntraining step (fastest passing backend per pass):")
                print(TrainingTable.render(steps))
            }
        }
    }
}

/// The training-step summary CSV (header only for no steps).
private func writeSteps(_ steps: [TrainingStep], to path: String) throws {
    let text = ([TrainingTable.csvHeader] + TrainingTable.csvRows(steps)).joined(separator: "\n") + "\n"
    do {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    } catch {
        throw ConvLabError.invalidFile(path: path, reason: "cannot write the training-step summary: "
                                       + error.localizedDescription)
    }
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

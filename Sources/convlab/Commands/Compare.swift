import ArgumentParser
import ConvLab
import Foundation

/// `convlab compare`: the main job. One layer, every backend, time and accuracy side by side.
struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run one convolution layer through every backend and compare time, GFLOP/s and error.",
        discussion: """
        GFLOP/s are effective: direct-convolution FLOPs 2·N·K·(C/groups)·R·S·Ho·Wo divided by the median time, so \
        fast algorithms can exceed the machine's peak. Errors are measured against a float64 reference and \
        normalised by Σ|w|·|x| per output; 'check' says whether the backend stayed within its declared bound.
        """)

    @OptionGroup var shape: ShapeOptions
    @OptionGroup var runOptions: RunOptions
    @OptionGroup var backendOptions: BackendOptions

    @Option(help: "Comma-separated backends (default: every backend that supports the shape, except the slow float64 'reference'; known: \(BackendRegistry.names.joined(separator: ", "))).")
    var backends: String?

    @Option(help: "Output format: table, csv or json.")
    var format: OutputFormat = .table

    @Flag(help: "Also time the phases of each backend (e.g. transform / multiply / inverse).")
    var profile = false

    @Flag(name: .customLong("no-check"), help: "Skip the accuracy check against the float64 reference.")
    var noCheck = false

    func run() throws {
        let descriptor = try shape.descriptor()
        let options = try runOptions.planOptions()
        let passes = try runOptions.passes()
        var records: [MeasurementRecord] = []
        for pass in passes {
            // An explicit --backends list must name backends that run every requested pass.
            let selected = try backendOptions.backends(backends, for: descriptor, pass: pass)
            let runner = ComparisonRunner(descriptor: descriptor, options: options,
                                          timing: try runOptions.timingPolicy(), seed: runOptions.seed,
                                          checkAccuracy: !noCheck, profile: profile, pass: pass,
                                              layouts: try runOptions.layouts())
            let measurements = try backendOptions.withWisdom { try runner.run(backends: selected) }
            records += MeasurementRecord.records(measurements)
        }
        let steps = runOptions.isTraining ? TrainingStep.summarise(records) : []
        switch format {
        case .csv:
            print(MeasurementRecord.csvHeader)
            for record in records { print(record.csvRow) }
        case .json:
            if runOptions.isTraining {
                print(try jsonString(TrainingReport(records: records, steps: steps)))
            } else {
                print(try jsonString(records))
            }
        case .table:
            print("convlab compare\(passes == [.forward] ? "" : " \(runOptions.pass)"): \(descriptor)")
            // Forward keeps its familiar wording; the gradients' products are dy·w and dy·x.
            let forwardOnly = passes == [.forward]
            print("direct FLOPs \(Format.significant(Double(descriptor.directFLOPs) / 1e9, 3)) GFLOP"
                  + (forwardOnly ? "" : " per pass") + ", threads \(options.threads), seed \(runOptions.seed); "
                  + (forwardOnly ? "error = |y - y64| / sum|w||x|" : "error = |out - out64| / sum|a||b| of its products")
                  + " against a float64 reference\n")
            for pass in passes {
                let ofPass = records.filter { $0.pass == pass.rawValue }
                if passes.count > 1 { print("\(pass)") }
                print(comparisonTable(ofPass))
                if profile { print("\n" + phaseSummary(ofPass)) }
                if passes.count > 1 { print("") }
            }
            if runOptions.isTraining {
                print("training step (fastest passing backend per pass):")
                print(TrainingTable.render(steps))
            }
        }
    }
}

/// The aligned table `compare` prints.
func comparisonTable(_ records: [MeasurementRecord]) -> String {
    var table = TextTable(header: ["backend", "ms median", "ms min", "GFLOP/s", "vs im2col", "plan ms", "workspace",
                                   "mean rel err", "typical", "max rel err", "bound", "check", "variant"])
    for r in records {
        guard r.status == "ok" else {
            table.add(["\(r.backend)  \(r.status): \(r.message ?? "")"])
            continue
        }
        table.add([r.backend, Format.ms(r.msMedian), Format.ms(r.msMin), Format.rate(r.gflopsEffective),
                   Format.ratio(r.speedupVsIm2col), Format.ms(r.planMs), Format.bytes(r.workspaceBytes),
                   Format.error(r.meanRelError), Format.error(r.typicalError), Format.error(r.maxRelError), Format.error(r.errorBound),
                   r.check.map { $0 == "fail" ? "FAIL" : $0 } ?? "-", [r.variant ?? "", r.layout == TensorLayout.nchw.rawValue ? "" : r.layout].filter { !$0.isEmpty }
                       .joined(separator: " ")])
    }
    return table.render()
}

/// One line per backend: its phases in ms and as a share of the profiled run.
func phaseSummary(_ records: [MeasurementRecord]) -> String {
    records.compactMap { r in
        guard let phases = r.phases, !phases.isEmpty else { return nil }
        let total = phases.values.reduce(0, +)
        let parts = phases.sorted { $0.value > $1.value }.map { name, ms in
            "\(name) \(Format.ms(ms)) ms (\(Int((100 * ms / max(total, 1e-12)).rounded()))%)"
        }
        return "\(r.backend): " + parts.joined(separator: ", ")
    }.joined(separator: "\n")
}

func jsonString<T: Encodable>(_ value: T) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf",
                                                                  nan: "nan")
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}

/// JSON of a `--pass training` run: every measurement and the per-layer step summaries.
struct TrainingReport: Encodable {
    var records: [MeasurementRecord]
    var steps: [TrainingStep]
}

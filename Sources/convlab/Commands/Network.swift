import ArgumentParser
import ConvLab
import Foundation

/// `convlab network NAME`: a whole architecture, convolution by convolution — what it costs on paper, what the
/// selector picks for each pass, and what that pick measures here.
struct Network: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Architecture table of a network: per convolution FLOPs, parameters, memory access, the selector's "
            + "backend per pass, measured time, GFLOP/s and error; network totals.",
        discussion: """
        Networks: \(NetworkCatalog.names.joined(separator: ", ")). Every convolution is written from the \
        architecture's definition (stride, padding, dilation, groups), for an N×3×H×W input. The shares of FLOPs \
        and of time sit side by side: FLOPs are not time. --no-run prints counts and choices only; --suite-out \
        writes the layers as a suite for bench, tune and select --evaluate; scripts/network-vs-onednn.sh compares \
        every layer with oneDNN in one run.
        """)

    @Argument(help: "Network name (see --list).")
    var name: String?

    @Flag(help: "List the known networks.")
    var list = false

    @Option(help: "Batch size N.")
    var batch = 1

    @Option(help: "Input size: H or HxW.")
    var size = "224"

    @Option(help: ArgumentHelp(stringLiteral: PassOption.help))
    var pass = "forward"

    @Option(help: "Run every layer on this backend instead of the selector's choice (e.g. direct).")
    var backend: String?

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int = Parallel.defaultThreadCount

    @Option(name: .customLong("max-time"), help: "Stop timing a layer after this many seconds.")
    var maxTime = 0.3

    @Option(help: "Seed of the random input, weights and output gradient.")
    var seed: UInt64 = 1

    @Flag(name: .customLong("no-run"), help: "Only count and choose; do not measure.")
    var noRun = false

    @Flag(name: .customLong("no-check"), help: "Skip the accuracy check against the float64 reference.")
    var noCheck = false

    @Option(help: "Output format: table, csv or json.")
    var format: OutputFormat = .table

    @Option(name: .customLong("suite-out"), help: "Also write the layers as a benchmark suite CSV here.")
    var suiteOut: String?

    @OptionGroup var accuracy: AccuracyOptions

    func run() throws {
        if list {
            for architecture in NetworkCatalog.all { print("\(architecture.name): \(architecture.summary)") }
            return
        }
        guard let name else {
            throw ConvLabError.invalidArgument(name: "name", reason: "give a network: "
                                               + NetworkCatalog.names.joined(separator: ", "))
        }
        try Validation.threads(threads)
        try Validation.seconds(maxTime, "max-time")
        try Validation.integer(batch, "batch", in: 1...4096)
        let (height, width) = try ShapeSyntax.pair(size, name: "size")
        try Validation.integer(height, "size", in: 1...65536)
        try Validation.integer(width, "size", in: 1...65536)
        let architecture = try NetworkCatalog.named(name)
        let layers = try architecture.layers(batch: batch, height: height, width: width)
        let ceiling = try accuracy.ceiling()
        let options = PlanOptions(threads: threads, accuracy: ceiling)
        let table = NetworkTable(passes: try PassOption.passes(pass), options: options,
                                 policy: backend.map(NetworkPolicy.only) ?? .selector,
                                 selector: Selector(accuracy: ceiling), timing: TimingPolicy(maxSeconds: maxTime),
                                 checkAccuracy: !noCheck, seed: seed)
        if let backend { _ = try table.selector.registry.backend(named: backend) }
        if let suiteOut { try NetworkSuite.write(layers, to: suiteOut) }
        var rows: [NetworkTableRow]
        if noRun {
            rows = try table.plan(layers)
        } else {
            var done = 0
            rows = try table.measure(layers) { row in
                done += 1
                if format == .table { printError("network: \(done)/\(layers.count) \(row.name)") }
            }
        }
        let totals = NetworkTotals(rows)
        switch format {
        case .json: print(try jsonString(NetworkReport(network: architecture.name, batch: batch, height: height,
                                                       width: width, policy: table.policy.description, rows: rows,
                                                       totals: totals)))
        case .csv:
            print(NetworkCSV.header)
            for line in NetworkCSV.rows(rows, totals: totals) { print(line) }
        case .table:
            print("convlab network \(architecture.name): \(architecture.summary)")
            print("input \(batch)x3x\(height)x\(width), policy \(table.policy), threads \(threads)\n")
            print(NetworkCSV.table(rows, totals: totals, measured: !noRun))
        }
    }
}

/// The JSON document of `convlab network --format json`.
struct NetworkReport: Encodable {
    var network: String
    var batch, height, width: Int
    var policy: String
    var rows: [NetworkTableRow]
    var totals: NetworkTotals
}

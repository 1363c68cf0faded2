import ArgumentParser
import ConvLab
import Foundation

/// `convlab matmul`: time one square SGEMM on an engine and measure its error against a float64 product.
struct Matmul: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time C = A·B (n×n, float32) on a matrix engine; report GFLOP/s (2n³) and error vs float64.")

    @Option(help: "Matrix size n (or MxNxK).")
    var size = "1024"

    @Option(help: "Engine: \(MatrixEngine.names.joined(separator: ", ")).")
    var engine = "native"

    @Option(help: "Strassen recursion depth (with --engine strassen or strassen-blas).")
    var depth = 1

    @Option(help: "No Strassen recursion once a dimension would fall below this.")
    var cutoff = MatrixEngine.strassenCutoff

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int = Parallel.defaultThreadCount

    @Option(name: .customLong("check-rows"), help: "Rows of C compared with a float64 product (0: skip).")
    var checkRows = 64

    @Option(help: "Seed for A and B (uniform in [-1, 1)).")
    var seed: UInt64 = 1

    @Option(help: "Output format: table, csv or json.")
    var format: OutputFormat = .table

    func run() throws {
        let dims = size.split(whereSeparator: { $0 == "x" || $0 == "," }).compactMap { Int($0) }
        guard [1, 3].contains(dims.count), dims.allSatisfy({ $0 >= 1 }) else {
            throw ConvLabError.invalidArgument(name: "size", reason: "'\(size)' is not n or MxNxK with positive sizes")
        }
        let (m, n, k) = dims.count == 1 ? (dims[0], dims[0], dims[0]) : (dims[0], dims[1], dims[2])
        let matrixEngine = try MatrixEngine(parsing: engine, depth: depth, cutoff: cutoff)
        try Validation.threads(threads)
        let result = try MatrixBenchmark.run(m: m, n: n, k: k, engine: matrixEngine, threads: threads,
                                             checkRows: checkRows, seed: seed)
        switch format {
        case .json: print(try jsonString(result))
        case .csv:
            print("engine,m,n,k,threads,ms_median,ms_min,gflops,max_rel_error,workspace_bytes")
            print([result.engine, "\(m)", "\(n)", "\(k)", "\(threads)", String(format: "%.4f", result.msMedian),
                   String(format: "%.4f", result.msMin), String(format: "%.2f", result.gflops),
                   result.maxRelativeError.map { String(format: "%.3e", $0) } ?? "", "\(result.workspaceBytes)"]
                .joined(separator: ","))
        case .table:
            var table = TextTable(header: ["engine", "m", "n", "k", "threads", "ms median", "ms min", "GFLOP/s",
                                           "max rel err", "workspace"])
            table.add([result.engine, "\(m)", "\(n)", "\(k)", "\(threads)", Format.ms(result.msMedian),
                       Format.ms(result.msMin), Format.rate(result.gflops), Format.error(result.maxRelativeError),
                       Format.bytes(result.workspaceBytes)])
            print(table.render())
        }
    }
}

import ArgumentParser
import ConvLab
import Foundation

/// `convlab accuracy`: errors of backends over seeds and data distributions, against the float64 reference.
struct Accuracy: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure each backend's error over several seeds and data distributions (no timing).",
        discussion: """
        Weights are N(0, 1); inputs follow each --distributions entry (uniform, normal, relu = max(0, N(0,1)), like \
        post-activation data). Errors are relative to Σ|w|·|x| per output (see README). Useful for the Winograd tile \
        study (--backends winograd-f2x3,winograd-f4x3,winograd-f6x3) and for Strassen's compounding error \
        (--gemm strassen --strassen-depth 2 --strassen-cutoff 32).
        """)

    @OptionGroup var shape: ShapeOptions
    @OptionGroup var backendOptions: BackendOptions
    @OptionGroup var accuracy: AccuracyOptions

    @Option(help: "Comma-separated backends (default: every backend that supports the shape, except 'reference').")
    var backends: String?

    @Option(help: "Comma-separated input distributions: uniform, normal, relu.")
    var distributions = "normal,relu"

    @Option(help: "Random inputs per distribution.")
    var seeds = 3

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int = Parallel.defaultThreadCount

    @Option(help: ArgumentHelp(stringLiteral: PassOption.help))
    var pass = "forward"

    @OptionGroup var engineOptions: MatrixEngineOptions

    @Option(help: "Output format: table, csv or json.")
    var format: OutputFormat = .table

    func run() throws {
        try Validation.integer(seeds, "seeds", in: 1...10_000)
        try Validation.threads(threads)
        let descriptor = try shape.descriptor()
        let engine = try engineOptions.matrixEngine()
        let chosenDistributions = try distributions.split(separator: ",").map { try Distribution(named: String($0)) }
        var records: [AccuracyRecord] = []
        for pass in try PassOption.passes(self.pass) {
            records += try AccuracyStudy.run(
                descriptor: descriptor, backends: try backendOptions.backends(backends, for: descriptor, pass: pass),
                distributions: chosenDistributions, seeds: seeds,
                options: PlanOptions(threads: threads, matrixEngine: engine, accuracy: try accuracy.ceiling()), pass: pass)
        }
        switch format {
        case .json: print(try jsonString(records))
        case .csv:
            print("backend,pass,variant,gemm,distribution,seeds,C,K,R,S,H,W,mean_rel_error,typical_error,max_rel_error,error_bound,passed,check,message")
            for r in records {
                print([r.backend, r.pass.rawValue, r.variant, engine.description, r.distribution, "\(r.seeds)",
                       "\(descriptor.inputChannels)", "\(descriptor.outputChannels)", "\(descriptor.kernelHeight)",
                       "\(descriptor.kernelWidth)", "\(descriptor.inputHeight)", "\(descriptor.inputWidth)",
                       String(format: "%.4e", r.meanRelativeError), String(format: "%.4e", r.typicalError),
                       String(format: "%.4e", r.maxRelativeError),
                       String(format: "%.4e", r.errorBound), "\(r.passed)", r.check, r.message ?? ""].map(csvEscape).joined(separator: ","))
            }
        case .table:
            print("convlab accuracy: \(descriptor), gemm \(engine), \(seeds) seeds; weights N(0,1)\n")
            var table = TextTable(header: ["backend", "pass", "data", "mean rel err", "typical", "max rel err", "bound", "check",
                                           "variant"])
            for r in records {
                if let message = r.message {
                    table.add(["\(r.backend)  \(r.pass.rawValue)  \(r.check): \(message)"])
                    continue
                }
                table.add([r.backend, r.pass.rawValue, r.distribution, Format.error(r.meanRelativeError),
                           Format.error(r.typicalError), Format.error(r.maxRelativeError),
                           Format.error(r.errorBound), r.check == "fail" ? "FAIL" : r.check, r.variant])
            }
            print(table.render())
        }
    }
}

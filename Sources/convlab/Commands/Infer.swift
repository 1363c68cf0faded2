import ArgumentParser
import ConvLab
import Foundation

/// `convlab infer`: a trained model end to end, through the selector's plans or a forced policy, checked against
/// the same network in float64.
struct Infer: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a trained model (a directory from scripts/fetch-models.sh) on an N×3×H×W .npy input: top "
            + "classes, per-layer time, and the logits' error against a float64 run of the same network.",
        discussion: """
        scripts/fetch-models.sh mobilenetv2 models/mobilenetv2 writes the model; scripts/preprocess-photo.py \
        skimage:chelsea x.npy --model models/mobilenetv2 the input (resize 256, centre crop 224, the model's \
        mean and std). By default every convolution runs the selector's choice; --backend NAME forces one backend \
        everywhere, --prefer NAME uses it wherever it applies and the selector elsewhere.
        """)

    @Option(help: "Model directory (manifest.json and its .npy tensors).")
    var model: String

    @Option(help: "Input .npy, N x C x H x W float32 (preprocessed).")
    var input: String

    @Option(help: "Classes to list per image.")
    var top = 5

    @Option(help: "Output format: table, csv (rank,class,probability,label,image) or json.")
    var format: OutputFormat = .table

    @Option(help: "Run every convolution on this backend.")
    var backend: String?

    @Option(help: "Run convolutions on this backend wherever it applies, the selector's choice elsewhere.")
    var prefer: String?

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int = Parallel.defaultThreadCount

    @Option(name: .customLong("repeat"), help: "Timed runs of the whole network (per-layer medians).")
    var repeats = 5

    @Flag(name: .customLong("no-check"), help: "Skip the float64 run.")
    var noCheck = false

    @Option(name: .customLong("layers-out"), help: "Also write the per-layer times as CSV here.")
    var layersOut: String?

    @Option(name: .customLong("output-out"), help: "Also write the float32 network's output (logits or features) as .npy.")
    var outputOut: String?

    @OptionGroup var engineOptions: MatrixEngineOptions

    @OptionGroup var backendOptions: BackendOptions
    @OptionGroup var accuracy: AccuracyOptions

    func run() throws {
        try Validation.threads(threads)
        try Validation.integer(top, "top", in: 1...100_000)
        try Validation.integer(repeats, "repeat", in: 1...10_000)
        if backend != nil && prefer != nil {
            throw ConvLabError.invalidArgument(name: "backend", reason: "give --backend or --prefer, not both")
        }
        let ceiling = try accuracy.ceiling()
        let engine = try engineOptions.matrixEngine()
        let options = PlanOptions(threads: threads, matrixEngine: engine, accuracy: ceiling)
        let selector = Selector(matrixEngine: engine, settings: try backendOptions.settings(), accuracy: ceiling)
        let policy: NetworkPolicy = backend.map(NetworkPolicy.only) ?? prefer.map(NetworkPolicy.preferring) ?? .selector
        if let name = backend ?? prefer { _ = try selector.registry.backend(named: name) }
        let graph = try ModelGraph.load(directory: model, limits: options.limits)
        let x = try NumpyArray.read(contentsOf: input, limits: options.limits).float32Tensor()
        guard x.shape.count == 4, x.shape[0] >= 1 else {
            throw ConvLabError.shapeMismatch(what: "input \(input)", expected: "N x \(graph.manifest.input.shape.map(String.init).joined(separator: " x "))",
                                             actual: "\(x.shape)")
        }
        let inference = try ModelInference(graph: graph, batch: x.shape[0], policy: policy, selector: selector,
                                           options: options)
        let (report, output) = try backendOptions.withWisdom {
            try InferenceReport.measure(inference, input: x, top: top, repeats: repeats, checkFloat64: !noCheck)
        }
        if let layersOut { try write(layersCSV(report), to: layersOut) }
        if let outputOut { try NumpyArray(output).write(to: outputOut) }
        switch format {
        case .json: print(try jsonString(report))
        case .csv:
            print("rank,class,probability,label,image")
            for e in report.top {
                print(["\(e.rank)", "\(e.classIndex)", String(format: "%.6f", e.probability), e.label ?? "", "\(e.image)"]
                    .map(csvEscape).joined(separator: ","))
            }
        case .table: printTable(report)
        }
    }

    func layersCSV(_ report: InferenceReport) -> String {
        (["node,op,backend,flops,median_ms,gflops"] + report.nodes.map { n in
            [n.name, n.operation, n.backend ?? "", n.flops.map(String.init) ?? "", String(format: "%.5f", n.seconds * 1e3),
             n.flops.map { String(format: "%.2f", Double($0) / n.seconds / 1e9) } ?? ""].map(csvEscape).joined(separator: ",")
        }).joined(separator: "\n") + "\n"
    }

    func write(_ text: String, to path: String) throws {
        do { try text.write(toFile: path, atomically: true, encoding: .utf8) } catch {
            throw ConvLabError.invalidFile(path: path, reason: "cannot write: \(error.localizedDescription)")
        }
    }

    func printTable(_ report: InferenceReport) {
        print("convlab infer \(report.model): input \(report.inputShape), policy \(report.policy), threads \(threads)")
        if report.top.isEmpty {
            print("output \(report.outputShape) (not N x classes: no top classes)")
        }
        for image in 0..<report.inputShape[0] where !report.top.isEmpty {
            print("\nimage \(image):")
            var table = TextTable(header: ["rank", "class", "label", "probability", "float64 class", "float64 p"])
            let ours = report.top.filter { $0.image == image }
            let theirs = report.referenceTop.filter { $0.image == image }
            for (i, e) in ours.enumerated() {
                let r = i < theirs.count ? theirs[i] : nil
                table.add(["\(e.rank)", "\(e.classIndex)", e.label ?? "", String(format: "%.4f", e.probability),
                           r.map { "\($0.classIndex)" } ?? "", r.map { String(format: "%.4f", $0.probability) } ?? ""])
            }
            print(table.render())
        }
        if let error = report.maxLogitError, let relative = report.relativeLogitError {
            var line = "\n\(report.top.isEmpty ? "output" : "logits") vs float64: max error \(Format.error(error)) "
                + "(\(Format.error(relative)) of the largest)"
            if let top1 = report.top1Agreement, let topK = report.topKAgreement {
                line += "; top-1 agrees on \(top1)/\(report.inputShape[0]), top-\(top) on \(topK)/\(report.inputShape[0])"
            }
            print(line)
        }
        var table = TextTable(header: ["node", "op", "backend", "ms", "GFLOP/s", "%time"])
        for n in report.nodes where n.seconds >= report.totalSeconds * 0.002 || n.operation == "conv" {
            table.add([n.name, n.operation, n.backend ?? "", Format.ms(n.seconds * 1e3),
                       Format.rate(n.flops.map { Double($0) / n.seconds / 1e9 }),
                       String(format: "%.1f", 100 * n.seconds / report.totalSeconds)])
        }
        let convSeconds = report.nodes.filter { $0.operation == "conv" }.reduce(0) { $0 + $1.seconds }
        print("\nper layer (medians of \(repeats) runs):\n" + table.render())
        print("\ntotal \(Format.ms(report.totalSeconds * 1e3)) ms, of which convolutions "
              + "\(Format.ms(convSeconds * 1e3)) ms")
    }
}

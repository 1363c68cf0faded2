import ArgumentParser
import ConvLab
import Foundation

/// `convlab decompose`: low-rank approximations of a convolution kernel, and what they cost in accuracy and buy in time.
struct Decompose: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Decompose a K×C×R×S kernel (SVD, CP or Tucker-2) into cheaper convolutions; report errors, "
            + "parameters, FLOPs and measured time before and after.",
        discussion: """
        svd: Jaderberg et al. (R×1 then 1×S, rank t); cp: Lebedev et al. (1×1, depthwise R×1, depthwise 1×S, 1×1, \
        rank r, ALS); tucker: Kim et al. Tucker-2 (1×1 C→r1, R×S core r1→r2, 1×1 r2→K; HOSVD + HOOI); tt: tensor train by TT-SVD \
        (1×1 C→r1, R×1 r1→r2, 1×S r2→r3, 1×1 r3→K). The output \
        error is measured on --input (or random N(0,1) data of --size) against the float64 reference of the original \
        layer. --max-output-error picks the smallest rank within the budget.
        """)

    @Option(help: "Method: svd, cp, tucker or tt.")
    var method: String

    @Option(help: "Rank (svd, cp; for tucker and tt every rank, capped at what each unfolding has).")
    var rank: Int?

    @Option(help: "Tucker-2 ranks r1,r2 (input side, output side), or TT ranks r1,r2,r3.")
    var ranks: String?

    @Option(help: "Kernel .npy (K×C×R×S).")
    var weights: String?

    @Option(help: "Instead of --weights: a synthetic trained-like kernel of this shape, e.g. 64,64,3,3.")
    var synthetic: String?

    @Option(help: "Sample input .npy (N×C×H×W); default random N(0,1) of --size.")
    var input: String?

    @Option(help: "Size of the random sample input: H or HxW.")
    var size = "32"

    @Option(help: "Stride: s or h,w.")
    var stride = "1"

    @Option(help: "Padding: same, valid, p, h,w or t,b,l,r.")
    var pad = "same"

    @Option(name: .customLong("max-output-error"), help: "Pick the smallest rank with at most this output error.")
    var maxOutputError: Double?

    @Option(name: .customLong("output-prefix"), help: "Write the factor tensors as PREFIX-1.npy, PREFIX-2.npy, …")
    var outputPrefix: String?

    @Option(name: .customLong("approximation-out"),
            help: "Write the chain's equivalent K×C×R×S kernel here (.npy), to run a network with the layer replaced.")
    var approximationOut: String?

    @Option(help: "Seed for random data and ALS initialisation.")
    var seed: UInt64 = 1

    @Option(help: "ALS/HOOI stopping tolerance (relative change of the error).")
    var tolerance = 1e-7

    @Option(name: .customLong("max-iterations"), help: "ALS/HOOI iteration cap.")
    var maxIterations = 200

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int = Parallel.defaultThreadCount

    @Flag(name: .customLong("no-run"), help: "Do not time the layers.")
    var noRun = false

    @Option(help: "Output format: table, csv or json.")
    var format: OutputFormat = .table

    func run() throws {
        guard let method = KernelDecomposition.Method(rawValue: method.lowercased()) else {
            throw ConvLabError.unknownName(kind: "decomposition", name: self.method,
                                           known: KernelDecomposition.Method.allCases.map(\.rawValue))
        }
        try Validation.threads(threads)
        try Validation.integer(maxIterations, "max-iterations", in: 1...100_000)
        guard tolerance.isFinite, tolerance >= 0 else {
            throw ConvLabError.invalidArgument(name: "tolerance", reason: "must be a finite number ≥ 0 (got \(tolerance))")
        }
        if let maxOutputError { try Validation.positive(maxOutputError, "max-output-error") }
        if let rank { try Validation.integer(rank, "rank", in: 1...1 << 20) }
        let w: Tensor<Float>
        if let weights {
            w = try NumpyArray.read(contentsOf: weights).float32Tensor()
        } else if let synthetic {
            let shape = synthetic.split(separator: ",").compactMap { Int($0) }
            guard shape.count == 4, shape.allSatisfy({ $0 >= 1 }) else {
                throw ConvLabError.invalidArgument(name: "synthetic", reason: "'\(synthetic)' is not K,C,R,S")
            }
            w = try DecompositionStudy.syntheticKernel(shape: shape, seed: seed)
        } else {
            throw ConvLabError.invalidArgument(name: "weights", reason: "give --weights w.npy or --synthetic K,C,R,S")
        }
        guard w.shape.count == 4 else {
            throw ConvLabError.shapeMismatch(what: "weights", expected: "4 dimensions K×C×R×S", actual: "\(w.shape)")
        }
        let x: Tensor<Float>
        if let input {
            x = try NumpyArray.read(contentsOf: input).float32Tensor()
            guard x.shape.count == 4, x.shape[1] == w.shape[1] else {
                throw ConvLabError.shapeMismatch(what: "input", expected: "N×\(w.shape[1])×H×W", actual: "\(x.shape)")
            }
        } else {
            let (h, wd) = try ShapeSyntax.pair(size, name: "size")
            for value in [h, wd] { try Validation.integer(value, "size", in: 1...(1 << 31)) }
            x = try Tensor.random(shape: [1, w.shape[1], h, wd], distribution: .normal(mean: 0, standardDeviation: 1), seed: seed)
        }
        let (sh, sw) = try ShapeSyntax.pair(stride, name: "stride")
        let layer = try ConvolutionDescriptor(batch: x.shape[0], inputChannels: x.shape[1], inputHeight: x.shape[2],
                                              inputWidth: x.shape[3], outputChannels: w.shape[0], kernelHeight: w.shape[2],
                                              kernelWidth: w.shape[3], strideHeight: sh, strideWidth: sw,
                                              padding: try ShapeSyntax.padding(pad))
        let options = PlanOptions(threads: threads)

        let decomposition: KernelDecomposition
        var ladder: [(Int, Double)] = []
        if let maxOutputError {
            let maxRank = method == .svd ? min(layer.inputChannels * layer.kernelHeight, layer.outputChannels * layer.kernelWidth)
                : method == .tucker || method == .tt ? max(layer.inputChannels, layer.outputChannels)
                : 2 * max(layer.inputChannels, layer.outputChannels)
            guard let found = try DecompositionStudy.smallestRank(method, weights: w, layer: layer, input: x,
                                                                   maxOutputError: maxOutputError, maxRank: maxRank,
                                                                   options: options, seed: seed) else {
                throw ConvLabError.invalidArgument(name: "max-output-error",
                                                   reason: "no rank up to \(maxRank) reaches output error \(maxOutputError)")
            }
            decomposition = found.decomposition
            ladder = found.tried
        } else {
            let requested: [Int]
            if method == .tucker || method == .tt {
                if let ranks {
                    requested = ranks.split(separator: ",").compactMap { Int($0) }
                } else if let rank {
                    requested = KernelDecomposition.ranks(method, rank: rank, layer: layer)
                } else {
                    throw ConvLabError.invalidArgument(name: "ranks", reason: "\(method.rawValue) needs --ranks "
                                                       + (method == .tt ? "r1,r2,r3" : "r1,r2") + " or --rank r")
                }
            } else {
                guard let rank else {
                    throw ConvLabError.invalidArgument(name: "rank", reason: "\(method.rawValue) needs --rank r")
                }
                requested = [rank]
            }
            decomposition = try KernelDecomposition.decompose(method, weights: w, layer: layer, ranks: requested,
                                                              tolerance: tolerance, maxIterations: maxIterations, seed: seed)
        }
        let record = try DecompositionStudy.evaluate(decomposition, weights: w, layer: layer, input: x, options: options,
                                                     timing: noRun ? nil : TimingPolicy(maxSeconds: 1))
        if let outputPrefix {
            for (index, stage) in decomposition.stages.enumerated() {
                try NumpyArray(stage.weights).write(to: "\(outputPrefix)-\(index + 1).npy")
            }
        }
        if let approximationOut { try NumpyArray(decomposition.approximation).write(to: approximationOut) }
        switch format {
        case .json: print(try jsonString(record))
        case .csv:
            print(Self.csvHeader)
            print(Self.csvRow(record))
        case .table:
            print("convlab decompose: \(method.rawValue) of \(w.shape) for \(layer)")
            if !ladder.isEmpty {
                print("rank search (output error ≤ \(maxOutputError ?? 0)): "
                      + ladder.map { "r=\($0.0): \(Format.error($0.1))" }.joined(separator: ", "))
            }
            print("ranks \(record.ranks)" + (record.iterations.map { ", \($0) iterations, \(record.stopReason ?? "")" } ?? ""))
            for stage in decomposition.stages { print("  \(stage.label)  \(stage.descriptor)") }
            print("weight error ‖W−Ŵ‖/‖W‖  \(Format.error(record.weightError))")
            print("output error ‖y−ŷ‖/‖y‖  \(Format.error(record.outputError))  (input \(x.shape))")
            print("parameters              \(record.parametersBefore) → \(record.parametersAfter) "
                  + String(format: "(%.2fx fewer)", Double(record.parametersBefore) / Double(max(record.parametersAfter, 1))))
            print("direct FLOPs            \(record.flopsBefore) → \(record.flopsAfter) "
                  + String(format: "(%.2fx fewer predicted)", record.flopReduction))
            if let before = record.millisecondsBefore, let after = record.millisecondsAfter {
                print("measured time           \(Format.ms(before)) ms (\(record.backendsBefore ?? "")) → \(Format.ms(after)) ms "
                      + "(\(record.backendsAfter ?? "")): " + String(format: "%.2fx", before / after))
            }
        }
    }

    static let csvHeader = "method,ranks,weight_error,output_error,params_before,params_after,flops_before,flops_after,"
        + "flop_reduction,ms_before,ms_after,speedup,backends_after,iterations,stop_reason,convlab_version,git_commit,cpu,date"

    static func csvRow(_ r: DecompositionRecord) -> String {
        let m = RunMetadata.current
        func optional(_ value: Double?, _ format: String) -> String { value.map { String(format: format, $0) } ?? "" }
        var fields: [String] = [r.method, r.ranks.map(String.init).joined(separator: "x")]
        fields += [String(format: "%.5e", r.weightError), String(format: "%.5e", r.outputError)]
        fields += ["\(r.parametersBefore)", "\(r.parametersAfter)", "\(r.flopsBefore)", "\(r.flopsAfter)"]
        fields += [String(format: "%.3f", r.flopReduction), optional(r.millisecondsBefore, "%.4f"),
                   optional(r.millisecondsAfter, "%.4f"), optional(r.speedup, "%.3f")]
        fields += [r.backendsAfter ?? "", r.iterations.map(String.init) ?? "", r.stopReason ?? ""]
        fields += [m.version, m.gitCommit, m.cpu, m.date]
        return fields.map(csvEscape).joined(separator: ",")
    }
}

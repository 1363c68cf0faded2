import ArgumentParser
import ConvLab

/// The convolution problem, shared by every subcommand that takes one layer shape.
struct ShapeOptions: ParsableArguments {
    @Option(help: "Kernel size: R (square) or RxS, e.g. 7 or 7x1.")
    var kernel = "3"

    @Option(help: "Input channels C.")
    var channels = 64

    @Option(name: .customLong("out-channels"), help: "Output channels K (default: same as --channels).")
    var outChannels: Int?

    @Option(help: "Input size: H (square) or HxW, e.g. 64 or 56x80.")
    var size = "64"

    @Option(help: "Batch size N.")
    var batch = 1

    @Option(help: "Stride: s or h,w.")
    var stride = "1"

    @Option(help: "Padding: same, valid, p, h,w or t,b,l,r.")
    var pad = "same"

    @Option(help: "Dilation: d or h,w.")
    var dilation = "1"

    @Option(help: "Groups (C and K must be divisible by it; = C for depthwise).")
    var groups = 1

    func descriptor() throws -> ConvolutionDescriptor {
        let (r, s) = try ShapeSyntax.pair(kernel, name: "kernel")
        let (h, w) = try ShapeSyntax.pair(size, name: "size")
        let (sh, sw) = try ShapeSyntax.pair(stride, name: "stride")
        let (dh, dw) = try ShapeSyntax.pair(dilation, name: "dilation")
        return try ConvolutionDescriptor(
            batch: batch, inputChannels: channels, inputHeight: h, inputWidth: w,
            outputChannels: outChannels ?? channels, kernelHeight: r, kernelWidth: s,
            strideHeight: sh, strideWidth: sw, padding: try ShapeSyntax.padding(pad),
            dilationHeight: dh, dilationWidth: dw, groups: groups)
    }
}

/// Threads, timing and data options shared by the measuring subcommands.
struct RunOptions: ParsableArguments {
    @Option(help: "Worker threads (default: all cores).")
    var threads: Int = Parallel.defaultThreadCount

    @Option(help: "Minimum number of timed runs per backend.")
    var `repeat`: Int = 5

    @Option(name: .customLong("min-time"), help: "Minimum seconds of timed runs per backend.")
    var minTime: Double = 0.05

    @Option(name: .customLong("max-time"), help: "Stop timing a backend after this many seconds.")
    var maxTime: Double = 1.5

    @Option(help: "Seed for the random input and weights.")
    var seed: UInt64 = 1

    @Option(name: .customLong("gemm"), help: "Matrix-multiply engine for GEMM stages: \(MatrixEngine.names.joined(separator: ", ")).")
    var gemm = "blas"

    func planOptions() throws -> PlanOptions {
        if threads < 1 {
            throw ConvLabError.invalidArgument(name: "threads", reason: "must be at least 1 (got \(threads))")
        }
        return PlanOptions(threads: threads, matrixEngine: try MatrixEngine(parsing: gemm))
    }

    func timingPolicy() throws -> TimingPolicy {
        guard `repeat` >= 1 else {
            throw ConvLabError.invalidArgument(name: "repeat", reason: "must be at least 1 (got \(`repeat`))")
        }
        guard minTime >= 0, maxTime > 0, minTime <= maxTime else {
            throw ConvLabError.invalidArgument(name: "min-time/max-time", reason: "need 0 ≤ min-time ≤ max-time, max-time > 0")
        }
        return TimingPolicy(minRepeats: `repeat`, maxRepeats: max(`repeat`, 1000), minSeconds: minTime,
                            maxSeconds: max(maxTime, minTime))
    }
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case table, csv, json
}

/// Parses `--backends a,b,c` against the registry; nil means "the default set".
func selectBackends(_ list: String?, default defaultSet: [any Convolution]) throws -> [any Convolution] {
    guard let list else { return defaultSet }
    return try list.split(separator: ",").map { try BackendRegistry.backend(named: String($0).trimmingCharacters(in: .whitespaces)) }
}

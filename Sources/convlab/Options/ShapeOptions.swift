import ArgumentParser
import ConvLab
import Foundation

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
    @Option(help: ArgumentHelp(stringLiteral: PassOption.help))
    var pass = "forward"

    /// The passes to run, in step order (all three for `training`).
    func passes() throws -> [ConvolutionPass] { try PassOption.passes(pass) }

    var isTraining: Bool { PassOption.isTraining(pass) }

    @Option(help: ArgumentHelp(stringLiteral: "Tensor layout of the timings, every pass: nchw, nchw16c (plans with a "
        + "channel-blocked entry point, on blocked activations; weights stay KCRS, dw is Oihw16o) or both."))
    var layout = "nchw"

    /// The layouts `--layout` names.
    func layouts() throws -> [TensorLayout] {
        switch layout.lowercased() {
        case "nchw": return [.nchw]
        case "nchw16c": return [.nChw16c]
        case "both": return [.nchw, .nChw16c]
        default: throw ConvLabError.unknownName(kind: "layout", name: layout, known: ["nchw", "nchw16c", "both"])
        }
    }

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int = Parallel.defaultThreadCount

    @Option(help: "Minimum number of timed runs per backend.")
    var `repeat`: Int = 5

    @Option(name: .customLong("min-time"), help: "Minimum seconds of timed runs per backend (default 0.05, at most --max-time).")
    var minTime: Double?

    @Option(name: .customLong("max-time"), help: "Stop timing a backend after this many seconds.")
    var maxTime: Double = 1.5

    @Option(help: "Seed for the random input and weights.")
    var seed: UInt64 = 1

    @OptionGroup var engine: MatrixEngineOptions

    @Option(name: .customLong("max-memory"),
            help: "Refuse problems whose tensors need more than this (e.g. 4G, 512M; default: half of RAM).")
    var maxMemory: String?

    @Option(name: .customLong("max-workspace"),
            help: "Refuse plans whose workspace needs more than this (e.g. 1G; default: a quarter of RAM).")
    var maxWorkspace: String?

    @OptionGroup var accuracy: AccuracyOptions

    func planOptions() throws -> PlanOptions {
        try Validation.threads(threads)
        var limits = ResourceLimits.default
        if let maxMemory { limits.maxTensorBytes = try ByteCount.parse(maxMemory, name: "max-memory") }
        if let maxWorkspace { limits.maxWorkspaceBytes = try ByteCount.parse(maxWorkspace, name: "max-workspace") }
        return PlanOptions(threads: threads, limits: limits,
                           matrixEngine: try engine.matrixEngine(),
                           accuracy: try accuracy.ceiling())
    }

    func timingPolicy() throws -> TimingPolicy {
        try Validation.integer(`repeat`, "repeat", in: 1...Validation.maximumRepeats)
        try Validation.seconds(maxTime, "max-time")
        if let minTime { try Validation.seconds(minTime, "min-time", allowZero: true) }
        let minimum = minTime ?? min(0.05, maxTime)
        guard minimum <= maxTime else {
            throw ConvLabError.invalidArgument(name: "min-time/max-time", reason: "need min-time ≤ max-time "
                                               + "(got \(minimum) > \(maxTime))")
        }
        return TimingPolicy(minRepeats: `repeat`, maxRepeats: max(`repeat`, 1000), minSeconds: minimum,
                            maxSeconds: maxTime)
    }
}

/// `--gemm`, `--strassen-depth`, `--strassen-cutoff`: the matrix-multiply engine of the GEMM stages.
struct MatrixEngineOptions: ParsableArguments {
    @Option(name: .customLong("gemm"), help: "Matrix-multiply engine for GEMM stages: \(MatrixEngine.names.joined(separator: ", ")).")
    var gemm = "native"

    @Option(name: .customLong("strassen-depth"), help: "Recursion depth of the strassen engines.")
    var strassenDepth = 1

    @Option(name: .customLong("strassen-cutoff"), help: "No Strassen recursion once a dimension would fall below this.")
    var strassenCutoff = MatrixEngine.strassenCutoff

    func matrixEngine() throws -> MatrixEngine {
        try MatrixEngine(parsing: gemm, depth: strassenDepth, cutoff: strassenCutoff)
    }
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case table, csv, json
}

/// Settings of the backend families, shared by every subcommand that runs backends.
struct BackendOptions: ParsableArguments {
    @Option(name: .customLong("fft-tile"), help: "Force the tile size of fft-tiled (default: chosen by a cost model).")
    var fftTile: Int?

    @Option(name: .customLong("fft-product"), help: "Per-bin complex product: 4m (four multiplications) or 3m (Gauss).")
    var fftProduct = "4m"

    @Option(name: .customLong("fft-effort"), help: "FFTW planning effort: estimate, measure or patient.")
    var fftEffort = "estimate"

    @Option(name: .customLong("fftw-wisdom"),
            help: "FFTW wisdom file (FFTW's own plans, not convlab's wisdom): loaded before planning if it exists, saved afterwards.")
    var fftwWisdom: String?

    @Option(name: .customLong("winograd-tile"), help: "Output tile m of the 'winograd' backend (default: 4 for 2- to 4-tap kernels, 2 otherwise).")
    var winogradTile: Int?

    @Option(name: .customLong("winograd-points"), help: "Interpolation points of the 'winograd' backend, e.g. \"0,1,-1,1/2,-1/2\".")
    var winogradPoints: String?

    @Option(name: .customLong("winograd-fractions"), help: "Which Winograd matrix carries the fractions: G, A or B.")
    var winogradFractions = "G"

    func settings() throws -> BackendSettings {
        guard let product = ComplexProduct(rawValue: fftProduct) else {
            throw ConvLabError.unknownName(kind: "FFT product", name: fftProduct, known: ComplexProduct.allCases.map(\.rawValue))
        }
        guard let effort = FFTPlanningEffort(rawValue: fftEffort) else {
            throw ConvLabError.unknownName(kind: "FFT planning effort", name: fftEffort,
                                           known: FFTPlanningEffort.allCases.map(\.rawValue))
        }
        if let fftTile { try Validation.integer(fftTile, "fft-tile", in: 2...4096) }
        if let winogradTile, winogradTile < 1 || winogradTile > 14 {
            throw ConvLabError.invalidArgument(name: "winograd-tile", reason: "must be 1...14 (got \(winogradTile))")
        }
        guard let fractions = WinogradTransform.FractionPlacement(rawValue: winogradFractions.uppercased()) else {
            throw ConvLabError.unknownName(kind: "fraction placement", name: winogradFractions, known: ["G", "A", "B"])
        }
        let points = try winogradPoints.map { text in
            try text.split(separator: ",").map { try Rational(parsing: String($0)) }
        }
        return BackendSettings(fftTile: fftTile, fftProduct: product, fftEffort: effort, winogradTile: winogradTile,
                               winogradPoints: points, winogradFractions: fractions)
    }

    /// Runs `body` with FFTW wisdom loaded from and saved to `--fftw-wisdom` when given.
    func withWisdom<R>(_ body: () throws -> R) throws -> R {
        guard let fftwWisdom else { return try body() }
        if FileManager.default.fileExists(atPath: fftwWisdom) { try FFTWisdom.load(from: fftwWisdom) }
        let result = try body()
        try FFTWisdom.save(to: fftwWisdom)
        return result
    }

    /// The backends named in `list` (comma-separated), or, when nil, every backend except `reference` that supports
    /// `descriptor` in `pass` (all of them when no descriptor is given).
    func backends(_ list: String?, for descriptor: ConvolutionDescriptor? = nil, pass: ConvolutionPass = .forward) throws
        -> [any Convolution] {
        let settings = try settings()
        guard let list else {
            return BackendRegistry.all(settings).filter { backend in
                backend.name != "reference"
                    && (descriptor.map { backend.support(for: $0, pass: pass) }?.isSupported ?? true)
            }
        }
        return try list.split(separator: ",").map {
            try BackendRegistry.backend(named: String($0).trimmingCharacters(in: .whitespaces), settings: settings)
        }
    }
}

/// Byte counts on the command line: a plain number or one with a binary suffix (K, M, G, T; an optional trailing B or
/// iB), e.g. 4096, 512M, 2GiB.
enum ByteCount {
    static func parse(_ text: String, name: String) throws -> Int {
        var digits = text.trimmingCharacters(in: .whitespaces).uppercased()
        for suffix in ["IB", "B"] where digits.hasSuffix(suffix) && digits.count > suffix.count {
            digits.removeLast(suffix.count)
            break
        }
        let shifts: [Character: Int] = ["K": 10, "M": 20, "G": 30, "T": 40]
        var shift = 0
        if let last = digits.last, let s = shifts[last] {
            shift = s
            digits.removeLast()
        }
        guard let value = Int(digits), value >= 0, value <= Int.max >> shift else {
            throw ConvLabError.invalidArgument(name: name, reason: "'\(text)' is not a byte count such as 4096, 512M or 2G")
        }
        return value << shift
    }
}

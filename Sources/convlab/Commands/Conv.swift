import ArgumentParser
import ConvLab
import Foundation

/// `convlab conv`: convolve NumPy arrays, so results can be cross-checked against NumPy or PyTorch.
struct Conv: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convolve an input .npy with a weights .npy and write the output .npy.",
        discussion: """
        input: N×C×H×W (or C×H×W); weights: K×(C/groups)×R×S; bias: K. Float32 and float64 (and integer) .npy \
        files are read and converted to float32; the output is float32 unless --float64-output. Computes what \
        torch.nn.functional.conv2d computes (cross-correlation).
        """)

    @Option(help: "Input .npy (N×C×H×W or C×H×W).")
    var input: String

    @Option(help: "Weights .npy (K×C/groups×R×S).")
    var weights: String

    @Option(help: "Output .npy to write.")
    var output: String

    @Option(help: "Optional bias .npy (K).")
    var bias: String?

    @Option(help: "Backend: \(BackendRegistry.names.joined(separator: ", ")).")
    var backend = "direct"

    @Option(help: "Stride: s or h,w.")
    var stride = "1"

    @Option(help: "Padding: p, h,w, t,b,l,r, same or valid.")
    var pad = "0"

    @Option(help: "Dilation: d or h,w.")
    var dilation = "1"

    @Option(help: "Groups.")
    var groups = 1

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int = Parallel.defaultThreadCount

    @OptionGroup var backendOptions: BackendOptions

    @Flag(name: .customLong("float64-output"), help: "Write the output as float64 instead of float32.")
    var float64Output = false

    @Flag(help: "Also compare with the float64 reference and print the error report to stderr.")
    var check = false

    func run() throws {
        try Validation.threads(threads)
        var inputArray = try NumpyArray.read(contentsOf: input)
        let squeezeBatch = inputArray.shape.count == 3
        if squeezeBatch { inputArray.shape.insert(1, at: 0) }
        let weightArray = try NumpyArray.read(contentsOf: weights)
        guard inputArray.shape.count == 4 else {
            throw ConvLabError.shapeMismatch(what: "input \(input)", expected: "4 dimensions N×C×H×W (or C×H×W)",
                                             actual: "\(inputArray.shape)")
        }
        guard weightArray.shape.count == 4 else {
            throw ConvLabError.shapeMismatch(what: "weights \(weights)", expected: "4 dimensions K×C/groups×R×S",
                                             actual: "\(weightArray.shape)")
        }
        let (n, c, h, w) = (inputArray.shape[0], inputArray.shape[1], inputArray.shape[2], inputArray.shape[3])
        let (k, cg, r, s) = (weightArray.shape[0], weightArray.shape[1], weightArray.shape[2], weightArray.shape[3])
        guard groups >= 1, c % groups == 0, cg == c / groups else {
            throw ConvLabError.shapeMismatch(what: "weights \(weights)",
                                             expected: "second dimension C/groups = \(c)/\(groups)",
                                             actual: "\(cg) (shape \(weightArray.shape))")
        }
        let (sh, sw) = try ShapeSyntax.pair(stride, name: "stride")
        let (dh, dw) = try ShapeSyntax.pair(dilation, name: "dilation")
        let descriptor = try ConvolutionDescriptor(
            batch: n, inputChannels: c, inputHeight: h, inputWidth: w, outputChannels: k, kernelHeight: r,
            kernelWidth: s, strideHeight: sh, strideWidth: sw, padding: try ShapeSyntax.padding(pad),
            dilationHeight: dh, dilationWidth: dw, groups: groups)

        let x = try inputArray.float32Tensor()
        let wt = try weightArray.float32Tensor()
        let chosen = try BackendRegistry.backend(named: backend, settings: try backendOptions.settings())
        let plan = try backendOptions.withWisdom {
            try chosen.makePlan(descriptor: descriptor, weights: wt, options: PlanOptions(threads: threads))
        }
        var y = try plan(x)
        if check {
            let reference = try ReferenceConvolution.compute(descriptor: descriptor, input: x, weights: wt,
                                                             threads: threads)
            let report = try AccuracyChecker.compare(output: y, reference: reference,
                                                     errorBound: plan.expectedErrorBound)
            printError("conv: \(backend) on \(descriptor): max rel error \(Format.error(report.maxRelativeError)), "
                       + "mean \(Format.error(report.meanRelativeError)), bound \(Format.error(report.errorBound)): "
                       + (report.passed ? "pass" : "FAIL"))
        }
        if let bias {
            let biasArray = try NumpyArray.read(contentsOf: bias)
            try addChannelBias(try biasArray.float32Tensor(), to: &y)
        }
        var result = NumpyArray(y)
        if squeezeBatch { result.shape.removeFirst() }
        try result.write(to: output, float32: !float64Output)
    }
}

import ArgumentParser
import ConvLab
import Foundation

/// `convlab conv`: one pass of a convolution on NumPy arrays, so results can be cross-checked against NumPy or
/// PyTorch (`torch.nn.functional.conv2d`, `torch.nn.grad.conv2d_input`, `torch.nn.grad.conv2d_weight`).
struct Conv: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run one convolution pass on .npy arrays and write the result .npy.",
        discussion: """
        forward (default): --input x (N×C×H×W or C×H×W) --weights w (K×C/groups×R×S) [--bias b (K)] → y, what \
        torch.nn.functional.conv2d computes. backward-data: --grad-output dy (N×K×Ho×Wo) --weights w --input-shape \
        N,C,H,W → dx, what torch.nn.grad.conv2d_input computes (the input size is needed: with stride > 1 several \
        sizes give the same dy). backward-weights: --input x --grad-output dy --kernel RxS → dw (K×C/groups×R×S), \
        what torch.nn.grad.conv2d_weight computes. dy must have the size the forward pass gives for the layer. \
        Float32, float64 and integer .npy files are converted to float32; results are float32 unless --float64-output.
        """)

    @Option(help: "Pass: forward, backward-data (dgrad) or backward-weights (wgrad).")
    var pass = "forward"

    @Option(help: "Input .npy x (N×C×H×W or C×H×W): forward and backward-weights.")
    var input: String?

    @Option(help: "Weights .npy (K×C/groups×R×S): forward and backward-data.")
    var weights: String?

    @Option(name: .customLong("grad-output"), help: "Gradient of the output .npy dy (N×K×Ho×Wo): the backward passes.")
    var gradOutput: String?

    @Option(name: .customLong("input-shape"), help: "backward-data: the input's shape N,C,H,W.")
    var inputShape: String?

    @Option(help: "backward-weights: the kernel size R or RxS.")
    var kernel: String?

    @Option(help: "Output .npy to write (y, dx or dw).")
    var output: String

    @Option(help: "Optional bias .npy (K), forward only.")
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
    @OptionGroup var accuracy: AccuracyOptions

    @Flag(name: .customLong("float64-output"), help: "Write the output as float64 instead of float32.")
    var float64Output = false

    @Flag(help: "Also compare with the float64 reference and print the error report to stderr.")
    var check = false

    func run() throws {
        try Validation.threads(threads)
        let pass = try PassOption.single(self.pass, command: "conv")
        if bias != nil && pass != .forward {
            throw ConvLabError.invalidArgument(name: "bias", reason: "only the forward pass adds a bias")
        }
        let problem = try layer(for: pass)
        let d = problem.descriptor
        let chosen = try BackendRegistry.backend(named: backend, settings: try backendOptions.settings())
        let ceiling = try accuracy.ceiling()
        let plan = try backendOptions.withWisdom {
            try chosen.makePlan(pass: pass, descriptor: d, weights: problem.weights,
                                options: PlanOptions(threads: threads, accuracy: ceiling))
        }
        if !ceiling.isMeaningful(plan.summary.errorBound) {
            printError("conv: warning: \(backend) (\(plan.summary.variant)) declares an error bound of "
                       + "\(Format.error(plan.summary.errorBound)), above the accuracy ceiling "
                       + "\(Format.error(ceiling.ceiling)): this result carries no meaningful accuracy promise")
        }
        var result = try plan.run(problem.data, gradOutput: problem.gradOutput)
        if check {
            let reference = try ReferenceConvolution.compute(pass, descriptor: d, input: problem.data,
                                                             weights: problem.weights, gradOutput: problem.gradOutput,
                                                             threads: threads)
            let report = try AccuracyChecker.compare(output: result, reference: reference,
                                                     errorBound: plan.summary.errorBound,
                                                     ceiling: ceiling.ceiling,
                                                     typicalError: plan.summary.typicalError)
            printError("conv: \(backend) \(pass) on \(d): max rel error \(Format.error(report.maxRelativeError)), "
                       + "mean \(Format.error(report.meanRelativeError)) (typical \(Format.error(plan.summary.typicalError))), bound \(Format.error(report.errorBound)): "
                       + (report.verdict == .fail ? "FAIL" : report.verdict.rawValue))
        }
        if let bias {
            try addChannelBias(try NumpyArray.read(contentsOf: bias).float32Tensor(), to: &result)
        }
        var array = NumpyArray(result)
        if problem.squeezeBatch { array.shape.removeFirst() }
        try array.write(to: output, float32: !float64Output)
    }

    /// The layer and the pass's operands, from the files and flags: the descriptor from the shapes that are given,
    /// then every given array checked against it.
    private func layer(for pass: ConvolutionPass) throws
        -> (descriptor: ConvolutionDescriptor, data: Tensor<Float>, weights: Tensor<Float>?,
            gradOutput: Tensor<Float>?, squeezeBatch: Bool) {
        func read(_ path: String?, _ flag: String, _ what: String) throws -> NumpyArray {
            guard let path else {
                throw ConvLabError.invalidArgument(name: flag, reason: "the \(pass) pass needs --\(flag) (\(what))")
            }
            return try NumpyArray.read(contentsOf: path)
        }
        func fourDimensions(_ array: NumpyArray, _ path: String, _ what: String) throws -> [Int] {
            guard array.shape.count == 4 else {
                throw ConvLabError.shapeMismatch(what: "\(what) \(path)", expected: "4 dimensions", actual: "\(array.shape)")
            }
            return array.shape
        }
        var squeeze = false
        var x: NumpyArray?
        if pass != .backwardData {
            var array = try read(input, "input", "x, N×C×H×W")
            if array.shape.count == 3 {
                array.shape.insert(1, at: 0)
                squeeze = pass == .forward
            }
            x = array
        }
        let w = pass == .backwardWeights ? nil : try read(weights, "weights", "w, K×C/groups×R×S")
        let dy = pass == .forward ? nil : try read(gradOutput, "grad-output", "dy, N×K×Ho×Wo")

        // N, C, H, W from x or --input-shape; K, R, S from w, or from dy and --kernel.
        let inputDimensions: [Int]
        if let x {
            inputDimensions = try fourDimensions(x, input ?? "", "input")
        } else {
            guard let inputShape else {
                throw ConvLabError.invalidArgument(name: "input-shape", reason: "backward-data needs --input-shape N,C,H,W")
            }
            let values = inputShape.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard values.count == 4, values.allSatisfy({ ($0 ?? 0) >= 1 }) else {
                throw ConvLabError.invalidArgument(name: "input-shape", reason: "'\(inputShape)' is not N,C,H,W")
            }
            inputDimensions = values.compactMap { $0 }
        }
        let (n, c, h, wd) = (inputDimensions[0], inputDimensions[1], inputDimensions[2], inputDimensions[3])
        let (k, r, s): (Int, Int, Int)
        if let w {
            let shape = try fourDimensions(w, weights ?? "", "weights")
            guard groups >= 1, c % groups == 0, shape[1] == c / groups else {
                throw ConvLabError.shapeMismatch(what: "weights \(weights ?? "")",
                                                 expected: "second dimension C/groups = \(c)/\(groups)",
                                                 actual: "\(shape[1]) (shape \(shape))")
            }
            (k, r, s) = (shape[0], shape[2], shape[3])
        } else {
            guard let kernel else {
                throw ConvLabError.invalidArgument(name: "kernel", reason: "backward-weights needs --kernel R or RxS")
            }
            let (kr, ks) = try ShapeSyntax.pair(kernel, name: "kernel")
            let dyShape = try fourDimensions(dy!, gradOutput ?? "", "gradient of the output")
            (k, r, s) = (dyShape[1], kr, ks)
        }
        let (sh, sw) = try ShapeSyntax.pair(stride, name: "stride")
        let (dh, dw) = try ShapeSyntax.pair(dilation, name: "dilation")
        let d = try ConvolutionDescriptor(
            batch: n, inputChannels: c, inputHeight: h, inputWidth: wd, outputChannels: k, kernelHeight: r,
            kernelWidth: s, strideHeight: sh, strideWidth: sw, padding: try ShapeSyntax.padding(pad),
            dilationHeight: dh, dilationWidth: dw, groups: groups)
        if let dy, dy.shape != d.outputShape {
            throw ConvLabError.shapeMismatch(
                what: "gradient of the output \(gradOutput ?? "")",
                expected: "\(d.outputShape), the forward output of \(d)", actual: "\(dy.shape)")
        }
        let data = try (pass == .backwardData ? dy! : x!).float32Tensor()
        return (d, data, try w?.float32Tensor(), pass == .backwardWeights ? try dy!.float32Tensor() : nil, squeeze)
    }
}

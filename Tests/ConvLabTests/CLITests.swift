import ConvLab
import Foundation
import Testing

/// The `convlab` executable, run as a user would: one line on stderr and a non-zero status for bad input.
@Suite struct CLITests {
    static let executable: URL = {
        // `swift test` builds every product next to the test bundle.
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: directory.appendingPathComponent("convlab").path),
              directory.path != "/" {
            directory.deleteLastPathComponent()
        }
        return directory.appendingPathComponent("convlab")
    }()

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
        /// False when the process died of a signal (a trap, an abort, the timeout's kill).
        var exitedNormally: Bool = true
    }

    /// Serialises launches: Foundation's `Process.run` on Linux copies the process's open descriptors while it
    /// spawns, and two tests launching at once crashed it (SIGSEGV in its memcpy, seen on the Zen 5 kind).
    static let launch = NSLock()

    /// Runs convlab; a run longer than `timeout` seconds is killed (and then did not exit normally).
    static func run(_ arguments: [String], timeout: Double = 120) throws -> Result {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try launch.withLock { try process.run() }
        let watchdog = DispatchWorkItem { [process] in if process.isRunning { process.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: watchdog)
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        watchdog.cancel()
        return Result(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                      stderr: String(decoding: stderr, as: UTF8.self),
                      exitedNormally: process.terminationReason == .exit)
    }

    static func temporary(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("convlab-\(UUID())-\(name)").path
    }

    @Test func executableWasBuilt() {
        #expect(FileManager.default.isExecutableFile(atPath: Self.executable.path))
    }

    @Test(arguments: [
        ["compare", "--kernel", "0"],
        ["compare", "--kernel", "3", "--channels", "6", "--groups", "4"],
        ["compare", "--kernel", "9", "--size", "4", "--pad", "0"],
        ["compare", "--kernel", "3", "--size", "100000", "--channels", "1"],
        ["compare", "--backends", "nonsense"],
        ["compare", "--threads", "0"],
        ["compare", "--pad", "1,2,3"],
        ["conv", "--input", "/nonexistent.npy", "--weights", "/nonexistent.npy", "--output", "/tmp/x.npy"],
        ["bench", "--suite", "/nonexistent.csv"],
        ["matmul", "--size", "0"],
        ["compare", "--pass", "bogus"],
        ["bench", "--suite", "/nonexistent.csv", "--pass", "training", "--steps-out", "/x"],
    ])
    func badInputPrintsOneLineAndFails(arguments: [String]) throws {
        let result = try Self.run(arguments)
        #expect(result.status != 0)
        let lines = result.stderr.split(separator: "\n").filter { !$0.hasPrefix("Usage") && !$0.hasPrefix("  See") }
        #expect(lines.count == 1, "\(arguments): \(result.stderr)")
        #expect(!result.stderr.contains("Fatal error"))
    }

    @Test func compareCSVHasTheRequiredColumns() throws {
        let result = try Self.run(["compare", "--kernel", "3", "--channels", "8", "--size", "12", "--format", "csv",
                                   "--repeat", "2", "--max-time", "0.2"])
        #expect(result.status == 0, "\(result.stderr)")
        let records = CSVReader.records(result.stdout)
        let header = records.first ?? []
        for column in ["backend", "ms_median", "gflops_effective", "max_rel_error", "passed"] {
            #expect(header.contains(column))
        }
        let d = try ConvolutionDescriptor(inputChannels: 8, inputHeight: 12, inputWidth: 12, outputChannels: 8,
                                          kernelHeight: 3, kernelWidth: 3, padding: .same)
        #expect(records.count == 1 + BackendRegistry.supporting(d).count)
        for row in CSVReader.rows(result.stdout) {
            #expect(row["passed"] == "true", "\(row)")
            #expect(Double(row["ms_median"] ?? "") != nil)
        }
    }

    @Test func compareTableListsEveryBackendAndProfiles() throws {
        let result = try Self.run(["compare", "--kernel", "5x3", "--channels", "4", "--out-channels", "6",
                                   "--size", "9x13", "--stride", "2,1", "--dilation", "1,2", "--repeat", "2",
                                   "--max-time", "0.2", "--profile"])
        #expect(result.status == 0, "\(result.stderr)")
        for name in ["im2col", "direct", "pad input", "convolve"] { #expect(result.stdout.contains(name)) }
        #expect(!result.stdout.contains("FAIL"))
    }

    @Test func convMatchesTheLibraryAndAddsBias() throws {
        let d = try ConvolutionDescriptor(batch: 2, inputChannels: 4, inputHeight: 10, inputWidth: 8,
                                          outputChannels: 6, kernelHeight: 3, kernelWidth: 3, strideHeight: 2,
                                          strideWidth: 1, padding: .explicit(Padding(top: 1, bottom: 0, left: 2, right: 1)),
                                          groups: 2)
        let x = try Tensor<Float>.random(shape: d.inputShape, seed: 1)
        let w = try Tensor<Float>.random(shape: d.weightShape, seed: 2)
        let bias = try Tensor<Float>(shape: [6], scalars: [1, 2, 3, 4, 5, 6])
        let (xPath, wPath, bPath, yPath) = (Self.temporary("x.npy"), Self.temporary("w.npy"), Self.temporary("b.npy"),
                                            Self.temporary("y.npy"))
        defer { for p in [xPath, wPath, bPath, yPath] { try? FileManager.default.removeItem(atPath: p) } }
        try NumpyArray(x).write(to: xPath)
        try NumpyArray(w).write(to: wPath, float32: false)  // float64 weights are converted
        try NumpyArray(bias).write(to: bPath)
        for backend in ["im2col", "direct", "reference"] {
            let result = try Self.run(["conv", "--input", xPath, "--weights", wPath, "--bias", bPath, "--output", yPath,
                                       "--backend", backend, "--stride", "2,1", "--pad", "1,0,2,1", "--groups", "2",
                                       "--check"])
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stderr.contains("pass"))
            let y = try NumpyArray.read(contentsOf: yPath)
            #expect(y.shape == d.outputShape)
            let referencePlan = try ReferenceBackend().makePlan(descriptor: d, weights: w, options: PlanOptions())
            var expected = try referencePlan(x)
            try addChannelBias(bias, to: &expected)
            let maxDifference = zip(y.values, expected.scalars).map { abs($0 - Double($1)) }.max() ?? 0
            #expect(maxDifference < 1e-4)
        }
    }

    /// `conv --pass backward-data` and `backward-weights` compute what torch.nn.grad.conv2d_input / conv2d_weight do:
    /// the float64 reference's gradients, through .npy files, with stride, asymmetric padding, dilation and groups.
    @Test func convComputesBothGradientsThroughNumpyFiles() throws {
        let d = try ConvolutionDescriptor(batch: 2, inputChannels: 4, inputHeight: 11, inputWidth: 9,
                                          outputChannels: 6, kernelHeight: 3, kernelWidth: 2, strideHeight: 2,
                                          strideWidth: 1, padding: .explicit(Padding(top: 1, bottom: 0, left: 2, right: 1)),
                                          dilationHeight: 1, dilationWidth: 2, groups: 2)
        let x = try Tensor<Float>.random(shape: d.inputShape, seed: 1)
        let w = try Tensor<Float>.random(shape: d.weightShape, seed: 2)
        let dy = try Tensor<Float>.random(shape: d.outputShape, seed: 3)
        let (xPath, wPath, dyPath, out) = (Self.temporary("x.npy"), Self.temporary("w.npy"), Self.temporary("dy.npy"),
                                           Self.temporary("out.npy"))
        defer { for p in [xPath, wPath, dyPath, out] { try? FileManager.default.removeItem(atPath: p) } }
        try NumpyArray(x).write(to: xPath)
        try NumpyArray(w).write(to: wPath)
        try NumpyArray(dy).write(to: dyPath)
        let layer = ["--stride", "2,1", "--pad", "1,0,2,1", "--dilation", "1,2", "--groups", "2", "--check"]
        let dx = try ReferenceConvolution.backwardData(descriptor: d, gradOutput: dy, weights: w).output.scalars
        let dw = try ReferenceConvolution.backwardWeights(descriptor: d, input: x, gradOutput: dy).output.scalars
        for backend in ["im2col", "direct", "fft", "reference"] {
            var result = try Self.run(["conv", "--pass", "backward-data", "--grad-output", dyPath, "--weights", wPath,
                                       "--input-shape", "2,4,11,9", "--output", out, "--backend", backend] + layer)
            #expect(result.status == 0 && result.stderr.contains("pass"), "\(backend): \(result.stderr)")
            var array = try NumpyArray.read(contentsOf: out)
            #expect(array.shape == d.inputShape)
            #expect((zip(array.values, dx).map { abs($0 - $1) }.max() ?? 1) < 1e-4, "\(backend) dx")
            result = try Self.run(["conv", "--pass", "backward-weights", "--input", xPath, "--grad-output", dyPath,
                                   "--kernel", "3x2", "--output", out, "--backend", backend] + layer)
            #expect(result.status == 0 && result.stderr.contains("pass"), "\(backend): \(result.stderr)")
            array = try NumpyArray.read(contentsOf: out)
            #expect(array.shape == d.weightShape)
            #expect((zip(array.values, dw).map { abs($0 - $1) }.max() ?? 1) < 1e-4, "\(backend) dw")
        }
        // dy of the wrong size, a missing operand, a bias on a backward pass: one clear line each.
        let wrong = try Self.run(["conv", "--pass", "backward-data", "--grad-output", dyPath, "--weights", wPath,
                                  "--input-shape", "2,4,12,9", "--output", out] + layer)
        #expect(wrong.status != 0 && wrong.stderr.contains("the forward output of"), "\(wrong.stderr)")
        let missing = try Self.run(["conv", "--pass", "backward-weights", "--input", xPath, "--grad-output", dyPath,
                                    "--output", out] + layer)
        #expect(missing.status != 0 && missing.stderr.contains("--kernel"), "\(missing.stderr)")
        let bias = try Self.run(["conv", "--pass", "backward-data", "--grad-output", dyPath, "--weights", wPath,
                                 "--input-shape", "2,4,11,9", "--bias", wPath, "--output", out] + layer)
        #expect(bias.status != 0 && bias.stderr.contains("bias"), "\(bias.stderr)")
    }

    /// `--layout both` times a plan with a channel-blocked entry point twice (NCHW and nChw16c, both checked against
    /// the reference), leaves other backends NCHW-only, and `--layout nchw16c` marks them unsupported; a bad layout
    /// name is a typed error.
    @Test func benchLayoutsTimeBlockedPlansBothWays() throws {
        let suite = Self.temporary("layout-suite.csv")
        defer { try? FileManager.default.removeItem(atPath: suite) }
        try "name,N,C,H,W,K,R,S,stride,pad,groups\ndw,2,20,9,9,20,3,3,2,1,20\n"
            .write(toFile: suite, atomically: true, encoding: .utf8)
        let both = try Self.run(["bench", "--suite", suite, "--backends", "direct,im2col", "--layout", "both",
                                 "--threads", "2", "--repeat", "2", "--max-time", "0.1"])
        #expect(both.status == 0, "\(both.stderr)")
        let rows = CSVReader.rows(both.stdout)
        #expect(rows.map { "\($0["backend"] ?? "") \($0["layout"] ?? "")" } == ["direct nchw", "direct nChw16c", "im2col nchw"])
        #expect(rows.allSatisfy { $0["passed"] == "true" }, "\(rows)")
        let blockedOnly = try Self.run(["bench", "--suite", suite, "--backends", "direct,im2col", "--layout", "nchw16c",
                                        "--repeat", "2", "--max-time", "0.1"])
        let blockedRows = CSVReader.rows(blockedOnly.stdout)
        #expect(blockedRows.map { $0["status"] ?? "" } == ["ok", "unsupported"], "\(blockedRows)")
        let bad = try Self.run(["bench", "--suite", suite, "--layout", "nhwc"])
        #expect(bad.status != 0 && bad.stderr.contains("layout"), "\(bad.stderr)")
    }

    /// `--pass training` measures the three passes of one step; the step summary is the sum of each pass's fastest
    /// passing backend in the same run, and the best single backend's sum is never below it.
    @Test func benchTrainingSumsTheFastestBackendOfEachPass() throws {
        let (suite, steps) = (Self.temporary("train-suite.csv"), Self.temporary("steps.csv"))
        defer { for p in [suite, steps] { try? FileManager.default.removeItem(atPath: p) } }
        try "name,N,C,H,W,K,R,S,stride,pad,groups\nsmall,2,8,15,15,6,3,3,2,1,2\n"
            .write(toFile: suite, atomically: true, encoding: .utf8)
        let result = try Self.run(["bench", "--suite", suite, "--pass", "training", "--threads", "2", "--repeat", "2",
                                   "--max-time", "0.1", "--steps-out", steps])
        #expect(result.status == 0, "\(result.stderr)")
        let rows = CSVReader.rows(result.stdout)
        #expect(Set(rows.map { $0["pass"] ?? "" }) == Set(ConvolutionPass.allCases.map(\.rawValue)))
        #expect(rows.allSatisfy { $0["passed"] == "true" }, "\(rows.filter { $0["passed"] != "true" })")
        let summary = CSVReader.rows(try String(contentsOfFile: steps, encoding: .utf8))
        #expect(summary.count == 1)
        guard let step = summary.first, let total = Double(step["step_ms"] ?? ""),
              let single = Double(step["best_single_ms"] ?? "") else {
            Issue.record("no step summary: \(summary)")
            return
        }
        var expected = 0.0
        for pass in ConvolutionPass.allCases {
            let times = rows.filter { $0["pass"] == pass.rawValue }.compactMap { Double($0["ms_median"] ?? "") }
            let fastest = try #require(times.min())
            #expect(abs((Double(step["\(pass.rawValue.replacingOccurrences(of: "-", with: "_"))_ms"] ?? "") ?? -1)
                        - fastest) < 1e-4)
            expected += fastest
        }
        #expect(abs(total - expected) < 1e-3, "\(step)")
        #expect(single >= total - 1e-4)
        // training is not a pass conv can compute, and a step summary needs the training passes.
        let conv = try Self.run(["conv", "--pass", "training", "--input", suite, "--weights", suite, "--output", steps])
        #expect(conv.status != 0 && conv.stderr.contains("conv computes one pass"), "\(conv.stderr)")
        let notTraining = try Self.run(["bench", "--suite", suite, "--steps-out", steps])
        #expect(notTraining.status != 0 && notTraining.stderr.contains("needs --pass training"))
        // An unwritable summary path is refused before anything is measured.
        let unwritable = try Self.run(["bench", "--suite", suite, "--pass", "training", "--steps-out",
                                       "/nonexistent-dir/steps.csv"])
        #expect(unwritable.status != 0 && unwritable.stderr.contains("cannot write the training-step summary")
                && unwritable.stdout.isEmpty, "\(unwritable.stderr)")
        let unknown = try Self.run(["compare", "--pass", "bogus"])
        #expect(unknown.stderr.contains("training"), "the error lists every pass compare accepts: \(unknown.stderr)")
    }

    @Test func convRefusesWeightsThatDoNotMatchTheInput() throws {
        let (xPath, wPath) = (Self.temporary("x.npy"), Self.temporary("w.npy"))
        defer { for p in [xPath, wPath] { try? FileManager.default.removeItem(atPath: p) } }
        try NumpyArray(try Tensor<Float>(shape: [1, 3, 8, 8])).write(to: xPath)
        try NumpyArray(try Tensor<Float>(shape: [4, 2, 3, 3])).write(to: wPath)
        let result = try Self.run(["conv", "--input", xPath, "--weights", wPath, "--output", Self.temporary("y.npy")])
        #expect(result.status != 0)
        #expect(result.stderr.contains("C/groups"))
    }

    @Test func benchWritesOneRowPerSupportedBackend() throws {
        let suite = Self.temporary("suite.csv")
        defer { try? FileManager.default.removeItem(atPath: suite) }
        try "name,N,C,H,W,K,R,S,stride,pad,groups\nsmall,1,8,16,16,8,3,3,1,1,1\ndw,1,8,16,16,8,3,3,2,1,8\n"
            .write(toFile: suite, atomically: true, encoding: .utf8)
        let result = try Self.run(["bench", "--suite", suite, "--threads", "2", "--repeat", "2", "--max-time", "0.2"])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.first?.hasPrefix("name,backend,") == true)
        let small = try ConvolutionDescriptor(inputChannels: 8, inputHeight: 16, inputWidth: 16, outputChannels: 8,
                                              kernelHeight: 3, kernelWidth: 3, padding: .explicit(Padding(1)))
        let depthwise = try ConvolutionDescriptor(inputChannels: 8, inputHeight: 16, inputWidth: 16, outputChannels: 8,
                                                  kernelHeight: 3, kernelWidth: 3, strideHeight: 2, strideWidth: 2,
                                                  padding: .explicit(Padding(1)), groups: 8)
        #expect(lines.count == 1 + BackendRegistry.supporting(small).count + BackendRegistry.supporting(depthwise).count)
    }
}

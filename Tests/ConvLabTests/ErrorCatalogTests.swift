import ConvLab
import Foundation
import Testing

/// One test per way bad input can reach convlab: every `ConvLabError` case from the library, and every validation
/// of the command line. Each must come back as a typed error (library) or one `Error:` line and a non-zero status
/// (CLI) that names the offending field — never a crash or a silent answer.
@Suite struct ErrorCatalogTests {
    /// A library call and the error it must raise, matched on case and the field it names.
    struct LibraryCase: CustomTestStringConvertible, Sendable {
        let name: String
        let call: @Sendable () throws -> Void
        let matches: @Sendable (ConvLabError) -> Bool
        var testDescription: String { name }
    }

    static let small = try! ConvolutionDescriptor(inputChannels: 4, inputHeight: 8, inputWidth: 8, outputChannels: 4,
                                                  kernelHeight: 3, kernelWidth: 3, padding: .same)

    static func argument(_ name: String) -> @Sendable (ConvLabError) -> Bool {
        { if case .invalidArgument(name, _) = $0 { true } else { false } }
    }

    static let libraryCases: [LibraryCase] = [
        LibraryCase(name: "descriptor: groups do not divide C", call: {
            _ = try ConvolutionDescriptor(inputChannels: 6, inputHeight: 8, inputWidth: 8, outputChannels: 8,
                                          kernelHeight: 3, kernelWidth: 3, groups: 4)
        }, matches: { if case .invalidDescriptor("groups", _) = $0 { true } else { false } }),
        LibraryCase(name: "descriptor: 100,000² image refused up front", call: {
            _ = try ConvolutionDescriptor(inputChannels: 3, inputHeight: 100_000, inputWidth: 100_000,
                                          outputChannels: 3, kernelHeight: 3, kernelWidth: 3)
        }, matches: { if case .memoryLimitExceeded = $0 { true } else { false } }),
        LibraryCase(name: "tensor: negative dimension", call: { _ = try Tensor<Float>(shape: [2, -1]) },
                    matches: argument("shape")),
        LibraryCase(name: "tensor: element count overflows Int", call: {
            _ = try Tensor<Float>(shape: [1 << 40, 1 << 40])
        }, matches: argument("shape")),
        LibraryCase(name: "workspace: negative size", call: { _ = try Workspace(byteCount: -1) },
                    matches: argument("workspace size")),
        LibraryCase(name: "plan: zero threads", call: {
            _ = try DirectBackend().makePlan(descriptor: small, weights: try Tensor(shape: small.weightShape),
                                             options: PlanOptions(threads: 0))
        }, matches: argument("threads")),
        LibraryCase(name: "plan: weights of the wrong shape", call: {
            _ = try Im2colBackend().makePlan(descriptor: small, weights: try Tensor(shape: [4, 4, 5, 5]),
                                             options: PlanOptions())
        }, matches: { if case .shapeMismatch = $0 { true } else { false } }),
        LibraryCase(name: "plan: input buffer of the wrong shape", call: {
            let plan = try DirectBackend().makePlan(descriptor: small, weights: try Tensor(shape: small.weightShape),
                                                    options: PlanOptions())
            _ = try plan(try Tensor<Float>(shape: [1, 4, 8, 9]))
        }, matches: { if case .shapeMismatch = $0 { true } else { false } }),
        LibraryCase(name: "plan: workspace over the limit", call: {
            let limits = ResourceLimits(maxTensorBytes: 1 << 30, maxWorkspaceBytes: 64)
            _ = try Im2colBackend().makePlan(descriptor: small, weights: try Tensor(shape: small.weightShape),
                                             options: PlanOptions(limits: limits))
        }, matches: { if case .memoryLimitExceeded = $0 { true } else { false } }),
        LibraryCase(name: "winograd: stride 2 with dilation 2 is unsupported", call: {
            let d = try ConvolutionDescriptor(inputChannels: 4, inputHeight: 12, inputWidth: 12, outputChannels: 4,
                                              kernelHeight: 3, kernelWidth: 3, strideHeight: 2, strideWidth: 2,
                                              dilationHeight: 2, dilationWidth: 2)
            _ = try BackendRegistry.backend(named: "winograd").makePlan(
                descriptor: d, weights: try Tensor(shape: d.weightShape), options: PlanOptions())
        }, matches: { if case .unsupported("winograd", _) = $0 { true } else { false } }),
        LibraryCase(name: "registry: unknown backend", call: { _ = try BackendRegistry.backend(named: "cudnn") },
                    matches: { if case .unknownName("backend", "cudnn", _) = $0 { true } else { false } }),
        LibraryCase(name: "engine: Strassen depth 9", call: { _ = try MatrixEngine(parsing: "strassen", depth: 9) },
                    matches: argument("depth")),
        LibraryCase(name: "engine: Strassen cutoff 0", call: {
            _ = try MatrixEngine(parsing: "strassen", cutoff: 0)
        }, matches: argument("strassen cutoff")),
        LibraryCase(name: "engine: unknown name", call: { _ = try MatrixEngine(parsing: "cuda") },
                    matches: { if case .unknownName = $0 { true } else { false } }),
        LibraryCase(name: "winograd transform: F(0, 3)", call: {
            _ = try WinogradTransform(outputSize: 0, kernelSize: 3)
        }, matches: argument("Winograd F(m, r)")),
        LibraryCase(name: "winograd transform: repeated points", call: {
            _ = try WinogradTransform(outputSize: 2, kernelSize: 3, points: [try Rational(0), try Rational(1),
                                                                              try Rational(1)])
        }, matches: argument("points")),
        LibraryCase(name: "rational: zero denominator", call: { _ = try Rational(1, 0) },
                    matches: argument("fraction")),
        LibraryCase(name: "rational: not a number", call: { _ = try Rational(parsing: "one half") },
                    matches: argument("point")),
        LibraryCase(name: "shape syntax: bad pair", call: { _ = try ShapeSyntax.pair("3x", name: "kernel") },
                    matches: argument("kernel")),
        LibraryCase(name: "shape syntax: bad padding", call: { _ = try ShapeSyntax.padding("1,2,3") },
                    matches: argument("pad")),
        LibraryCase(name: "suite: missing file", call: { _ = try SuiteFile.read(contentsOf: "/nonexistent/suite.csv") },
                    matches: { if case .invalidFile = $0 { true } else { false } }),
        LibraryCase(name: "npy: missing file", call: { _ = try NumpyArray.read(contentsOf: "/nonexistent/x.npy") },
                    matches: { if case .invalidFile = $0 { true } else { false } }),
        LibraryCase(name: "sweep: shard 3/2", call: { _ = try SweepPlan.shard([1, 2, 3], index: 3, count: 2) },
                    matches: argument("shard")),
        LibraryCase(name: "channel shuffle: groups do not divide C", call: {
            _ = try ChannelOperations.shuffle(try Tensor<Float>(shape: [1, 6, 2, 2]), groups: 4)
        }, matches: argument("shuffle groups")),
        LibraryCase(name: "decomposition: CP rank 0", call: {
            _ = try KernelDecomposition.decompose(.cp, weights: try Tensor(shape: small.weightShape), layer: small,
                                                  ranks: [0])
        }, matches: argument("ranks")),
        LibraryCase(name: "decomposition: SVD rank above min(C·R, K·S)", call: {
            _ = try KernelDecomposition.decompose(.svd, weights: try Tensor(shape: small.weightShape), layer: small,
                                                  ranks: [13])
        }, matches: argument("rank")),
    ]

    @Test(arguments: libraryCases)
    func libraryRaisesATypedErrorNamingTheField(_ c: LibraryCase) {
        do {
            try c.call()
            Issue.record("\(c.name): no error")
        } catch let error as ConvLabError {
            #expect(c.matches(error), "\(c.name): \(error)")
            #expect(!error.description.isEmpty)
        } catch {
            Issue.record("\(c.name): not a ConvLabError: \(error)")
        }
    }

    /// Command lines and the text their one error line must contain.
    static let cliCases: [[String]] = [
        ["compare --repeat 0", "invalid repeat"],
        ["compare --min-time 2 --max-time 1", "min-time/max-time"],
        ["compare --fft-tile 1", "invalid fft-tile"],
        ["compare --winograd-tile 15", "invalid winograd-tile"],
        ["compare --max-memory 12X", "invalid max-memory: '12X'"],
        ["compare --max-workspace 99999999999T", "invalid max-workspace"],
        ["compare --kernel 3 --stride 0", "strideHeight"],
        ["compare --kernel 3 --dilation 0", "dilationHeight"],
        ["compare --kernel 3 --batch 0", "batch"],
        ["compare --kernel 3 --size 0", "inputHeight"],
        ["compare --kernel 3 --channels 8 --size 96 --max-memory 100K", "more than the limit of 100.0 KiB"],
        ["select --kernel 3 --threads 0", "invalid threads"],
        ["select --kernel 3 --tolerance 0", "invalid tolerance"],
        ["select --evaluate", "--evaluate needs --suite"],
        ["accuracy --seeds 0", "invalid seeds"],
        ["accuracy --threads 0", "invalid threads"],
        ["matmul --size 3x4", "invalid size"],
        ["matmul --threads 0", "invalid threads"],
        ["matmul --engine strassen --depth 9", "invalid depth"],
        ["matmul --engine strassen --cutoff 0", "invalid strassen cutoff"],
        ["matmul --engine cuda", "unknown"],
        ["sweep --kernels 3,x", "invalid kernels"],
        ["sweep --channels 0", "invalid channels"],
        ["sweep --shard 1", "invalid shard: '1'"],
        ["sweep --shard 3/2", "invalid shard"],
        ["sweep --output /tmp/a.csv --resume /tmp/b.csv", "not both"],
        ["sweep --output /nonexistent/dir/a.csv", "cannot create"],
        ["layers --threads 0", "invalid threads"],
        ["layers --in 0", "invalid in"],
        ["layers --size 0", "inputHeight"],
        ["decompose --method qr --synthetic 4,4,3,3", "unknown decomposition 'qr'"],
        ["decompose --method svd --synthetic 4,4,3", "invalid synthetic"],
        ["decompose --method svd", "invalid weights"],
        ["decompose --method svd --synthetic 4,4,3,3", "invalid rank"],
        ["decompose --method tucker --synthetic 4,4,3,3", "invalid ranks"],
        ["decompose --method cp --rank 0 --synthetic 4,4,3,3", "invalid rank"],
        ["transforms --m 4 --r 3 --points 0,1,1,2,3", "distinct"],
        ["transforms --m 4 --r 3 --points 0,1/0,2", "zero denominator"],
        ["transforms --m 0 --r 3", "invalid m"],
        ["bench --suite /nonexistent.csv", "cannot read"],
        ["tune --suite /nonexistent.csv", "cannot read"],
        ["conv --input /nonexistent.npy --weights /nonexistent.npy --output /tmp/y.npy", "/nonexistent.npy"],
    ]

    @Test(arguments: cliCases)
    func commandLineFailsWithOneLineNamingTheField(_ c: [String]) throws {
        let arguments = c[0].split(separator: " ").map(String.init)
        let result = try CLITests.run(arguments)
        #expect(result.status != 0, "\(c[0])")
        let lines = result.stderr.split(separator: "\n").filter { !$0.hasPrefix("Usage") && !$0.hasPrefix("  See") }
        #expect(lines.count == 1 && lines[0].hasPrefix("Error: ") && lines[0].contains(c[1]),
                "\(c[0]): \(result.stderr)")
        #expect(!result.stderr.contains("Fatal error"))
    }

    /// Resuming into a file that is not a convlab sweep would append rows under foreign columns.
    @Test func resumeRefusesAForeignCSV() throws {
        let path = CLITests.temporary("foreign.csv")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let foreign = "name,N,C,H,W,K,R,S,stride,pad,groups\nx,1,4,8,8,4,3,3,1,1,1\n"
        try foreign.write(toFile: path, atomically: true, encoding: .utf8)
        let result = try CLITests.run(["sweep", "--kernels", "3", "--channels", "4", "--sizes", "8", "--resume", path])
        #expect(result.status != 0 && result.stderr.contains("not a convlab sweep header"))
        #expect(try String(contentsOfFile: path, encoding: .utf8) == foreign, "the file is untouched")
    }
}

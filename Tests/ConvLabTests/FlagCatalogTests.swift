import ConvLab
import Foundation
import Testing

/// Every numeric flag of every subcommand, given each value a careless user or a script might pass — zero, negative,
/// huge, 2⁶³−1, non-numeric — must end in one of two ways: a normal run (only where the value is meaningful, listed in
/// `accepted`), or one `Error:` line that names the flag and a non-zero exit. Never a signal, a trap or an allocation
/// that kills the process.
@Suite(.serialized) struct FlagCatalogTests {
    static let values = ["0", "-1", "1000000000000", "9223372036854775807", "abc"]

    /// A subcommand, arguments that make it fast (a tiny problem, one backend, short timing), and its numeric flags.
    struct Command: Sendable, CustomTestStringConvertible {
        var name: String
        var base: [String]
        var flags: [String]
        var testDescription: String { name }
    }

    static let shape = ["kernel", "channels", "out-channels", "size", "batch", "stride", "pad", "dilation", "groups"]
    static let run = ["threads", "repeat", "min-time", "max-time", "seed", "strassen-depth", "strassen-cutoff",
                      "max-memory", "max-workspace", "accuracy-ceiling"]
    static let backendSettings = ["fft-tile", "winograd-tile"]
    static let fast = ["--max-time", "0.01", "--repeat", "1", "--no-check"]

    static let commands: [Command] = [
        Command(name: "compare", base: ["--kernel", "3", "--channels", "2", "--size", "8", "--backends", "direct"] + fast,
                flags: shape + run + backendSettings),
        Command(name: "bench", base: ["--suite", Files.suite, "--backends", "direct"] + fast,
                flags: run + backendSettings),
        Command(name: "select", base: ["--kernel", "3", "--channels", "2", "--size", "8", "--no-wisdom"],
                flags: shape + ["threads", "tolerance", "max-workspace", "max-time", "accuracy-ceiling"]),
        Command(name: "sweep", base: ["--kernels", "3", "--channels", "2", "--sizes", "8", "--backends", "direct"] + fast,
                flags: ["kernels", "channels", "sizes", "batch", "out-channels", "stride", "groups", "shard"]
                    + run + backendSettings),
        Command(name: "tune", base: ["--suite", Files.suite, "--wisdom", Files.wisdom] + fast, flags: run),
        Command(name: "conv", base: ["--input", Files.input, "--weights", Files.weights, "--output", Files.output],
                flags: ["stride", "pad", "dilation", "groups", "threads", "accuracy-ceiling"] + backendSettings),
        Command(name: "matmul", base: ["--size", "8", "--check-rows", "1"],
                flags: ["size", "depth", "cutoff", "threads", "check-rows", "seed"]),
        Command(name: "accuracy", base: ["--kernel", "3", "--channels", "2", "--size", "8", "--backends", "direct",
                                        "--seeds", "1"],
                flags: shape + ["seeds", "threads", "strassen-depth", "strassen-cutoff", "accuracy-ceiling"]
                    + backendSettings),
        Command(name: "transforms", base: [], flags: ["m", "r", "top"]),
        Command(name: "calibrate", base: ["--shapes", "4", "--max-time", "0.01", "--no-save"],
                flags: ["threads", "shapes", "max-time"]),
        Command(name: "layers", base: ["--in", "2", "--out", "2", "--kernel", "3", "--size", "8", "--no-run"],
                flags: ["in", "out", "kernel", "size", "pad", "batch", "multiplier", "groups", "threads", "max-time"]),
        Command(name: "network", base: ["alexnet", "--size", "67", "--no-run"],
                flags: ["batch", "size", "threads", "max-time", "seed", "accuracy-ceiling"]),
        Command(name: "decompose", base: ["--method", "svd", "--synthetic", "2,2,3,3", "--rank", "1", "--size", "8",
                                         "--no-run"],
                flags: ["rank", "size", "stride", "pad", "seed", "tolerance", "max-iterations", "threads",
                        "max-output-error"]),
    ]

    /// (flag, value) pairs that are meaningful and run: a seed may be any UInt64, padding may be 0, a tolerance or a
    /// memory limit may be huge, 0 Strassen levels is the plain engine, and so on.
    static let accepted: Set<String> = [
        "seed=0", "seed=1000000000000", "seed=9223372036854775807",
        "pad=0", "strassen-depth=0", "depth=0", "min-time=0",
        "strassen-cutoff=1000000000000", "strassen-cutoff=9223372036854775807",
        "cutoff=1000000000000", "cutoff=9223372036854775807",
        "max-memory=1000000000000", "max-memory=9223372036854775807",
        "max-workspace=1000000000000", "max-workspace=9223372036854775807",
        "tolerance=1000000000000", "tolerance=9223372036854775807",
        "max-output-error=1000000000000", "max-output-error=9223372036854775807",
        "check-rows=0", "check-rows=1000000000000", "check-rows=9223372036854775807",
        "accuracy-ceiling=1000000000000", "accuracy-ceiling=9223372036854775807",
    ]

    /// Per subcommand, pairs that run there (besides `accepted`): a workspace cap of 0 turns each backend's row into
    /// `skipped` (the documented behaviour) rather than failing the run, as a memory cap of 0 does for each shape of
    /// a sweep; decompose's tolerance 0 means "run all iterations".
    static let acceptedIn: [String: Set<String>] = [
        "compare": ["max-workspace=0"], "bench": ["max-workspace=0"], "sweep": ["max-workspace=0", "max-memory=0"],
        "tune": ["max-workspace=0"], "decompose": ["tolerance=0"],
    ]

    /// Words an error may use for a flag besides its own name (descriptor fields, limits).
    static let aliases: [String: [String]] = [
        "kernel": ["kernelHeight"], "kernels": ["kernelHeight"], "channels": ["inputChannels"],
        "out-channels": ["outputChannels"], "size": ["inputHeight"], "sizes": ["inputHeight"],
        "stride": ["strideHeight"], "dilation": ["dilationHeight"], "pad": ["padding"], "in": ["inputChannels"],
        "out": ["outputChannels"], "max-memory": ["limit"], "max-workspace": ["limit", "workspace"],
        "depth": ["Strassen depth"], "cutoff": ["strassen cutoff"], "strassen-depth": ["depth"],
        "strassen-cutoff": ["strassen cutoff"], "multiplier": ["depthwise multiplier"],
        "groups": ["groups"], "rank": ["rank"], "synthetic": ["synthetic"],
    ]

    enum Files {
        static let directory = FileManager.default.temporaryDirectory.appendingPathComponent("convlab-flag-catalog").path
        static let suite = directory + "/suite.csv"
        static let wisdom = directory + "/wisdom.json"
        static let input = directory + "/x.npy"
        static let weights = directory + "/w.npy"
        static let output = directory + "/y.npy"

        static let ready: Bool = {
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try? "name,N,C,H,W,K,R,S,stride,pad,groups\ntiny,1,2,8,8,2,3,3,1,1,1\n"
                .write(toFile: suite, atomically: true, encoding: .utf8)
            try? NumpyArray(try Tensor<Float>.random(shape: [1, 2, 8, 8], seed: 1)).write(to: input)
            try? NumpyArray(try Tensor<Float>.random(shape: [2, 2, 3, 3], seed: 2)).write(to: weights)
            return FileManager.default.fileExists(atPath: weights)
        }()
    }

    @Test(arguments: commands)
    func everyNumericFlagRejectsNonsenseWithOneLine(_ command: Command) throws {
        #expect(Files.ready)
        // The base command itself runs.
        let plain = try CLITests.run([command.name] + command.base)
        #expect(plain.status == 0, "\(command.name) \(command.base): \(plain.stderr)")
        for flag in command.flags {
            for value in Self.values {
                let pair = "\(flag)=\(value)"
                let arguments = [command.name] + command.base + ["--\(flag)", value]
                let result = try CLITests.run(arguments)
                let label = arguments.joined(separator: " ")
                #expect(result.exitedNormally, "\(label): killed by signal \(result.status)")
                #expect(!result.stderr.contains("Fatal error"), "\(label): \(result.stderr)")
                if Self.accepted.contains(pair) || Self.acceptedIn[command.name, default: []].contains(pair) {
                    #expect(result.status == 0, "\(label) should run: \(result.stderr)")
                    continue
                }
                #expect(result.status != 0, "\(label) was accepted")
                let lines = result.stderr.split(separator: "\n")
                    .filter { !$0.hasPrefix("Usage") && !$0.hasPrefix("  See") && !$0.isEmpty }
                let names = [flag] + Self.aliases[flag, default: []]
                #expect(lines.count == 1 && lines[0].hasPrefix("Error: ")
                            && names.contains { lines[0].localizedCaseInsensitiveContains($0) },
                        "\(label): \(result.stderr)")
            }
        }
    }

    /// Malformed suite files, through `bench`: one error line naming what is wrong.
    @Test(arguments: [
        ("repeated column", "name,N,C,H,W,K,R,S,stride,pad,groups,N\nx,1,2,8,8,2,3,3,1,1,1,1\n", "appears twice"),
        ("missing column", "name,N,C,H,W,K,R,S,stride,pad\nx,1,2,8,8,2,3,3,1,1\n", "missing column 'groups'"),
        ("ragged row", "name,N,C,H,W,K,R,S,stride,pad,groups\nx,1,2,8,8,2,3,3,1,1\n", "line 2 has 10 fields"),
        ("non-numeric", "name,N,C,H,W,K,R,S,stride,pad,groups\nx,1,two,8,8,2,3,3,1,1,1\n", "C 'two' is not an integer"),
        ("overflowing", "name,N,C,H,W,K,R,S,stride,pad,groups\nx,1,99999999999999999999,8,8,2,3,3,1,1,1\n", "not an integer"),
        ("2^63-1", "name,N,C,H,W,K,R,S,stride,pad,groups\nx,1,9223372036854775807,8,8,2,3,3,1,1,1\n", "inputChannels"),
        ("header only", "name,N,C,H,W,K,R,S,stride,pad,groups\n", "no rows"),
        ("empty", "", "empty suite"),
        ("binary garbage", "\u{0}\u{1}\u{2}PK\u{3}\u{4}\u{0}\u{0}", "NUL bytes"),
        ("bad pad", "name,N,C,H,W,K,R,S,stride,pad,groups\nx,1,2,8,8,2,3,3,1,1x2x3,1\n", "pad"),
        ("zero stride", "name,N,C,H,W,K,R,S,stride,pad,groups\nx,1,2,8,8,2,3,3,0,1,1\n", "strideHeight"),
    ])
    func malformedSuitesFailWithOneLine(_ c: (String, String, String)) throws {
        let path = CLITests.temporary("suite.csv")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try c.1.write(toFile: path, atomically: true, encoding: .utf8)
        for subcommand in [["bench", "--suite", path], ["tune", "--suite", path, "--wisdom", path + ".json"],
                           ["select", "--evaluate", "--suite", path]] {
            let result = try CLITests.run(subcommand)
            #expect(result.exitedNormally && result.status != 0, "\(c.0) via \(subcommand[0])")
            let lines = result.stderr.split(separator: "\n").filter { !$0.isEmpty }
            #expect(lines.count == 1 && lines[0].hasPrefix("Error: ") && lines[0].contains(c.2),
                    "\(c.0) via \(subcommand[0]): \(result.stderr)")
        }
    }

    /// Files that are not what they claim: one error line, never a crash.
    @Test func nonTextAndOversizedInputsAreRefused() throws {
        let binary = CLITests.temporary("binary.csv")
        defer { try? FileManager.default.removeItem(atPath: binary) }
        try Data([0xFF, 0xFE, 0x00, 0x80, 0x81]).write(to: URL(fileURLWithPath: binary))
        for arguments in [["bench", "--suite", binary], ["select", "--model-check", binary],
                          ["sweep", "--kernels", "3", "--channels", "2", "--sizes", "8", "--resume", binary],
                          ["bench", "--suite", "/"], ["conv", "--input", binary, "--weights", binary, "--output", binary]] {
            let result = try CLITests.run(arguments)
            #expect(result.exitedNormally && result.status != 0, "\(arguments)")
            let lines = result.stderr.split(separator: "\n").filter { !$0.isEmpty }
            #expect(lines.count == 1 && lines[0].hasPrefix("Error: "), "\(arguments): \(result.stderr)")
        }
        // A corrupt wisdom file is reported and ignored, never fatal.
        let select = try CLITests.run(["select", "--kernel", "3", "--channels", "2", "--size", "8", "--wisdom", binary])
        #expect(select.status == 0 && select.stderr.contains("ignored"), "\(select.stderr)")
    }
}

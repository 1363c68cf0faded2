import ArgumentParser
import ConvLab
import Foundation

/// `convlab sweep`: a grid of shapes through every backend, streamed as CSV.
struct Sweep: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure every backend over a grid of shapes (kernels × channels × sizes × batches), as CSV.",
        discussion: """
        Square kernels and images, "same" padding, K = C unless --out-channels. One CSV row per (shape, backend) with \
        the columns of `compare` plus metadata (convlab version, git commit, CPU, date). Rows stream as they finish; \
        progress and ETA go to stderr. --resume FILE appends to FILE and skips rows already in it. Ctrl-C finishes the \
        current shape, writes its rows and stops (exit 130); a second Ctrl-C stops at once, and since each shape's rows \
        are one write, the file still holds only complete rows (--resume also drops a partial last line). Shapes over \
        --max-memory get rows with status 'skipped' and the reason. --shard i/n runs every n-th shape starting at the i-th, the same slice on every \
        machine, so shards can run on several machines and be concatenated.
        """)

    @Option(help: "Comma-separated kernel sizes.")
    var kernels = "1,3,5,7,9,11,13"

    @Option(help: "Comma-separated input channel counts.")
    var channels = "16,64,256"

    @Option(help: "Comma-separated image sizes.")
    var sizes = "14,28,56,112"

    @Option(help: "Comma-separated batch sizes.")
    var batch = "1"

    @Option(name: .customLong("out-channels"), help: "Output channels K (default: same as C).")
    var outChannels: Int?

    @Option(help: "Stride (both axes).")
    var stride = 1

    @Option(help: "Groups.")
    var groups = 1

    @Option(help: "Comma-separated backends (default: every backend that supports each shape, except 'reference').")
    var backends: String?

    @OptionGroup var runOptions: RunOptions
    @OptionGroup var backendOptions: BackendOptions

    @Option(help: "Write CSV to this file instead of stdout.")
    var output: String?

    @Option(help: "Append to this CSV file, skipping (shape, backend) rows it already has.")
    var resume: String?

    @Option(help: "Run shard i of n (1-based), e.g. 2/4.")
    var shard: String?

    @Flag(name: .customLong("no-check"), help: "Skip the accuracy check against the float64 reference.")
    var noCheck = false

    func run() throws {
        func list(_ text: String, _ name: String) throws -> [Int] {
            let values = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !values.isEmpty, values.allSatisfy({ ($0 ?? 0) >= 1 }) else {
                throw ConvLabError.invalidArgument(name: name, reason: "'\(text)' is not a list of positive integers")
            }
            return values.compactMap { $0 }
        }
        let plan = SweepPlan(kernels: try list(kernels, "kernels"), channels: try list(channels, "channels"),
                             sizes: try list(sizes, "sizes"), batches: try list(batch, "batch"),
                             outputChannels: outChannels, stride: stride, groups: groups)
        var points = plan.gridPoints()
        if let shard {
            let parts = shard.split(separator: "/").compactMap { Int($0) }
            guard parts.count == 2 else { throw ConvLabError.invalidArgument(name: "shard", reason: "'\(shard)' is not i/n") }
            points = try SweepPlan.shard(points, index: parts[0], count: parts[1])
        }
        let shapes = points.compactMap { try? $0.result.get() }
        // A grid with no valid problem at all is a mistake in the flags, not a sweep to run.
        if shapes.isEmpty, case .failure(let error)? = points.first?.result {
            throw error
        }
        // Grid points that are not valid problems are reported, not silently dropped.
        for (label, result) in points {
            if case .failure(let error) = result { printError("sweep: skipping \(label): \(error)") }
        }
        if output != nil && resume != nil {
            throw ConvLabError.invalidArgument(name: "output", reason: "give --output or --resume, not both")
        }
        let options = try runOptions.planOptions()
        let timing = try runOptions.timingPolicy()
        let passes = try runOptions.passes()

        // Where rows go, and which are already done.
        var done = Set<String>()
        let sink: FileHandle
        if let resume {
            if FileManager.default.fileExists(atPath: resume) {
                var text = try FileInput.text(at: resume, what: "the sweep CSV to resume")
                // Appending convlab rows under another header would leave a CSV whose columns lie.
                if let header = text.split(separator: "\n", maxSplits: 1).first,
                   header != MeasurementRecord.csvHeader[...] {
                    throw ConvLabError.invalidFile(path: resume, reason: "its header is not a convlab sweep header, "
                                                       + "so rows cannot be appended (give a new --output)")
                }
                text = try Self.dropIncompleteLastRow(of: resume, text: text)
                done = Set(CSVReader.rows(text).map(MeasurementRecord.resumeKey(csvRow:)))
                guard let handle = FileHandle(forWritingAtPath: resume) else {
                    throw ConvLabError.invalidFile(path: resume, reason: "cannot open for appending")
                }
                handle.seekToEndOfFile()
                sink = handle
                if text.isEmpty { sink.write(Data((MeasurementRecord.csvHeader + "\n").utf8)) }
            } else {
                sink = try Self.create(resume)
            }
        } else if let output {
            sink = try Self.create(output)
        } else {
            sink = FileHandle.standardOutput
            sink.write(Data((MeasurementRecord.csvHeader + "\n").utf8))
        }

        let start = Date()
        SweepInterrupt.install()
        for (index, descriptor) in shapes.enumerated() {
            if SweepInterrupt.requested {
                let hint = resume ?? output.map { "\($0) (rerun with --resume \($0))" } ?? "stdout"
                printError("sweep: interrupted after \(index) of \(shapes.count) shapes; complete rows are in \(hint)")
                if sink !== FileHandle.standardOutput { sink.closeFile() }
                throw ExitCode(130)
            }
            let name = "k\(descriptor.kernelHeight)c\(descriptor.inputChannels)s\(descriptor.inputHeight)b\(descriptor.batch)"
            for pass in passes {
                let candidates = try backendOptions.backends(backends, for: descriptor, pass: pass).filter { backend in
                    let probe = BackendMeasurement(backend: backend.name, descriptor: descriptor, threads: options.threads,
                                                   status: .measured, pass: pass)
                    return !done.contains(MeasurementRecord(probe, name: name).resumeKey)
                }
                if !candidates.isEmpty {
                    let runner = ComparisonRunner(descriptor: descriptor, options: options, timing: timing,
                                                  seed: runOptions.seed, checkAccuracy: !noCheck, pass: pass)
                    let measurements: [BackendMeasurement]
                    do {
                        measurements = try backendOptions.withWisdom { try runner.run(backends: candidates) }
                    } catch let error as ConvLabError {
                        // Too big for this machine's limits: one row per backend saying so, and on to the next shape.
                        guard case .memoryLimitExceeded = error else { throw error }
                        printError("sweep: skipping \(name): \(error)")
                        measurements = candidates.map {
                            BackendMeasurement(backend: $0.name, descriptor: descriptor, threads: options.threads,
                                               status: .skipped(error.description), pass: pass)
                        }
                    }
                    // One write per shape: an interrupt leaves only complete rows.
                    let lines = MeasurementRecord.records(measurements, name: name).map { $0.csvRow + "\n" }.joined()
                    sink.write(Data(lines.utf8))
                }
            }
            let elapsed = Date().timeIntervalSince(start)
            let remaining = elapsed / Double(index + 1) * Double(shapes.count - index - 1)
            printError("sweep: [\(index + 1)/\(shapes.count)] \(name) done, elapsed \(Int(elapsed)) s, ETA \(Int(remaining)) s")
        }
        if sink !== FileHandle.standardOutput { sink.closeFile() }
    }

    /// A sweep killed in the middle of a write can leave a partial last line; cut it so the file is valid CSV and
    /// the shape is measured again.
    static func dropIncompleteLastRow(of path: String, text: String) throws -> String {
        guard !text.isEmpty, !text.hasSuffix("\n") else { return text }
        let keep = text[..<(text.lastIndex(of: "\n").map { text.index(after: $0) } ?? text.startIndex)]
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw ConvLabError.invalidFile(path: path, reason: "cannot open to drop its incomplete last row")
        }
        handle.truncateFile(atOffset: UInt64(keep.utf8.count))
        handle.closeFile()
        printError("sweep: dropped an incomplete last row of \(path)")
        return String(keep)
    }

    static func create(_ path: String) throws -> FileHandle {
        guard FileManager.default.createFile(atPath: path, contents: Data((MeasurementRecord.csvHeader + "\n").utf8)),
              let handle = FileHandle(forWritingAtPath: path) else {
            throw ConvLabError.invalidFile(path: path, reason: "cannot create")
        }
        handle.seekToEndOfFile()
        return handle
    }
}

import ArgumentParser
import ConvLab
import Foundation

/// `convlab layers`: the layer designs of the efficiency literature, counted and measured.
struct Layers: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare layer designs (separable, stacked 3x3, bottleneck, depthwise, grouped, ShuffleNet V2) for "
            + "one C→K k×k layer: parameters, multiplications, memory access and measured time.",
        discussion: """
        Every design's convolutions run through the selector's backends, so measured time sits beside the counted \
        FLOPs and memory access cost (MAC, bytes read and written). --guidelines runs ShuffleNet V2's four \
        experiments (equal widths, group count, fragmentation, element-wise ops) on this machine. The classic worked \
        example: convlab layers --in 3 --out 1 --kernel 5 --size 12 --pad 0.
        """)

    @Option(name: .customLong("in"), help: "Input channels C.")
    var inputChannels = 64

    @Option(name: .customLong("out"), help: "Output channels K.")
    var outputChannels = 128

    @Option(help: "Kernel size k of the layer being redesigned.")
    var kernel = 5

    @Option(help: "Input size: H or HxW.")
    var size = "56"

    @Option(help: "Symmetric padding (default: same).")
    var pad: Int?

    @Option(help: "Batch size N.")
    var batch = 1

    @Option(help: "Depthwise channel multiplier of the depthwise-separable design.")
    var multiplier = 1

    @Option(help: "Groups of the grouped + shuffle design (default 4, left out where 4 does not divide the channels).")
    var groups: Int?

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int = Parallel.defaultThreadCount

    @Option(help: "Output format: table, csv or json.")
    var format: OutputFormat = .table

    @Flag(name: .customLong("no-run"), help: "Only count; do not measure.")
    var noRun = false

    @Flag(help: "Run ShuffleNet V2's four guideline experiments instead.")
    var guidelines = false

    @Option(name: .customLong("max-time"), help: "Stop timing a design after this many seconds.")
    var maxTime = 1.0

    func run() throws {
        try Validation.threads(threads)
        try Validation.seconds(maxTime, "max-time")
        let options = PlanOptions(threads: threads)
        let timing = TimingPolicy(maxSeconds: maxTime)
        if guidelines {
            try printGuidelines(options: options, timing: timing)
            return
        }
        let (h, w) = try ShapeSyntax.pair(size, name: "size")
        for (name, value) in [("in", inputChannels), ("out", outputChannels), ("kernel", kernel), ("batch", batch),
                              ("multiplier", multiplier), ("groups", groups ?? 4)] where value < 1 {
            throw ConvLabError.invalidArgument(name: name, reason: "must be at least 1 (got \(value))")
        }
        if let pad, pad < 0 { throw ConvLabError.invalidArgument(name: "pad", reason: "must not be negative") }
        try Validation.integer(multiplier, "multiplier", in: 1...4096)
        // The default 4 groups are left out where they do not divide the channels; asked-for groups must divide them.
        if let groups, inputChannels % groups != 0 || outputChannels % groups != 0 {
            throw ConvLabError.invalidArgument(name: "groups", reason: "\(groups) does not divide --in \(inputChannels) "
                                               + "and --out \(outputChannels)")
        }
        let spec = LayerSpec(batch: batch, inputChannels: inputChannels, outputChannels: outputChannels, kernel: kernel,
                             height: h, width: w, padding: pad, depthwiseMultiplier: multiplier, groups: groups ?? 4)
        let designs = try LayerDesigns.all(for: spec)
        var records: [LayerRecord] = []
        for design in designs {
            var record = LayerRecord(design: design, spec: spec)
            if !noRun {
                do {
                    let runner = try LayerRunner(design: design, options: options)
                    let input = try Tensor<Float>.random(shape: design.inputShape, seed: 3)
                    record.milliseconds = try runner.time(input, policy: timing).median * 1e3
                    record.backends = runner.backendNames.joined(separator: "+")
                } catch {
                    record.message = String(describing: error)
                }
            }
            records.append(record)
        }
        let standard = records.first
        switch format {
        case .json: print(try jsonString(records))
        case .csv:
            print(LayerRecord.csvHeader)
            for r in records { print(r.csvRow) }
        case .table:
            print("convlab layers: N=\(batch) C=\(inputChannels) \(h)x\(w) -> K=\(outputChannels), kernel \(kernel)x\(kernel), "
                  + "pad \(pad.map(String.init) ?? "same"), threads \(threads)\n")
            var table = TextTable(header: ["design", "params", "mults", "mults per stage", "MFLOPs", "MAC", "ms",
                                           "vs standard", "GFLOP/s", "backends"])
            for r in records {
                table.add([r.design, Self.grouped(r.parameters), Self.grouped(r.multiplications), r.stageMultiplications,
                           String(format: "%.3f", Double(r.flops) / 1e6), formatBytes(r.memoryAccessBytes),
                           Format.ms(r.milliseconds),
                           r.milliseconds.flatMap { ms in standard?.milliseconds.map { String(format: "%.2fx", $0 / ms) } } ?? "",
                           r.milliseconds.map { String(format: "%.1f", Double(r.flops) / ($0 * 1e6)) } ?? "",
                           r.backends ?? r.message ?? ""])
            }
            print(table.render())
        }
    }

    static func grouped(_ value: Int) -> String {
        let digits = String(value)
        var result = ""
        for (i, ch) in digits.reversed().enumerated() {
            if i > 0 && i % 3 == 0 { result.append(",") }
            result.append(ch)
        }
        return String(result.reversed())
    }

    private func printGuidelines(options: PlanOptions, timing: TimingPolicy) throws {
        let (h, w) = try ShapeSyntax.pair(size, name: "size")
        let rows = try ShuffleNetGuidelines.run(height: h, width: w, channels: inputChannels, batch: batch,
                                                options: options, timing: timing)
        if format == .csv {
            print("experiment,setting,flops,mac_bytes,params,ms")
            for r in rows {
                print([r.experiment, r.setting, "\(r.cost.flops)", "\(r.cost.memoryAccessBytes)", "\(r.cost.parameters)",
                       String(format: "%.5f", r.seconds * 1e3)].map(csvEscape).joined(separator: ","))
            }
            return
        }
        print("ShuffleNet V2 guidelines on this machine: \(h)x\(w), base width \(inputChannels), batch \(batch), threads \(threads)")
        for experiment in Array(NSOrderedSet(array: rows.map(\.experiment))) as? [String] ?? [] {
            print("\n\(experiment)")
            var table = TextTable(header: ["setting", "MFLOPs", "MAC", "ms", "GFLOP/s"])
            for r in rows where r.experiment == experiment {
                table.add([r.setting, String(format: "%.1f", Double(r.cost.flops) / 1e6),
                           formatBytes(r.cost.memoryAccessBytes), Format.ms(r.seconds * 1e3),
                           String(format: "%.1f", Double(r.cost.flops) / r.seconds / 1e9)])
            }
            print(table.render())
        }
    }
}

/// One design's row in `convlab layers`.
struct LayerRecord: Codable {
    var design: String
    var N, C, H, W, K, kernel: Int
    var parameters: Int
    var multiplications: Int
    var additions: Int
    var flops: Int
    var memoryAccessBytes: Int
    var stageMultiplications: String
    var milliseconds: Double?
    var backends: String?
    var message: String?

    init(design: LayerDesign, spec: LayerSpec) {
        let cost = design.cost
        self.design = design.name
        (N, C, H, W, K, kernel) = (spec.batch, spec.inputChannels, spec.height, spec.width, spec.outputChannels, spec.kernel)
        parameters = cost.parameters
        multiplications = cost.multiplications
        additions = cost.additions
        flops = cost.flops
        memoryAccessBytes = cost.memoryAccessBytes
        stageMultiplications = design.convolutions.map {
            Layers.grouped($0.descriptor.outputCount * $0.descriptor.reductionLength)
        }.joined(separator: " + ")
    }

    static let csvHeader = "design,N,C,H,W,K,kernel,params,multiplications,additions,flops,mac_bytes,ms,backends,"
        + "convlab_version,git_commit,cpu,date"

    var csvRow: String {
        let m = RunMetadata.current
        return [design, "\(N)", "\(C)", "\(H)", "\(W)", "\(K)", "\(kernel)", "\(parameters)", "\(multiplications)",
                "\(additions)", "\(flops)", "\(memoryAccessBytes)", milliseconds.map { String(format: "%.5f", $0) } ?? "",
                backends ?? message ?? "", m.version, m.gitCommit, m.cpu, m.date].map(csvEscape).joined(separator: ",")
    }
}

import ConvLabCore
import Foundation

/// A flat, printable form of `BackendMeasurement` with the problem's shape: one CSV row or JSON object.
/// `compare`, `bench` and `sweep` all write these, so every CSV convlab produces has the same columns.
public struct MeasurementRecord: Codable, Sendable {
    public var name: String?
    public var backend: String
    public var pass: String
    public var variant: String?
    public var layout: String
    public var status: String
    public var N, C, H, W, K, R, S: Int
    public var strideH, strideW, padTop, padBottom, padLeft, padRight, dilationH, dilationW, groups: Int
    public var threads: Int
    public var msMedian: Double?
    public var msMin: Double?
    public var repeats: Int?
    public var gflopsEffective: Double?
    public var speedupVsIm2col: Double?
    public var planMs: Double?
    public var workspaceBytes: Int?
    public var deterministic: Bool?
    public var meanRelError: Double?
    public var maxRelError: Double?
    public var maxAbsError: Double?
    public var maxULP: UInt64?
    public var errorBound: Double?
    /// The plan's estimate of the mean relative error on random data, beside the measured mean.
    public var typicalError: Double?
    public var passed: Bool?
    /// pass, fail or unbounded (a bound above the accuracy ceiling: within it, but it promises nothing).
    public var check: String?
    public var message: String?
    public var phases: [String: Double]?
    public var metadata: RunMetadata = .current

    public init(_ m: BackendMeasurement, name: String? = nil, im2colMedian: Double? = nil) {
        let d = m.descriptor
        self.name = name
        backend = m.backend
        pass = m.pass.rawValue
        variant = m.variant
        layout = m.layout.rawValue
        status = m.statusWord
        (N, C, H, W, K, R, S) = (d.batch, d.inputChannels, d.inputHeight, d.inputWidth, d.outputChannels,
                                 d.kernelHeight, d.kernelWidth)
        (strideH, strideW, dilationH, dilationW, groups) = (d.strideHeight, d.strideWidth, d.dilationHeight,
                                                            d.dilationWidth, d.groups)
        (padTop, padBottom, padLeft, padRight) = (d.padding.top, d.padding.bottom, d.padding.left, d.padding.right)
        threads = m.threads
        msMedian = m.timing.map { $0.median * 1e3 }
        msMin = m.timing.map { $0.minimum * 1e3 }
        repeats = m.timing?.repeats
        gflopsEffective = m.effectiveGFLOPs
        if let im2colMedian, let median = m.timing?.median { speedupVsIm2col = im2colMedian / median }
        planMs = m.planSeconds.map { $0 * 1e3 }
        workspaceBytes = m.workspaceBytes
        deterministic = m.isDeterministic
        if let a = m.accuracy {
            meanRelError = a.meanRelativeError
            maxRelError = a.maxRelativeError
            maxAbsError = a.maxAbsoluteError
            maxULP = a.maxULPDistance
            errorBound = a.errorBound
            typicalError = a.typicalError
            passed = a.passed
            check = a.verdict.rawValue
        }
        message = m.statusMessage
        if !m.phases.isEmpty {
            phases = Dictionary(m.phases.map { ($0.name, $0.seconds * 1e3) }, uniquingKeysWith: +)
        }
    }

    /// A row read back from a `bench`/`sweep`/`calibrate --measurements` CSV (by column name): the identity, timing
    /// and check columns; a missing or malformed shape or thread column is an error naming the line.
    public init(csvRow row: [String: String], line: Int) throws {
        func int(_ key: String) throws -> Int {
            guard let text = row[key], let value = Int(text) else {
                throw ConvLabError.invalidFile(path: "line \(line)", reason: "column '\(key)' is not an integer")
            }
            return value
        }
        func double(_ key: String) -> Double? { row[key].flatMap { Double($0) } }
        guard let backend = row["backend"], !backend.isEmpty else {
            throw ConvLabError.invalidFile(path: "line \(line)", reason: "no backend")
        }
        name = row["name"].flatMap { $0.isEmpty ? nil : $0 }
        self.backend = backend
        pass = row["pass"] ?? ConvolutionPass.forward.rawValue
        variant = row["variant"]
        layout = row["layout"] ?? TensorLayout.nchw.rawValue
        status = row["status"] ?? ""
        (N, C, H, W, K, R, S) = (try int("N"), try int("C"), try int("H"), try int("W"), try int("K"), try int("R"),
                                 try int("S"))
        (strideH, strideW, dilationH, dilationW, groups) = (try int("stride_h"), try int("stride_w"),
                                                            try int("dilation_h"), try int("dilation_w"),
                                                            try int("groups"))
        (padTop, padBottom, padLeft, padRight) = (try int("pad_top"), try int("pad_bottom"), try int("pad_left"),
                                                  try int("pad_right"))
        threads = try int("threads")
        msMedian = double("ms_median")
        msMin = double("ms_min")
        repeats = row["repeats"].flatMap { Int($0) }
        gflopsEffective = double("gflops_effective")
        speedupVsIm2col = double("speedup_vs_im2col")
        planMs = double("plan_ms")
        workspaceBytes = row["workspace_bytes"].flatMap { Int($0) }
        message = row["message"].flatMap { $0.isEmpty ? nil : $0 }
        metadata = RunMetadata(version: row["convlab_version"] ?? "", gitCommit: row["git_commit"] ?? "",
                               cpu: row["cpu"] ?? "", cores: row["cores"].flatMap { Int($0) } ?? 0,
                               date: row["date"] ?? "")
    }

    /// Every row of a CSV in this schema.
    public static func records(csv text: String) throws -> [MeasurementRecord] {
        try CSVReader.rows(text).enumerated().map { try MeasurementRecord(csvRow: $1, line: $0 + 2) }
    }

    /// The problem the row measured.
    public func descriptor() throws -> ConvolutionDescriptor {
        try ConvolutionDescriptor(
            batch: N, inputChannels: C, inputHeight: H, inputWidth: W, outputChannels: K, kernelHeight: R,
            kernelWidth: S, strideHeight: strideH, strideWidth: strideW,
            padding: .explicit(Padding(top: padTop, bottom: padBottom, left: padLeft, right: padRight)),
            dilationHeight: dilationH, dilationWidth: dilationW, groups: groups)
    }

    /// Records for one problem, with speed-ups relative to the `im2col` row when there is one.
    public static func records(_ measurements: [BackendMeasurement], name: String? = nil) -> [MeasurementRecord] {
        let baseline = measurements.first(where: { $0.backend == "im2col" })?.timing?.median
        return measurements.map { MeasurementRecord($0, name: name, im2colMedian: baseline) }
    }

    // MARK: CSV — one schema

    /// Every CSV column, in order, with how a record fills it: the one list the header, the rows and the resume key
    /// are all made from.
    static let schema: [(name: String, field: @Sendable (MeasurementRecord) -> String)] = {
        @Sendable func number(_ value: Double?, _ format: String) -> String { value.map { String(format: format, $0) } ?? "" }
        return [
            ("name", { $0.name ?? "" }), ("backend", { $0.backend }), ("pass", { $0.pass }),
            ("variant", { $0.variant ?? "" }), ("layout", { $0.layout }),
            ("status", { $0.status }), ("N", { "\($0.N)" }), ("C", { "\($0.C)" }), ("H", { "\($0.H)" }),
            ("W", { "\($0.W)" }), ("K", { "\($0.K)" }), ("R", { "\($0.R)" }), ("S", { "\($0.S)" }),
            ("stride_h", { "\($0.strideH)" }), ("stride_w", { "\($0.strideW)" }), ("pad_top", { "\($0.padTop)" }),
            ("pad_bottom", { "\($0.padBottom)" }), ("pad_left", { "\($0.padLeft)" }), ("pad_right", { "\($0.padRight)" }),
            ("dilation_h", { "\($0.dilationH)" }), ("dilation_w", { "\($0.dilationW)" }), ("groups", { "\($0.groups)" }),
            ("threads", { "\($0.threads)" }), ("ms_median", { number($0.msMedian, "%.5f") }),
            ("ms_min", { number($0.msMin, "%.5f") }), ("repeats", { $0.repeats.map(String.init) ?? "" }),
            ("gflops_effective", { number($0.gflopsEffective, "%.2f") }),
            ("speedup_vs_im2col", { number($0.speedupVsIm2col, "%.3f") }), ("plan_ms", { number($0.planMs, "%.3f") }),
            ("workspace_bytes", { $0.workspaceBytes.map(String.init) ?? "" }),
            ("deterministic", { $0.deterministic.map(String.init) ?? "" }),
            ("mean_rel_error", { number($0.meanRelError, "%.3e") }), ("max_rel_error", { number($0.maxRelError, "%.3e") }),
            ("max_abs_error", { number($0.maxAbsError, "%.3e") }), ("max_ulp", { $0.maxULP.map(String.init) ?? "" }),
            ("error_bound", { number($0.errorBound, "%.3e") }),
            ("typical_error", { number($0.typicalError, "%.3e") }), ("passed", { $0.passed.map(String.init) ?? "" }),
            ("check", { $0.check ?? "" }),
            ("message", { $0.message ?? "" }), ("convlab_version", { $0.metadata.version }),
            ("git_commit", { $0.metadata.gitCommit }), ("cpu", { $0.metadata.cpu }), ("cores", { "\($0.metadata.cores)" }),
            ("date", { $0.metadata.date }),
        ]
    }()

    public static let csvColumns = schema.map(\.name)

    public static var csvHeader: String { csvColumns.joined(separator: ",") }

    public var csvRow: String {
        Self.schema.map { csvEscape($0.field(self)) }.joined(separator: ",")
    }

    /// The columns that identify a row — (name, backend, pass, layout, shape, threads) — for `sweep --resume`.
    static let identityColumns = ["name", "backend", "pass", "layout", "N", "C", "H", "W", "K", "R", "S", "stride_h", "stride_w",
                                  "pad_top", "pad_bottom", "pad_left", "pad_right", "dilation_h", "dilation_w",
                                  "groups", "threads"]

    /// The identity of this record, for `sweep --resume`.
    public var resumeKey: String {
        Self.identityColumns.map { name in Self.schema.first { $0.name == name }.map { $0.field(self) } ?? "" }
            .joined(separator: "|")
    }

    /// The same key read back from a CSV row (by column name).
    /// (Files written before the layout column are NCHW.)
    public static func resumeKey(csvRow row: [String: String]) -> String {
        identityColumns.map { row[$0] ?? ($0 == "layout" ? TensorLayout.nchw.rawValue : "") }.joined(separator: "|")
    }
}

/// RFC 4180 quoting: fields with commas, quotes or newlines are wrapped in quotes, quotes doubled.
public func csvEscape(_ field: String) -> String {
    guard field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return field }
    return "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\""
}

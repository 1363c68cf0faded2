import Foundation

/// A flat, printable form of `BackendMeasurement` with the problem's shape: one CSV row or JSON object.
/// `compare`, `bench` and `sweep` all write these, so every CSV convlab produces has the same columns.
public struct MeasurementRecord: Codable, Sendable {
    public var name: String?
    public var backend: String
    public var variant: String?
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
    public var passed: Bool?
    public var message: String?
    public var phases: [String: Double]?
    public var metadata: RunMetadata = .current

    public init(_ m: BackendMeasurement, name: String? = nil, im2colMedian: Double? = nil) {
        let d = m.descriptor
        self.name = name
        backend = m.backend
        variant = m.variant
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
            passed = a.passed
        }
        message = m.statusMessage
        if !m.phases.isEmpty {
            phases = Dictionary(m.phases.map { ($0.name, $0.seconds * 1e3) }, uniquingKeysWith: +)
        }
    }

    /// Records for one problem, with speed-ups relative to the `im2col` row when there is one.
    public static func records(_ measurements: [BackendMeasurement], name: String? = nil) -> [MeasurementRecord] {
        let baseline = measurements.first(where: { $0.backend == "im2col" })?.timing?.median
        return measurements.map { MeasurementRecord($0, name: name, im2colMedian: baseline) }
    }

    /// The (shape, threads, backend) identity of a row, for `sweep --resume`.
    public var resumeKey: String {
        [name ?? "", backend, "\(N)", "\(C)", "\(H)", "\(W)", "\(K)", "\(R)", "\(S)", "\(strideH)", "\(strideW)",
         "\(padTop)", "\(padBottom)", "\(padLeft)", "\(padRight)", "\(dilationH)", "\(dilationW)", "\(groups)",
         "\(threads)"].joined(separator: "|")
    }

    /// The same key read back from a CSV row (by column name).
    public static func resumeKey(csvRow row: [String: String]) -> String {
        ["name", "backend", "N", "C", "H", "W", "K", "R", "S", "stride_h", "stride_w", "pad_top", "pad_bottom",
         "pad_left", "pad_right", "dilation_h", "dilation_w", "groups", "threads"].map { row[$0] ?? "" }
            .joined(separator: "|")
    }

    // MARK: CSV

    public static let csvColumns = [
        "name", "backend", "variant", "status", "N", "C", "H", "W", "K", "R", "S", "stride_h", "stride_w", "pad_top",
        "pad_bottom", "pad_left", "pad_right", "dilation_h", "dilation_w", "groups", "threads", "ms_median", "ms_min",
        "repeats", "gflops_effective", "speedup_vs_im2col", "plan_ms", "workspace_bytes", "deterministic",
        "mean_rel_error", "max_rel_error", "max_abs_error", "max_ulp", "error_bound", "passed", "message",
        "convlab_version", "git_commit", "cpu", "cores", "date",
    ]

    public static var csvHeader: String { csvColumns.joined(separator: ",") }

    public var csvRow: String {
        func number(_ value: Double?, _ format: String = "%.6g") -> String {
            value.map { String(format: format, $0) } ?? ""
        }
        let fields: [String] = [
            name ?? "", backend, variant ?? "", status, "\(N)", "\(C)", "\(H)", "\(W)", "\(K)", "\(R)", "\(S)", "\(strideH)",
            "\(strideW)", "\(padTop)", "\(padBottom)", "\(padLeft)", "\(padRight)", "\(dilationH)", "\(dilationW)",
            "\(groups)", "\(threads)", number(msMedian, "%.5f"), number(msMin, "%.5f"), repeats.map(String.init) ?? "",
            number(gflopsEffective, "%.2f"), number(speedupVsIm2col, "%.3f"), number(planMs, "%.3f"),
            workspaceBytes.map(String.init) ?? "", deterministic.map(String.init) ?? "", number(meanRelError, "%.3e"),
            number(maxRelError, "%.3e"), number(maxAbsError, "%.3e"), maxULP.map(String.init) ?? "",
            number(errorBound, "%.3e"), passed.map(String.init) ?? "", message ?? "",
            metadata.version, metadata.gitCommit, metadata.cpu, "\(metadata.cores)", metadata.date,
        ]
        return fields.map(csvEscape).joined(separator: ",")
    }
}

/// RFC 4180 quoting: fields with commas, quotes or newlines are wrapped in quotes, quotes doubled.
public func csvEscape(_ field: String) -> String {
    guard field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return field }
    return "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\""
}

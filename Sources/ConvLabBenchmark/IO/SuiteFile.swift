import ConvLabCore
import Foundation

/// A benchmark suite: CSV rows `name,N,C,H,W,K,R,S,stride,pad,groups` with an optional `dilation` column (the format
/// of `shared/bench/suite.csv`). Columns are found by header name, in any order. `stride`, `pad` and `dilation`
/// take one number or `h x w` written as `2x1`; `pad` also takes `same`, `valid` or four numbers `t x b x l x r`.
public struct SuiteRow: Sendable, Hashable {
    public var name: String
    public var descriptor: ConvolutionDescriptor
}

public enum SuiteFile {
    public static let requiredColumns = ["name", "N", "C", "H", "W", "K", "R", "S", "stride", "pad", "groups"]

    public static func read(contentsOf path: String) throws -> [SuiteRow] {
        try parse(try FileInput.text(at: path, what: "the suite file"), source: path)
    }

    public static func parse(_ text: String, source: String = "<suite>") throws -> [SuiteRow] {
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
        guard let headerLine = lines.first else {
            throw ConvLabError.invalidFile(path: source, reason: "empty suite (no header line)")
        }
        let header = headerLine.split(separator: ",", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        for column in requiredColumns where !header.contains(column) {
            throw ConvLabError.invalidFile(path: source, reason: "missing column '\(column)' in the header")
        }
        var seen = Set<String>()
        for column in header where !seen.insert(column).inserted {
            throw ConvLabError.invalidFile(path: source, reason: "column '\(column)' appears twice in the header")
        }
        if lines.count == 1 {
            throw ConvLabError.invalidFile(path: source, reason: "the suite has a header but no rows")
        }
        var rows: [SuiteRow] = []
        for (number, line) in lines.dropFirst().enumerated() {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
                .map { $0.trimmingCharacters(in: .whitespaces) }
            let lineNumber = number + 2
            guard fields.count == header.count else {
                throw ConvLabError.invalidFile(path: source, reason: "line \(lineNumber) has \(fields.count) fields, "
                                               + "the header has \(header.count)")
            }
            let row = Dictionary(zip(header, fields), uniquingKeysWith: { first, _ in first })  // names are unique
            func integer(_ column: String) throws -> Int {
                guard let value = Int(row[column] ?? "") else {
                    throw ConvLabError.invalidFile(path: source, reason: "line \(lineNumber): \(column) "
                                                   + "'\(row[column] ?? "")' is not an integer")
                }
                return value
            }
            do {
                let r = try integer("R"), s = try integer("S")
                let stride = try ShapeSyntax.pair(row["stride"] ?? "1", name: "stride", separators: "x")
                let dilation = try ShapeSyntax.pair(row["dilation"].flatMap { $0.isEmpty ? nil : $0 } ?? "1",
                                                    name: "dilation", separators: "x")
                let padding = try ShapeSyntax.padding(row["pad"] ?? "0", separators: "x")
                let descriptor = try ConvolutionDescriptor(
                    batch: try integer("N"), inputChannels: try integer("C"), inputHeight: try integer("H"),
                    inputWidth: try integer("W"), outputChannels: try integer("K"), kernelHeight: r, kernelWidth: s,
                    strideHeight: stride.0, strideWidth: stride.1, padding: padding,
                    dilationHeight: dilation.0, dilationWidth: dilation.1, groups: try integer("groups"))
                rows.append(SuiteRow(name: row["name"] ?? "row\(lineNumber)", descriptor: descriptor))
            } catch let error as ConvLabError {
                if case .invalidFile = error { throw error }
                throw ConvLabError.invalidFile(path: source, reason: "line \(lineNumber): \(error)")
            }
        }
        return rows
    }
}

/// The small grammar shared by the CLI options and suite files for pairs and paddings.
public enum ShapeSyntax {
    /// "3" → (3, 3); "7x1" or "7,1" → (7, 1).
    public static func pair(_ text: String, name: String, separators: String = "x,") throws -> (Int, Int) {
        let parts = text.lowercased().split(omittingEmptySubsequences: false, whereSeparator: { separators.contains($0) })
            .map(String.init)
        let values = parts.compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard values.count == parts.count, (1...2).contains(values.count) else {
            throw ConvLabError.invalidArgument(name: name, reason: "'\(text)' is not N or HxW")
        }
        return values.count == 1 ? (values[0], values[0]) : (values[0], values[1])
    }

    /// "same", "valid", "P", "h,w" or "t,b,l,r".
    public static func padding(_ text: String, separators: String = ",x") throws -> PaddingRule {
        switch text.lowercased() {
        case "same": return .same
        case "valid": return .valid
        default: break
        }
        let parts = text.split(omittingEmptySubsequences: false, whereSeparator: { separators.contains($0) })
            .map(String.init)
        let values = parts.compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard values.count == parts.count else {
            throw ConvLabError.invalidArgument(name: "pad", reason: "'\(text)' is not same, valid, P, h,w or t,b,l,r")
        }
        switch values.count {
        case 1: return .explicit(Padding(values[0]))
        case 2: return .explicit(Padding(height: values[0], width: values[1]))
        case 4: return .explicit(Padding(top: values[0], bottom: values[1], left: values[2], right: values[3]))
        default:
            throw ConvLabError.invalidArgument(name: "pad", reason: "'\(text)' is not same, valid, P, h,w or t,b,l,r")
        }
    }
}

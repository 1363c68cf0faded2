import ConvLab
import Foundation

/// A plain aligned text table: a header row, a rule, then rows. Numbers right-aligned, text left-aligned.
struct TextTable {
    var header: [String]
    var rows: [[String]] = []

    mutating func add(_ row: [String]) { rows.append(row) }

    func render() -> String {
        let columns = header.count
        var widths = header.map(\.count)
        for row in rows {
            for (i, cell) in row.prefix(columns).enumerated() { widths[i] = max(widths[i], cell.count) }
        }
        func isNumeric(_ text: String) -> Bool {
            guard let first = text.first else { return false }
            return first.isNumber || ((first == "-" || first == "+" || first == ".") && text.count > 1)
        }
        func line(_ cells: [String]) -> String {
            cells.prefix(columns).enumerated().map { i, cell in
                let padding = String(repeating: " ", count: widths[i] - cell.count)
                return isNumeric(cell) && i > 0 ? padding + cell : cell + padding
            }.joined(separator: "  ")
        }
        var lines = [line(header), widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")]
        for row in rows {
            // A row with a single cell (e.g. "unsupported: reason") spans the table.
            lines.append(row.count == 1 ? row[0] : line(row))
        }
        return lines.map { $0.replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression) }
            .joined(separator: "\n")
    }
}


/// Number formatting for tables: 3 significant digits for times, scientific for errors.
enum Format {
    static func ms(_ value: Double?) -> String { value.map { significant($0, 3) } ?? "" }
    static func rate(_ value: Double?) -> String { value.map { String(format: "%.1f", $0) } ?? "" }
    static func ratio(_ value: Double?) -> String { value.map { String(format: "%.2fx", $0) } ?? "" }
    static func error(_ value: Double?) -> String { value.map { String(format: "%.2e", $0) } ?? "" }
    static func bytes(_ value: Int?) -> String { value.map { $0 == 0 ? "0" : formatBytes($0) } ?? "" }

    static func significant(_ value: Double, _ digits: Int) -> String {
        guard value != 0, value.isFinite else { return String(value) }
        let magnitude = Int(floor(log10(abs(value))))
        let decimals = max(digits - 1 - magnitude, 0)
        return String(format: "%.\(decimals)f", value)
    }
}

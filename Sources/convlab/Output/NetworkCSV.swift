import ConvLab
import Foundation

/// The CSV and text renderings of a network table: one row per (layer, pass), then one `total` row per pass; the
/// text table adds the breakdown by layer class.
enum NetworkCSV {
    static let header = NetworkSuite.header + ",class,flops,mult_adds,params,mac_bytes,pass,backend,variant,median_ms,"
        + "gflops,max_rel_error,error_bound,check,flops_share,time_share,note"

    static func rows(_ rows: [NetworkTableRow], totals: NetworkTotals) -> [String] {
        var lines: [String] = []
        for row in rows {
            let layer = NetworkLayer(name: row.name, descriptor: row.descriptor)
            for result in row.passes {
                let total = totals.seconds[result.pass.rawValue]
                let shape = NetworkSuite.fields(layer).map(csvEscape)
                let time = result.seconds.map { String(format: "%.5f", $0 * 1e3) } ?? ""
                let rate = result.gflops(flops: row.flops).map { String(format: "%.2f", $0) } ?? ""
                let error = result.accuracy.map { String(format: "%.3e", $0.maxRelativeError) } ?? ""
                let bound = result.accuracy.map { String(format: "%.3e", $0.errorBound) } ?? ""
                let flopsShare = String(format: "%.5f", Double(row.flops) / Double(max(totals.flops, 1)))
                let timeShare = zip(result.seconds, total).map { String(format: "%.5f", $0 / $1) } ?? ""
                let fields: [String] = [layer.layerClass, "\(row.flops)", "\(row.multiplyAdds)", "\(row.parameters)",
                                        "\(row.macBytes)", result.pass.rawValue, result.backend ?? "",
                                        result.variant ?? "", time, rate, error, bound,
                                        result.accuracy?.verdict.rawValue ?? "", flopsShare, timeShare,
                                        result.note ?? ""]
                lines.append((shape + fields.map(csvEscape)).joined(separator: ","))
            }
        }
        for pass in rows.first?.passes.map(\.pass) ?? [] {
            let seconds = totals.seconds[pass.rawValue]
            lines.append(["total", "", "", "", "", "", "", "", "", "", "", "", "\(totals.layers) layers",
                          "\(totals.flops)", "\(totals.multiplyAdds)", "\(totals.parameters)", "\(totals.macBytes)",
                          pass.rawValue, "", "", seconds.map { String(format: "%.5f", $0 * 1e3) } ?? "",
                          seconds.map { String(format: "%.2f", Double(totals.flops) / $0 / 1e9) } ?? "",
                          "", "", "", "1.00000", seconds == nil ? "" : "1.00000", ""].joined(separator: ","))
        }
        return lines
    }

    static func table(_ rows: [NetworkTableRow], totals: NetworkTotals, measured: Bool) -> String {
        var sections: [String] = []
        for pass in rows.first?.passes.map(\.pass) ?? [] {
            let totalSeconds = totals.seconds[pass.rawValue]
            var header = ["layer", "shape", "MFLOPs", "params", "MAC", "%FLOPs", "backend"]
            if measured { header += ["ms", "GFLOP/s", "%time", "max error", "check"] }
            var table = TextTable(header: header)
            for row in rows {
                guard let result = row.passes.first(where: { $0.pass == pass }) else { continue }
                let d = row.descriptor
                var shape = "\(d.inputChannels)>\(d.outputChannels) \(d.inputHeight)x\(d.inputWidth) "
                    + "k\(d.kernelHeight)x\(d.kernelWidth)"
                if !d.isStrideOne { shape += "/\(d.strideHeight)" }
                if d.groups > 1 { shape += " g\(d.groups)" }
                if !d.isUndilated { shape += " d\(d.dilationHeight)" }
                var cells = [row.name, shape, String(format: "%.1f", Double(row.flops) / 1e6),
                             Layers.grouped(row.parameters), formatBytes(row.macBytes),
                             percent(Double(row.flops), Double(totals.flops)),
                             result.backend.map { $0 + (result.variant.map { " \($0)" } ?? "") } ?? "-"]
                if measured {
                    cells += [Format.ms(result.seconds.map { $0 * 1e3 }), Format.rate(result.gflops(flops: row.flops)),
                              zip(result.seconds, totalSeconds).map { percent($0, $1) } ?? "",
                              Format.error(result.accuracy?.maxRelativeError),
                              result.accuracy?.verdict.rawValue ?? (result.note ?? "")]
                }
                table.add(cells)
            }
            var text = "\(pass):\n" + table.render()
            text += "\n\ntotal: \(totals.layers) convolutions, \(String(format: "%.3f", Double(totals.multiplyAdds) / 1e9)) G "
                + "multiply-adds (\(String(format: "%.3f", Double(totals.flops) / 1e9)) GFLOP), "
                + "\(Layers.grouped(totals.parameters)) parameters, MAC \(formatBytes(totals.macBytes))"
            if let totalSeconds {
                text += ", \(Format.ms(totalSeconds * 1e3)) ms, "
                    + "\(Format.rate(Double(totals.flops) / totalSeconds / 1e9)) GFLOP/s"
            }
            text += "\n\nby layer class:\n" + classTable(rows, pass: pass, totals: totals)
            sections.append(text)
        }
        return sections.joined(separator: "\n\n")
    }

    /// Share of FLOPs beside share of time per layer class: where FLOPs and time part ways.
    static func classTable(_ rows: [NetworkTableRow], pass: ConvolutionPass, totals: NetworkTotals) -> String {
        var order: [String] = []
        var flops: [String: Double] = [:], seconds: [String: Double] = [:], counts: [String: Int] = [:]
        for row in rows {
            let kind = NetworkLayer(name: row.name, descriptor: row.descriptor).layerClass
            if counts[kind] == nil { order.append(kind) }
            counts[kind, default: 0] += 1
            flops[kind, default: 0] += Double(row.flops)
            if let s = row.passes.first(where: { $0.pass == pass })?.seconds { seconds[kind, default: 0] += s }
        }
        let totalSeconds = totals.seconds[pass.rawValue]
        var table = TextTable(header: ["class", "layers", "%FLOPs", "%time", "GFLOP/s"])
        for kind in order.sorted(by: { flops[$0]! > flops[$1]! }) {
            let s = seconds[kind]
            table.add([kind, "\(counts[kind]!)", percent(flops[kind]!, Double(totals.flops)),
                       totalSeconds.flatMap { t in s.map { percent($0, t) } } ?? "",
                       totalSeconds == nil ? "" : Format.rate(s.map { flops[kind]! / $0 / 1e9 })])
        }
        return table.render()
    }

    static func percent(_ part: Double, _ whole: Double) -> String {
        whole > 0 ? String(format: "%.1f", 100 * part / whole) : ""
    }
}

/// Both values or nil.
private func zip<A, B>(_ a: A?, _ b: B?) -> (A, B)? {
    guard let a, let b else { return nil }
    return (a, b)
}

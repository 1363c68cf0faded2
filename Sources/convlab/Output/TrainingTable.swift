import ConvLab

/// The `--pass training` summary: per layer, the fastest passing backend and median of each pass, the step's sum,
/// and the best single backend for all three passes with how much the per-pass mix saves over it.
enum TrainingTable {
    static func render(_ steps: [TrainingStep]) -> String {
        var table = TextTable(header: ["layer", "forward", "ms", "backward-data", "ms", "backward-weights", "ms",
                                       "step ms", "best single backend", "ms", "mix saves"])
        for step in steps {
            var cells = [step.name ?? step.layer]
            for pass in ConvolutionPass.allCases {
                let best = step.passes.first { $0.pass == pass.rawValue }
                cells += [best?.backend ?? "-", Format.ms(best?.msMedian)]
            }
            let single = step.bestSingleBackend
            cells += [Format.ms(step.totalMs), single?.name ?? "-", Format.ms(single?.ms),
                      step.totalMs.flatMap { total in single.map { Format.ratio($0.ms / total) } } ?? ""]
            table.add(cells)
        }
        return table.render()
    }

    static let csvHeader = "name,layer,forward_backend,forward_ms,backward_data_backend,backward_data_ms,"
        + "backward_weights_backend,backward_weights_ms,step_ms,best_single_backend,best_single_ms"

    static func csvRows(_ steps: [TrainingStep]) -> [String] {
        steps.map { step in
            var fields = [step.name ?? "", step.layer]
            for pass in ConvolutionPass.allCases {
                let best = step.passes.first { $0.pass == pass.rawValue }
                fields += [best?.backend ?? "", best.map { String(format: "%.5f", $0.msMedian) } ?? ""]
            }
            let single = step.bestSingleBackend
            fields += [step.totalMs.map { String(format: "%.5f", $0) } ?? "", single?.name ?? "",
                       single.map { String(format: "%.5f", $0.ms) } ?? ""]
            return fields.map(csvEscape).joined(separator: ",")
        }
    }
}

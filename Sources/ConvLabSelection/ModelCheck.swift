import ConvLabBackends
import ConvLabBenchmark
import ConvLabCore

/// Checks the cost model against measurements already on disk (a `sweep` or `bench` CSV): per backend, how far the
/// predictions are from the measured medians, and per shape, the regret the heuristic would have had among the
/// backends measured there. Used to calibrate `MachineModel` on one sweep and to test it on another.
public struct ModelCheck: Sendable {
    public struct BackendFit: Sendable {
        public var backend: String
        public var rows: Int
        /// Median and 10th/90th percentiles of measured / predicted.
        public var medianRatio: Double
        public var lowRatio: Double
        public var highRatio: Double
    }

    public struct ShapeRegret: Sendable {
        public var name: String
        public var chosen: String
        public var best: String
        public var regret: Double
    }

    public var fits: [BackendFit]
    public var regrets: [ShapeRegret]
    /// Every row used: correction key, shape, measured and physical (uncorrected) seconds and the physical seconds of
    /// each stage (`name=seconds;…`), as CSV lines.
    public var dump: [String] = []

    /// Rows of `pass` (files without a pass column are forward) on NCHW tensors (the layout the selector plans for;
    /// nChw16c rows time a different entry point).
    public init(csv text: String, model: CostModel = CostModel(), threads: Int? = nil,
                pass: ConvolutionPass = .forward) throws {
        let rows = CSVReader.rows(text).filter {
            $0["status"] == "ok" && ($0["pass"] ?? ConvolutionPass.forward.rawValue) == pass.rawValue
                && ($0["layout"] ?? TensorLayout.nchw.rawValue) == TensorLayout.nchw.rawValue
        }
        var ratios: [String: [Double]] = [:]
        var shapes: [String: [(backend: String, measured: Double, predicted: Double)]] = [:]
        let backends = Dictionary(BackendRegistry.standard().selectable.map { ($0.name, $0) },
                                  uniquingKeysWith: { a, _ in a })
        for row in rows {
            // A row whose identity or shape columns are missing or not a problem is passed over.
            guard let record = try? MeasurementRecord(csvRow: row, line: 0), let d = try? record.descriptor(),
                  let backend = backends[record.backend], let measured = record.msMedian.map({ $0 / 1e3 })
            else { continue }
            let (name, rowThreads) = (record.backend, threads ?? record.threads)
            guard let plan = try? backend.describe(d, pass: pass, options: PlanOptions(threads: rowThreads)),
                  let predicted = model.predictedSeconds(plan, descriptor: d, threads: rowThreads)
            else { continue }
            ratios[name, default: []].append(measured / predicted)
            if let physical = model.physicalSeconds(plan, threads: rowThreads), let work = plan.work {
                let stages = work.stages.map { "\($0.name)=\(model.seconds($0, threads: Double(max(rowThreads, 1))))" }
                dump.append("\(CostModel.correctionKey(plan, d)),"
                            + "\(csvEscape(d.key)),\(measured),\(physical),\(csvEscape(stages.joined(separator: ";")))")
            }
            let shape = (row["name"] ?? "") + "|" + d.key
            shapes[shape, default: []].append((name, measured, predicted))
        }
        func percentile(_ values: [Double], _ p: Double) -> Double {
            let sorted = values.sorted()
            return sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * p))]
        }
        fits = ratios.keys.sorted().map { name in
            let values = ratios[name] ?? []
            return BackendFit(backend: name, rows: values.count, medianRatio: percentile(values, 0.5),
                              lowRatio: percentile(values, 0.1), highRatio: percentile(values, 0.9))
        }
        regrets = shapes.keys.sorted().compactMap { shape in
            guard let entries = shapes[shape], entries.count > 1,
                  let chosen = entries.min(by: { $0.predicted < $1.predicted }),
                  let best = entries.min(by: { $0.measured < $1.measured }) else { return nil }
            return ShapeRegret(name: String(shape.split(separator: "|").first ?? ""), chosen: chosen.backend,
                               best: best.backend, regret: chosen.measured / best.measured - 1)
        }
    }
}

import ConvLabBackends
import ConvLabBenchmark
import ConvLabCore
import Foundation

/// `convlab calibrate`: measures this machine and fits a cost-model profile for it.
///
/// 1. Rates: one core's float32 FMA peak (16 independent vector chains) and its streaming rate from L2 out to memory
///    (a triad at footprints doubling from 256 KiB to 128 MiB, beyond the last-level cache share of the machines seen;
///    the largest is the memory bandwidth). The per-unit times of the Winograd transforms, the FFTs and the
///    per-bin products are vector work, so they are carried over from the closest built-in profile scaled by the
///    ratio of the peaks; the efficiencies stay (they are properties of the code, not of the machine).
/// 2. Corrections: every selectable backend on a calibration sweep (`shapes`: kernels 1–13, 1–576 channels,
///    10–100 px, batch 1–8, depthwise and strided, at most 4 GFLOP; none of them a benchmark or network layer),
///    then per backend, pass and class measured ≈ scale × physical + overhead fitted in log space, as
///    `scripts/calibrate-selector.py` does.
public enum Calibration {
    /// One calibration row: a backend's measured median beside the uncorrected physical estimate.
    public struct Row: Sendable {
        public var key: String
        public var measured: Double
        public var physical: Double

        public init(key: String, measured: Double, physical: Double) {
            (self.key, self.measured, self.physical) = (key, measured, physical)
        }
    }

    public struct Fit: Sendable {
        public var key: String
        public var rows: Int
        public var correction: MachineModel.Correction
        /// 90% of the rows are predicted within this factor.
        public var spread: Double
    }

    public struct Result: Sendable {
        public var profile: MachineProfile
        public var base: MachineProfile
        public var fits: [Fit]
        public var rows: [Row]
        /// The sweep's timings (or the saved ones refitted), for `--measurements`.
        public var measurements: [MeasurementRecord]
    }

    // MARK: Rates

    /// Float32 FLOP/s of one core: 16 independent FMA chains (`addProduct`, one vfmadd each) on 16-lane vectors, the
    /// best of five runs. The operands come from outside the loop so the compiler cannot fold it.
    public static func peakFLOPs(iterations: Int = 4_000_000) -> Double {
        var best = 0.0
        let scale = Float(ProcessInfo.processInfo.activeProcessorCount > 0 ? 1 : 2)
        // Best of five: on a shared VM one run in three can lose a quarter of its rate to a neighbour.
        for _ in 0..<5 {
            let start = MonotonicClock.now()
            let sink = fmaChains(iterations: iterations, m: 1e-7 * scale, c: 0.5 * scale)
            let seconds = MonotonicClock.now() - start
            if sink.isFinite && seconds > 0 { best = max(best, Double(iterations) * 16 * 16 * 2 / seconds) }
        }
        return best
    }

    @inline(never)
    static func fmaChains(iterations: Int, m: Float, c: Float) -> Float {
        typealias V = SIMD16<Float>
        let mv = V(repeating: m), cv = V(repeating: c)
        var a0 = V(repeating: 1), a1 = V(repeating: 2), a2 = V(repeating: 3), a3 = V(repeating: 4)
        var a4 = V(repeating: 5), a5 = V(repeating: 6), a6 = V(repeating: 7), a7 = V(repeating: 8)
        var a8 = V(repeating: 9), a9 = V(repeating: 10), a10 = V(repeating: 11), a11 = V(repeating: 12)
        var a12 = V(repeating: 13), a13 = V(repeating: 14), a14 = V(repeating: 15), a15 = V(repeating: 16)
        for _ in 0..<iterations {
            a0.addProduct(mv, cv); a1.addProduct(mv, cv); a2.addProduct(mv, cv); a3.addProduct(mv, cv)
            a4.addProduct(mv, cv); a5.addProduct(mv, cv); a6.addProduct(mv, cv); a7.addProduct(mv, cv)
            a8.addProduct(mv, cv); a9.addProduct(mv, cv); a10.addProduct(mv, cv); a11.addProduct(mv, cv)
            a12.addProduct(mv, cv); a13.addProduct(mv, cv); a14.addProduct(mv, cv); a15.addProduct(mv, cv)
        }
        let sum = (a0 + a1 + a2 + a3) + (a4 + a5 + a6 + a7) + (a8 + a9 + a10 + a11) + (a12 + a13 + a14 + a15)
        return sum.sum()
    }

    /// Bytes per second one core moves in a triad a = b + s·c over arrays of `floats` each (three streams; the best
    /// of three runs). The default, 3 × 64 MiB, is beyond any last-level cache seen (the Intel kind's 300 MiB L3 is
    /// a slice shared by the VM's neighbours, and 192 MiB spill it).
    public static func bandwidth(floats requested: Int = 16 << 20, minimumBytes: Int = 0) -> Double {
        // Three arrays within the tensor memory limit (a quarter of it), so a small machine is not pushed to swap.
        let floats = max(1 << 16, min(requested, ResourceLimits.default.maxTensorBytes / 4 / 12))
        let a = UnsafeMutablePointer<Float>.allocate(capacity: floats)
        let b = UnsafeMutablePointer<Float>.allocate(capacity: floats)
        let c = UnsafeMutablePointer<Float>.allocate(capacity: floats)
        defer { a.deallocate(); b.deallocate(); c.deallocate() }
        b.initialize(repeating: 1, count: floats)
        c.initialize(repeating: 2, count: floats)
        a.initialize(repeating: 0, count: floats)
        var best = 0.0
        // Small footprints repeat the triad until `minimumBytes` have moved, so the clock's resolution does not count.
        let sweeps = max(1, minimumBytes / (floats * 12))
        for _ in 0..<3 {
            let start = MonotonicClock.now()
            for _ in 0..<sweeps {
                for i in 0..<floats { a[i] = b[i] + 0.5 * c[i] }
            }
            let seconds = MonotonicClock.now() - start
            if seconds > 0 { best = max(best, Double(floats) * 12 * Double(sweeps) / seconds) }
        }
        return a[floats / 2] == 2 ? best : 0
    }

    /// One core's triad rate at footprints (three arrays together) from 256 KiB doubling to `largest` bytes: the
    /// cache levels and memory as the cost model's `bandwidthCurve`. Each point moves at least `minimumBytes`.
    public static func bandwidthCurve(largest: Int = 128 << 20, minimumBytes: Int = 256 << 20)
        -> [MachineModel.BandwidthPoint] {
        var points: [MachineModel.BandwidthPoint] = []
        var footprint = 256 << 10
        while footprint <= largest {
            let rate = bandwidth(floats: footprint / 12, minimumBytes: minimumBytes)
            if rate > 0 { points.append(MachineModel.BandwidthPoint(bytes: Double(footprint), bytesPerSecond: rate)) }
            footprint *= 2
        }
        return points
    }

    // MARK: The sweep

    /// The calibration shapes: a seeded draw from a grid unlike the benchmark suite and the network tables, so those
    /// test the fitted profile on layers it never saw.
    public static func shapes(count: Int = 80, seed: UInt64 = 0xCA11B) -> [ConvolutionDescriptor] {
        var generator = SeededGenerator(seed: seed)
        func pick<T>(_ values: [T]) -> T { values[Int.random(in: 0..<values.count, using: &generator)] }
        var result: [ConvolutionDescriptor] = []
        var attempts = 0
        while result.count < count && attempts < 100 * count {
            attempts += 1
            let depthwise = result.count % 5 == 4
            let channels = depthwise ? pick([24, 48, 96, 160, 320, 576]) : pick([1, 3, 16, 40, 72, 128, 192, 320, 448])
            let kernel = depthwise ? pick([3, 5, 7, 13]) : pick([1, 1, 3, 3, 3, 5, 5, 7, 11])
            let size = pick([10, 14, 20, 28, 40, 56, 72, 100])
            let stride = pick([1, 1, 1, 2])
            guard let d = try? ConvolutionDescriptor(
                batch: pick([1, 1, 2, 4, 8]), inputChannels: channels, inputHeight: size, inputWidth: size,
                outputChannels: depthwise ? channels : pick([8, 24, 64, 96, 160, 256, 384]), kernelHeight: kernel,
                kernelWidth: kernel, strideHeight: stride, strideWidth: stride, padding: .same,
                groups: depthwise ? channels : 1), d.outputHeight >= 2,
                  // Layers of up to 4 GFLOP keep the sweep to minutes (a real network's range, none of its layers).
                  d.directFLOPs <= 4_000_000_000 else { continue }
            result.append(d)
        }
        return result
    }

    /// Measures this machine: rates, then every selectable backend on `shapes` in each of `passes`, then the fits.
    /// `progress` is called once per shape with a line to print. `base` (default: the built-in profile of this kind,
    /// else the closest) lends the per-unit transform times, scaled, and the corrections the sweep cannot fit; another
    /// kind's shows what calibrating a kind no profile has seen gives. With `measurements` (a saved sweep, e.g. a previous
    /// run's `--measurements` CSV) the sweep is not run again: only the rates are measured and the corrections refitted,
    /// which is how a change to the physical estimates is checked against the same timings.
    public static func run(threads: Int, shapes: [ConvolutionDescriptor], timing: TimingPolicy,
                           passes: [ConvolutionPass] = ConvolutionPass.allCases,
                           identity: MachineIdentity = .current, base chosen: MachineProfile? = nil,
                           measurements saved: [MeasurementRecord]? = nil,
                           progress: (String) -> Void = { _ in }) throws -> Result {
        let base = chosen ?? MachineProfiles.resolve(identity: identity, store: nil).profile
        progress("rates: measuring one core's FMA peak and memory bandwidth")
        let peak = peakFLOPs(), curve = bandwidthCurve(), stream = curve.last?.bytesPerSecond ?? bandwidth()
        guard peak > 0, stream > 0 else {
            throw ConvLabError.invalidArgument(name: "calibrate", reason: "could not measure this machine's rates")
        }
        var model = base.model
        let ratio = peak / base.model.coreFLOPs
        model.coreFLOPs = peak
        model.bandwidth = stream
        model.bandwidthCurve = curve.isEmpty ? nil : curve
        model.winogradInputSeconds /= ratio
        model.winogradBlockingSeconds /= ratio
        model.winogradOutputSeconds /= ratio
        model.fftSecondsPerPoint /= ratio
        model.complexProductRate *= ratio
        progress(String(format: "rates: %.0f GFLOP/s per core (base profile '%@': %.0f), %.1f GB/s per core",
                        peak / 1e9, base.name, base.model.coreFLOPs / 1e9, stream / 1e9))
        let records = try saved ?? sweep(threads: threads, shapes: shapes, timing: timing, passes: passes,
                                         progress: progress)
        let rows = try Self.rows(records, model: CostModel(machine: model))
        if saved != nil && rows.isEmpty {
            throw ConvLabError.invalidArgument(name: "refit", reason: "the timings hold no timed NCHW row of a selectable "
                                               + "backend to fit")
        }
        let fits = fit(rows, baseOverheads: base.model.corrections.mapValues(\.overhead))
        var corrections = base.model.corrections
        for fit in fits { corrections[fit.key] = fit.correction }
        model.corrections = corrections
        let date = ISO8601DateFormatter().string(from: Date())
        let profile = MachineProfile(
            name: "calibrated", identity: identity, model: model,
            provenance: "convlab calibrate \(date): \(saved == nil ? "\(shapes.count) shapes" : "a saved sweep"), "
                + "\(Set(records.map(\.pass)).sorted().joined(separator: "/")), "
                + "\(rows.count) measurements, "
                + "\(threads) threads; rates and uncalibrated corrections from '\(base.name)'")
        return Result(profile: profile, base: base, fits: fits, rows: rows, measurements: records)
    }

    /// Times every selectable backend on `shapes` in each of `passes` (NCHW, no accuracy check): the sweep's records,
    /// in the schema `bench` writes.
    public static func sweep(threads: Int, shapes: [ConvolutionDescriptor], timing: TimingPolicy,
                             passes: [ConvolutionPass], progress: (String) -> Void = { _ in }) throws
        -> [MeasurementRecord] {
        var records: [MeasurementRecord] = []
        let candidates = Selector.candidates()
        for (index, d) in shapes.enumerated() {
            for pass in passes {
                let runner = ComparisonRunner(descriptor: d, options: PlanOptions(threads: threads), timing: timing,
                                              checkAccuracy: false, pass: pass)
                let supported = candidates.filter { $0.support(for: d, pass: pass).isSupported }
                records += MeasurementRecord.records(try runner.run(backends: supported), name: "calibration-\(index + 1)")
            }
            progress("sweep \(index + 1)/\(shapes.count): \(d)")
        }
        return records
    }

    /// Each timed NCHW record beside its plan's physical estimate under `model`, keyed by the correction it informs
    /// (a backward pass with kernels of its own gets its own: `CostModel.correctionBackend`).
    /// Rows of other layouts, passes or backends than the selector's, and untimed ones, are passed over; a row whose
    /// shape is not a valid problem is an error (the file is not what it claims to be).
    public static func rows(_ records: [MeasurementRecord], model: CostModel) throws -> [Row] {
        let backends = Dictionary(Selector.candidates().map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        return try records.compactMap { record in
            guard record.status == "ok", record.layout == TensorLayout.nchw.rawValue,
                  let median = record.msMedian.map({ $0 / 1e3 }), median > 0,
                  let pass = ConvolutionPass(rawValue: record.pass), let backend = backends[record.backend]
            else { return nil }
            let d = try record.descriptor()
            guard let plan = try? backend.describe(d, pass: pass, options: PlanOptions(threads: max(record.threads, 1))),
                  let physical = model.physicalSeconds(plan, threads: record.threads), physical > 0
            else { return nil }
            return Row(key: CostModel.correctionKey(plan, d), measured: median,
                       physical: physical)
        }
    }

    /// Rows a key needs for both parameters; with fewer (but at least `minimumRows`) only the scale is fitted and the
    /// overhead is kept from the base profile — three rows fitted two parameters to nonsense (scale 0.001 with
    /// 316 µs of overhead).
    public static let rowsForOverhead = 8
    public static let minimumRows = 3

    /// Per key with at least `minimumRows` rows: the (scale, overhead) minimising
    /// Σ (log(scale·physical + overhead) − log measured)², by a grid over the overhead (0 and 10⁻⁷…10⁻² s) with a
    /// golden-section search over log(scale) at each; `baseOverheads` per key for the scale-only fits.
    public static func fit(_ rows: [Row], baseOverheads: [String: Double] = [:]) -> [Fit] {
        Dictionary(grouping: rows, by: \.key).sorted { $0.key < $1.key }.compactMap { key, group in
            guard group.count >= minimumRows else { return nil }
            func cost(_ scale: Double, _ overhead: Double) -> Double {
                group.reduce(0) { sum, row in
                    let r = log(scale * row.physical + overhead) - log(row.measured)
                    return sum + r * r
                }
            }
            var best = (cost: Double.infinity, scale: 1.0, overhead: 0.0)
            let overheads = group.count >= rowsForOverhead ? [0.0] + (0...50).map { pow(10, -7 + 5 * Double($0) / 50) }
                : [baseOverheads[key] ?? 0]
            for overhead in overheads {
                var (low, high) = (log(1e-3), log(1e3))
                let golden = (5.0.squareRoot() - 1) / 2
                for _ in 0..<60 {
                    let a = high - golden * (high - low), b = low + golden * (high - low)
                    if cost(exp(a), overhead) < cost(exp(b), overhead) { high = b } else { low = a }
                }
                let scale = exp((low + high) / 2)
                let c = cost(scale, overhead)
                if c < best.cost { best = (c, scale, overhead) }
            }
            let residuals = group.map { abs(log(best.scale * $0.physical + best.overhead) - log($0.measured)) }.sorted()
            let spread = exp(residuals[min(residuals.count - 1, Int((0.9 * Double(residuals.count)).rounded(.up)) - 1)])
            return Fit(key: key, rows: group.count,
                       correction: MachineModel.Correction(scale: best.scale, overhead: best.overhead), spread: spread)
        }
    }
}

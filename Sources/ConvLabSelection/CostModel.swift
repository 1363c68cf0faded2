import ConvLabBackends
import ConvLabCore
import Foundation

/// Predicted execution time of a plan, from its `PlanDescription` alone: the selector's heuristic.
///
/// Backends describe the work their plan does (`WorkEstimate`: stages with FLOPs, bytes, transform points and task
/// counts, from the same geometry the plan executes); this model turns each stage into seconds with this machine's
/// rates and sums them. A stage of `tasks` independent tasks keeps min(tasks, threads) workers busy. Then a
/// per-backend correction, measured ≈ scale × physical + overhead, fitted by `convlab calibrate` (or `scripts/calibrate-selector.py`) on one
/// calibration sweep, absorbs what the rates miss (loop overheads, cache effects). Any backend that describes its
/// work is predicted, including ones this file has never heard of (they get no correction).
public struct CostModel: Sendable {
    public var machine: MachineModel

    /// By default the profile `MachineProfiles.current` resolves for this machine (calibrated here, else built in).
    public init(machine: MachineModel = MachineProfiles.current.profile.model) {
        self.machine = machine
    }

    /// Predicted seconds, or nil when the plan has no work estimate: the physical estimate corrected by the backend's
    /// calibrated scale and fixed overhead.
    public func predictedSeconds(_ plan: PlanDescription, descriptor d: ConvolutionDescriptor, threads: Int) -> Double? {
        guard let raw = physicalSeconds(plan, threads: threads) else { return nil }
        let keys = Self.correctionKeys(backend: Self.correctionBackend(plan), d, work: plan.work)
            + Self.correctionKeys(backend: plan.backend, d, work: plan.work)
        let correction = keys.lazy.compactMap { machine.corrections[$0] }.first
            ?? MachineModel.Correction(scale: 1, overhead: 0)
        return correction.scale * raw + correction.overhead
    }

    /// The name a plan's corrections are kept under: a backward pass with kernels of its own has its own
    /// (`im2col-backward-data`, `direct-backward-weights`, …); a pass that runs the forward plan on the transposed
    /// problem ("as forward") shares the forward corrections, since it runs the same kernels (the work estimate
    /// already prices the zero insertion). Used by the model and by `convlab calibrate` alike.
    public static func correctionBackend(_ plan: PlanDescription) -> String {
        plan.pass == .forward || plan.variant.contains("as forward") ? plan.backend : "\(plan.backend)-\(plan.pass)"
    }

    /// Layers with few channels per group are bound by loads and per-channel overheads rather than FMAs, so they get
    /// fitted corrections of their own: depthwise layers, and plans that run depthwise kernels
    /// (`WorkEstimate.depthwiseKernels`, e.g. a single-channel image's forward pass), `<backend>-depthwise`; other
    /// groups with one input or fewer than 4 output channels `<backend>-narrow`, unless the plan runs FMA-bound
    /// register tiles (a `.directKernel` stage, e.g. a single-channel image's weight gradient with the output
    /// channels along the lanes). 1×1 layers (no lowering, plain or transposed products) get `<backend>-pointwise`.
    /// Depthwise and narrow were one class until it fitted the direct backend's depthwise plans (0.4–0.6 of their
    /// estimate) and its one-channel-block kernels (0.9–1.0) with one scale, which priced SRCNN's 64→1 9×9
    /// backward-data at half its time; im2col's per-group GEMMs split the same way (0.3 against 0.7).
    public static func correctionKey(_ plan: PlanDescription, _ d: ConvolutionDescriptor) -> String {
        correctionKeys(backend: correctionBackend(plan), d, work: plan.work)[0]
    }

    /// The keys for a plan of `backend` doing `work`, most specific first, then the ones to fall back on: a profile
    /// fitted before the depthwise class existed has only `-narrow`, and one without a class key uses the backend's
    /// own.
    public static func correctionKeys(backend: String, _ d: ConvolutionDescriptor, work: WorkEstimate? = nil)
        -> [String] {
        if work?.depthwiseKernels == true || (d.groups > 1 && d.channelsPerGroup == 1) {
            return [backend + "-depthwise", backend + "-narrow", backend]
        }
        let fmaBound = work?.stages.contains { if case .directKernel = $0 { true } else { false } } == true
        if !fmaBound && (d.outputChannelsPerGroup < 4 || d.channelsPerGroup == 1) {
            return [backend + "-narrow", backend]
        }
        if d.kernelHeight == 1 && d.kernelWidth == 1 { return [backend + "-pointwise", backend] }
        return [backend]
    }

    /// The uncorrected estimate (what `scripts/calibrate-selector.py` fits the corrections to).
    public func physicalSeconds(_ plan: PlanDescription, threads: Int) -> Double? {
        plan.work.map { work in work.stages.reduce(0) { $0 + seconds($1, threads: Double(max(threads, 1))) } }
    }

    /// One stage at this machine's rates.
    public func seconds(_ stage: WorkEstimate.Stage, threads: Double) -> Double {
        let m = machine
        switch stage {
        case let .directKernel(flops, reduction, tasks):
            let efficiency = m.directEfficiency * Double(reduction) / Double(reduction + 8)
            return flops / (m.coreFLOPs * parallelism(tasks, threads) * efficiency)
        case let .loadBoundKernel(flops, taps, tasks):
            return flops / (m.coreFLOPs * parallelism(tasks, threads) * m.narrowDirectEfficiency
                            * Self.loadBoundTapFactor(taps))
        case let .gemm(flops, rows, columns, depth, tasks):
            return flops / (m.coreFLOPs * parallelism(tasks, threads)
                            * gemmEfficiency(m: Double(rows), n: Double(columns), k: Double(depth)))
        case let .memory(bytes, footprint):
            // Each thread streams its share; a share that fits a cache level streams at that level's rate.
            return bytes / (m.streamRate(footprint: (footprint ?? bytes) / threads) * threads)
        case let .winogradInputTransform(units, tasks):
            return units * m.winogradInputSeconds / parallelism(tasks, threads)
        case let .winogradBlocking(units, tasks):
            return units * m.winogradBlockingSeconds / parallelism(tasks, threads)
        case let .winogradOutputTransform(units, tasks):
            return units * m.winogradOutputSeconds / parallelism(tasks, threads)
        case let .fftTransforms(pointLogPoints, tasks):
            return pointLogPoints * m.fftSecondsPerPoint / parallelism(tasks, threads)
        case let .complexProducts(multiplyAdds, tasks):
            return multiplyAdds / m.complexProductRate / parallelism(tasks, threads)
        }
    }

    /// How much faster per FLOP a load-bound kernel runs on sums of `taps` terms than on a 3×3's nine: the per-row
    /// and per-plane work is spread over more FMAs, as taps/(taps + 15), normalised to 1 at nine taps (so profiles
    /// fitted on 3×3-heavy sweeps keep their meaning). Measured on the Intel kind's network layers, direct's
    /// depthwise time per FLOP fell 2.8× from 3×3 to 31×31 (measured/estimate 0.23–0.9 without this factor,
    /// 0.55–0.95 with it).
    static func loadBoundTapFactor(_ taps: Int) -> Double {
        let n = Double(max(taps, 1))
        return (n / (n + 15)) / (9.0 / 24)
    }

    /// Threads a stage with `tasks` independent tasks keeps busy: all of them when there are enough tasks, else one per
    /// task plus a little from work that parallelises inside a task (FFTW's own threads, the GEMM's column split).
    func parallelism(_ tasks: Int, _ threads: Double) -> Double {
        let t = Double(max(tasks, 1))
        return t >= threads ? threads : t + (threads - t) * 0.3
    }

    /// Efficiency of a GEMM with these dimensions relative to the core's peak: small dimensions leave register blocks
    /// partly empty and the fixed per-call overhead unamortised. x/(x + h) saturates at large sizes.
    func gemmEfficiency(m: Double, n: Double, k: Double) -> Double {
        machine.gemmEfficiency * m / (m + 12) * n / (n + 24) * k / (k + 16)
    }
}

/// Speeds of one machine that the cost model needs (one core unless stated): measured rates and per-backend
/// corrections. Each machine kind has its own (`MachineProfile`): built in for the kinds we have seen, or measured
/// by `convlab calibrate`.
public struct MachineModel: Sendable, Hashable, Codable {
    /// Peak float32 FMA throughput of one core (2 × 16 lanes × 2 FLOPs × clock).
    public var coreFLOPs: Double
    /// Bytes per second one core streams from memory.
    public var bandwidth: Double
    public var directEfficiency: Double
    public var narrowDirectEfficiency: Double
    public var gemmEfficiency: Double
    /// Seconds per tile and 16-channel block for F(4,3): input transform, blocking, output transform.
    public var winogradInputSeconds: Double
    public var winogradBlockingSeconds: Double
    public var winogradOutputSeconds: Double
    /// FFTW r2c/c2r time per point per log₂ point (estimate-mode plans).
    public var fftSecondsPerPoint: Double
    /// Complex multiply-adds per second of the per-bin products.
    public var complexProductRate: Double
    /// Per backend: measured ≈ scale × physical estimate + overhead (seconds), fitted by least squares in log space.
    public var corrections: [String: Correction]
    /// One core's streaming rate against the bytes it streams, measured (`Calibration.bandwidthCurve`), ascending in
    /// footprint: what a layer's copies cost depends on whether they fit L2, the last-level cache or neither (Intel
    /// kind: 95, 26 and 14 GB/s). Without it (profiles fitted before it existed) every byte costs `bandwidth`.
    public var bandwidthCurve: [BandwidthPoint]? = nil

    /// One point of `bandwidthCurve`.
    public struct BandwidthPoint: Sendable, Hashable, Codable {
        public var bytes: Double
        public var bytesPerSecond: Double

        public init(bytes: Double, bytesPerSecond: Double) {
            (self.bytes, self.bytesPerSecond) = (bytes, bytesPerSecond)
        }
    }

    /// One core's rate streaming `footprint` bytes: `bandwidthCurve` interpolated in log(footprint), its first rate
    /// below it and its last above; `bandwidth` without a curve.
    public func streamRate(footprint: Double) -> Double {
        guard let curve = bandwidthCurve, let first = curve.first, let last = curve.last else { return bandwidth }
        if footprint <= first.bytes { return first.bytesPerSecond }
        if footprint >= last.bytes { return last.bytesPerSecond }
        for (low, high) in zip(curve, curve.dropFirst()) where footprint <= high.bytes {
            let t = log(footprint / low.bytes) / log(high.bytes / low.bytes)
            return low.bytesPerSecond + t * (high.bytesPerSecond - low.bytesPerSecond)
        }
        return last.bytesPerSecond
    }

    public struct Correction: Sendable, Hashable, Codable {
        public var scale: Double
        public var overhead: Double
    }

    /// The AMD Zen 5 kind (family 26 model 2): `convlab calibrate` on it (2 threads, 80 layers × 3 passes, 2026-12-02;
    /// profile and provenance in notebooks-data/amd-zen5/machine-profile.json). It replaced the first profile, fitted
    /// by scripts/calibrate-selector.py on notebooks-data/selector-calibration.csv for the forward pass only: on the
    /// 55 network layers, within 10% of the best on 47 → 52 rows forward (worst 2.34× → 1.20×), 50 → 51 backward-data
    /// (2.03× → 1.48×), 48 → 50 backward-weights (2.35× → 1.84×).
    /// The three `direct-backward-weights` keys are borrowed from `intelEmeraldRapids`' 2026-12-06 fit: the plans this
    /// kind's own fit measured were replaced that day (output channels along the lanes, channel-blocked depthwise), and
    /// a correction fitted to another kernel is worse than the same kernel's on another AVX-512 kind. The three
    /// `im2col-backward-weights` keys are this kind's own, rescaled by what pricing the GEMM's register-tile padding
    /// did to the same keys' fit on the same calibration sweep on the Intel kind (×0.86, ×0.21 narrow, ×0.36
    /// pointwise). Re-measure here with `convlab calibrate`.
    /// Its timings were not kept, so the third 2026-12-06 revision of the estimates (Winograd blocking, output
    /// transform and phase round trip; im2col's weight-gradient columns; see `intelEmeraldRapids`) could not be
    /// refitted here. The keys it moved are rescaled by what it did to the same keys' fit on the Intel kind's
    /// timings (bandwidth curve left out, peaks equalised): winograd-f2x3 ×1.24, f2x5 ×1.16, f4x3 ×0.91, f4x5 ×0.73,
    /// f6x3 ×0.83, im2col-backward-weights-pointwise ×1.60. `convlab calibrate --measurements` keeps timings now,
    /// for `--refit`.
    /// `direct-pointwise` and `im2col-backward-data-pointwise` are from `convlab calibrate` on this kind on 2026-12-07
    /// (notebooks-data/amd-zen5/calibration-2026-12-07c/, timings kept), rescaled to this profile's core rate
    /// (×234.7/263.2): the old pair priced 1×1 backward-data through the direct forward plan below im2col on 7 of the
    /// 14 network 1×1 layers (up to 1.9× slower). On the 55 network layers, within 10%: forward 53 → 54,
    /// backward-data 48 → 51, the training step 48 → 53. The whole refit was not taken: it moved the Winograd keys and
    /// chose F(2,3) or F(6,3) over the measured-best F(4,3) on 9 network rows (within 10% on 144 of 165, against 153).
    public static let amdZen5 = MachineModel(
        coreFLOPs: 2.347e+11, bandwidth: 3.773e+10, directEfficiency: 0.85, narrowDirectEfficiency: 0.12,
        gemmEfficiency: 0.9, winogradInputSeconds: 9.817e-08, winogradBlockingSeconds: 6.543e-08,
        winogradOutputSeconds: 2.726e-07, fftSecondsPerPoint: 1.145e-10, complexProductRate: 7.336e+09,
        corrections: [
            "direct": Correction(scale: 0.957, overhead: 3.981e-06),
            "direct-backward-weights": Correction(scale: 0.817, overhead: 1.585e-05),
            "direct-backward-weights-narrow": Correction(scale: 0.516, overhead: 7.943e-06),
            "direct-backward-weights-pointwise": Correction(scale: 0.780, overhead: 1.000e-05),
            "direct-narrow": Correction(scale: 0.497, overhead: 3.981e-06),
            "direct-pointwise": Correction(scale: 0.866, overhead: 1.259e-05),
            "fft": Correction(scale: 1.167, overhead: 6.310e-06),
            "fft-backward-weights": Correction(scale: 1.625, overhead: 2.512e-05),
            "fft-backward-weights-narrow": Correction(scale: 2.374, overhead: 1.000e-05),
            "fft-backward-weights-pointwise": Correction(scale: 1.419, overhead: 0.000e+00),
            "fft-narrow": Correction(scale: 1.731, overhead: 1.259e-05),
            "fft-pointwise": Correction(scale: 0.989, overhead: 0.000e+00),
            "fft-tiled": Correction(scale: 1.022, overhead: 3.981e-06),
            "fft-tiled-backward-weights": Correction(scale: 1.270, overhead: 6.310e-06),
            "fft-tiled-backward-weights-narrow": Correction(scale: 2.230, overhead: 1.000e-06),
            "fft-tiled-backward-weights-pointwise": Correction(scale: 1.486, overhead: 1.259e-06),
            "fft-tiled-narrow": Correction(scale: 1.917, overhead: 2.512e-06),
            "fft-tiled-pointwise": Correction(scale: 0.944, overhead: 1.995e-06),
            "im2col": Correction(scale: 1.342, overhead: 1.000e-05),
            "im2col-backward-data": Correction(scale: 1.203, overhead: 3.162e-06),
            "im2col-backward-data-narrow": Correction(scale: 1.114, overhead: 1.995e-06),
            "im2col-backward-data-pointwise": Correction(scale: 0.784, overhead: 6.310e-07),
            "im2col-backward-weights": Correction(scale: 1.122, overhead: 1.000e-05),
            "im2col-backward-weights-narrow": Correction(scale: 0.400, overhead: 7.943e-06),
            "im2col-backward-weights-pointwise": Correction(scale: 0.975, overhead: 0.000e+00),
            "im2col-narrow": Correction(scale: 1.282, overhead: 1.000e-06),
            "im2col-pointwise": Correction(scale: 0.710, overhead: 1.000e-06),
            "winograd-f2x3": Correction(scale: 0.843, overhead: 1.585e-05),
            "winograd-f2x3-backward-weights": Correction(scale: 0.907, overhead: 0.000e+00),
            "winograd-f2x3-backward-weights-narrow": Correction(scale: 0.940, overhead: 0.000e+00),
            "winograd-f2x3-narrow": Correction(scale: 0.762, overhead: 5.504e-05),
            "winograd-f2x5": Correction(scale: 0.831, overhead: 6.310e-06),
            "winograd-f2x5-backward-weights": Correction(scale: 0.836, overhead: 0.000e+00),
            "winograd-f2x5-backward-weights-narrow": Correction(scale: 1.098, overhead: 0.000e+00),
            "winograd-f2x5-narrow": Correction(scale: 0.798, overhead: 1.259e-05),
            "winograd-f4x3": Correction(scale: 0.727, overhead: 2.512e-05),
            "winograd-f4x3-backward-weights": Correction(scale: 0.990, overhead: 0.000e+00),
            "winograd-f4x3-backward-weights-narrow": Correction(scale: 1.321, overhead: 0.000e+00),
            "winograd-f4x3-narrow": Correction(scale: 0.946, overhead: 9.387e-05),
            "winograd-f4x5": Correction(scale: 0.627, overhead: 1.000e-05),
            "winograd-f4x5-backward-weights": Correction(scale: 0.915, overhead: 0.000e+00),
            "winograd-f4x5-backward-weights-narrow": Correction(scale: 1.094, overhead: 0.000e+00),
            "winograd-f4x5-narrow": Correction(scale: 1.010, overhead: 3.162e-05),
            "winograd-f6x3": Correction(scale: 0.735, overhead: 1.585e-05),
            "winograd-f6x3-backward-weights": Correction(scale: 1.011, overhead: 0.000e+00),
            "winograd-f6x3-backward-weights-narrow": Correction(scale: 1.484, overhead: 0.000e+00),
            "winograd-f6x3-narrow": Correction(scale: 1.054, overhead: 8.622e-05),
        ])
}

extension MachineModel {
    /// The Intel Xeon Emerald Rapids kind: `convlab calibrate` on it (2 threads, 80 layers × 3 passes, 2026-12-06),
    /// then refitted on the same timings (`calibrate --refit`) once the model priced streams by cache level
    /// (`bandwidthCurve`), Winograd's blocking as one copy of the input, its output transform by its own FMA count and
    /// its phase schedule's round trip through memory, and split depthwise kernels from the other narrow classes.
    /// Live on the 55 network layers that took the choices within 10% of the best from 51/46/51 rows (forward,
    /// backward-data, backward-weights) to 51/53/52, the worst from 1.34×/1.41×/1.34× to 1.30×/1.11×/1.13×.
    /// Timings, refit and regret reports in notebooks-data/intel/selection-2026-12-06c/, the profile and its provenance
    /// in notebooks-data/intel/machine-profile.json (earlier fits beside it). Rates measured; per-unit transform times
    /// scaled from `amdZen5` by the ratio of the peaks; corrections fitted (keys the sweep could not fit are `amdZen5`'s).
    public static let intelEmeraldRapids = MachineModel(
        coreFLOPs: 1.704e+11, bandwidth: 1.512e+10, directEfficiency: 0.85, narrowDirectEfficiency: 0.12,
        gemmEfficiency: 0.9, winogradInputSeconds: 9.235e-08, winogradBlockingSeconds: 6.157e-08,
        winogradOutputSeconds: 2.567e-07, fftSecondsPerPoint: 1.078e-10, complexProductRate: 7.796e+09,
        corrections: [
            "direct": Correction(scale: 1.001, overhead: 1.585e-05),
            "direct-backward-weights": Correction(scale: 0.930, overhead: 1.995e-05),
            "direct-backward-weights-depthwise": Correction(scale: 0.518, overhead: 6.310e-06),
            "direct-backward-weights-narrow": Correction(scale: 0.641, overhead: 1.259e-05),
            "direct-backward-weights-pointwise": Correction(scale: 1.239, overhead: 1.259e-05),
            "direct-depthwise": Correction(scale: 0.455, overhead: 6.310e-06),
            "direct-narrow": Correction(scale: 0.903, overhead: 1.000e-05),
            "direct-pointwise": Correction(scale: 0.829, overhead: 1.585e-05),
            "fft": Correction(scale: 1.422, overhead: 3.981e-05),
            "fft-backward-weights": Correction(scale: 2.100, overhead: 7.943e-05),
            "fft-backward-weights-depthwise": Correction(scale: 4.097, overhead: 7.943e-05),
            "fft-backward-weights-narrow": Correction(scale: 2.575, overhead: 3.162e-05),
            "fft-backward-weights-pointwise": Correction(scale: 1.848, overhead: 2.512e-05),
            "fft-depthwise": Correction(scale: 2.986, overhead: 3.981e-05),
            "fft-narrow": Correction(scale: 2.305, overhead: 1.995e-05),
            "fft-pointwise": Correction(scale: 1.396, overhead: 1.259e-05),
            "fft-tiled": Correction(scale: 1.369, overhead: 3.162e-05),
            "fft-tiled-backward-weights": Correction(scale: 1.774, overhead: 3.162e-05),
            "fft-tiled-backward-weights-depthwise": Correction(scale: 3.297, overhead: 7.943e-05),
            "fft-tiled-backward-weights-narrow": Correction(scale: 2.624, overhead: 2.512e-05),
            "fft-tiled-backward-weights-pointwise": Correction(scale: 2.085, overhead: 3.981e-05),
            "fft-tiled-depthwise": Correction(scale: 2.692, overhead: 2.512e-05),
            "fft-tiled-narrow": Correction(scale: 3.045, overhead: 1.259e-05),
            "fft-tiled-pointwise": Correction(scale: 1.340, overhead: 1.995e-05),
            "im2col": Correction(scale: 1.268, overhead: 1.585e-05),
            "im2col-backward-data": Correction(scale: 1.036, overhead: 7.943e-06),
            "im2col-backward-data-depthwise": Correction(scale: 0.709, overhead: 3.981e-05),
            "im2col-backward-data-narrow": Correction(scale: 1.208, overhead: 3.981e-06),
            "im2col-backward-data-pointwise": Correction(scale: 0.845, overhead: 6.310e-07),
            "im2col-backward-weights": Correction(scale: 1.036, overhead: 1.585e-05),
            "im2col-backward-weights-depthwise": Correction(scale: 0.368, overhead: 2.512e-05),
            "im2col-backward-weights-narrow": Correction(scale: 1.025, overhead: 1.259e-05),
            "im2col-backward-weights-pointwise": Correction(scale: 1.049, overhead: 1.000e-06),
            "im2col-depthwise": Correction(scale: 1.002, overhead: 5.012e-05),
            "im2col-narrow": Correction(scale: 1.088, overhead: 3.981e-06),
            "im2col-pointwise": Correction(scale: 0.654, overhead: 2.512e-06),
            "winograd-f2x3": Correction(scale: 0.752, overhead: 1.259e-05),
            "winograd-f2x3-backward-weights": Correction(scale: 1.195, overhead: 0.000e+00),
            "winograd-f2x3-backward-weights-narrow": Correction(scale: 0.988, overhead: 0.000e+00),
            "winograd-f2x3-depthwise": Correction(scale: 0.735, overhead: 0.000e+00),
            "winograd-f2x3-narrow": Correction(scale: 0.670, overhead: 5.504e-05),
            "winograd-f2x5": Correction(scale: 0.944, overhead: 1.259e-06),
            "winograd-f2x5-backward-weights": Correction(scale: 1.168, overhead: 3.981e-06),
            "winograd-f2x5-backward-weights-depthwise": Correction(scale: 0.789, overhead: 0.000e+00),
            "winograd-f2x5-backward-weights-narrow": Correction(scale: 0.901, overhead: 0.000e+00),
            "winograd-f2x5-depthwise": Correction(scale: 0.650, overhead: 1.585e-04),
            "winograd-f2x5-narrow": Correction(scale: 0.794, overhead: 3.162e-05),
            "winograd-f4x3": Correction(scale: 0.855, overhead: 1.585e-05),
            "winograd-f4x3-backward-weights": Correction(scale: 1.206, overhead: 0.000e+00),
            "winograd-f4x3-backward-weights-narrow": Correction(scale: 1.151, overhead: 0.000e+00),
            "winograd-f4x3-depthwise": Correction(scale: 0.737, overhead: 0.000e+00),
            "winograd-f4x3-narrow": Correction(scale: 0.660, overhead: 9.387e-05),
            "winograd-f4x5": Correction(scale: 0.836, overhead: 1.585e-05),
            "winograd-f4x5-backward-weights": Correction(scale: 1.155, overhead: 0.000e+00),
            "winograd-f4x5-backward-weights-depthwise": Correction(scale: 0.939, overhead: 0.000e+00),
            "winograd-f4x5-backward-weights-narrow": Correction(scale: 1.018, overhead: 0.000e+00),
            "winograd-f4x5-depthwise": Correction(scale: 0.739, overhead: 1.000e-04),
            "winograd-f4x5-narrow": Correction(scale: 0.792, overhead: 2.512e-05),
            "winograd-f6x3": Correction(scale: 0.847, overhead: 6.310e-06),
            "winograd-f6x3-backward-weights": Correction(scale: 1.100, overhead: 0.000e+00),
            "winograd-f6x3-backward-weights-narrow": Correction(scale: 1.260, overhead: 0.000e+00),
            "winograd-f6x3-depthwise": Correction(scale: 0.810, overhead: 0.000e+00),
            "winograd-f6x3-narrow": Correction(scale: 0.708, overhead: 8.622e-05),
        ],
        bandwidthCurve: [
            BandwidthPoint(bytes: 256 * 1024, bytesPerSecond: 7.014e+10),
            BandwidthPoint(bytes: 512 * 1024, bytesPerSecond: 7.336e+10),
            BandwidthPoint(bytes: 1024 * 1024, bytesPerSecond: 7.616e+10),
            BandwidthPoint(bytes: 2048 * 1024, bytesPerSecond: 4.800e+10),
            BandwidthPoint(bytes: 4096 * 1024, bytesPerSecond: 2.666e+10),
            BandwidthPoint(bytes: 8192 * 1024, bytesPerSecond: 2.520e+10),
            BandwidthPoint(bytes: 16384 * 1024, bytesPerSecond: 2.494e+10),
            BandwidthPoint(bytes: 32768 * 1024, bytesPerSecond: 2.440e+10),
            BandwidthPoint(bytes: 65536 * 1024, bytesPerSecond: 2.355e+10),
            BandwidthPoint(bytes: 131072 * 1024, bytesPerSecond: 1.512e+10),
        ])

    /// The AMD EPYC Zen 4 kind (family 25 model 17: AVX-512 on 256-bit units, so under half Zen 5's peak per core):
    /// `convlab calibrate` on it (2 threads, 80 layers × 3 passes; profile and provenance in
    /// notebooks-data/amd-zen4/machine-profile.json). Rates measured, per-unit transform times scaled from `amdZen5`
    /// by the ratio of the peaks, corrections fitted.
    /// The three `direct-backward-weights` keys are borrowed from `intelEmeraldRapids`' 2026-12-06 fit: the plans this
    /// kind's own fit measured were replaced that day (output channels along the lanes, channel-blocked depthwise), and
    /// a correction fitted to another kernel is worse than the same kernel's on another AVX-512 kind. The three
    /// `im2col-backward-weights` keys are this kind's own, rescaled by what pricing the GEMM's register-tile padding
    /// did to the same keys' fit on the same calibration sweep on the Intel kind (×0.86, ×0.21 narrow, ×0.36
    /// pointwise). Re-measure here with `convlab calibrate`. As for `amdZen5`, its timings predate `--refit`, and the
    /// keys the third 2026-12-06 estimate revision moved are rescaled by the same factors.
    public static let amdZen4 = MachineModel(
        coreFLOPs: 1.132e+11, bandwidth: 2.908e+10, directEfficiency: 0.85, narrowDirectEfficiency: 0.12,
        gemmEfficiency: 0.9, winogradInputSeconds: 2.036e-07, winogradBlockingSeconds: 1.357e-07,
        winogradOutputSeconds: 5.655e-07, fftSecondsPerPoint: 2.375e-10, complexProductRate: 3.537e+09,
        corrections: [
            "direct": Correction(scale: 1.109, overhead: 7.943e-06),
            "direct-backward-weights": Correction(scale: 0.817, overhead: 1.585e-05),
            "direct-backward-weights-narrow": Correction(scale: 0.516, overhead: 7.943e-06),
            "direct-backward-weights-pointwise": Correction(scale: 0.780, overhead: 1.000e-05),
            "direct-narrow": Correction(scale: 0.482, overhead: 1.259e-05),
            "direct-pointwise": Correction(scale: 1.223, overhead: 1.000e-05),
            "fft": Correction(scale: 1.071, overhead: 1.585e-05),
            "fft-backward-weights": Correction(scale: 1.303, overhead: 5.012e-05),
            "fft-backward-weights-narrow": Correction(scale: 1.760, overhead: 3.981e-05),
            "fft-backward-weights-pointwise": Correction(scale: 1.104, overhead: 1.000e-05),
            "fft-narrow": Correction(scale: 1.384, overhead: 3.981e-05),
            "fft-pointwise": Correction(scale: 0.844, overhead: 7.943e-07),
            "fft-tiled": Correction(scale: 0.883, overhead: 1.000e-05),
            "fft-tiled-backward-weights": Correction(scale: 0.944, overhead: 1.995e-05),
            "fft-tiled-backward-weights-narrow": Correction(scale: 1.652, overhead: 3.162e-05),
            "fft-tiled-backward-weights-pointwise": Correction(scale: 1.111, overhead: 1.995e-05),
            "fft-tiled-narrow": Correction(scale: 1.420, overhead: 2.512e-05),
            "fft-tiled-pointwise": Correction(scale: 0.777, overhead: 1.000e-05),
            "im2col": Correction(scale: 1.361, overhead: 1.259e-05),
            "im2col-backward-data": Correction(scale: 1.181, overhead: 3.981e-06),
            "im2col-backward-data-narrow": Correction(scale: 0.998, overhead: 3.162e-06),
            "im2col-backward-data-pointwise": Correction(scale: 0.883, overhead: 0.000e+00),
            "im2col-backward-weights": Correction(scale: 1.095, overhead: 1.995e-05),
            "im2col-backward-weights-narrow": Correction(scale: 0.371, overhead: 1.585e-05),
            "im2col-backward-weights-pointwise": Correction(scale: 0.917, overhead: 0.000e+00),
            "im2col-narrow": Correction(scale: 1.321, overhead: 1.585e-06),
            "im2col-pointwise": Correction(scale: 0.804, overhead: 6.310e-07),
            "winograd-f2x3": Correction(scale: 0.829, overhead: 3.162e-05),
            "winograd-f2x3-backward-weights": Correction(scale: 0.958, overhead: 0.000e+00),
            "winograd-f2x3-backward-weights-narrow": Correction(scale: 1.292, overhead: 0.000e+00),
            "winograd-f2x3-narrow": Correction(scale: 0.836, overhead: 5.504e-05),
            "winograd-f2x5": Correction(scale: 0.896, overhead: 7.943e-05),
            "winograd-f2x5-backward-weights": Correction(scale: 0.841, overhead: 2.512e-05),
            "winograd-f2x5-backward-weights-narrow": Correction(scale: 1.250, overhead: 0.000e+00),
            "winograd-f2x5-narrow": Correction(scale: 0.807, overhead: 1.585e-04),
            "winograd-f4x3": Correction(scale: 0.855, overhead: 3.981e-05),
            "winograd-f4x3-backward-weights": Correction(scale: 1.136, overhead: 0.000e+00),
            "winograd-f4x3-backward-weights-narrow": Correction(scale: 1.611, overhead: 0.000e+00),
            "winograd-f4x3-narrow": Correction(scale: 1.019, overhead: 9.387e-05),
            "winograd-f4x5": Correction(scale: 0.676, overhead: 6.310e-05),
            "winograd-f4x5-backward-weights": Correction(scale: 0.995, overhead: 0.000e+00),
            "winograd-f4x5-backward-weights-narrow": Correction(scale: 1.263, overhead: 0.000e+00),
            "winograd-f4x5-narrow": Correction(scale: 0.980, overhead: 1.585e-04),
            "winograd-f6x3": Correction(scale: 0.801, overhead: 3.162e-05),
            "winograd-f6x3-backward-weights": Correction(scale: 1.106, overhead: 0.000e+00),
            "winograd-f6x3-backward-weights-narrow": Correction(scale: 1.883, overhead: 0.000e+00),
            "winograd-f6x3-narrow": Correction(scale: 1.202, overhead: 8.622e-05),
        ])
}

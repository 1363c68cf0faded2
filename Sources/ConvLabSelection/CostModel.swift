import ConvLabBackends
import ConvLabCore
import Foundation

/// Predicted execution time of each backend on a descriptor, from the descriptor alone: the selector's heuristic.
///
/// Every formula is "useful work / machine rate × the backend's measured efficiency + data movement / bandwidth":
/// - `direct`: direct FLOPs inflated by the register-block waste (6-channel blocks, 64-position tiles over the padded
///   grid) at the SIMD kernel's efficiency; narrow groups (depthwise) are load-bound instead.
/// - `im2col`: direct FLOPs at the GEMM's efficiency for its operand sizes, plus writing and reading the lowered columns.
/// - Winograd F(m, r): n²·tiles·C·K·2 GEMM FLOPs at the GEMM efficiency, plus per-tile transform costs that grow with
///   n (measured per 16-channel tile for F(4,3) and scaled by the transform's arithmetic).
/// - FFT: (C + K) real transforms per tile at FFTW's measured n·log₂n rate, plus the per-bin complex products; the
///   tiled variant takes the best tile of the same set the backend chooses from.
/// Constants are this machine's (`MachineModel`), fixed so choices are deterministic; they come from one calibration
/// sweep over shapes unlike the benchmark suite (see `MachineModel`).
public struct CostModel: Sendable {
    public var machine: MachineModel

    public init(machine: MachineModel = .thisMachine) {
        self.machine = machine
    }

    /// Predicted seconds, or nil when the backend cannot run the descriptor or the model does not know it:
    /// the physical estimate corrected by the backend's calibrated scale and fixed overhead.
    public func predictedSeconds(_ backend: any Convolution, _ d: ConvolutionDescriptor, threads: Int) -> Double? {
        guard let raw = physicalSeconds(backend, d, threads: threads) else { return nil }
        let correction = machine.corrections[Self.correctionKey(backend, d)]
            ?? machine.corrections[backend.name] ?? MachineModel.Correction(scale: 1, overhead: 0)
        return correction.scale * raw + correction.overhead
    }

    /// Narrow groups (fewer than 4 output channels per group: depthwise, single-channel images) are bound by loads
    /// and per-channel overheads rather than FMAs, so they get their own fitted correction, `<backend>-narrow`.
    public static func correctionKey(_ backend: any Convolution, _ d: ConvolutionDescriptor) -> String {
        d.outputChannelsPerGroup < 4 ? backend.name + "-narrow" : backend.name
    }

    /// The uncorrected estimate (what `scripts/calibrate-selector.py` fits the corrections to).
    public func physicalSeconds(_ backend: any Convolution, _ d: ConvolutionDescriptor, threads: Int) -> Double? {
        guard backend.support(for: d).isSupported else { return nil }
        let t = Double(max(threads, 1))
        switch backend {
        case is DirectBackend: return direct(d, threads: t)
        case is Im2colBackend: return im2col(d, threads: t)
        case let w as WinogradBackend: return winograd(w, d, threads: t)
        case let f as FFTBackend: return fft(f, d, threads: t)
        default: return nil
        }
    }

    /// Threads a stage with `tasks` independent tasks keeps busy: all of them when there are enough tasks, else one per
    /// task plus a little from work that parallelises inside a task (FFTW's own threads, the GEMM's column split).
    func parallelism(tasks: Double, threads: Double) -> Double {
        tasks >= threads ? threads : max(1, tasks) + (threads - max(1, tasks)) * 0.3
    }

    /// Efficiency of a GEMM with these dimensions relative to the core's peak: small dimensions leave register blocks
    /// partly empty and the fixed per-call overhead unamortised. x/(x + h) saturates at large sizes.
    func gemmEfficiency(m: Double, n: Double, k: Double) -> Double {
        machine.gemmEfficiency * m / (m + 12) * n / (n + 24) * k / (k + 16)
    }

    func direct(_ d: ConvolutionDescriptor, threads: Double) -> Double {
        let flops = Double(d.directFLOPs)
        let kg = Double(d.outputChannelsPerGroup)
        let planeWidth = Double((d.paddedWidth + d.strideWidth - 1) / d.strideWidth)
        let positions = Double(d.outputHeight) * planeWidth
        let paddedPositions = (positions / 64).rounded(.up) * 64
        let positionWaste = paddedPositions / Double(d.outputHeight * d.outputWidth)
        let bytes = Double(d.inputCount + d.outputCount) * 4 * 2
        let rate = machine.coreFLOPs * threads
        if d.outputChannelsPerGroup < 4 {
            // One 16-wide load per FMA: bound by loads, not FMAs.
            return flops * positionWaste / (rate * machine.narrowDirectEfficiency) + bytes / (machine.bandwidth * threads)
        }
        let channelWaste = (kg / 6).rounded(.up) * 6 / kg
        let reduction = Double(d.reductionLength)
        let efficiency = machine.directEfficiency * reduction / (reduction + 8)
        return flops * positionWaste * channelWaste / (rate * efficiency) + bytes / (machine.bandwidth * threads)
    }

    func im2col(_ d: ConvolutionDescriptor, threads: Double) -> Double {
        let columns = Double(d.outputHeight * d.outputWidth)
        let rows = Double(d.reductionLength)
        let efficiency = gemmEfficiency(m: Double(d.outputChannelsPerGroup), n: min(columns, 512), k: rows)
        let pointwise = d.kernelHeight == 1 && d.kernelWidth == 1 && d.isStrideOne && d.padding.isZero
        let lowered = pointwise ? 0 : rows * columns * Double(d.batch * d.groups) * 4 * 2
        return Double(d.directFLOPs) / (machine.coreFLOPs * threads * efficiency)
            + lowered / (machine.bandwidth * threads)
    }

    func winograd(_ backend: WinogradBackend, _ d: ConvolutionDescriptor, threads: Double) -> Double? {
        guard let (h, w) = try? backend.transforms(for: d) else { return nil }
        let tiles = Double(((d.outputHeight + h.outputSize - 1) / h.outputSize)
                           * ((d.outputWidth + w.outputSize - 1) / w.outputSize) * d.batch * d.groups)
        let points = Double(h.tileSize * w.tileSize)
        let cp = Double((d.channelsPerGroup + 15) / 16 * 16), kp = Double((d.outputChannelsPerGroup + 15) / 16 * 16)
        let gemmFlops = 2 * points * tiles * cp * kp
        // Small filter transforms run fused per chunk of tile rows (parallel over chunks), others stage by stage
        // (parallel over the n² GEMMs).
        let fused = points * cp * kp * 4 <= Double(WinogradPlan.fusedFilterBytes)
        let tileRows = Double((d.outputHeight + h.outputSize - 1) / h.outputSize * d.batch * d.groups)
        let workers = parallelism(tasks: fused ? tileRows : points * Double(d.groups), threads: threads)
        let gemm = gemmFlops / (machine.coreFLOPs * workers * gemmEfficiency(m: min(tiles, 112), n: kp, k: cp))
        // Transform work per tile and 16-channel block, relative to F(4,3)'s 6×6 tile (n·n·(n_h + n_w) FMAs).
        let scale = points * Double(h.tileSize + w.tileSize) / (36 * 12)
        let input = tiles * cp / 16 * (machine.winogradInputSeconds * scale
                                       + machine.winogradBlockingSeconds * Double(h.tileSize) / Double(h.outputSize))
        let output = tiles * kp / 16 * machine.winogradOutputSeconds * scale
        return gemm + (input + output) / workers
    }

    func fft(_ backend: FFTBackend, _ d: ConvolutionDescriptor, threads: Double) -> Double? {
        let denseHeight = (d.outputHeight - 1) * d.strideHeight + 1
        let denseWidth = (d.outputWidth - 1) * d.strideWidth + 1
        let wholeHeight = denseHeight + d.kernelExtentHeight - 1, wholeWidth = denseWidth + d.kernelExtentWidth - 1
        switch backend.tiling {
        case .wholeImage:
            let h = FFTSizes.candidates(atLeast: wholeHeight, count: 1)[0]
            let w = FFTSizes.candidates(atLeast: wholeWidth, count: 1)[0]
            return fft(d, transformHeight: h, transformWidth: w, threads: threads)
        case .tiled(let size?):
            return fft(d, transformHeight: size, transformWidth: size, threads: threads)
        case .tiled(nil):
            let extent = max(d.kernelExtentHeight, d.kernelExtentWidth)
            let whole = max(wholeHeight, wholeWidth)
            var best: Double?
            for size in FFTTileCostModel.candidateSizes where size > extent {
                let seconds = fft(d, transformHeight: size, transformWidth: size, threads: threads)
                best = min(best ?? seconds, seconds)
                if size >= whole { break }
            }
            return best ?? fft(d, transformHeight: FFTSizes.candidates(atLeast: whole, count: 1)[0],
                               transformWidth: FFTSizes.candidates(atLeast: whole, count: 1)[0], threads: threads)
        }
    }

    func fft(_ d: ConvolutionDescriptor, transformHeight th: Int, transformWidth tw: Int, threads: Double) -> Double {
        let tiling = FFTTiling(descriptor: d, transformHeight: th, transformWidth: tw)
        let columns = Double(d.batch * tiling.tilesPerImage)
        let n = Double(th * tw)
        let transforms = columns * Double(d.inputChannels + d.outputChannels) * machine.fftSecondsPerPoint * n * log2(n)
        let rows = Double(SpectralProduct.blockRows(outputChannelsPerGroup: d.outputChannelsPerGroup))
        let paddedK = (Double(d.outputChannelsPerGroup) / rows).rounded(.up) * rows * Double(d.groups)
        let products = Double(tiling.paddedBins) * paddedK * Double(d.channelsPerGroup) * columns
            / machine.complexProductRate
        let filterBytes = 2 * Double(tiling.paddedBins) * paddedK * Double(d.channelsPerGroup) * 4
        let workers = parallelism(tasks: Double(d.batch * min(d.inputChannels, d.outputChannels) * tiling.tileRows),
                                  threads: threads)
        return (transforms + products) / workers + filterBytes / (machine.bandwidth * threads)
    }
}

/// Speeds of this machine that the cost model needs (one core unless stated). Calibrated once: the efficiencies by
/// least squares on `notebooks-data/selector-calibration.csv`, a sweep over kernels 1–11, 8–192 channels,
/// 10–80 px images and batch 1/4 (shapes unlike the benchmark suite, so the suite tests generalisation).
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

    public struct Correction: Sendable, Hashable, Codable {
        public var scale: Double
        public var overhead: Double
    }

    public static let thisMachine = MachineModel(
        coreFLOPs: 256e9, bandwidth: 20e9, directEfficiency: 0.85, narrowDirectEfficiency: 0.12,
        gemmEfficiency: 0.9, winogradInputSeconds: 90e-9, winogradBlockingSeconds: 60e-9,
        winogradOutputSeconds: 250e-9, fftSecondsPerPoint: 1.05e-10, complexProductRate: 8e9,
        // Fitted by scripts/calibrate-selector.py on notebooks-data/selector-calibration.csv (2 threads).
        corrections: [
            "direct": Correction(scale: 1.066, overhead: 3.324e-06),  // 286 rows, 90% within 2.03x
            "direct-narrow": Correction(scale: 0.380, overhead: 1.226e-05),  // 16 rows, 90% within 1.41x
            "fft": Correction(scale: 0.870, overhead: 1.702e-05),  // 286 rows, 90% within 2.32x
            "fft-narrow": Correction(scale: 1.008, overhead: 8.754e-05),  // 16 rows, 90% within 1.81x
            "fft-tiled": Correction(scale: 1.045, overhead: 1.689e-05),  // 286 rows, 90% within 2.51x
            "fft-tiled-narrow": Correction(scale: 1.410, overhead: 4.025e-05),  // 16 rows, 90% within 1.33x
            "im2col": Correction(scale: 1.299, overhead: 3.892e-07),  // 286 rows, 90% within 2.73x
            "im2col-narrow": Correction(scale: 0.357, overhead: 4.196e-05),  // 16 rows, 90% within 1.44x
            "winograd-f2x3": Correction(scale: 0.848, overhead: 3.002e-05),  // 52 rows, 90% within 1.43x
            "winograd-f2x3-narrow": Correction(scale: 0.714, overhead: 5.504e-05),  // 6 rows, 90% within 1.04x
            "winograd-f2x5": Correction(scale: 0.779, overhead: 3.728e-05),  // 52 rows, 90% within 1.36x
            "winograd-f2x5-narrow": Correction(scale: 0.665, overhead: 7.964e-05),  // 4 rows, 90% within 1.02x
            "winograd-f4x3": Correction(scale: 1.160, overhead: 3.168e-05),  // 52 rows, 90% within 1.38x
            "winograd-f4x3-narrow": Correction(scale: 0.890, overhead: 9.387e-05),  // 6 rows, 90% within 1.09x
            "winograd-f4x5": Correction(scale: 0.956, overhead: 4.028e-05),  // 52 rows, 90% within 1.35x
            "winograd-f4x5-narrow": Correction(scale: 0.791, overhead: 1.379e-04),  // 4 rows, 90% within 1.10x
            "winograd-f6x3": Correction(scale: 1.237, overhead: 3.185e-05),  // 52 rows, 90% within 1.31x
            "winograd-f6x3-narrow": Correction(scale: 0.892, overhead: 8.622e-05),  // 6 rows, 90% within 1.09x
        ])
}

import ConvLabCore
import Foundation

/// Frequency-domain convolution on FFTW: `fft` transforms whole (padded) images, `fft-tiled` cuts them into
/// overlap-save tiles (cf. NNPACK's 8×8/16×16 FFT and cuDNN's FFT_TILING) so transforms stay in cache and the
/// workspace stays bounded.
///
/// Execution, per the three phases `--profile` reports:
/// 1. forward transforms: every input channel of every tile, real-to-complex, into planar spectra X;
/// 2. products: for every bin, Y = W·X over input channels — a batched complex GEMM (`SpectralProduct`), W being
///    the conjugated filter spectra computed once at plan time and pre-scaled by 1/(Th·Tw);
/// 3. inverse transforms: complex-to-real per output channel and tile, then crop (and subsample for stride).
///
/// Cost is independent of the kernel size R×S once the kernel fits the tile, which is why FFT wins for large kernels.
/// Stride is computed at stride 1 and subsampled (the transforms cost as much as at stride 1); dilation dilates the
/// filter inside the transform; groups run as independent problems in one pass.
public struct FFTBackend: BackwardDataByForward {
    public enum Tiling: Hashable, Sendable {
        /// One transform per image plane, sized to the padded input (`FFTSizes`).
        case wholeImage
        /// Square T×T tiles; nil lets `FFTTileChoice` choose T.
        case tiled(size: Int?)
    }

    public var tiling: Tiling
    public var product: ComplexProduct
    public var effort: FFTPlanningEffort

    public init(tiling: Tiling = .wholeImage, product: ComplexProduct = .fourMultiplication,
                effort: FFTPlanningEffort = .estimate) {
        self.tiling = tiling
        self.product = product
        self.effort = effort
    }

    public var name: String { tiling == .wholeImage ? "fft" : "fft-tiled" }

    public func support(for d: ConvolutionDescriptor) -> SupportStatus {
        if case .tiled(let size?) = tiling {
            let extent = max(d.kernelExtentHeight, d.kernelExtentWidth)
            if size < extent {
                return .unsupported("tile \(size) is smaller than the (dilated) kernel extent \(extent)")
            }
            if size < 2 || size > 4096 {
                return .unsupported("tile \(size) is outside 2...4096")
            }
        }
        let (height, width) = FFTGeometry.wholeImageExtent(d)
        if tiling == .wholeImage && max(height, width) > FFTSizes.maximumSide {
            return .unsupported("a \(height)x\(width) padded image is beyond the largest transform side "
                                + "\(FFTSizes.maximumSide)")
        }
        return .supported
    }

    /// Error bound 8·u·log₂(Th·Tw), relative to the checker's scale. Why: FFTW's Cooley–Tukey transforms are normwise
    /// stable with error O(u·log₂ n), so an FFT convolution errs by c·u·log₂ n times the typical output scale
    /// Σ|w|·rms(x) everywhere in a tile, whatever an output's own Σ|w|·|x|; measured c ≤ 1.6 over 480 random plans,
    /// ≤ 4.5 after the checker's floor at a quarter of the typical scale, so 8 leaves margin. (With mean|x| as the
    /// typical scale, the property tests found post-ReLU cases at 1.2× the bound: few-term kernels, all-zero windows.)
    static func errorBound(transformHeight: Int, transformWidth: Int) -> Double {
        8 * float32UnitRoundoff * log2(Double(transformHeight * transformWidth))
    }

    public func describe(_ d: ConvolutionDescriptor, options: PlanOptions) throws -> PlanDescription {
        try validate(d, options: options)
        return try FFTGeometry(descriptor: d, backend: self, options: options).summary
    }

    /// The transform (tile) size this backend uses for `d`: what `describe` reports in its variant.
    public func transformSize(for d: ConvolutionDescriptor, options: PlanOptions = PlanOptions(threads: 1)) throws
        -> (height: Int, width: Int) {
        try validate(d, options: options)
        let tiling = try FFTGeometry(descriptor: d, backend: self, options: options).tiling
        return (tiling.transformHeight, tiling.transformWidth)
    }

    public func makePlan(descriptor: ConvolutionDescriptor, weights: Tensor<Float>, options: PlanOptions) throws
        -> any ConvolutionPlan {
        try validate(descriptor, options: options)
        try validate(weights: weights, for: descriptor)
        return try FFTPlan(geometry: try FFTGeometry(descriptor: descriptor, backend: self, options: options),
                           weights: weights)
    }
}

struct FFTPlan: ConvolutionPlan {
    let geometry: FFTGeometry
    let forward: FFTWTransform
    let inverse: FFTWTransform
    /// Filter spectra: [group][plane][binBlock][k][c][16].
    let filterSpectra: AlignedStorage<Float>

    var descriptor: ConvolutionDescriptor { geometry.descriptor }
    var summary: PlanDescription { geometry.summary }
    private var tiling: FFTTiling { geometry.tiling }
    private var product: ComplexProduct { geometry.product }
    private var threads: Int { geometry.threads }
    private var blockRows: Int { geometry.blockRows }
    private var paddedOutputChannels: Int { geometry.paddedOutputChannels }

    init(geometry: FFTGeometry, weights: Tensor<Float>) throws {
        self.geometry = geometry
        let tiling = geometry.tiling
        forward = try FFTW.transform(.forward, height: tiling.transformHeight, width: tiling.transformWidth,
                                     effort: geometry.effort, threads: geometry.forwardFFTWThreads)
        inverse = try FFTW.transform(.inverse, height: tiling.transformHeight, width: tiling.transformWidth,
                                     effort: geometry.effort, threads: geometry.inverseFFTWThreads)
        filterSpectra = AlignedStorage(count: geometry.filterFloats)
        try transformFilters(weights)
    }

    // MARK: Layout

    private var columns: Int { descriptor.batch * tiling.tilesPerImage }
    private var filterPlaneStride: Int { tiling.paddedBins * paddedOutputChannels * descriptor.channelsPerGroup }
    private var inputPlaneStride: Int { tiling.paddedBins * descriptor.channelsPerGroup * columns }
    private var outputPlaneStride: Int { tiling.paddedBins * paddedOutputChannels * columns }

    // MARK: Plan time

    /// W = conj(FFT(dilated filter)) / (Th·Tw), for every (group, k, c).
    private func transformFilters(_ weights: Tensor<Float>) throws {
        let d = descriptor
        let tiling = tiling
        let (Th, Tw) = (tiling.transformHeight, tiling.transformWidth)
        let scale = 1 / Float(Th * Tw)
        let kg = d.outputChannelsPerGroup
        let (planeStride, perGroup, entries) = (filterPlaneStride, product.planes * filterPlaneStride,
                                                paddedOutputChannels * d.channelsPerGroup)
        let layout: SpectrumPlanes = product == .gauss ? .gaussFilter : .realImaginary
        let workers = Parallel.workers(threads: threads, tasks: d.groups * kg)
        let buffers = try Workspace(byteCount: workers * tiling.scratchFloats * 4)
        let scratchBase = buffers.buffer.baseAddress!.bindMemory(to: Float.self, capacity: workers * tiling.scratchFloats)
        weights.withUnsafeBufferPointer { w in
            let shared = UncheckedSendable((w.baseAddress!, filterSpectra.pointer, scratchBase))
            Parallel.forEach(taskCount: d.groups * kg, threads: workers) { worker, task in
                let (w, spectra, scratchBase) = shared.value
                let (g, k) = (task / kg, task % kg)
                let (real, spectrum) = tiling.scratchBuffers(scratchBase, worker: worker)
                for c in 0..<d.channelsPerGroup {
                    real.update(repeating: 0, count: Th * Tw)
                    for r in 0..<d.kernelHeight {
                        for s in 0..<d.kernelWidth {
                            real[r * d.dilationHeight * Tw + s * d.dilationWidth] =
                                w[(((g * kg + k) * d.channelsPerGroup + c) * d.kernelHeight + r) * d.kernelWidth + s]
                                * scale
                        }
                    }
                    forward.forward(real: real, spectrum: spectrum)
                    SpectrumPlanes.scatter(spectrum, as: layout, conjugate: true, binBlocks: tiling.binBlocks,
                                           into: spectra + g * perGroup, planeStride: planeStride,
                                           entry: k * d.channelsPerGroup + c, entriesPerBlock: entries)
                }
            }
        }
    }

    // MARK: Execution

    func execute(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
                 workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?) throws {
        try validateBuffers(input: input, output: output, workspace: workspace)
        let d = descriptor
        let (inputSpectra, outputSpectra, scratch) = (geometry.inputSpectra, geometry.outputSpectra, geometry.scratch)
        let workers = geometry.workers
        let tiling = tiling
        let (cg, kg, kp) = (d.channelsPerGroup, d.outputChannelsPerGroup, paddedOutputChannels)
        let (tiles, columns, planes) = (tiling.tilesPerImage, columns, product.planes)
        let (inputPlaneStride, outputPlaneStride, filterPlaneStride) = (inputPlaneStride, outputPlaneStride,
                                                                        filterPlaneStride)
        let product = product
        let inputLayout: SpectrumPlanes = product == .gauss ? .gaussInput : .realImaginary
        let shared = UncheckedSendable((input.baseAddress!, output.baseAddress!, inputSpectra.pointer(in: workspace),
                                        outputSpectra.pointer(in: workspace), scratch.pointer(in: workspace),
                                        UnsafePointer(filterSpectra.pointer)))

        measurePhase("forward transforms", in: profile) {
            Parallel.forEach(taskCount: d.batch * d.inputChannels * tiling.tileRows, threads: workers) { worker, task in
                let (x, _, xSpectra, _, scratch, _) = shared.value
                let row = task % tiling.tileRows
                let channel = (task / tiling.tileRows) % d.inputChannels
                let n = task / (tiling.tileRows * d.inputChannels)
                let (g, c) = (channel / cg, channel % cg)
                let (real, spectrum) = tiling.scratchBuffers(scratch, worker: worker)
                let plane = x + (n * d.inputChannels + channel) * d.inputHeight * d.inputWidth
                for tile in (row * tiling.tileColumns)..<((row + 1) * tiling.tileColumns) {
                    tiling.extractTile(tile, from: plane, into: real)
                    forward.forward(real: real, spectrum: spectrum)
                    SpectrumPlanes.scatter(spectrum, as: inputLayout, conjugate: false, binBlocks: tiling.binBlocks,
                                           into: xSpectra + g * planes * inputPlaneStride,
                                           planeStride: inputPlaneStride, entry: c * columns + n * tiles + tile,
                                           entriesPerBlock: cg * columns)
                }
            }
        }

        let rows = blockRows
        let split = geometry.productSplit
        let (kBlocks, blocksPerTask, kChunks, kBlocksPerChunk, chunksPerGroup) =
            (split.kBlocks, split.binBlocksPerTask, split.kChunks, split.kBlocksPerChunk, split.chunksPerGroup)
        measurePhase("products", in: profile) {
            Parallel.forEach(taskCount: split.tasks, threads: threads) { _, task in
                let (_, _, xSpectra, ySpectra, _, filters) = shared.value
                let kChunk = task % kChunks
                let binChunk = (task / kChunks) % chunksPerGroup
                let g = task / (kChunks * chunksPerGroup)
                let firstK = kChunk * kBlocksPerChunk
                let kCount = min(kBlocksPerChunk, kBlocks - firstK)
                guard kCount > 0 else { return }
                for block in (binChunk * blocksPerTask)..<min((binChunk + 1) * blocksPerTask, tiling.binBlocks) {
                    SpectralProduct.multiply(
                        form: product, rows: rows,
                        w: filters + g * planes * filterPlaneStride + (block * kp + firstK * rows) * cg * 16,
                        wPlaneStride: filterPlaneStride,
                        x: xSpectra + g * planes * inputPlaneStride + block * cg * columns * 16,
                        xPlaneStride: inputPlaneStride,
                        y: ySpectra + g * 2 * outputPlaneStride + (block * kp + firstK * rows) * columns * 16,
                        yPlaneStride: outputPlaneStride,
                        kBlocks: kCount, channels: cg, columns: columns)
                }
            }
        }

        measurePhase("inverse transforms", in: profile) {
            Parallel.forEach(taskCount: d.batch * d.outputChannels * tiling.tileRows, threads: workers) { worker, task in
                let (_, y, _, ySpectra, scratch, _) = shared.value
                let row = task % tiling.tileRows
                let channel = (task / tiling.tileRows) % d.outputChannels
                let n = task / (tiling.tileRows * d.outputChannels)
                let (g, k) = (channel / kg, channel % kg)
                let (real, spectrum) = tiling.scratchBuffers(scratch, worker: worker)
                let plane = y + (n * d.outputChannels + channel) * d.outputHeight * d.outputWidth
                for tile in (row * tiling.tileColumns)..<((row + 1) * tiling.tileColumns) {
                    SpectrumPlanes.gather(from: ySpectra + g * 2 * outputPlaneStride, planeStride: outputPlaneStride,
                                          entry: k * columns + n * tiles + tile, entriesPerBlock: kp * columns,
                                          binBlocks: tiling.binBlocks, into: spectrum)
                    inverse.inverse(spectrum: spectrum, real: real)
                    tiling.storeTile(tile, from: real, into: plane)
                }
            }
        }
    }
}

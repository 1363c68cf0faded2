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
public struct FFTBackend: Convolution {
    public enum Tiling: Hashable, Sendable {
        /// One transform per image plane, sized (by measurement) to the padded input.
        case wholeImage
        /// Square T×T tiles; nil lets a cost model (measured transform times and product rate) choose T.
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
        return .supported
    }

    /// Error bound 8·u·log₂(Th·Tw), relative to the checker's scale. Why: FFTW's Cooley–Tukey transforms are normwise
    /// stable with error O(u·log₂ n), so an FFT convolution errs by c·u·log₂ n times the typical output scale
    /// Σ|w|·rms(x) everywhere in a tile, whatever an output's own Σ|w|·|x|; measured c ≤ 1.6 over 480 random plans,
    /// ≤ 4.5 after the checker's floor at a quarter of the typical scale, so 8 leaves margin. (With mean|x| as the
    /// typical scale, the property tests found post-ReLU cases at 1.2× the bound: few-term kernels, all-zero windows.)
    public func expectedErrorBound(for d: ConvolutionDescriptor) -> Double {
        guard let size = try? transformSize(for: d, threads: 1) else { return 1 }
        return Self.errorBound(transformHeight: size.height, transformWidth: size.width)
    }

    static func errorBound(transformHeight: Int, transformWidth: Int) -> Double {
        8 * float32UnitRoundoff * log2(Double(transformHeight * transformWidth))
    }

    public func makePlan(descriptor: ConvolutionDescriptor, weights: Tensor<Float>, options: PlanOptions) throws
        -> any ConvolutionPlan {
        try validatePlanInputs(descriptor: descriptor, weights: weights, options: options)
        let size = try transformSize(for: descriptor, threads: options.threads)
        return try FFTPlan(descriptor: descriptor, weights: weights, options: options, backend: self,
                           transformHeight: size.height, transformWidth: size.width)
    }

    /// The transform (tile) size this backend uses for `d`.
    public func transformSize(for d: ConvolutionDescriptor, threads: Int) throws -> (height: Int, width: Int) {
        let denseHeight = (d.outputHeight - 1) * d.strideHeight + 1
        let denseWidth = (d.outputWidth - 1) * d.strideWidth + 1
        let wholeHeight = denseHeight + d.kernelExtentHeight - 1
        let wholeWidth = denseWidth + d.kernelExtentWidth - 1
        switch tiling {
        case .wholeImage:
            return try FFTSizes.fastestTransform(minHeight: wholeHeight, minWidth: wholeWidth)
        case .tiled(let size?):
            return (size, size)
        case .tiled(nil):
            let t = try FFTTileCostModel.bestTile(for: d, product: product, threads: threads)
            return (t, t)
        }
    }
}

struct FFTPlan: ConvolutionPlan {
    let descriptor: ConvolutionDescriptor
    let backendName: String
    let expectedErrorBound: Double
    let tiling: FFTTiling
    let product: ComplexProduct
    let threads: Int
    let forward: FFTWTransform
    let inverse: FFTWTransform
    /// Output channels per register block of the products (4, or 1 for narrow groups).
    let blockRows: Int
    /// Output channels per group rounded up to the register block (extra filter rows are zero).
    let paddedOutputChannels: Int
    /// Filter spectra: [group][plane][binBlock][k][c][16].
    let filterSpectra: AlignedStorage<Float>
    let inputSpectra: WorkspaceRegion<Float>
    let outputSpectra: WorkspaceRegion<Float>
    let scratch: WorkspaceRegion<Float>
    let workspaceBytes: Int

    var isDeterministic: Bool { true }

    var details: String {
        "\(tiling.transformHeight)x\(tiling.transformWidth) \(product.rawValue) \(tiling.tilesPerImage) tile"
            + (tiling.tilesPerImage == 1 ? "" : "s")
    }

    init(descriptor d: ConvolutionDescriptor, weights: Tensor<Float>, options: PlanOptions, backend: FFTBackend,
         transformHeight: Int, transformWidth: Int) throws {
        descriptor = d
        backendName = backend.name
        product = backend.product
        threads = options.threads
        let tiling = FFTTiling(descriptor: d, transformHeight: transformHeight, transformWidth: transformWidth)
        self.tiling = tiling
        expectedErrorBound = FFTBackend.errorBound(transformHeight: transformHeight, transformWidth: transformWidth)
        blockRows = SpectralProduct.blockRows(outputChannelsPerGroup: d.outputChannelsPerGroup)
        paddedOutputChannels = (d.outputChannelsPerGroup + blockRows - 1) / blockRows * blockRows
        let columns = d.batch * tiling.tilesPerImage
        let planes = product.planes

        // Everything is sized before anything is allocated, and refused beyond the limit with the amount needed.
        let filterFloats = d.groups * planes * tiling.paddedBins * paddedOutputChannels * d.channelsPerGroup
        try ResourceLimits.check("the FFT filter spectra (\(transformHeight)x\(transformWidth) transforms)",
                                 bytes: filterFloats * 4, limit: options.limits.maxWorkspaceBytes)
        var layout = WorkspaceLayout()
        inputSpectra = layout.reserve(Float.self, count: d.groups * planes * tiling.paddedBins * d.channelsPerGroup * columns)
        outputSpectra = layout.reserve(Float.self, count: d.groups * 2 * tiling.paddedBins * paddedOutputChannels * columns)
        scratch = layout.reserve(Float.self, count: threads * tiling.scratchFloats)
        workspaceBytes = layout.byteCount
        try ResourceLimits.check("the FFT workspace (\(transformHeight)x\(transformWidth) transforms, "
                                 + "\(tiling.tilesPerImage) tiles per image)",
                                 bytes: workspaceBytes, limit: options.limits.maxWorkspaceBytes)

        // A phase with fewer transforms than threads (one big single-channel image) parallelises inside FFTW.
        let forwardTasks = d.batch * d.inputChannels * tiling.tileRows
        let inverseTasks = d.batch * d.outputChannels * tiling.tileRows
        forward = try FFTW.transform(.forward, height: transformHeight, width: transformWidth, effort: backend.effort,
                                     threads: forwardTasks < threads ? threads : 1)
        inverse = try FFTW.transform(.inverse, height: transformHeight, width: transformWidth, effort: backend.effort,
                                     threads: inverseTasks < threads ? threads : 1)
        filterSpectra = AlignedStorage(count: filterFloats)
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
        let buffers = try Workspace(byteCount: threads * tiling.scratchFloats * 4)
        let scratchBase = buffers.base.bindMemory(to: Float.self, capacity: threads * tiling.scratchFloats)
        weights.withUnsafeBufferPointer { w in
            let shared = UncheckedSendable((w.baseAddress!, filterSpectra.pointer, scratchBase))
            Parallel.forEach(taskCount: d.groups * kg, threads: threads) { worker, task in
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
                 workspace: Workspace?, profile: ExecutionProfile?) throws {
        try validateBuffers(input: input, output: output, workspace: workspace)
        guard let workspace else { return }  // unreachable: the workspace is never empty
        let d = descriptor
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
            Parallel.forEach(taskCount: d.batch * d.inputChannels * tiling.tileRows, threads: threads) { worker, task in
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

        // Product tasks: ranges of bin blocks (≥ 64K complex multiply-adds each, so hand-out stays cheap), split
        // further over output-channel blocks only when there are too few to keep every thread busy.
        let rows = blockRows
        let kBlocks = kp / rows
        let workPerBlock = kp * cg * columns * 16
        let groupBlocks = d.groups * tiling.binBlocks
        let blocksPerTask = max(1, min(65536 / workPerBlock, groupBlocks / (8 * threads)))
        let binTasks = d.groups * ((tiling.binBlocks + blocksPerTask - 1) / blocksPerTask)
        let kChunks = min(kBlocks, max(1, (8 * threads + binTasks - 1) / binTasks))
        let kBlocksPerChunk = (kBlocks + kChunks - 1) / kChunks
        let chunksPerGroup = (tiling.binBlocks + blocksPerTask - 1) / blocksPerTask
        measurePhase("products", in: profile) {
            Parallel.forEach(taskCount: binTasks * kChunks, threads: threads) { _, task in
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
            Parallel.forEach(taskCount: d.batch * d.outputChannels * tiling.tileRows, threads: threads) { worker, task in
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

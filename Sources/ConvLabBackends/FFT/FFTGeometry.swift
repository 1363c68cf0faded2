import Foundation
import ConvLabCore

/// Everything an FFT plan is, from the descriptor and options alone: the transform size (chosen by `FFTSizes` or
/// `FFTTileChoice`), the overlap-save tiling, the spectra's sizes and the workspace layout, how the products are split
/// into tasks, and where FFTW's own threads are used. `FFTBackend.describe` and `FFTPlan` are both built from it.
struct FFTGeometry: Sendable {
    let descriptor: ConvolutionDescriptor
    let tiling: FFTTiling
    let product: ComplexProduct
    let effort: FFTPlanningEffort
    let threads: Int
    /// Workers of the transform phases (their per-worker scratch is reserved for this many).
    let workers: Int
    /// Output channels per register block of the products (4, or 1 for narrow groups).
    let blockRows: Int
    /// Output channels per group rounded up to the register block (extra filter rows are zero).
    let paddedOutputChannels: Int
    let filterFloats: Int
    let inputSpectra: WorkspaceRegion<Float>
    let outputSpectra: WorkspaceRegion<Float>
    let scratch: WorkspaceRegion<Float>
    let productSplit: ProductSplit
    /// FFTW threads per transform: all of them in a phase with fewer transforms than threads (one big single-channel
    /// image), else 1.
    let forwardFFTWThreads: Int
    let inverseFFTWThreads: Int
    let summary: PlanDescription

    /// Product tasks: ranges of bin blocks (≥ 64K complex multiply-adds each, so hand-out stays cheap), split further
    /// over output-channel blocks only when there are too few to keep every thread busy.
    struct ProductSplit: Sendable {
        let kBlocks: Int
        let binBlocksPerTask: Int
        let chunksPerGroup: Int
        let kChunks: Int
        let kBlocksPerChunk: Int
        let tasks: Int
    }

    /// Rows and columns of the stride-1 output that cover every (strided) output, plus the dilated kernel: the extent
    /// a whole-image transform must have.
    static func wholeImageExtent(_ d: ConvolutionDescriptor) -> (height: Int, width: Int) {
        ((d.outputHeight - 1) * d.strideHeight + d.kernelExtentHeight,
         (d.outputWidth - 1) * d.strideWidth + d.kernelExtentWidth)
    }

    init(descriptor d: ConvolutionDescriptor, backend: FFTBackend, options: PlanOptions) throws {
        descriptor = d
        product = backend.product
        effort = backend.effort
        threads = options.threads
        let limit = options.limits.maxWorkspaceBytes
        let whole = Self.wholeImageExtent(d)
        // The smallest possible whole-image transform must fit before any candidate is planned or timed.
        if backend.tiling == .wholeImage {
            let bins = try CheckedArithmetic.product([whole.height, whole.width / 2 + 1, 2 * 4 * 3],
                                                     what: "the FFT of a \(whole.height)x\(whole.width) image")
            try ResourceLimits.check("the FFT of one \(whole.height)x\(whole.width) image", bytes: bins, limit: limit)
        }
        let size: (height: Int, width: Int)
        switch backend.tiling {
        case .wholeImage:
            size = try FFTSizes.fastestTransform(minHeight: whole.height, minWidth: whole.width, effort: effort)
        case .tiled(let t?):
            size = (t, t)
        case .tiled(nil):
            let t = try FFTTileChoice.bestTile(for: d, product: product, effort: effort)
            size = (t, t)
        }
        if max(size.height, size.width) > FFTSizes.maximumSide {
            throw ConvLabError.unsupported(backend: backend.name, reason: "a \(size.height)x\(size.width) transform is "
                                           + "beyond the largest side \(FFTSizes.maximumSide)")
        }
        let tiling = FFTTiling(descriptor: d, transformHeight: size.height, transformWidth: size.width)
        self.tiling = tiling
        blockRows = SpectralProduct.blockRows(outputChannelsPerGroup: d.outputChannelsPerGroup)
        paddedOutputChannels = (d.outputChannelsPerGroup + blockRows - 1) / blockRows * blockRows
        let (cg, kp) = (d.channelsPerGroup, paddedOutputChannels)
        let transforms = "\(size.height)x\(size.width) transforms"

        // Everything is sized before anything is allocated, and refused beyond the limit with the amount needed.
        let columns = try CheckedArithmetic.product([d.batch, tiling.tilesPerImage], what: "the FFT tiles")
        filterFloats = try CheckedArithmetic.product([d.groups, product.planes, tiling.paddedBins, kp, cg],
                                                     what: "the FFT filter spectra")
        try ResourceLimits.check("the FFT filter spectra (\(transforms))", bytes: filterFloats * 4, limit: limit)
        let forwardTasks = d.batch * d.inputChannels * tiling.tileRows
        let inverseTasks = d.batch * d.outputChannels * tiling.tileRows
        workers = Parallel.workers(threads: threads, tasks: max(forwardTasks, inverseTasks))
        var layout = WorkspaceLayout()
        let what = "the FFT workspace (\(transforms), \(tiling.tilesPerImage) tiles per image)"
        inputSpectra = try layout.reserve(Float.self, count: try CheckedArithmetic.product(
            [d.groups, product.planes, tiling.paddedBins, cg, columns], what: what), what: what)
        outputSpectra = try layout.reserve(Float.self, count: try CheckedArithmetic.product(
            [d.groups, 2, tiling.paddedBins, kp, columns], what: what), what: what)
        // One region of `workers` tiles' scratch: `FFTTiling.scratchBuffers` strides it by whole 64-byte multiples.
        scratch = try layout.reserve(Float.self, count: try CheckedArithmetic.product([workers, tiling.scratchFloats],
                                                                                     what: what), what: what)
        try ResourceLimits.check(what, bytes: layout.byteCount, limit: limit)
        forwardFFTWThreads = forwardTasks < threads ? threads : 1
        inverseFFTWThreads = inverseTasks < threads ? threads : 1

        let kBlocks = kp / blockRows
        let workPerBlock = kp * cg * columns * 16
        let groupBlocks = d.groups * tiling.binBlocks
        let blocksPerTask = max(1, min(65536 / max(workPerBlock, 1), groupBlocks / (8 * threads)))
        let chunksPerGroup = (tiling.binBlocks + blocksPerTask - 1) / blocksPerTask
        let binTasks = d.groups * chunksPerGroup
        let kChunks = min(kBlocks, max(1, (8 * threads + binTasks - 1) / binTasks))
        productSplit = ProductSplit(kBlocks: kBlocks, binBlocksPerTask: blocksPerTask, chunksPerGroup: chunksPerGroup,
                                    kChunks: kChunks, kBlocksPerChunk: (kBlocks + kChunks - 1) / kChunks,
                                    tasks: binTasks * kChunks)

        let points = Double(size.height * size.width)
        let filterBytes = Double(filterFloats) * 4
        summary = PlanDescription(
            backend: backend.name,
            variant: "\(size.height)x\(size.width) \(product.rawValue) \(tiling.tilesPerImage) tile"
                + (tiling.tilesPerImage == 1 ? "" : "s"),
            errorBound: FFTBackend.errorBound(transformHeight: size.height, transformWidth: size.width),
            typicalError: TypicalError.fft(reduction: d.reductionLength),
            workspaceBytes: layout.byteCount, persistentBytes: Int(filterBytes),
            work: WorkEstimate([
                .fftTransforms(pointLogPoints: Double(columns) * Double(d.inputChannels + d.outputChannels)
                                   * points * log2(points),
                               tasks: d.batch * min(d.inputChannels, d.outputChannels) * tiling.tileRows),
                .complexProducts(multiplyAdds: Double(tiling.paddedBins) * Double(kp * d.groups) * Double(cg)
                                     * Double(columns),
                                 tasks: productSplit.tasks),
                .memory(bytes: filterBytes),
            ]))
        try options.accuracy.admit(summary)
    }
}

import ConvLabCore
import Foundation

/// FFT backward-weights, NNPACK's kernel-gradient schedule: the spectra are summed over the whole batch *and every
/// tile* before a single inverse transform per (k, c), so the inverse transforms cost K·C/G, not N·tiles·K·C/G.
///
/// dw[k,c,i,j] = Σ_{n,oh,ow} dy[n,k,oh,ow]·xpad[n,c,oh·s + i·d, ow·s + j·d] is a correlation of the padded input with
/// dy as the "filter", read at the lags (i·d, j·d). On the overlap-save grid of the forward pass (`FFTTiling`: tiles of
/// M = T − extent + 1 dense outputs, x windows of T), tile t contributes the circular correlation
///     corr_t[l] = Σ_{u<M} dyT_t[u]·xT_t[u + l]   (exact for l < extent: u + l < T, no wrap),
/// with dyT_t the tile's dy rows on the dense (zero-inserted) grid, zero-padded to T. In frequency that is
/// conj(DY_t)·X_t, so per bin b:   M_b[k][c] = Σ_{n,t} conj(DY)_b[k][n,t] · X_b[n,t][c]   — a K×C complex GEMM whose
/// inner dimension is every tile of the batch (`SpectralProduct` with dy in the filter's role), then
/// dw[k][c][i][j] = IFFT(M[k][c])[i·dh][j·dw] / (Th·Tw).
///
/// Stride is handled like the forward pass: dy sits on the stride-1 grid with s − 1 zeros between samples, so the
/// transforms cost what they cost at stride 1 (s² times the zero-free work; the work estimate says so). M is held
/// for a chunk of output channels at a time (every bin of every (k, c) in the chunk), so whole-image transforms of
/// many channels stay within a bounded workspace.
struct FFTWeightGradientGeometry: Sendable {
    let descriptor: ConvolutionDescriptor
    let tiling: FFTTiling
    let product: ComplexProduct
    let effort: FFTPlanningEffort
    let threads: Int
    let workers: Int
    /// Output channels per register block of the products (4, or 1 for narrow groups).
    let blockRows: Int
    let paddedOutputChannels: Int
    /// Padded output channels of M held at once (a multiple of `blockRows`).
    let chunkRows: Int
    let inputSpectra: WorkspaceRegion<Float>
    let gradientSpectra: WorkspaceRegion<Float>
    let products: WorkspaceRegion<Float>
    let scratch: WorkspaceRegion<Float>
    let forwardFFTWThreads: Int
    let inverseFFTWThreads: Int
    let summary: PlanDescription

    /// Bytes of M (products of one chunk) the plan aims for: a chunk is produced and then read back by the inverse
    /// transforms, so it should stay in the last cache when it can.
    static let chunkBytes = 32 << 20

    var columns: Int { descriptor.batch * tiling.tilesPerImage }
    /// Planar strides (per group) of X[plane][block][column][c][16], DY[plane][block][k][column][16] and
    /// M[plane][block][k of chunk][c][16].
    var inputPlaneStride: Int { tiling.paddedBins * columns * descriptor.channelsPerGroup }
    var gradientPlaneStride: Int { tiling.paddedBins * paddedOutputChannels * columns }
    var productPlaneStride: Int { tiling.paddedBins * chunkRows * descriptor.channelsPerGroup }

    init(descriptor d: ConvolutionDescriptor, backend: FFTBackend, options: PlanOptions) throws {
        descriptor = d
        product = backend.product
        effort = backend.effort
        threads = options.threads
        let limit = options.limits.maxWorkspaceBytes
        let whole = FFTGeometry.wholeImageExtent(d)
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
            let t = Self.bestTile(for: d, product: product)
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
        let what = "the FFT backward-weights workspace (\(transforms), \(tiling.tilesPerImage) tiles per image)"
        let columns = try CheckedArithmetic.product([d.batch, tiling.tilesPerImage], what: what)
        let bytesPerRow = try CheckedArithmetic.product([2, tiling.paddedBins, cg, 4], what: what)
        chunkRows = min(kp, max(blockRows, Self.chunkBytes / bytesPerRow / blockRows * blockRows))
        let forwardTasks = d.batch * (d.inputChannels + d.outputChannels) * tiling.tileRows
        let inverseTasks = d.groups * chunkRows * cg
        workers = Parallel.workers(threads: threads, tasks: max(forwardTasks, inverseTasks))
        var layout = WorkspaceLayout()
        inputSpectra = try layout.reserve(Float.self, count: try CheckedArithmetic.product(
            [d.groups, product.planes, tiling.paddedBins, columns, cg], what: what), what: what)
        gradientSpectra = try layout.reserve(Float.self, count: try CheckedArithmetic.product(
            [d.groups, product.planes, tiling.paddedBins, kp, columns], what: what), what: what)
        products = try layout.reserve(Float.self, count: try CheckedArithmetic.product(
            [2, tiling.paddedBins, chunkRows, cg], what: what), what: what)
        scratch = try layout.reserve(Float.self, count: try CheckedArithmetic.product([workers, tiling.scratchFloats],
                                                                                     what: what), what: what)
        try ResourceLimits.check(what, bytes: layout.byteCount, limit: limit)
        forwardFFTWThreads = forwardTasks < threads ? threads : 1
        inverseFFTWThreads = d.groups * kp * cg < threads ? threads : 1

        let points = Double(size.height * size.width)
        let multiplyAdds = Double(tiling.paddedBins) * Double(kp * d.groups) * Double(cg) * Double(columns)
        summary = PlanDescription(
            backend: backend.name, pass: .backwardWeights,
            variant: "\(size.height)x\(size.width) \(product.rawValue) \(tiling.tilesPerImage) tile"
                + (tiling.tilesPerImage == 1 ? "" : "s") + ", spectra summed over the batch",
            errorBound: Self.errorBound(tiling: tiling, columns: columns),
            typicalError: TypicalError.fft(reduction: d.reductionLength(for: .backwardWeights)),
            workspaceBytes: layout.byteCount,
            work: WorkEstimate([
                .fftTransforms(pointLogPoints: (Double(columns) * Double(d.inputChannels + d.outputChannels)
                                                + Double(d.groups * kp * cg)) * points * log2(points),
                               tasks: min(forwardTasks, inverseTasks)),
                .complexProducts(multiplyAdds: multiplyAdds, tasks: tiling.binBlocks * d.groups),
                .memory(bytes: Double(2 * tiling.paddedBins * kp * cg * d.groups) * 4 * 2),
            ]))
        try options.accuracy.admit(summary)
    }

    /// The forward FFT bound scaled by √(Th·Tw / nonzeros of a dy tile): the FFT's error is normwise — about
    /// u·log₂(Th·Tw)·‖dyT‖·‖xT‖ per tile — while the checker divides by Σ|dy|·|x| over the tile's nonzero dy samples,
    /// which is smaller by that factor when the dy tile is small against the transform (a large kernel in a small
    /// tile, or stride's inserted zeros). Plus the accumulation of the spectra over the batch's tiles.
    static func errorBound(tiling: FFTTiling, columns: Int) -> Double {
        let d = tiling.descriptor
        let rows = (min(tiling.outputTileHeight, tiling.denseOutputHeight) + d.strideHeight - 1) / d.strideHeight
        let cols = (min(tiling.outputTileWidth, tiling.denseOutputWidth) + d.strideWidth - 1) / d.strideWidth
        let (th, tw) = (tiling.transformHeight, tiling.transformWidth)
        return FFTBackend.errorBound(transformHeight: th, transformWidth: tw)
            * (Double(th * tw) / Double(max(1, rows * cols))).squareRoot()
            + 2 * dotProductErrorBound(terms: columns)
    }

    /// The tile with the smallest predicted time: the forward transforms of x and dy per tile, the products, and
    /// one inverse transform per (k, c) (the price of a larger tile), with `FFTTileChoice`'s estimate-mode rates.
    static func bestTile(for d: ConvolutionDescriptor, product: ComplexProduct) -> Int {
        let extent = max(d.kernelExtentHeight, d.kernelExtentWidth)
        let whole = FFTGeometry.wholeImageExtent(d)
        var best: (size: Int, seconds: Double)?
        for size in FFTTileChoice.candidateSizes where size > extent {
            let tiling = FFTTiling(descriptor: d, transformHeight: size, transformWidth: size)
            let columns = Double(d.batch * tiling.tilesPerImage)
            let rows = SpectralProduct.blockRows(outputChannelsPerGroup: d.outputChannelsPerGroup)
            let kp = Double((d.outputChannelsPerGroup + rows - 1) / rows * rows * d.groups)
            let transform = FFTTileChoice.estimatedTransformSeconds(size) + FFTTileChoice.perTransformOverhead
            let seconds = columns * Double(d.inputChannels + d.outputChannels) * transform
                + kp * Double(d.channelsPerGroup) * transform
                + Double(tiling.paddedBins) * kp * Double(d.channelsPerGroup) * columns
                    / FFTTileChoice.estimatedProductRate
            if best == nil || seconds < best!.seconds { best = (size, seconds) }
            if size >= max(whole.height, whole.width) { break }
        }
        return best?.size ?? FFTSizes.candidates(atLeast: max(whole.height, whole.width, extent + 1), count: 1)[0]
    }

    /// Copies tile `tile`'s dy rows of one output-gradient plane (Ho×Wo) onto the dense grid of a T×T window: dy[oh][ow]
    /// at (oh·sh − firstRow, ow·sw − firstColumn) for the dense rows and columns the tile keeps, zeros elsewhere.
    func extractGradientTile(_ tile: Int, from plane: UnsafePointer<Float>, into real: UnsafeMutablePointer<Float>) {
        let d = descriptor
        let (Tw, sh, sw) = (tiling.transformWidth, d.strideHeight, d.strideWidth)
        let firstRow = (tile / tiling.tileColumns) * tiling.outputTileHeight
        let firstColumn = (tile % tiling.tileColumns) * tiling.outputTileWidth
        let rowEnd = min(firstRow + tiling.outputTileHeight, tiling.denseOutputHeight)
        let columnEnd = min(firstColumn + tiling.outputTileWidth, tiling.denseOutputWidth)
        real.update(repeating: 0, count: tiling.transformHeight * Tw)
        var i = (firstRow + sh - 1) / sh * sh
        let firstJ = (firstColumn + sw - 1) / sw * sw
        while i < rowEnd {
            let source = plane + (i / sh) * d.outputWidth
            let target = real + (i - firstRow) * Tw
            if sw == 1 {
                (target + (firstJ - firstColumn)).update(from: source + firstJ, count: columnEnd - firstJ)
            } else {
                var j = firstJ
                while j < columnEnd {
                    target[j - firstColumn] = source[j / sw]
                    j += sw
                }
            }
            i += sh
        }
    }
}

struct FFTWeightGradientPlan: PassPlan {
    let geometry: FFTWeightGradientGeometry
    let forward: FFTWTransform
    let inverse: FFTWTransform

    var descriptor: ConvolutionDescriptor { geometry.descriptor }
    var summary: PlanDescription { geometry.summary }

    init(geometry: FFTWeightGradientGeometry) throws {
        self.geometry = geometry
        let tiling = geometry.tiling
        forward = try FFTW.transform(.forward, height: tiling.transformHeight, width: tiling.transformWidth,
                                     effort: geometry.effort, threads: geometry.forwardFFTWThreads)
        inverse = try FFTW.transform(.inverse, height: tiling.transformHeight, width: tiling.transformWidth,
                                     effort: geometry.effort, threads: geometry.inverseFFTWThreads)
    }

    func execute(_ operands: PassOperands, workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?) throws {
        try validate(operands, workspace: workspace)
        let (d, geometry) = (descriptor, geometry)
        let tiling = geometry.tiling
        let (cg, kg, kp) = (d.channelsPerGroup, d.outputChannelsPerGroup, geometry.paddedOutputChannels)
        let (tiles, columns, planes, rows) = (tiling.tilesPerImage, geometry.columns, geometry.product.planes,
                                              geometry.blockRows)
        let (xStride, dyStride, mStride) = (geometry.inputPlaneStride, geometry.gradientPlaneStride,
                                            geometry.productPlaneStride)
        let product = geometry.product
        let (inputLayout, gradientLayout): (SpectrumPlanes, SpectrumPlanes) =
            product == .gauss ? (.gaussInput, .gaussFilter) : (.realImaginary, .realImaginary)
        let shared = UncheckedSendable((operands.input.baseAddress!, operands.gradOutput.baseAddress!,
                                        operands.output.baseAddress!, geometry.inputSpectra.pointer(in: workspace),
                                        geometry.gradientSpectra.pointer(in: workspace),
                                        geometry.products.pointer(in: workspace),
                                        geometry.scratch.pointer(in: workspace)))

        // 1. Spectra of every x tile (X[g][plane][block][column][c]) and every dy tile, conjugated
        //    (DY[g][plane][block][k][column]); the padding rows k ≥ K/G of DY are zero.
        measurePhase("forward transforms", in: profile) {
            let channels = d.inputChannels + d.outputChannels
            Parallel.forEach(taskCount: d.batch * channels * tiling.tileRows, threads: geometry.workers) { worker, task in
                let (x, dy, _, xSpectra, dySpectra, _, scratch) = shared.value
                let row = task % tiling.tileRows
                let channel = (task / tiling.tileRows) % channels
                let n = task / (tiling.tileRows * channels)
                let (real, spectrum) = tiling.scratchBuffers(scratch, worker: worker)
                for tile in (row * tiling.tileColumns)..<((row + 1) * tiling.tileColumns) {
                    let column = n * tiles + tile
                    if channel < d.inputChannels {
                        let (g, c) = (channel / cg, channel % cg)
                        tiling.extractTile(tile, from: x + (n * d.inputChannels + channel) * d.inputHeight * d.inputWidth,
                                           into: real)
                        forward.forward(real: real, spectrum: spectrum)
                        SpectrumPlanes.scatter(spectrum, as: inputLayout, conjugate: false, binBlocks: tiling.binBlocks,
                                               into: xSpectra + g * planes * xStride, planeStride: xStride,
                                               entry: column * cg + c, entriesPerBlock: columns * cg)
                    } else {
                        let k = channel - d.inputChannels
                        let (g, kk) = (k / kg, k % kg)
                        geometry.extractGradientTile(
                            tile, from: dy + (n * d.outputChannels + k) * d.outputHeight * d.outputWidth, into: real)
                        forward.forward(real: real, spectrum: spectrum)
                        SpectrumPlanes.scatter(spectrum, as: gradientLayout, conjugate: true,
                                               binBlocks: tiling.binBlocks, into: dySpectra + g * planes * dyStride,
                                               planeStride: dyStride, entry: kk * columns + column,
                                               entriesPerBlock: kp * columns)
                    }
                }
            }
            if kp > kg {
                let (_, _, _, _, dySpectra, _, _) = shared.value
                for g in 0..<d.groups {
                    for plane in 0..<planes {
                        for block in 0..<tiling.binBlocks {
                            (dySpectra + g * planes * dyStride + plane * dyStride + (block * kp + kg) * columns * 16)
                                .update(repeating: 0, count: (kp - kg) * columns * 16)
                        }
                    }
                }
            }
        }

        // 2–3. Per chunk of output channels: M = Σ conj(DY)·X over every tile of the batch, then one inverse
        //      transform per (k, c), read at the kernel's lags.
        let chunkRows = geometry.chunkRows
        let chunksPerGroup = (kp + chunkRows - 1) / chunkRows
        let scale = 1 / Float(tiling.transformHeight * tiling.transformWidth)
        let (R, S, Tw) = (d.kernelHeight, d.kernelWidth, tiling.transformWidth)
        for chunk in 0..<(d.groups * chunksPerGroup) {
            let (g, firstRow) = (chunk / chunksPerGroup, (chunk % chunksPerGroup) * chunkRows)
            let rowsHere = min(chunkRows, kp - firstRow)
            measurePhase("products", in: profile) {
                Parallel.forEach(taskCount: tiling.binBlocks, threads: geometry.threads) { _, block in
                    let (_, _, _, xSpectra, dySpectra, m, _) = shared.value
                    SpectralProduct.multiply(
                        form: product, rows: rows,
                        w: dySpectra + g * planes * dyStride + (block * kp + firstRow) * columns * 16,
                        wPlaneStride: dyStride,
                        x: xSpectra + g * planes * xStride + block * columns * cg * 16, xPlaneStride: xStride,
                        y: m + block * chunkRows * cg * 16, yPlaneStride: mStride,
                        kBlocks: rowsHere / rows, channels: columns, columns: cg)
                }
            }
            let kept = min(rowsHere, kg - firstRow)
            guard kept > 0 else { continue }
            measurePhase("inverse transforms", in: profile) {
                Parallel.forEach(taskCount: kept * cg, threads: geometry.workers) { worker, task in
                    let (_, _, dw, _, _, m, scratch) = shared.value
                    let (local, c) = (task / cg, task % cg)
                    let (real, spectrum) = tiling.scratchBuffers(scratch, worker: worker)
                    SpectrumPlanes.gather(from: m, planeStride: mStride, entry: local * cg + c,
                                          entriesPerBlock: chunkRows * cg, binBlocks: tiling.binBlocks, into: spectrum)
                    inverse.inverse(spectrum: spectrum, real: real)
                    let target = dw + ((g * kg + firstRow + local) * cg + c) * R * S
                    for i in 0..<R {
                        for j in 0..<S {
                            target[i * S + j] = real[i * d.dilationHeight * Tw + j * d.dilationWidth] * scale
                        }
                    }
                }
            }
        }
    }
}

/// The FFT backends in every pass: forward; backward-data as the forward plan of the transposed problem;
/// backward-weights with the spectra summed over the batch and the tiles (`FFTWeightGradientGeometry`).
extension FFTBackend {
    /// Backward-weights runs wherever forward does.
    public func weightGradientSupport(for descriptor: ConvolutionDescriptor) -> SupportStatus {
        support(for: descriptor)
    }

    public func describeWeightGradient(_ descriptor: ConvolutionDescriptor, options: PlanOptions) throws
        -> PlanDescription {
        try FFTWeightGradientGeometry(descriptor: descriptor, backend: self, options: options).summary
    }

    public func makeWeightGradientPlan(_ descriptor: ConvolutionDescriptor, options: PlanOptions) throws
        -> any PassPlan {
        try FFTWeightGradientPlan(geometry: try FFTWeightGradientGeometry(descriptor: descriptor, backend: self,
                                                                      options: options))
    }
}

import ConvLabCore
import ConvLabMatMul

/// `im2col`: lower the input to a column matrix, then one GEMM per tile.
///
/// For each image n and group g, output columns q = (oh, ow) are cut into tiles of `tileColumns`. A worker builds
/// the tile's column matrix col[j][q] = x[c, oh·sh + r·dh − pt, ow·sw + s·dw − pl] (j = (c, r, s), zero in the
/// padding) and multiplies W_g[K/G × (C/G)·R·S] · col → y[n, g's channels, tile]. Tiling keeps the column buffer in
/// L2 instead of materialising the whole (C/G)·R·S × Ho·Wo matrix, and gives the threads independent work.
/// A 1×1, stride-1, unpadded convolution needs no lowering: the input plane already is the column matrix.
public struct Im2colBackend: Convolution {
    public init() {}

    public var name: String { "im2col" }

    public func support(for descriptor: ConvolutionDescriptor) -> SupportStatus { .supported }

    public func expectedErrorBound(for descriptor: ConvolutionDescriptor) -> Double {
        dotProductErrorBound(terms: descriptor.reductionLength)
    }

    public func makePlan(descriptor: ConvolutionDescriptor, weights: Tensor<Float>, options: PlanOptions) throws
        -> any ConvolutionPlan {
        try validatePlanInputs(descriptor: descriptor, weights: weights, options: options)
        return try Im2colPlan(descriptor: descriptor, weights: weights, options: options,
                              expectedErrorBound: expectedErrorBound(for: descriptor)
                                  * options.matrixEngine.errorGrowth)
    }
}

struct Im2colPlan: ConvolutionPlan {
    let descriptor: ConvolutionDescriptor
    let expectedErrorBound: Double
    let weights: Tensor<Float>
    let multiplier: any MatrixMultiplier
    let threads: Int
    /// Output columns per GEMM tile.
    let tileColumns: Int
    /// True for 1×1 / stride 1 / no padding: GEMM straight on the input.
    let isPointwise: Bool
    /// Few columns (deep, small layers such as 7×7 outputs): too few tiles to keep the threads busy, so each
    /// plane is lowered once into a shared buffer and the GEMM is split over blocks of output channels instead.
    let splitsOutputChannels: Bool
    let columnBuffers: WorkspaceRegion<Float>
    let gemmScratch: WorkspaceRegion<UInt8>
    let scratchPerWorker: Int
    let workspaceBytes: Int

    var backendName: String { "im2col" }
    var isDeterministic: Bool { true }

    /// Target size of one worker's column buffer: half of a 1 MiB L2, leaving room for GEMM packing.
    static let columnBufferBytes = 512 * 1024

    init(descriptor d: ConvolutionDescriptor, weights: Tensor<Float>, options: PlanOptions,
         expectedErrorBound: Double) throws {
        descriptor = d
        self.expectedErrorBound = expectedErrorBound
        self.weights = weights
        multiplier = options.matrixEngine.makeMultiplier()
        threads = options.threads
        let rows = d.reductionLength
        let columns = d.outputHeight * d.outputWidth
        isPointwise = d.kernelHeight == 1 && d.kernelWidth == 1 && d.isStrideOne && d.padding.isZero
        let fit = (Self.columnBufferBytes / MemoryLayout<Float>.stride / rows) / 16 * 16
        // Pointwise tiles need no column buffer; 512 columns keep each GEMM on the native engine's unpacked path
        // (B read in place, no packing pass: 1×1 64→64 at 64², 2 threads, 0.15–0.19 → 0.10 ms). Not for very few
        // input channels, where the product is store-bound and many small tiles only add calls (3→64 at 224²:
        // 0.25 → 0.38 ms).
        tileColumns = isPointwise && rows >= 32 ? min(columns, 512) : min(columns, max(fit, 64))
        let tasks = d.batch * d.groups * ((columns + tileColumns - 1) / tileColumns)
        splitsOutputChannels = threads > 1 && tasks < 4 * threads && d.outputChannelsPerGroup >= 32
        let workers = min(threads, tasks)
        var layout = WorkspaceLayout()
        let columnFloats = isPointwise ? 0 : (splitsOutputChannels ? rows * columns : workers * rows * tileColumns)
        columnBuffers = layout.reserve(Float.self, count: columnFloats)
        scratchPerWorker = multiplier.workspaceBytes(m: d.outputChannelsPerGroup,
                                                     n: splitsOutputChannels ? columns : tileColumns, k: rows)
        gemmScratch = layout.reserve(UInt8.self, count: threads * scratchPerWorker)
        workspaceBytes = layout.byteCount
        try ResourceLimits.check("the im2col workspace", bytes: workspaceBytes, limit: options.limits.maxWorkspaceBytes)
    }

    func execute(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
                 workspace: Workspace?, profile: ExecutionProfile?) throws {
        try validateBuffers(input: input, output: output, workspace: workspace)
        let columnBase = workspace.map { columnBuffers.pointer(in: $0) }
        let scratchBase = workspace.map { UnsafeMutableRawPointer(gemmScratch.pointer(in: $0)) }
        weights.withUnsafeBufferPointer { w in
            let buffers = Buffers(x: input.baseAddress!, w: w.baseAddress!, y: output.baseAddress!,
                                  columns: columnBase, scratch: scratchBase)
            if splitsOutputChannels {
                executeSplittingOutputChannels(buffers, profile: profile)
            } else {
                executeByTiles(buffers, profile: profile)
            }
        }
    }

    private struct Buffers: @unchecked Sendable {
        let x: UnsafePointer<Float>
        let w: UnsafePointer<Float>
        let y: UnsafeMutablePointer<Float>
        let columns: UnsafeMutablePointer<Float>?
        let scratch: UnsafeMutableRawPointer?
    }

    /// Tasks are (image, group, column tile); each lowers its tile into its worker's buffer and multiplies.
    private func executeByTiles(_ b: Buffers, profile: ExecutionProfile?) {
        let d = descriptor
        let (rows, columns, kg) = (d.reductionLength, d.outputHeight * d.outputWidth, d.outputChannelsPerGroup)
        let tilesPerPlane = (columns + tileColumns - 1) / tileColumns
        measurePhase("lower + multiply", in: profile) {
            Parallel.forEach(taskCount: d.batch * d.groups * tilesPerPlane, threads: threads) { worker, task in
                let (plane, tile) = (task / tilesPerPlane, task % tilesPerPlane)
                let (n, g) = (plane / d.groups, plane % d.groups)
                let q0 = tile * tileColumns
                let width = min(tileColumns, columns - q0)
                var (source, ldb) = (groupInput(b.x, n: n, g: g) + q0, columns)
                if !isPointwise {
                    let col = b.columns! + worker * rows * tileColumns
                    lower(groupInput(b.x, n: n, g: g), into: col, leadingDimension: width, firstColumn: q0,
                          width: width)
                    (source, ldb) = (UnsafePointer(col), width)
                }
                multiplier.multiply(m: kg, n: width, k: rows, a: b.w + g * kg * rows, lda: rows, b: source, ldb: ldb,
                                    c: b.y + (n * d.outputChannels + g * kg) * columns + q0, ldc: columns,
                                    accumulate: false, workspace: b.scratch.map { $0 + worker * scratchPerWorker })
            }
        }
    }

    /// Per plane: lower all columns in parallel into one shared buffer, then multiply blocks of output channels in
    /// parallel.
    private func executeSplittingOutputChannels(_ b: Buffers, profile: ExecutionProfile?) {
        let d = descriptor
        let (rows, columns, kg) = (d.reductionLength, d.outputHeight * d.outputWidth, d.outputChannelsPerGroup)
        let blocks = min((kg + 15) / 16, 4 * threads)
        let blockRows = (kg + blocks - 1) / blocks
        let lowerChunk = 64
        for plane in 0..<(d.batch * d.groups) {
            let (n, g) = (plane / d.groups, plane % d.groups)
            var (source, ldb) = (groupInput(b.x, n: n, g: g), columns)
            if !isPointwise {
                measurePhase("lower", in: profile) {
                    Parallel.forEach(taskCount: (columns + lowerChunk - 1) / lowerChunk, threads: threads) { _, chunk in
                        let q0 = chunk * lowerChunk
                        lower(groupInput(b.x, n: n, g: g), into: b.columns! + q0, leadingDimension: columns,
                              firstColumn: q0, width: min(lowerChunk, columns - q0))
                    }
                }
                (source, ldb) = (UnsafePointer(b.columns!), columns)
            }
            let shared = UncheckedSendable(source)
            measurePhase("multiply", in: profile) {
                Parallel.forEach(taskCount: blocks, threads: threads) { worker, block in
                    let k0 = block * blockRows
                    let count = min(blockRows, kg - k0)
                    guard count > 0 else { return }
                    multiplier.multiply(m: count, n: columns, k: rows, a: b.w + (g * kg + k0) * rows, lda: rows,
                                        b: shared.value, ldb: ldb,
                                        c: b.y + (n * d.outputChannels + g * kg + k0) * columns, ldc: columns,
                                        accumulate: false, workspace: b.scratch.map { $0 + worker * scratchPerWorker })
                }
            }
        }
    }

    private func groupInput(_ x: UnsafePointer<Float>, n: Int, g: Int) -> UnsafePointer<Float> {
        let d = descriptor
        return x + (n * d.inputChannels + g * d.channelsPerGroup) * d.inputHeight * d.inputWidth
    }

    /// Fills col[j · leadingDimension + (q − firstColumn)] for j = (c, r, s) and output columns
    /// q in firstColumn..<firstColumn+width of one group's input.
    private func lower(_ x: UnsafePointer<Float>, into col: UnsafeMutablePointer<Float>, leadingDimension: Int,
                       firstColumn: Int, width: Int) {
        let d = descriptor
        let (H, W, Wo) = (d.inputHeight, d.inputWidth, d.outputWidth)
        var j = 0
        for c in 0..<d.channelsPerGroup {
            let channel = x + c * H * W
            for r in 0..<d.kernelHeight {
                for s in 0..<d.kernelWidth {
                    let row = col + j * leadingDimension
                    let columnOffset = s * d.dilationWidth - d.padding.left
                    let valid = validOutputRange(outputSize: Wo, stride: d.strideWidth, offset: columnOffset,
                                                 inputSize: W)
                    var q = firstColumn
                    let end = firstColumn + width
                    while q < end {
                        // One output row's part of the tile: ow in owStart..<owEnd.
                        let oh = q / Wo
                        let segmentEnd = min(end, (oh + 1) * Wo)
                        let dst = row + (q - firstColumn)
                        let ih = oh * d.strideHeight + r * d.dilationHeight - d.padding.top
                        let (owStart, owEnd) = (q - oh * Wo, segmentEnd - oh * Wo)
                        if ih < 0 || ih >= H {
                            dst.update(repeating: 0, count: owEnd - owStart)
                        } else {
                            let src = channel + ih * W
                            let lo = min(max(valid.lowerBound, owStart), owEnd)
                            let hi = max(min(valid.upperBound, owEnd), lo)
                            dst.update(repeating: 0, count: lo - owStart)
                            if d.strideWidth == 1 {
                                (dst + (lo - owStart)).update(from: src + lo + columnOffset, count: hi - lo)
                            } else {
                                for ow in lo..<hi { dst[ow - owStart] = src[ow * d.strideWidth + columnOffset] }
                            }
                            (dst + (hi - owStart)).update(repeating: 0, count: owEnd - hi)
                        }
                        q = segmentEnd
                    }
                    j += 1
                }
            }
        }
    }
}

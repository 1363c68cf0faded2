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
                              expectedErrorBound: expectedErrorBound(for: descriptor))
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
    let columnBuffers: WorkspaceRegion<Float>
    let gemmScratch: WorkspaceRegion<UInt8>
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
        tileColumns = min(columns, max(fit, 64))
        let workers = min(threads, d.batch * d.groups * ((columns + tileColumns - 1) / tileColumns))
        var layout = WorkspaceLayout()
        columnBuffers = layout.reserve(Float.self, count: isPointwise ? 0 : workers * rows * tileColumns)
        let scratchPerWorker = multiplier.workspaceBytes(m: d.outputChannelsPerGroup, n: tileColumns, k: rows)
        gemmScratch = layout.reserve(UInt8.self, count: workers * scratchPerWorker)
        workspaceBytes = layout.byteCount
        try ResourceLimits.check("the im2col workspace", bytes: workspaceBytes, limit: options.limits.maxWorkspaceBytes)
    }

    func execute(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
                 workspace: Workspace?, profile: ExecutionProfile?) throws {
        try validateBuffers(input: input, output: output, workspace: workspace)
        let d = descriptor
        let rows = d.reductionLength
        let columns = d.outputHeight * d.outputWidth
        let tilesPerPlane = (columns + tileColumns - 1) / tileColumns
        let columnBase = workspace.map { columnBuffers.pointer(in: $0) }
        let scratchBase = workspace.map { gemmScratch.pointer(in: $0) }
        let scratchPerWorker = multiplier.workspaceBytes(m: d.outputChannelsPerGroup, n: tileColumns, k: rows)
        weights.withUnsafeBufferPointer { w in
            let shared = UncheckedSendable((input.baseAddress!, w.baseAddress!, output.baseAddress!,
                                            columnBase, scratchBase))
            measurePhase("lower + multiply", in: profile) {
                Parallel.forEach(taskCount: d.batch * d.groups * tilesPerPlane, threads: threads) { worker, task in
                    let (x, w, y, columnBase, scratchBase) = shared.value
                    let tile = task % tilesPerPlane
                    let plane = task / tilesPerPlane
                    let (n, g) = (plane / d.groups, plane % d.groups)
                    let q0 = tile * tileColumns
                    let width = min(tileColumns, columns - q0)
                    let groupInput = x + (n * d.inputChannels + g * d.channelsPerGroup) * d.inputHeight * d.inputWidth
                    let b: UnsafePointer<Float>
                    let ldb: Int
                    if isPointwise {
                        (b, ldb) = (groupInput + q0, columns)
                    } else {
                        let col = columnBase! + worker * rows * tileColumns
                        lower(groupInput, into: col, firstColumn: q0, width: width)
                        (b, ldb) = (UnsafePointer(col), width)
                    }
                    let kg = d.outputChannelsPerGroup
                    multiplier.multiply(
                        m: kg, n: width, k: rows, a: w + g * kg * rows, lda: rows, b: b, ldb: ldb,
                        c: y + (n * d.outputChannels + g * kg) * columns + q0, ldc: columns,
                        accumulate: false, workspace: scratchBase.map { UnsafeMutableRawPointer($0 + worker * scratchPerWorker) })
                }
            }
        }
    }

    /// Fills col[j][0..<width] for output columns firstColumn..<firstColumn+width of one group's input.
    private func lower(_ x: UnsafePointer<Float>, into col: UnsafeMutablePointer<Float>, firstColumn: Int, width: Int) {
        let d = descriptor
        let (H, W, Wo) = (d.inputHeight, d.inputWidth, d.outputWidth)
        var j = 0
        for c in 0..<d.channelsPerGroup {
            let channel = x + c * H * W
            for r in 0..<d.kernelHeight {
                for s in 0..<d.kernelWidth {
                    let row = col + j * width
                    let columnOffset = s * d.dilationWidth - d.padding.left
                    let valid = validOutputRange(outputSize: Wo, stride: d.strideWidth, offset: columnOffset,
                                                 inputSize: W)
                    var q = firstColumn
                    let end = firstColumn + width
                    while q < end {
                        let oh = q / Wo
                        let segmentEnd = min(end, (oh + 1) * Wo)
                        let dst = row + (q - firstColumn)
                        let ih = oh * d.strideHeight + r * d.dilationHeight - d.padding.top
                        let owStart = q - oh * Wo
                        let owEnd = segmentEnd - oh * Wo
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

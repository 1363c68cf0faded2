import ConvLabCore
import ConvLabMatMul

/// `im2col`: lower the input to a column matrix, then one GEMM per tile.
///
/// For each image n and group g, output columns q = (oh, ow) are cut into tiles of `tileColumns`. A worker builds
/// the tile's column matrix col[j][q] = x[c, oh·sh + r·dh − pt, ow·sw + s·dw − pl] (j = (c, r, s), zero in the
/// padding) and multiplies W_g[K/G × (C/G)·R·S] · col → y[n, g's channels, tile]. Tiling keeps the column buffer in
/// L2 instead of materialising the whole (C/G)·R·S × Ho·Wo matrix, and gives the threads independent work.
/// A 1×1, stride-1, unpadded convolution needs no lowering: the input plane already is the column matrix. Two special
/// plans: 1×1 layers on small maps (`PointwiseTransposedPlan`) and kernels covering the whole input
/// (`FullyConnectedPlan`, one product for the whole batch).
public struct Im2colBackend: Convolution {
    public init() {}

    public var name: String { "im2col" }

    public func support(for descriptor: ConvolutionDescriptor) -> SupportStatus { .supported }

    public func describe(_ d: ConvolutionDescriptor, options: PlanOptions) throws -> PlanDescription {
        try validate(d, options: options)
        if FullyConnectedGeometry.applies(to: d) {
            return try FullyConnectedGeometry(descriptor: d, options: options).summary
        }
        if PointwiseTransposedGeometry.applies(to: d) {
            return try PointwiseTransposedGeometry(descriptor: d, options: options).summary
        }
        return try Im2colGeometry(descriptor: d, options: options).summary
    }

    public func makePlan(descriptor: ConvolutionDescriptor, weights: Tensor<Float>, options: PlanOptions) throws
        -> any ConvolutionPlan {
        try validate(descriptor, options: options)
        try validate(weights: weights, for: descriptor)
        if FullyConnectedGeometry.applies(to: descriptor) {
            return FullyConnectedPlan(geometry: try FullyConnectedGeometry(descriptor: descriptor, options: options),
                                      weights: weights, multiplier: options.matrixEngine.makeMultiplier())
        }
        if PointwiseTransposedGeometry.applies(to: descriptor) {
            return PointwiseTransposedPlan(geometry: try PointwiseTransposedGeometry(descriptor: descriptor, options: options),
                                           weights: weights, multiplier: options.matrixEngine.makeMultiplier())
        }
        return Im2colPlan(geometry: try Im2colGeometry(descriptor: descriptor, options: options), weights: weights,
                          multiplier: options.matrixEngine.makeMultiplier())
    }
}

/// How im2col splits a problem into GEMMs: tile width, whether the input is used in place, whether the GEMM is split
/// over output channels, and the workspace for column buffers and GEMM scratch.
struct Im2colGeometry: Sendable {
    let descriptor: ConvolutionDescriptor
    let threads: Int
    /// Output columns per GEMM tile.
    let tileColumns: Int
    /// True for 1×1 / stride 1 / no padding: GEMM straight on the input.
    let isPointwise: Bool
    /// Tiles per plane of a pointwise layer split into even runs of 64-column strips (0: fixed-width tiles).
    let pointwiseTiles: Int
    /// Few columns (deep, small layers such as 7×7 outputs): too few tiles to keep the threads busy, so each
    /// plane is lowered once into a shared buffer and the GEMM is split over blocks of output channels instead.
    let splitsOutputChannels: Bool
    /// Output-channel blocks of the split GEMM, and rows per block.
    let channelBlocks: Int
    let channelBlockRows: Int
    let tasks: Int
    let workers: Int
    let columnBuffers: WorkspaceRegion<Float>
    let gemmScratch: WorkspaceRegion<UInt8>
    let summary: PlanDescription

    /// Target size of one worker's column buffer: half of this machine's L2, leaving room for GEMM packing.
    static let columnBufferBytes = MachineCaches.current.level2Bytes / 2

    init(descriptor d: ConvolutionDescriptor, options: PlanOptions) throws {
        descriptor = d
        threads = options.threads
        let multiplier = options.matrixEngine.makeMultiplier()
        let rows = d.reductionLength
        let columns = d.outputHeight * d.outputWidth
        let kg = d.outputChannelsPerGroup
        isPointwise = d.kernelHeight == 1 && d.kernelWidth == 1 && d.isStrideOne && d.padding.isZero
        let fit = (Self.columnBufferBytes / MemoryLayout<Float>.stride / rows) / 16 * 16
        // Pointwise tiles need no column buffer; 512 columns keep each GEMM on the native engine's unpacked path
        // (B read in place, no packing pass: 1×1 64→64 at 64², 2 threads, 0.15–0.19 → 0.10 ms). Not for very few
        // input channels, where the product is store-bound and many small tiles only add calls (3→64 at 224²:
        // 0.25 → 0.38 ms).
        // Pointwise tiles are whole 64-column strips, as even as the strips allow, and when images × groups are few,
        // a multiple of the thread count: r50's 56² 1×1 layers are 49 strips, which 7 tiles of 448 split 4:3 between
        // two threads (and splitting the 64 output channels instead ran the GEMM at m = 16).
        let strips = (columns + 63) / 64
        var inPlaceTiles: Int?
        if isPointwise && rows >= 32 {
            let (planes, fewest, t) = (d.batch * d.groups, (strips + 7) / 8, options.threads)
            inPlaceTiles = planes * fewest >= 8 * t ? fewest : min(strips, (fewest + t - 1) / t * t)
        }
        pointwiseTiles = inPlaceTiles ?? 0
        // Lowered tiles: as wide as fits the column buffer, then evened out so the last is not a sliver.
        let loweredTiles = (columns + max(fit, 64) - 1) / max(fit, 64)
        tileColumns = inPlaceTiles.map { min(columns, (strips + $0 - 1) / $0 * 64) }
            ?? min(columns, ((columns + loweredTiles - 1) / loweredTiles + 15) / 16 * 16)
        let tiles = d.batch * d.groups * (inPlaceTiles ?? (columns + tileColumns - 1) / tileColumns)
        // Split the GEMM over output channels when the tiles cannot keep every thread busy (a deep 7×7 layer is one
        // tile) or are too narrow for the GEMM's 64-column strips. ResNet-50's stride-2 3×3 (784 columns of 1152 rows)
        // is 4 tiles of 196 on 2 threads: split 4 ways over its 128 output channels instead, it ran GEMMs of 32 rows
        // (alternated runs, Intel kind: 3.2-4.1 -> 1.5-2.3 ms). Inception's 289-column stride-2 layer keeps the split:
        // its 80-column tiles lost 1.2× to it.
        let tilesKeepThreadsBusy = inPlaceTiles != nil ? tiles >= threads
            : tiles >= 4 * threads || (tiles >= 2 * threads && tileColumns >= 128)
        splitsOutputChannels = threads > 1 && !tilesKeepThreadsBusy && kg >= 32
        channelBlocks = min((kg + 15) / 16, 4 * threads)
        channelBlockRows = (kg + channelBlocks - 1) / channelBlocks
        tasks = splitsOutputChannels ? channelBlocks : tiles
        workers = Parallel.workers(threads: threads, tasks: tasks)
        let what = "the im2col workspace"
        var layout = WorkspaceLayout()
        if isPointwise {
            columnBuffers = try layout.reserve(Float.self, count: 0)
        } else if splitsOutputChannels {
            columnBuffers = try layout.reserve(Float.self, count: try CheckedArithmetic.product([rows, columns], what: what),
                                               what: what)
        } else {
            columnBuffers = try layout.reserve(Float.self, count: try CheckedArithmetic.product([rows, tileColumns], what: what),
                                               workers: workers, what: what)
        }
        let gemmColumns = splitsOutputChannels ? columns : tileColumns
        let gemmRows = splitsOutputChannels ? channelBlockRows : kg
        gemmScratch = try layout.reserve(UInt8.self, count: multiplier.workspaceBytes(m: gemmRows, n: gemmColumns, k: rows),
                                         workers: workers, what: what)
        try ResourceLimits.check(what, bytes: layout.byteCount, limit: options.limits.maxWorkspaceBytes)
        let lowered = isPointwise ? 0 : Double(rows) * Double(columns) * Double(d.batch * d.groups) * 4 * 2
        summary = PlanDescription(
            backend: "im2col", variant: isPointwise ? "pointwise" : (splitsOutputChannels ? "split K" : ""),
            errorBound: options.matrixEngine.errorBound(depth: rows),
            errorSource: options.matrixEngine.errorSource,
            typicalError: options.matrixEngine.typicalError(depth: rows),
            workspaceBytes: layout.byteCount, persistentBytes: d.weightCount * 4,
            work: WorkEstimate([.memory(bytes: lowered),
                                .gemm(flops: Double(d.directFLOPs), m: gemmRows, n: gemmColumns, k: rows, tasks: tasks)]))
        try options.accuracy.admit(summary)
    }
}

struct Im2colPlan: ConvolutionPlan {
    let geometry: Im2colGeometry
    let weights: Tensor<Float>
    let multiplier: any MatrixMultiplier

    var descriptor: ConvolutionDescriptor { geometry.descriptor }
    var summary: PlanDescription { geometry.summary }

    func execute(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
                 workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?) throws {
        try validateBuffers(input: input, output: output, workspace: workspace)
        weights.withUnsafeBufferPointer { w in
            let buffers = Buffers(x: input.baseAddress!, w: w.baseAddress!, y: output.baseAddress!, workspace: workspace)
            if geometry.splitsOutputChannels {
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
        let workspace: UnsafeMutableRawBufferPointer
    }

    /// Tasks are (image, group, column tile); each lowers its tile into its worker's buffer and multiplies.
    private func executeByTiles(_ b: Buffers, profile: ExecutionProfile?) {
        let (d, geometry) = (descriptor, geometry)
        let (rows, columns, kg) = (d.reductionLength, d.outputHeight * d.outputWidth, d.outputChannelsPerGroup)
        let tileColumns = geometry.tileColumns
        let evenTiles = geometry.pointwiseTiles
        let tilesPerPlane = evenTiles > 0 ? evenTiles : (columns + tileColumns - 1) / tileColumns
        let strips = (columns + 63) / 64
        measurePhase("lower + multiply", in: profile) {
            Parallel.forEach(taskCount: geometry.tasks, threads: geometry.workers) { worker, task in
                let (plane, tile) = (task / tilesPerPlane, task % tilesPerPlane)
                let (n, g) = (plane / d.groups, plane % d.groups)
                let q0 = evenTiles > 0 ? tile * strips / evenTiles * 64 : tile * tileColumns
                let width = evenTiles > 0 ? min((tile + 1) * strips / evenTiles * 64, columns) - q0
                    : min(tileColumns, columns - q0)
                var (source, ldb) = (groupInput(b.x, n: n, g: g) + q0, columns)
                if !geometry.isPointwise {
                    let col = geometry.columnBuffers.pointer(in: b.workspace, worker: worker)
                    Im2colLowering(descriptor: d).lower(groupInput(b.x, n: n, g: g), into: col, leadingDimension: width,
                                                        firstColumn: q0, width: width)
                    (source, ldb) = (UnsafePointer(col), width)
                }
                multiplier.multiply(m: kg, n: width, k: rows, a: b.w + g * kg * rows, lda: rows, b: source, ldb: ldb,
                                    c: b.y + (n * d.outputChannels + g * kg) * columns + q0, ldc: columns,
                                    accumulate: false, workspace: geometry.gemmScratch.bytes(in: b.workspace, worker: worker))
            }
        }
    }

    /// Per plane: lower all columns in parallel into one shared buffer, then multiply blocks of output channels in
    /// parallel.
    private func executeSplittingOutputChannels(_ b: Buffers, profile: ExecutionProfile?) {
        let (d, geometry) = (descriptor, geometry)
        let (rows, columns, kg) = (d.reductionLength, d.outputHeight * d.outputWidth, d.outputChannelsPerGroup)
        let (blocks, blockRows, threads) = (geometry.channelBlocks, geometry.channelBlockRows, geometry.threads)
        let columnBuffer = geometry.columnBuffers.pointer(in: b.workspace)
        let lowerChunk = 64
        for plane in 0..<(d.batch * d.groups) {
            let (n, g) = (plane / d.groups, plane % d.groups)
            var (source, ldb) = (groupInput(b.x, n: n, g: g), columns)
            if !geometry.isPointwise {
                measurePhase("lower", in: profile) {
                    Parallel.forEach(taskCount: (columns + lowerChunk - 1) / lowerChunk, threads: threads) { _, chunk in
                        let q0 = chunk * lowerChunk
                        Im2colLowering(descriptor: d).lower(groupInput(b.x, n: n, g: g), into: columnBuffer + q0,
                                                            leadingDimension: columns, firstColumn: q0,
                                                            width: min(lowerChunk, columns - q0))
                    }
                }
                (source, ldb) = (UnsafePointer(columnBuffer), columns)
            }
            let shared = UncheckedSendable(source)
            measurePhase("multiply", in: profile) {
                Parallel.forEach(taskCount: blocks, threads: geometry.workers) { worker, block in
                    let k0 = block * blockRows
                    let count = min(blockRows, kg - k0)
                    guard count > 0 else { return }
                    multiplier.multiply(m: count, n: columns, k: rows, a: b.w + (g * kg + k0) * rows, lda: rows,
                                        b: shared.value, ldb: ldb,
                                        c: b.y + (n * d.outputChannels + g * kg + k0) * columns, ldc: columns,
                                        accumulate: false,
                                        workspace: geometry.gemmScratch.bytes(in: b.workspace, worker: worker))
                }
            }
        }
    }

    private func groupInput(_ x: UnsafePointer<Float>, n: Int, g: Int) -> UnsafePointer<Float> {
        let d = descriptor
        return x + (n * d.inputChannels + g * d.channelsPerGroup) * d.inputHeight * d.inputWidth
    }
}

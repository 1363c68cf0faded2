import ConvLabCore
import ConvLabMatMul

/// Winograd's backward-weights pass (Lavin & Gray; neon's "update" kernels): the roles of filter and output swap.
/// dw[k][c] is an R×S "output" whose "filter" is an m×m tile of dy, so per axis the transforms are F(R, m):
/// n = m + R − 1 points, generated exactly like the forward ones (`WinogradTransform(outputSize: R, kernelSize: m)`).
/// With the input patches x_t (n×n, stepping by m — the forward F(m, R) tiling of the same layer) and dy tiles d_t:
///     V_t = Bᵀ x_t B,   U_t = G d_t Gᵀ,   M[ξν] = Σ_{n,t} U_t[ξν]ᵀ V_t[ξν]   (a K×C GEMM per point, inner
///     dimension = all tiles of the batch),   dw[k][c] = Aᵀ M[·][k][c] A.
/// The n² GEMMs do the work — 2·n²·K·C·tiles FLOPs against 2·R·S·m²·K·C·tiles direct, 4× fewer for F(3, 4) — and
/// their inner dimension is as long as the batch and image make it. Two schedules (`Schedule`): slices, where M is
/// small, and passes. Either way M sums its tiles in an order fixed by the layer, so the result does not depend on
/// threads. Stride 1, no dilation (a dilated layer runs on its phases, `DilationAsPhases`, a strided one on its
/// input's, `StrideAsPhases`), as forward.
struct WinogradWeightGradientLayout: Sendable {
    let descriptor: ConvolutionDescriptor
    /// F(R, m) and F(S, m) per axis (identity along a 1-tap axis).
    let height: WinogradTransform
    let width: WinogradTransform
    /// The x patches: the forward F(m, R) tiling of the layer (patches of n stepping by m).
    let inputGeometry: WinogradGeometry
    /// The dy tiles on the same grid: dy as a K-channel "input" with R − 1 rows and S − 1 columns of zeros after it.
    let gradientGeometry: WinogradGeometry
    let threads: Int
    let workers: Int

    /// How the tiles reach the GEMMs.
    enum Schedule: Equatable, Sendable {
        /// Stage by stage, `tileRows` tile rows of the batch per pass, every stage parallel: the pass's transformed
        /// tiles (up to `WinogradLayout.passBytes`) are written out and read back by the GEMMs, which add them to M.
        case passes(tileRows: Int)
        /// `count` fixed ranges of the batch's tile rows, one task each, with a private M: the task transforms
        /// `chunkTileRows` tile rows into its own buffers and adds their products to its M while they are in L2; the
        /// slices' Ms are then added in slice order. Taken where M fits half of L2 (with 2 MiB: 64-channel layers,
        /// and F(2,3) up to 128 channels), whose passes were bound by writing and re-reading the transformed tiles:
        /// VGG's 64-channel 224² layer spent 57% of its time in the transforms (8.25 → 6.45 ms, Intel, 2 threads).
        case slices(count: Int, chunkTileRows: Int)

        /// Tile rows a pass or a chunk transforms at once.
        var tileRows: Int {
            switch self {
            case .passes(let tileRows): tileRows
            case .slices(_, let chunkTileRows): chunkTileRows
            }
        }

        /// Copies of M: one per slice, or the one the passes add to.
        var productCopies: Int {
            if case .slices(let count, _) = self { count } else { 1 }
        }
    }

    let schedule: Schedule
    /// Tile rows (of the whole batch) a pass or a chunk transforms at once.
    var passTileRows: Int { schedule.tileRows }
    /// The slice count: fixed, not the thread count, so the bits do not depend on it (4 slices give 2 threads an
    /// even share; a slice's M is small where slices are taken).
    static let sliceCount = 4
    let blockedInput: WorkspaceRegion<Float>
    let blockedGradient: WorkspaceRegion<Float>
    let transformedInput: WorkspaceRegion<Float>
    let transformedGradient: WorkspaceRegion<Float>
    /// M of every point, accumulated over the passes.
    let products: WorkspaceRegion<Float>
    let gemmScratch: WorkspaceRegion<UInt8>
    let transformScratch: WorkspaceRegion<Float>
    let summary: PlanDescription

    var points: Int { height.tileSize * width.tileSize }
    var paddedChannels: Int { inputGeometry.paddedChannels }
    var paddedOutputChannels: Int { gradientGeometry.paddedChannels }

    init(descriptor d: ConvolutionDescriptor, backend: WinogradBackend, options: PlanOptions) throws {
        descriptor = d
        threads = options.threads
        let forward = try backend.transforms(for: d)  // F(m, R): the patch tiling
        let m = (forward.height.outputSize, forward.width.outputSize)
        func axis(_ taps: Int, _ tile: Int) throws -> WinogradTransform {
            taps == 1 ? try WinogradTransform(outputSize: 1, kernelSize: 1)
                      : try WinogradTransform(outputSize: taps, kernelSize: tile, fractions: backend.fractions)
        }
        height = try axis(d.kernelHeight, m.0)
        width = try axis(d.kernelWidth, m.1)
        inputGeometry = WinogradGeometry(descriptor: d, height: forward.height, width: forward.width)
        let gradientLayer = try ConvolutionDescriptor(
            batch: d.batch, inputChannels: d.outputChannels, inputHeight: d.outputHeight, inputWidth: d.outputWidth,
            outputChannels: d.inputChannels, kernelHeight: d.kernelHeight, kernelWidth: d.kernelWidth,
            padding: .explicit(Padding(top: 0, bottom: d.kernelHeight - 1, left: 0, right: d.kernelWidth - 1)),
            groups: d.groups)
        gradientGeometry = WinogradGeometry(descriptor: gradientLayer, height: forward.height, width: forward.width)
        let (cp, kp, points) = (inputGeometry.paddedChannels, gradientGeometry.paddedChannels, height.tileSize * width.tileSize)
        let what = "the Winograd backward-weights workspace"
        let tileColumns = inputGeometry.tileColumns
        // A pass's transformed tiles (both operands) in about 8 MiB; at least one tile row.
        let bytesPerTileRow = try CheckedArithmetic.product([tileColumns, points, cp + kp, 4, d.groups], what: what)
        // Each further pass reads and writes every product M (K×C per point): for wide layers on few tiles one pass
        // over the whole batch costs less (DeepLab's 2048-channel ASPP phases: 34 MiB of M, six passes).
        let productBytes = try CheckedArithmetic.product([d.groups, points, cp, kp, 4], what: what)
        let totalTileRows = d.batch * inputGeometry.tileRows
        let groupTileRowBytes = bytesPerTileRow / d.groups, groupProductBytes = productBytes / d.groups
        let level2 = MachineCaches.current.level2Bytes
        if groupProductBytes <= level2 / 2 && totalTileRows >= Self.sliceCount {
            let count = Self.sliceCount
            // Chunks in what M leaves of L2 (at least a tile row: VGG's 224² F(6,3) row is 1.2 MiB beside a 1 MiB M).
            let chunkTileRows = max(1, min((level2 - groupProductBytes) / groupTileRowBytes, totalTileRows / count))
            schedule = .slices(count: count, chunkTileRows: chunkTileRows)
        } else {
            let tileRows = WinogradLayout.passTileRows(all: totalTileRows, bytesPerTileRow: bytesPerTileRow,
                                                       rereadPerPass: 2 * productBytes,
                                                       limit: options.limits.maxWorkspaceBytes)
            schedule = .passes(tileRows: tileRows)
        }
        let (passTileRows, slices) = (schedule.tileRows, schedule.productCopies)
        let rows = passTileRows * tileColumns
        let independent = d.groups * points
        workers = Parallel.workers(threads: threads, tasks: max(independent, d.groups * slices,
                                                                d.groups * max(inputGeometry.channelBlocks,
                                                                               gradientGeometry.channelBlocks)
                                                                    * passTileRows))
        var layout = WorkspaceLayout()
        // Blocked rows of up to a pass's tile rows of one image, one 16-channel block, per worker: each row of x
        // and dy is blocked once per pass, then every tile row of it is transformed from cache.
        let passRowsPerImage = min(passTileRows, inputGeometry.tileRows)
        blockedInput = try layout.reserve(Float.self, count: inputGeometry.blockedRows(tileRows: passRowsPerImage)
                                              * inputGeometry.blockedRowFloats, workers: workers, what: what)
        blockedGradient = try layout.reserve(Float.self, count: gradientGeometry.blockedRows(tileRows: passRowsPerImage)
                                                 * gradientGeometry.blockedRowFloats, workers: workers, what: what)
        // Passes: one pass's tiles of every group, shared. Slices: one chunk's tiles of one group per worker.
        let (tileGroups, tileWorkers) = slices > 1 ? (1, workers) : (d.groups, 1)
        transformedInput = try layout.reserve(Float.self, count: try CheckedArithmetic.product(
            [tileGroups, points, WinogradGeometry.pointStride(rows: rows, width: cp)], what: what),
            workers: tileWorkers, what: what)
        transformedGradient = try layout.reserve(Float.self, count: try CheckedArithmetic.product(
            [tileGroups, points, WinogradGeometry.pointStride(rows: rows, width: kp)], what: what),
            workers: tileWorkers, what: what)
        // M of every group and point, one copy per slice (slice 0's is the sum the output transform reads).
        products = try layout.reserve(Float.self, count: try CheckedArithmetic.product([slices, d.groups, points, kp, cp],
                                                                                      what: what), what: what)
        let multiplier = options.matrixEngine.makeMultiplier()
        gemmScratch = try layout.reserve(UInt8.self, count: multiplier.workspaceBytes(m: kp, n: cp, k: rows),
                                         workers: workers, what: what)
        transformScratch = try layout.reserve(Float.self, count: max(inputGeometry.transformScratchFloats,
                                                                     gradientGeometry.transformScratchFloats,
                                                                     (points + d.kernelHeight * d.kernelWidth) * 16
                                                                        + d.kernelHeight * d.kernelWidth * 256),
                                              workers: workers, what: what)
        try ResourceLimits.check(what, bytes: layout.byteCount, limit: options.limits.maxWorkspaceBytes)

        let tiles = Double(inputGeometry.tilesPerImage * d.batch * d.groups)
        let scale = Double(points * (height.tileSize + width.tileSize)) / (36 * 12)
        summary = PlanDescription(
            backend: backend.name, pass: .backwardWeights,
            variant: "F(\(d.kernelHeight)x\(d.kernelWidth),\(m.0)x\(m.1)) \(inputGeometry.tilesPerImage) tiles "
                + (slices > 1 ? "\(slices) slices of \(passTileRows)-row chunks" : "\(passTileRows)-row passes")
                + " \(multiplier.name)",
            errorBound: WinogradBackend.errorBound(reduction: d.reductionLength(for: .backwardWeights),
                                                   heightGrowth: height.errorGrowth, widthGrowth: width.errorGrowth)
                * options.matrixEngine.errorGrowth,
            errorSource: WinogradBackend.errorSource(height: height, width: width, engine: options.matrixEngine),
            typicalError: WinogradBackend.typicalError(reduction: d.reductionLength(for: .backwardWeights),
                                                       growth: height.errorGrowth * width.errorGrowth,
                                                       engine: options.matrixEngine),
            workspaceBytes: layout.byteCount,
            work: WorkEstimate([
                .winogradBlocking(units: tiles * Double((cp + kp) / 16), tasks: d.groups * passTileRows),
                .winogradInputTransform(units: tiles * Double((cp + kp) / 16) * scale, tasks: d.groups * passTileRows),
                // Passes write the transformed tiles out and read them back; slices keep a chunk's in L2.
                .memory(bytes: slices > 1 ? 0 : tiles * Double(points * kp) * 4 * 2),
                .gemm(flops: 2 * Double(points) * tiles * Double(cp * kp), m: kp, n: cp, k: min(Int(tiles), 112),
                      tasks: independent),
                .winogradOutputTransform(units: Double(d.groups * kp * cp / 16) * scale, tasks: d.outputChannels),
            ]))
        try options.accuracy.admit(summary)
    }
}

struct WinogradWeightGradientPlan: PassPlan {
    let layout: WinogradWeightGradientLayout
    let inputTransform: (height: TransformMatrix, width: TransformMatrix)
    let gradientTransform: (height: TransformMatrix, width: TransformMatrix)
    let outputTransform: (height: TransformMatrix, width: TransformMatrix)
    let multiplier: any MatrixMultiplier

    var descriptor: ConvolutionDescriptor { layout.descriptor }
    var summary: PlanDescription { layout.summary }

    init(layout: WinogradWeightGradientLayout, multiplier: any MatrixMultiplier) {
        self.layout = layout
        self.multiplier = multiplier
        let (h, w) = (layout.height, layout.width)
        let (mh, mw) = (layout.inputGeometry.outputHeight, layout.inputGeometry.outputWidth)
        inputTransform = (TransformMatrix(rows: h.tileSize, columns: h.tileSize, entries: h.floatBT),
                          TransformMatrix(rows: w.tileSize, columns: w.tileSize, entries: w.floatBT))
        gradientTransform = (TransformMatrix(rows: h.tileSize, columns: mh, entries: h.floatG),
                             TransformMatrix(rows: w.tileSize, columns: mw, entries: w.floatG))
        outputTransform = (TransformMatrix(rows: h.outputSize, columns: h.tileSize, entries: h.floatAT),
                           TransformMatrix(rows: w.outputSize, columns: w.tileSize, entries: w.floatAT))
    }

    func execute(_ operands: PassOperands, workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?) throws {
        try validate(operands, workspace: workspace)
        run(operands, workspace: workspace, layout: .nchw, profile: profile)
    }

    /// Both entry points, on checked operands: x and dy NCHW, or nChw16c (one group,
    /// `WinogradWeightGradientWithBlockedEntry`), which changes only how their rows reach the padded blocked buffers.
    func run(_ operands: PassOperands, workspace: UnsafeMutableRawBufferPointer, layout tensorLayout: TensorLayout,
             profile: ExecutionProfile?) {
        let (d, l) = (descriptor, layout)
        let (xg, gg) = (l.inputGeometry, l.gradientGeometry)
        let (cp, kp, points, columns) = (l.paddedChannels, l.paddedOutputChannels, l.points, xg.tileColumns)
        let (transformedInput, transformedGradient, products) = (l.transformedInput.pointer(in: workspace),
                                                                 l.transformedGradient.pointer(in: workspace),
                                                                 l.products.pointer(in: workspace))
        let shared = UncheckedSendable((operands.input.baseAddress!, operands.gradOutput.baseAddress!,
                                        operands.output.baseAddress!, workspace))
        if case .slices(let count, let chunkTileRows) = l.schedule {
            runSlices(count: count, chunkTileRows: chunkTileRows, operands, workspace: workspace, layout: tensorLayout,
                      profile: profile)
        } else {
            let totalTileRows = d.batch * xg.tileRows
            var first = 0
            while first < totalTileRows {
                let passRows = min(l.passTileRows, totalTileRows - first)
                let rows = passRows * columns
                // Floats between points' matrices of V (input channels) and U (output channels).
                let (inputStride, gradientStride) = (WinogradGeometry.pointStride(rows: rows, width: cp),
                                                     WinogradGeometry.pointStride(rows: rows, width: kp))
                // Transforms: V = Bᵀ x B into X[g][ξν][row][c] and U = G dy Gᵀ into Y[g][ξν][row][k]. A task is one
                // operand's 16-channel block for the pass's tile rows of one image: it blocks those rows once and
                // transforms every tile row from cache. Tiles past the pass's rows are never read by the GEMMs.
                var segments: [(n: Int, firstTileRow: Int, count: Int, local: Int)] = []
                l.forEachImageSegment(of: first..<(first + passRows)) { segments.append(($0, $1, $2, $3)) }
                let blocks = xg.channelBlocks + gg.channelBlocks
                let segmentList = segments
                measurePhase("input and gradient transforms", in: profile) {
                    Parallel.forEach(taskCount: d.groups * blocks * segmentList.count, threads: l.workers) { worker, task in
                        let (x, dy, _, workspace) = shared.value
                        let segment = segmentList[task % segmentList.count]
                        let block = (task / segmentList.count) % blocks
                        let g = task / (segmentList.count * blocks)
                        let scratch = l.transformScratch.pointer(in: workspace, worker: worker)
                        let (geometry, source, blocked, target, stride, channelBlock, transform) = block < xg.channelBlocks
                            ? (xg, x, l.blockedInput.pointer(in: workspace, worker: worker), transformedInput,
                               inputStride, block, inputTransform)
                            : (gg, dy, l.blockedGradient.pointer(in: workspace, worker: worker), transformedGradient,
                               gradientStride, block - xg.channelBlocks, gradientTransform)
                        geometry.blockRows(source, layout: tensorLayout, n: segment.n, g: g, block: channelBlock,
                                           firstRow: segment.firstTileRow * geometry.outputHeight,
                                           rowCount: geometry.blockedRows(tileRows: segment.count), into: blocked)
                        for local in 0..<segment.count {
                            geometry.transformInput(patches: blocked + local * geometry.outputHeight * geometry.blockedRowFloats,
                                                    block: channelBlock, firstRow: (segment.local + local) * columns,
                                                    x: target + g * points * stride, rows: rows,
                                                    transform: transform, scratch: scratch)
                        }
                    }
                }
                // M[g][ξν] (+)= U[g][ξν]ᵀ · V[g][ξν]: one Aᵀ·B GEMM per point (U is rows × K; the engine reads it
                // transposed in place).
                let accumulate = first > 0
                measurePhase("multiply", in: profile) {
                    Parallel.forEach(taskCount: d.groups * points, threads: l.workers) { worker, task in
                        let (_, _, _, workspace) = shared.value
                        let (g, point) = (task / points, task % points)
                        let u = transformedGradient + (g * points + point) * gradientStride
                        let v = transformedInput + (g * points + point) * inputStride
                        multiplier.multiplyTransposedA(m: kp, n: cp, k: rows, a: u, lda: kp, b: v, ldb: cp,
                                            c: products + (g * points + point) * kp * cp, ldc: cp, accumulate: accumulate,
                                            workspace: l.gemmScratch.bytes(in: workspace, worker: worker))
                    }
                }
                first += passRows
            }
        }
        // dw[k][c] = Aᵀ_h · M[·][k][c] · A_w, 16 input channels per vector, then transposed into dw: KCRS, a task per
        // output channel, [c][r·S + s] from each 16-channel result; Oihw16o (the blocked entry, one group), a task per
        // 16 output channels (they share every cache line they write), their results gathered per channel block in
        // `tile`, [k][r·S + s][16 c], and transposed per tap. (Scalar stores per lane were 14% of ResNet's
        // 128-channel 28² pass on NCHW, and wrote every line of Oihw16o 16 times.)
        let (R, S, Cg, Kg) = (d.kernelHeight, d.kernelWidth, d.channelsPerGroup, d.outputChannelsPerGroup)
        let (nh, nw, taps) = (l.height.tileSize, l.width.tileSize, d.kernelHeight * d.kernelWidth)
        let blockedResult = tensorLayout == .nChw16c
        let channelsPerTask = blockedResult ? 16 : 1
        measurePhase("output transform", in: profile) {
            Parallel.forEach(taskCount: (d.outputChannels + channelsPerTask - 1) / channelsPerTask,
                             threads: l.workers) { worker, task in
                let (_, _, dw, workspace) = shared.value
                let scratch = l.transformScratch.pointer(in: workspace, worker: worker)
                let (rowsDone, result, tile) = (scratch, scratch + nh * nw * 16, scratch + (nh * nw + taps) * 16)
                let channels = (task * channelsPerTask)..<min(d.outputChannels, (task + 1) * channelsPerTask)
                /// The 16-channel block's R×S result of output channel `channel` into `target`, [r·S + s][16].
                func transform(_ channel: Int, block: Int, into target: UnsafeMutablePointer<Float>) {
                    let (g, k) = (channel / Kg, channel % Kg)
                    let base = products + (g * points * kp + k) * cp + block * 16
                    // tmp[i][ν] = Σ_ξ Aᵀ_h[i][ξ] · M[ξ·nw + ν], then out[i][j] = Σ_ν Aᵀ_w[j][ν] · tmp[i][ν].
                    outputTransform.height.apply(input: base, contractionStride: nw * kp * cp, blockStride: kp * cp,
                                                 blocks: nw, output: rowsDone, outputRowStride: nw * 16,
                                                 outputBlockStride: 16)
                    for i in 0..<R {
                        outputTransform.width.apply(input: rowsDone + i * nw * 16, contractionStride: 16, blockStride: 0,
                                                    blocks: 1, output: target + i * S * 16, outputRowStride: 16,
                                                    outputBlockStride: 0)
                    }
                }
                for block in 0..<(cp / 16) {
                    let lanes = min(16, Cg - block * 16)
                    guard blockedResult else {
                        let (g, k) = (channels.lowerBound / Kg, channels.lowerBound % Kg)
                        transform(channels.lowerBound, block: block, into: result)
                        ChannelBlocking.fromBlocked(result, count: taps, channels: lanes,
                                                    into: dw + ((g * Kg + k) * Cg + block * 16) * taps,
                                                    planeStride: taps)
                        continue
                    }
                    // One group: dw[k / 16][c][r·S + s][k % 16]; the tile's rows past the last channel stay zero.
                    for lane in 0..<16 {
                        let row = tile + lane * taps * 16
                        if channels.lowerBound + lane < channels.upperBound {
                            transform(channels.lowerBound + lane, block: block, into: row)
                        } else {
                            row.update(repeating: 0, count: taps * 16)
                        }
                    }
                    // Per tap, 16 output channels (positions, `taps`·16 apart) × `lanes` input channels.
                    let target = dw + (task * Cg + block * 16) * taps * 16
                    for tap in 0..<taps {
                        ChannelBlocking.fromBlocked(tile + tap * 16, count: 16, channels: lanes, into: target + tap * 16,
                                                    planeStride: taps * 16, positionStride: taps * 16)
                    }
                }
            }
        }
    }
}

extension WinogradWeightGradientLayout {
    /// Tile rows `rows` of the batch (image after image) in runs within one image each: `body(n, first tile row of
    /// image n, run length, the run's offset from rows.lowerBound)`. Passes and slices both transform by such runs.
    func forEachImageSegment(of rows: Range<Int>, _ body: (Int, Int, Int, Int) -> Void) {
        let perImage = inputGeometry.tileRows
        var row = rows.lowerBound
        while row < rows.upperBound {
            let (n, tileRow) = (row / perImage, row % perImage)
            let count = min(perImage - tileRow, rows.upperBound - row)
            body(n, tileRow, count, row - rows.lowerBound)
            row += count
        }
    }
}

extension WinogradWeightGradientPlan {
    /// The slice schedule (`WinogradWeightGradientLayout.Schedule.slices`): task (g, s) runs slice s of group g chunk
    /// by chunk — blocks and transforms the chunk's tile rows of x and dy into the worker's buffers, then adds their
    /// products to the slice's M while they are in L2 — and every (g, point) then adds the slices' Ms into slice 0's,
    /// in slice order.
    fileprivate func runSlices(count: Int, chunkTileRows: Int, _ operands: PassOperands,
                               workspace: UnsafeMutableRawBufferPointer, layout tensorLayout: TensorLayout,
                               profile: ExecutionProfile?) {
        let (d, l) = (descriptor, layout)
        let (xg, gg) = (l.inputGeometry, l.gradientGeometry)
        let (cp, kp, points, columns) = (l.paddedChannels, l.paddedOutputChannels, l.points, xg.tileColumns)
        let products = l.products.pointer(in: workspace)
        let (groupFloats, sliceFloats) = (points * kp * cp, d.groups * points * kp * cp)
        let totalTileRows = d.batch * xg.tileRows
        let shared = UncheckedSendable((operands.input.baseAddress!, operands.gradOutput.baseAddress!, workspace))
        // Per-stage time summed over workers (CPU time), reported as phases when profiling.
        let stages = StageTimes(enabled: profile != nil)
        measurePhase("slices (wall)", in: profile) {
            Parallel.forEach(taskCount: d.groups * count, threads: l.workers) { worker, task in
                let (x, dy, workspace) = shared.value
                let (g, slice) = (task / count, task % count)
                let input = l.transformedInput.pointer(in: workspace, worker: worker)
                let gradient = l.transformedGradient.pointer(in: workspace, worker: worker)
                let scratch = l.transformScratch.pointer(in: workspace, worker: worker)
                let m = products + slice * sliceFloats + g * groupFloats
                // V = Bᵀ x B (or U = G dy Gᵀ) of one operand's tile rows [row, row + tileRows) of image n, at
                // `local` tile rows into the chunk's `rows` tiles.
                func transform(_ geometry: WinogradGeometry, _ source: UnsafePointer<Float>,
                               blocked: UnsafeMutablePointer<Float>, into target: UnsafeMutablePointer<Float>,
                               _ matrices: (height: TransformMatrix, width: TransformMatrix), n: Int, tileRow: Int,
                               tileRows: Int, local: Int, rows: Int) {
                    for block in 0..<geometry.channelBlocks {
                        geometry.blockRows(source, layout: tensorLayout, n: n, g: g, block: block,
                                           firstRow: tileRow * geometry.outputHeight,
                                           rowCount: geometry.blockedRows(tileRows: tileRows), into: blocked)
                        for i in 0..<tileRows {
                            geometry.transformInput(
                                patches: blocked + i * geometry.outputHeight * geometry.blockedRowFloats, block: block,
                                firstRow: (local + i) * columns, x: target, rows: rows, transform: matrices,
                                scratch: scratch)
                        }
                    }
                }
                let (start, end) = (slice * totalTileRows / count, (slice + 1) * totalTileRows / count)
                var first = start
                while first < end {
                    let chunkRows = min(chunkTileRows, end - first)
                    let rows = chunkRows * columns
                    let t0 = stages.now()
                    l.forEachImageSegment(of: first..<(first + chunkRows)) { n, tileRow, segment, local in
                        transform(xg, x, blocked: l.blockedInput.pointer(in: workspace, worker: worker), into: input,
                                  inputTransform, n: n, tileRow: tileRow, tileRows: segment, local: local, rows: rows)
                        transform(gg, dy, blocked: l.blockedGradient.pointer(in: workspace, worker: worker),
                                  into: gradient, gradientTransform, n: n, tileRow: tileRow, tileRows: segment,
                                  local: local, rows: rows)
                    }
                    let t1 = stages.now()
                    for point in 0..<points {
                        let (u, v) = (gradient + point * WinogradGeometry.pointStride(rows: rows, width: kp),
                                      input + point * WinogradGeometry.pointStride(rows: rows, width: cp))
                        multiplier.multiplyTransposedA(m: kp, n: cp, k: rows, a: u, lda: kp, b: v, ldb: cp,
                                                       c: m + point * kp * cp,
                                                       ldc: cp, accumulate: first > start,
                                                       workspace: l.gemmScratch.bytes(in: workspace, worker: worker))
                    }
                    stages.add("input and gradient transforms (cpu)", nanoseconds: t1 - t0)
                    stages.add("multiply (cpu)", nanoseconds: stages.now() - t1)
                    first += chunkRows
                }
            }
        }
        stages.report(into: profile)
        measurePhase("add slices", in: profile) {
            Parallel.forEach(taskCount: d.groups * points, threads: l.workers) { _, task in
                let sum = products + task * kp * cp
                for slice in 1..<count {
                    addFloats(sum + slice * sliceFloats, into: sum, count: kp * cp)
                }
            }
        }
    }
}

/// The Winograd backends in every pass: forward; backward-data as the forward plan of the transposed problem;
/// backward-weights with F(R, m).
extension WinogradBackend {
    /// Backward-weights runs wherever forward does — for a strided layer, where the stride-1 problem over its phases
    /// also plans within the default accuracy ceiling (its F(R′, m) tiles differ from forward's).
    public func weightGradientSupport(for descriptor: ConvolutionDescriptor) -> SupportStatus {
        let status = support(for: descriptor)
        guard status.isSupported, !descriptor.isStrideOne else { return status }
        do {
            _ = try describeWeightGradient(descriptor, options: PlanOptions(threads: 1))
            return .supported
        } catch {
            return .unsupported("\(error)")
        }
    }

    public func describeWeightGradient(_ descriptor: ConvolutionDescriptor, options: PlanOptions) throws
        -> PlanDescription {
        if !descriptor.isStrideOne {
            let phases = try StrideAsPhases(descriptor)
            return try phases.summary(backend: name, pass: .backwardWeights,
                                      inner: describeWeightGradient(phases.inner, options: options),
                                      options: options).summary
        }
        if !descriptor.isUndilated {
            let phases = try DilationAsPhases(descriptor)
            return try phases.summary(backend: name, pass: .backwardWeights,
                                      inner: describeWeightGradient(phases.inner, options: options),
                                      options: options).summary
        }
        return try WinogradWeightGradientLayout(descriptor: descriptor, backend: self, options: options).summary
    }

    public func makeWeightGradientPlan(_ descriptor: ConvolutionDescriptor, options: PlanOptions) throws
        -> any PassPlan {
        if !descriptor.isStrideOne {
            let phases = try StrideAsPhases(descriptor)
            return try StridePhasedWeightGradientPlan(phases: phases,
                                                      inner: makeWeightGradientPlan(phases.inner, options: options),
                                                      backend: name, options: options)
        }
        if !descriptor.isUndilated {
            let phases = try DilationAsPhases(descriptor)
            return try PhasedWeightGradientPlan(phases: phases,
                                                inner: makeWeightGradientPlan(phases.inner, options: options),
                                                backend: name, options: options)
        }
        let plan = WinogradWeightGradientPlan(
            layout: try WinogradWeightGradientLayout(descriptor: descriptor, backend: self, options: options),
            multiplier: options.matrixEngine.makeMultiplier())
        return descriptor.groups == 1 ? WinogradWeightGradientWithBlockedEntry(plan: plan) : plan
    }
}

/// Winograd's backward-weights with its nChw16c entry point (one group): x's and dy's rows copied into the padded
/// blocked buffers as they are, where NCHW transposes every 16 pixels of every channel block of both.
struct WinogradWeightGradientWithBlockedEntry: ChannelBlockedPassExecution {
    let plan: WinogradWeightGradientPlan

    var descriptor: ConvolutionDescriptor { plan.descriptor }
    var summary: PlanDescription { plan.summary }

    func execute(_ operands: PassOperands, workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?) throws {
        try plan.execute(operands, workspace: workspace, profile: profile)
    }

    func executeBlocked(_ operands: PassOperands, workspace: UnsafeMutableRawBufferPointer,
                        profile: ExecutionProfile?) throws {
        try validateBlocked(operands, workspace: workspace)
        plan.run(operands, workspace: workspace, layout: .nChw16c, profile: profile)
    }
}

import ConvLabCore
import ConvLabMatMul

/// im2col's backward passes, every feature (stride, padding, dilation, groups, batch), GEMMs on the matrix engine.
///
/// backward-data: per image and group, col = Wᵀ·dY ((C/G)·R·S × Ho·Wo), then col2im adds each column entry back
/// into the input position it was lowered from (for 1×1 layers col is dx itself). Tasks are (image, group, block of input channels): a task computes
/// only its channels' rows of col, tile by tile of output columns, and adds them into its own planes of dx — no two
/// tasks write one element, and the adds run in a fixed order, so the result is deterministic at any thread count.
///
/// backward-weights: dW = Σ_n dY_n · colₙᵀ, both operands contiguous along positions, so every product is the
/// engine's A·Bᵀ (`multiplyTransposedB`: the transpose is folded into its packing of B). Tasks are (group, block of
/// 64-column multiples j = (c, r, s) of dW, chunk of the batch's positions): a task lowers only its rows of col tile
/// by tile (none for 1×1 layers: col is x) and accumulates into its columns of dW, or of its chunk's partial when the
/// reduction is chunked for parallelism (1×1 layers have one block); partials are added in chunk order.
extension Im2colBackend {
    public func support(for descriptor: ConvolutionDescriptor, pass: ConvolutionPass) -> SupportStatus {
        .supported
    }

    public func describe(_ d: ConvolutionDescriptor, pass: ConvolutionPass, options: PlanOptions) throws
        -> PlanDescription {
        try validate(d, pass: pass, options: options)
        switch pass {
        case .forward: return try describe(d, options: options)
        case .backwardData, .backwardWeights: return try Im2colGradientGeometry(descriptor: d, pass: pass, options: options).summary
        }
    }

    public func makePlan(pass: ConvolutionPass, descriptor: ConvolutionDescriptor, weights: Tensor<Float>?,
                         options: PlanOptions) throws -> any PassPlan {
        try validate(descriptor, pass: pass, options: options)
        if pass == .forward {
            return try makePlan(descriptor: descriptor, weights: try requiredWeights(weights, pass: pass), options: options)
        }
        let geometry = try Im2colGradientGeometry(descriptor: descriptor, pass: pass, options: options)
        let multiplier = options.matrixEngine.makeMultiplier()
        if pass == .backwardData {
            let w = try requiredWeights(weights, pass: pass)
            try validate(weights: w, for: descriptor)
            return Im2colBackwardDataPlan(geometry: geometry, weights: w, multiplier: multiplier)
        }
        return Im2colBackwardWeightsPlan(geometry: geometry, multiplier: multiplier)
    }
}

/// Blocks, tiles and workspace of the two backward plans.
struct Im2colGradientGeometry: Sendable {
    let descriptor: ConvolutionDescriptor
    let pass: ConvolutionPass
    let threads: Int
    /// 1×1, stride 1, no padding: col is x itself (no lowering for backward-weights, no col2im for backward-data).
    let isPointwise: Bool
    /// Rows j = (c, r, s) per block: whole input channels (backward-data) or 64-column multiples of dW (weights).
    let blockRows: Int
    let blocks: Int
    /// backward-weights: the reduction over the batch's N·Ho·Wo positions is cut into this many chunks, each summed
    /// into its own partial dW and the partials added in chunk order. Blocks and chunks depend on the problem alone,
    /// so the result is the same at every thread count.
    let chunks: Int
    /// backward-weights: rows of dW (output channels) per task, and the blocks they make; one block of all K/G rows
    /// except where a 1×1 layer's map is too short to chunk.
    let outputRowsPerBlock: Int
    let outputRowBlocks: Int
    let tileColumns: Int
    let tasks: Int
    let workers: Int
    let columns: WorkspaceRegion<Float>
    /// backward-weights with more than one chunk: partial dW per chunk, [chunk][group][K/G][J].
    let partials: WorkspaceRegion<Float>
    let gemmScratch: WorkspaceRegion<UInt8>
    let summary: PlanDescription

    /// Tasks the backward-weights split aims for, whatever the thread count (see `chunks`).
    static let weightTasks = 8
    /// Rows per block when `rows` rows are cut into `blocks` blocks of whole 6-row panels (the engine's register tile).
    static func panelRows(_ rows: Int, blocks: Int) -> Int { ((rows + blocks - 1) / blocks + 5) / 6 * 6 }

    /// Fewest positions a backward-weights chunk sums.
    static let minimumChunkPositions = 384

    init(descriptor d: ConvolutionDescriptor, pass: ConvolutionPass, options: PlanOptions) throws {
        descriptor = d
        self.pass = pass
        threads = options.threads
        let multiplier = options.matrixEngine.makeMultiplier()
        let (J, Kg, RS) = (d.reductionLength, d.outputChannelsPerGroup, d.kernelHeight * d.kernelWidth)
        let positions = d.outputHeight * d.outputWidth
        isPointwise = RS == 1 && d.isStrideOne && d.padding.isZero
        let what = "the im2col \(pass) workspace"
        var layout = WorkspaceLayout()
        let gemmBytes: Int
        if pass == .backwardData && isPointwise {
            // dx = Wᵀ·dY straight into dx: every channel at once (a full-height product), split into `chunks` pieces
            // of positions instead, as many as make `weightTasks` tasks.
            let independent = d.batch * d.groups
            // Whole 64-column strips per chunk (the engine's unpacked path copies a ragged strip for every k):
            // 56² is 49 strips, 8 chunks of 392 columns had a 8-column sliver each, 7 of 448 have none.
            let wanted = max(1, min((Self.weightTasks + independent - 1) / independent, positions / 256))
            let strips = (positions + 63) / 64
            let stripsPerChunk = (strips + wanted - 1) / wanted
            chunks = (strips + stripsPerChunk - 1) / stripsPerChunk
            // A map too small to chunk (14² is 196 positions: one task, one thread idle) is split over blocks of dx's
            // channels instead, whole 6-row panels, in whole rounds of the threads (5 blocks on 2 threads ran 3:2);
            // each element of dx is still one product's sum, so the split never changes the result.
            var rowBlocks = max(1, min((Self.weightTasks + independent * chunks - 1) / (independent * chunks), J / 48))
            if independent * chunks == 1 && rowBlocks > threads { rowBlocks -= rowBlocks % threads }
            blockRows = Self.panelRows(J, blocks: rowBlocks)
            blocks = (J + blockRows - 1) / blockRows
            tasks = independent * chunks * blocks
            (outputRowsPerBlock, outputRowBlocks) = (Kg, 1)
        } else if pass == .backwardData {
            // Enough blocks of whole channels (a task owns its planes of dx) for 4 tasks per thread.
            let independent = d.batch * d.groups
            let units = J / RS
            // A 1×1 kernel (strided: not pointwise) reads all of dY per block, so one block per thread.
            let perThread = RS == 1 ? 1 : 4
            let wanted = min(units, max(1, (perThread * threads + independent - 1) / independent))
            let unitsPerBlock = (units + wanted - 1) / wanted
            blockRows = unitsPerBlock * RS
            blocks = (units + unitsPerBlock - 1) / unitsPerBlock
            chunks = 1
            tasks = independent * blocks
            (outputRowsPerBlock, outputRowBlocks) = (Kg, 1)
        } else {
            // dW blocks of whole 64-column panels (the engine's B panels), then chunks of the reduction until
            // there are `weightTasks` tasks.
            let length = try CheckedArithmetic.product([d.batch, positions], what: what)
            func split(width: Int, rowBlocks: Int) -> (blocks: Int, chunks: Int) {
                let blocks = (J + width - 1) / width
                let independent = d.groups * blocks * rowBlocks
                let wanted = (Self.weightTasks + independent - 1) / independent
                return (blocks, max(1, min(wanted, length / Self.minimumChunkPositions)))
            }
            func rowsPerBlock(_ rowBlocks: Int) -> Int { Self.panelRows(Kg, blocks: rowBlocks) }
            var width = J <= 64 ? J : min(J, max(64, ((J + Self.weightTasks - 1) / Self.weightTasks + 63) / 64 * 64))
            var rowBlocks = 1
            if isPointwise {
                // No lowering: the product's A is dY (K/G × N·Ho·Wo), packed once per block of dW columns; its B is x
                // (J × N·Ho·Wo), packed once per block of dW rows; each chunk adds a partial dW (written and read).
                // Take the split that moves the fewest floats with no fewer tasks than the default: wide blocks and
                // more chunks where dY is large and the map long (ResNet-50's 256→64 at 56²: 1 block and 8 chunks,
                // not 4 and 2), blocks of dW rows where the map is too short to chunk (256→1024 at 14²: 4 blocks of
                // 258 rows, not 4 of 64 columns, which packed dY 4 times).
                func cost(_ width: Int, _ rowBlocks: Int) -> (tasks: Int, moved: Int) {
                    let (blocks, chunks) = split(width: width, rowBlocks: rowBlocks)
                    let actualRowBlocks = (Kg + rowsPerBlock(rowBlocks) - 1) / rowsPerBlock(rowBlocks)
                    return (actualRowBlocks * blocks * chunks,
                            blocks * Kg * length + actualRowBlocks * J * length + chunks * Kg * J * 2)
                }
                let needed = cost(width, 1).tasks
                var best = cost(width, 1).moved
                let widths = J > 64 ? Array(stride(from: 64, to: J, by: 64)) + [J] : [J]
                for candidate in widths {
                    for rows in [1, 2, 4, 8] where rows == 1 || Kg >= 12 * rows {
                        let (tasks, moved) = cost(candidate, rows)
                        if tasks >= needed && moved < best { (width, rowBlocks, best) = (candidate, rows, moved) }
                    }
                }
            }
            blockRows = width
            outputRowsPerBlock = rowsPerBlock(rowBlocks)
            outputRowBlocks = (Kg + outputRowsPerBlock - 1) / outputRowsPerBlock
            (blocks, chunks) = split(width: width, rowBlocks: rowBlocks)
            tasks = d.groups * blocks * chunks * outputRowBlocks
        }
        workers = Parallel.workers(threads: threads, tasks: tasks)
        // A tile's column block in about half of a 1 MiB L2, whole 16-column multiples (pointwise backward-data: one
        // chunk's positions).
        let fit = (Im2colGeometry.columnBufferBytes / MemoryLayout<Float>.stride / max(blockRows, 1)) / 16 * 16
        tileColumns = pass == .backwardData && isPointwise ? min(positions, (((positions + 63) / 64 + chunks - 1) / chunks) * 64)
            : min(positions, max(fit, 64))
        let lowers = !(isPointwise && pass == .backwardWeights)
        columns = try layout.reserve(Float.self, count: lowers ? try CheckedArithmetic.product([blockRows, tileColumns],
                                                                                              what: what) : 0,
                                     workers: workers, what: what)
        if pass == .backwardWeights {
            partials = try layout.reserve(Float.self, count: chunks > 1 ? try CheckedArithmetic.product(
                [chunks, d.groups, Kg, J], what: what) : 0, what: what)
            gemmBytes = multiplier.workspaceBytes(m: outputRowsPerBlock, n: blockRows, k: tileColumns)
        } else {
            partials = try layout.reserve(Float.self, count: 0)
            gemmBytes = multiplier.workspaceBytes(m: blockRows, n: tileColumns, k: Kg)
        }
        gemmScratch = try layout.reserve(UInt8.self, count: gemmBytes, workers: workers, what: what)
        try ResourceLimits.check(what, bytes: layout.byteCount, limit: options.limits.maxWorkspaceBytes)
        let reduction = d.reductionLength(for: pass)
        // Separate products added into one element: backward-data's col2im adds one K/G-term product per tap;
        // backward-weights adds one product per image and tile, then the chunks' partials.
        let sums = pass == .backwardData ? RS
            : d.batch * ((positions + tileColumns - 1) / max(tileColumns, 1)) + chunks
        // backward-weights' products are K/G × (a block of J) on the engine's register tiles, 6 rows by 16-column
        // vectors (ragged strips run only their vectors): the padding of both is computed. Unpriced, the calibration's
        // 8-output-channel and 3-input-channel layers pushed this class's correction to 1.8, which then priced the wide
        // 1×1 layers of real networks twice too slow.
        let paddedFLOPs = 2 * Double(d.batch * d.groups * positions) * Double(outputRowBlocks * outputRowsPerBlock)
            * Double(blocks * ((blockRows + 15) / 16 * 16))
        let gemm: WorkEstimate.Stage = pass == .backwardData
            ? .gemm(flops: Double(d.directFLOPs), m: blockRows, n: tileColumns, k: Kg, tasks: tasks)
            // n: the computed (padded) columns, like the FLOPs: the per-call overhead is spread over the work done.
            // Priced at the useful width, a single-channel 1×1 layer's one column paid for its padding twice (the
            // estimate 6–10× its time).
            : .gemm(flops: max(paddedFLOPs, Double(d.directFLOPs)), m: outputRowsPerBlock, n: (blockRows + 15) / 16 * 16,
                    k: tileColumns, tasks: tasks)
        let lowered = isPointwise ? 0 : Double(J) * Double(positions) * Double(d.batch * d.groups) * 4 * 2
        let reduced = pass == .backwardWeights ? Double(chunks - 1) * Double(d.weightCount) * 4 * 2 : 0
        summary = PlanDescription(
            backend: "im2col", pass: pass,
            variant: (isPointwise ? "pointwise, " : "") + "\(blocks) blocks of \(blockRows) rows"
                + (outputRowBlocks > 1 ? " × \(outputRowBlocks) of \(outputRowsPerBlock) output channels" : "")
                + (chunks > 1 ? ", \(chunks) chunks" : ""),
            errorBound: options.matrixEngine.errorBound(depth: reduction, calls: sums),
            errorSource: options.matrixEngine.errorSource,
            typicalError: options.matrixEngine.typicalError(depth: reduction, calls: sums),
            workspaceBytes: layout.byteCount,
            persistentBytes: pass == .backwardData ? d.weightCount * 4 : 0,
            work: WorkEstimate([.memory(bytes: lowered + reduced), gemm]))
        try options.accuracy.admit(summary)
    }
}

struct Im2colBackwardDataPlan: PassPlan {
    let geometry: Im2colGradientGeometry
    /// Wᵀ per group: [group][j][k], J = (C/G)·R·S rows of K/G.
    let transposedWeights: [Float]
    let multiplier: any MatrixMultiplier

    var descriptor: ConvolutionDescriptor { geometry.descriptor }
    var summary: PlanDescription { geometry.summary }

    init(geometry: Im2colGradientGeometry, weights: Tensor<Float>, multiplier: any MatrixMultiplier) {
        self.geometry = geometry
        self.multiplier = multiplier
        let d = geometry.descriptor
        let (J, Kg) = (d.reductionLength, d.outputChannelsPerGroup)
        let w = weights.scalars
        var t = [Float](repeating: 0, count: d.groups * J * Kg)
        for g in 0..<d.groups {
            for k in 0..<Kg {
                for j in 0..<J { t[(g * J + j) * Kg + k] = w[(g * Kg + k) * J + j] }
            }
        }
        transposedWeights = t
    }

    func execute(_ operands: PassOperands, workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?) throws {
        try validate(operands, workspace: workspace)
        let (d, geometry) = (descriptor, geometry)
        let (J, Kg, Cg, RS) = (d.reductionLength, d.outputChannelsPerGroup, d.channelsPerGroup,
                               d.kernelHeight * d.kernelWidth)
        let (positions, plane) = (d.outputHeight * d.outputWidth, d.inputHeight * d.inputWidth)
        let lowering = Im2colLowering(descriptor: d)
        let shared = UncheckedSendable((operands.input.baseAddress!, operands.output.baseAddress!, workspace))
        measurePhase("multiply + col2im", in: profile) {
            transposedWeights.withUnsafeBufferPointer { wt in
                let weights = UncheckedSendable(wt.baseAddress!)
                Parallel.forEach(taskCount: geometry.tasks, threads: geometry.workers) { worker, task in
                    let (dy, dx, workspace) = shared.value
                    let block = task % geometry.blocks
                    let image = task / (geometry.blocks * geometry.chunks)
                    let (n, g) = (image / d.groups, image % d.groups)
                    let rows = (block * geometry.blockRows)..<min((block + 1) * geometry.blockRows, J)
                    let planes = dx + (n * d.inputChannels + g * Cg) * plane
                    let gradient = dy + (n * d.outputChannels + g * Kg) * positions
                    let scratch = geometry.gemmScratch.bytes(in: workspace, worker: worker)
                    let a = weights.value + (g * J + rows.lowerBound) * Kg
                    if geometry.isPointwise {
                        // col2im is the identity: Wᵀ·dY for this chunk's positions lands in dx's planes.
                        let q0 = (task / geometry.blocks) % geometry.chunks * geometry.tileColumns
                        multiplier.multiply(m: rows.count, n: min(geometry.tileColumns, positions - q0), k: Kg, a: a,
                                            lda: Kg, b: gradient + q0, ldb: positions,
                                            c: planes + rows.lowerBound * plane + q0, ldc: plane,
                                            accumulate: false, workspace: scratch)
                        return
                    }
                    (planes + rows.lowerBound / RS * plane).update(repeating: 0, count: rows.count / RS * plane)
                    let col = geometry.columns.pointer(in: workspace, worker: worker)
                    var q0 = 0
                    while q0 < positions {
                        let width = min(geometry.tileColumns, positions - q0)
                        multiplier.multiply(m: rows.count, n: width, k: Kg, a: a, lda: Kg, b: gradient + q0,
                                            ldb: positions, c: col, ldc: width, accumulate: false, workspace: scratch)
                        lowering.scatterAdd(col, leadingDimension: width, firstColumn: q0, width: width, rows: rows,
                                            into: planes)
                        q0 += width
                    }
                }
            }
        }
    }
}

struct Im2colBackwardWeightsPlan: PassPlan {
    let geometry: Im2colGradientGeometry
    let multiplier: any MatrixMultiplier

    var descriptor: ConvolutionDescriptor { geometry.descriptor }
    var summary: PlanDescription { geometry.summary }

    func execute(_ operands: PassOperands, workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?) throws {
        try validate(operands, workspace: workspace)
        let (d, geometry) = (descriptor, geometry)
        let (J, Kg, Cg) = (d.reductionLength, d.outputChannelsPerGroup, d.channelsPerGroup)
        let (positions, plane) = (d.outputHeight * d.outputWidth, d.inputHeight * d.inputWidth)
        let length = d.batch * positions
        let (blocks, chunks) = (geometry.blocks, geometry.chunks)
        let lowering = Im2colLowering(descriptor: d)
        let shared = UncheckedSendable((operands.input.baseAddress!, operands.gradOutput.baseAddress!,
                                        operands.output.baseAddress!, workspace))
        measurePhase("lower + multiply", in: profile) {
            Parallel.forEach(taskCount: geometry.tasks, threads: geometry.workers) { worker, task in
                let (x, dy, dw, workspace) = shared.value
                let block = task % blocks
                let chunk = (task / blocks) % chunks
                let rowBlock = (task / (blocks * chunks)) % geometry.outputRowBlocks
                let g = task / (blocks * chunks * geometry.outputRowBlocks)
                let rows = (block * geometry.blockRows)..<min((block + 1) * geometry.blockRows, J)
                let k0 = rowBlock * geometry.outputRowsPerBlock
                let outputRows = min(geometry.outputRowsPerBlock, Kg - k0)
                let col = geometry.columns.pointer(in: workspace, worker: worker)
                let scratch = geometry.gemmScratch.bytes(in: workspace, worker: worker)
                // This task's columns of dW (or of its chunk's partial dW), K/G rows J apart.
                let target = (chunks > 1 ? geometry.partials.pointer(in: workspace) + (chunk * d.groups + g) * Kg * J
                                         : dw + g * Kg * J) + k0 * J + rows.lowerBound
                // Positions start..<end of the batch, cut at image and tile boundaries.
                var position = chunk * length / chunks
                let end = (chunk + 1) * length / chunks
                var first = true
                while position < end {
                    let (n, q0) = (position / positions, position % positions)
                    let width = min(geometry.tileColumns, positions - q0, end - position)
                    let input = x + (n * d.inputChannels + g * Cg) * plane
                    // dW[:, rows] (+)= dY[:, q0..<q0 + width] · col[rows, q0..<q0 + width]ᵀ.
                    let b: UnsafePointer<Float>, ldb: Int
                    if geometry.isPointwise {
                        (b, ldb) = (input + rows.lowerBound * plane + q0, plane)
                    } else {
                        lowering.lower(input, into: col, leadingDimension: width, firstColumn: q0, width: width,
                                       rows: rows)
                        (b, ldb) = (UnsafePointer(col), width)
                    }
                    multiplier.multiplyTransposedB(m: outputRows, n: rows.count, k: width,
                                                   a: dy + (n * d.outputChannels + g * Kg + k0) * positions + q0,
                                                   lda: positions, b: b, ldb: ldb, c: target, ldc: J,
                                                   accumulate: !first, workspace: scratch)
                    first = false
                    position += width
                }
                if first {  // an empty chunk (never planned, but its partial must still be zero)
                    for k in 0..<outputRows { (target + k * J).update(repeating: 0, count: rows.count) }
                }
            }
        }
        guard chunks > 1 else { return }
        // dW = Σ partials in chunk order, a row of dW per task.
        measurePhase("sum chunks", in: profile) {
            Parallel.forEach(taskCount: d.groups * Kg, threads: geometry.threads) { _, row in
                let (_, _, dw, workspace) = shared.value
                let partials = geometry.partials.pointer(in: workspace)
                let target = dw + row * J
                target.update(from: partials + row * J, count: J)
                for chunk in 1..<chunks {
                    let source = partials + chunk * d.groups * Kg * J + row * J
                    for j in 0..<J { target[j] += source[j] }
                }
            }
        }
    }
}

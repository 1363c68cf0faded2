import ConvLabCore
import ConvLabMatMul

/// im2col's backward passes, every feature (stride, padding, dilation, groups, batch), GEMMs on the matrix engine.
///
/// backward-data: per image and group, col = Wᵀ·dY ((C/G)·R·S × Ho·Wo), then col2im adds each column entry back
/// into the input position it was lowered from. Tasks are (image, group, block of input channels): a task computes
/// only its channels' rows of col, tile by tile of output columns, and adds them into its own planes of dx — no two
/// tasks write one element, and the adds run in a fixed order, so the result is deterministic at any thread count.
///
/// backward-weights: dW = Σ_n dY_n · colₙᵀ. Tasks are (group, block of columns j = (c, r, s) of dW): a task lowers
/// only its rows of col for each image and tile, forms dYᵀ of the tile, and accumulates dWᵀ_block += col · dYᵀ in
/// its workspace (the engine multiplies untransposed operands), then writes its block of dW. The batch is summed
/// inside the GEMM's accumulation, in image then tile order.
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
    /// Rows j = (c, r, s) per block: whole input channels (backward-data) or any run of columns of dW (weights).
    let blockRows: Int
    let blocks: Int
    let tileColumns: Int
    let tasks: Int
    let workers: Int
    let columns: WorkspaceRegion<Float>
    /// backward-weights: dYᵀ of one tile and the block's accumulated dWᵀ.
    let transposedGradient: WorkspaceRegion<Float>
    let accumulated: WorkspaceRegion<Float>
    let gemmScratch: WorkspaceRegion<UInt8>
    let summary: PlanDescription

    init(descriptor d: ConvolutionDescriptor, pass: ConvolutionPass, options: PlanOptions) throws {
        descriptor = d
        self.pass = pass
        threads = options.threads
        let multiplier = options.matrixEngine.makeMultiplier()
        let (J, Kg, RS) = (d.reductionLength, d.outputChannelsPerGroup, d.kernelHeight * d.kernelWidth)
        let positions = d.outputHeight * d.outputWidth
        let independent = pass == .backwardData ? d.batch * d.groups : d.groups
        // Enough blocks for 4 tasks per thread; backward-data blocks hold whole channels (a task owns its planes).
        let unit = pass == .backwardData ? RS : 1
        let units = J / unit
        let wanted = min(units, max(1, (4 * threads + independent - 1) / independent))
        let unitsPerBlock = (units + wanted - 1) / wanted
        blockRows = unitsPerBlock * unit
        blocks = (units + unitsPerBlock - 1) / unitsPerBlock
        tasks = independent * blocks
        workers = Parallel.workers(threads: threads, tasks: tasks)
        // A tile's column block in about half of a 1 MiB L2, whole 16-column multiples.
        let fit = (Im2colGeometry.columnBufferBytes / MemoryLayout<Float>.stride / max(blockRows, 1)) / 16 * 16
        tileColumns = min(positions, max(fit, 64))
        let what = "the im2col \(pass) workspace"
        var layout = WorkspaceLayout()
        columns = try layout.reserve(Float.self, count: try CheckedArithmetic.product([blockRows, tileColumns], what: what),
                                     workers: workers, what: what)
        let gemmBytes: Int
        if pass == .backwardWeights {
            transposedGradient = try layout.reserve(Float.self, count: tileColumns * Kg, workers: workers, what: what)
            accumulated = try layout.reserve(Float.self, count: blockRows * Kg, workers: workers, what: what)
            gemmBytes = multiplier.workspaceBytes(m: blockRows, n: Kg, k: tileColumns)
        } else {
            transposedGradient = try layout.reserve(Float.self, count: 0)
            accumulated = try layout.reserve(Float.self, count: 0)
            gemmBytes = multiplier.workspaceBytes(m: blockRows, n: tileColumns, k: Kg)
        }
        gemmScratch = try layout.reserve(UInt8.self, count: gemmBytes, workers: workers, what: what)
        try ResourceLimits.check(what, bytes: layout.byteCount, limit: options.limits.maxWorkspaceBytes)
        let reduction = d.reductionLength(for: pass)
        let gemm: WorkEstimate.Stage = pass == .backwardData
            ? .gemm(flops: Double(d.directFLOPs), m: blockRows, n: tileColumns, k: Kg, tasks: tasks)
            : .gemm(flops: Double(d.directFLOPs), m: blockRows, n: Kg, k: tileColumns, tasks: tasks)
        let lowered = Double(J) * Double(positions) * Double(d.batch * d.groups) * 4 * 2
        summary = PlanDescription(
            backend: "im2col", pass: pass, variant: "\(blocks) blocks of \(blockRows) rows",
            errorBound: dotProductErrorBound(terms: reduction) * options.matrixEngine.errorGrowth,
            workspaceBytes: layout.byteCount,
            persistentBytes: pass == .backwardData ? d.weightCount * 4 : 0,
            work: WorkEstimate([.memory(bytes: lowered), gemm]))
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
                    let (n, g) = ((task / geometry.blocks) / d.groups, (task / geometry.blocks) % d.groups)
                    let rows = (block * geometry.blockRows)..<min((block + 1) * geometry.blockRows, J)
                    let planes = dx + (n * d.inputChannels + g * Cg) * plane
                    (planes + rows.lowerBound / RS * plane).update(repeating: 0, count: rows.count / RS * plane)
                    let col = geometry.columns.pointer(in: workspace, worker: worker)
                    let gradient = dy + (n * d.outputChannels + g * Kg) * positions
                    var q0 = 0
                    while q0 < positions {
                        let width = min(geometry.tileColumns, positions - q0)
                        multiplier.multiply(m: rows.count, n: width, k: Kg,
                                            a: weights.value + (g * J + rows.lowerBound) * Kg, lda: Kg,
                                            b: gradient + q0, ldb: positions, c: col, ldc: width, accumulate: false,
                                            workspace: geometry.gemmScratch.bytes(in: workspace, worker: worker))
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
        let lowering = Im2colLowering(descriptor: d)
        let shared = UncheckedSendable((operands.input.baseAddress!, operands.gradOutput.baseAddress!,
                                        operands.output.baseAddress!, workspace))
        measurePhase("lower + multiply", in: profile) {
            Parallel.forEach(taskCount: geometry.tasks, threads: geometry.workers) { worker, task in
                let (x, dy, dw, workspace) = shared.value
                let (g, block) = (task / geometry.blocks, task % geometry.blocks)
                let rows = (block * geometry.blockRows)..<min((block + 1) * geometry.blockRows, J)
                let col = geometry.columns.pointer(in: workspace, worker: worker)
                let transposed = geometry.transposedGradient.pointer(in: workspace, worker: worker)
                let accumulated = geometry.accumulated.pointer(in: workspace, worker: worker)
                var first = true
                for n in 0..<d.batch {
                    let input = x + (n * d.inputChannels + g * Cg) * plane
                    let gradient = dy + (n * d.outputChannels + g * Kg) * positions
                    var q0 = 0
                    while q0 < positions {
                        let width = min(geometry.tileColumns, positions - q0)
                        lowering.lower(input, into: col, leadingDimension: width, firstColumn: q0, width: width,
                                       rows: rows)
                        for q in 0..<width {
                            for k in 0..<Kg { transposed[q * Kg + k] = gradient[k * positions + q0 + q] }
                        }
                        multiplier.multiply(m: rows.count, n: Kg, k: width, a: col, lda: width, b: transposed, ldb: Kg,
                                            c: accumulated, ldc: Kg, accumulate: !first,
                                            workspace: geometry.gemmScratch.bytes(in: workspace, worker: worker))
                        first = false
                        q0 += width
                    }
                }
                // dWᵀ block → dW[g·K/G + k][j].
                for (local, j) in rows.enumerated() {
                    for k in 0..<Kg { dw[(g * Kg + k) * J + j] = accumulated[local * Kg + k] }
                }
            }
        }
    }
}

import ConvLabCore
import ConvLabMatMul

/// `im2col`'s plan for 1×1 layers on small maps: the product transposed, Yᵀ[Ho·Wo × K] = Xᵀ · Wᵀ, so that output
/// channels, not output positions, run along the GEMM's 64-column strips. A 14×14 map is 196 positions: as columns
/// that is 3 full strips and one of 4 (77% of the computed lanes used); ResNet-50's 1024 output channels fill all 16.
/// X is read in place as the transposed operand (C × Ho·Wo is Xᵀ stored k × m), Wᵀ is formed at plan time, and each
/// task's Ho·Wo × 16k block goes to the NCHW output through 16×16 register transposes. A strided 1×1 layer first
/// subsamples its input into a shared buffer (the lowering of a 1×1 kernel), a quarter of the input at stride 2.
struct PointwiseTransposedPlan: ConvolutionPlan {
    let geometry: PointwiseTransposedGeometry
    /// Wᵀ per group: [g][c][k], (C/G) × (K/G).
    let transposedWeights: [Float]
    let multiplier: any MatrixMultiplier

    var descriptor: ConvolutionDescriptor { geometry.descriptor }
    var summary: PlanDescription { geometry.summary }

    init(geometry: PointwiseTransposedGeometry, weights: Tensor<Float>, multiplier: any MatrixMultiplier) {
        self.geometry = geometry
        self.multiplier = multiplier
        let d = geometry.descriptor
        let (cg, kg) = (d.channelsPerGroup, d.outputChannelsPerGroup)
        var transposed = [Float](repeating: 0, count: d.weightCount)
        weights.withUnsafeBufferPointer { w in
            for g in 0..<d.groups {
                for k in 0..<kg {
                    for c in 0..<cg { transposed[(g * cg + c) * kg + k] = w[(g * kg + k) * cg + c] }
                }
            }
        }
        transposedWeights = transposed
    }

    func execute(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
                 workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?) throws {
        try validateBuffers(input: input, output: output, workspace: workspace)
        let (d, g) = (descriptor, geometry)
        let positions = d.outputHeight * d.outputWidth
        let (cg, kg) = (d.channelsPerGroup, d.outputChannelsPerGroup)
        let shared = UncheckedSendable((input.baseAddress!, output.baseAddress!, workspace))
        let planes = d.batch * d.groups
        if g.subsamples {
            measurePhase("subsample", in: profile) {
                Parallel.forEach(taskCount: planes * cg, threads: g.workers) { _, task in
                    let (x, _, workspace) = shared.value
                    let (plane, c) = (task / cg, task % cg)
                    let source = x + (plane * cg + c) * d.inputHeight * d.inputWidth
                    Im2colLowering(descriptor: d).lower(source, into: g.subsampled.pointer(in: workspace)
                                                            + (plane * cg + c) * positions,
                                                        leadingDimension: positions, firstColumn: 0, width: positions,
                                                        rows: 0..<1)
                }
            }
        }
        measurePhase("multiply + transpose", in: profile) {
            transposedWeights.withUnsafeBufferPointer { w in
                let weights = UncheckedSendable(w.baseAddress!)
                let tasksPerPlane = g.channelBlocks * g.positionChunks
                Parallel.forEach(taskCount: planes * tasksPerPlane, threads: g.workers) { worker, task in
                    let (x, y, workspace) = shared.value
                    let plane = task / tasksPerPlane
                    let (block, chunk) = ((task % tasksPerPlane) / g.positionChunks, task % g.positionChunks)
                    let group = plane % d.groups
                    let k0 = block * g.blockChannels, q0 = chunk * g.chunkPositions
                    let count = min(g.blockChannels, kg - k0), rows = min(g.chunkPositions, positions - q0)
                    let source = g.subsamples
                        ? UnsafePointer(g.subsampled.pointer(in: workspace)) + plane * cg * positions
                        : x + plane * cg * d.inputHeight * d.inputWidth
                    let product = g.product.pointer(in: workspace, worker: worker)
                    multiplier.multiplyTransposedA(
                        m: rows, n: count, k: cg, a: source + q0, lda: positions,
                        b: weights.value + group * cg * kg + k0, ldb: kg, c: product, ldc: count, accumulate: false,
                        workspace: g.gemmScratch.bytes(in: workspace, worker: worker))
                    let n = plane / d.groups
                    transposeBlock(product, positions: rows, channels: count,
                                   into: y + (n * d.outputChannels + group * kg + k0) * positions + q0,
                                   outputStride: positions)
                }
            }
        }
    }

    /// product[q][k] (row-major, `channels` wide) → output[k·outputStride + q].
    private func transposeBlock(_ product: UnsafePointer<Float>, positions: Int, channels: Int,
                                into output: UnsafeMutablePointer<Float>, outputStride: Int) {
        let (fullQ, fullK) = (positions / 16 * 16, channels / 16 * 16)
        var k0 = 0
        while k0 < fullK {
            var q0 = 0
            while q0 < fullQ {
                Transpose16.transpose(product + q0 * channels + k0, stride: channels,
                                      into: output + k0 * outputStride + q0, stride: outputStride)
                q0 += 16
            }
            for k in k0..<(k0 + 16) {
                for q in fullQ..<positions { output[k * outputStride + q] = product[q * channels + k] }
            }
            k0 += 16
        }
        for k in fullK..<channels {
            for q in 0..<positions { output[k * outputStride + q] = product[q * channels + k] }
        }
    }
}

/// When the transposed product pays, and its task split and workspace.
struct PointwiseTransposedGeometry: Sendable {
    let descriptor: ConvolutionDescriptor
    /// Strided layers subsample the input first.
    let subsamples: Bool
    /// Output channels per task (a multiple of 16, so whole register transposes carry it out).
    let blockChannels: Int
    let channelBlocks: Int
    /// Output positions per task (whole 6-row panels, or all of them): see `chunkPositions` (a 14² map with 64
    /// output channels was one task: no speed-up from the second thread).
    let chunkPositions: Int
    let positionChunks: Int
    let workers: Int
    let subsampled: WorkspaceRegion<Float>
    let product: WorkspaceRegion<Float>
    let gemmScratch: WorkspaceRegion<UInt8>
    let summary: PlanDescription

    /// 1×1 kernels without padding (any stride; dilation does not matter for one tap), with enough channels to fill
    /// vectors, where output channels fill the GEMM's 64-wide strips better than output positions do: the share of
    /// computed lanes that are real is positions/⌈positions/64⌉·64 one way and K/G over ⌈K/G / 64⌉·64 (times the
    /// 6-row panels' use of the positions) the other. Only for shallow reductions: the transposed operand is read a
    /// few floats per row of C/G, and in alternated runs (Intel kind, 2 threads) the plan was 1.3–1.5× faster at
    /// C/G = 112–320 (EfficientNet's, ShuffleNet's, MobileNetV2's 14² and 7² layers), even at 256 and 1.1–1.2×
    /// slower at 512–2048 (ResNet-50's).
    /// Maps under 64 positions are the exception: there the NCHW product is one ragged strip, which every task of
    /// its output-channel split copies (MobileNetV2's 960→160 layer at 7²: 8 copies of 240 KiB for 15 MFLOP, no
    /// speed-up from a second thread), so up to the depth the native GEMM reads in place (1152) the transposed
    /// product is used there whatever the lanes say.
    static let deepestReduction = 384
    static let deepestReductionOnSmallMaps = 1152

    static func applies(to d: ConvolutionDescriptor) -> Bool {
        let smallMap = d.outputHeight * d.outputWidth < 64
        guard d.kernelHeight == 1, d.kernelWidth == 1, d.padding.isZero, d.channelsPerGroup >= 16,
              d.channelsPerGroup <= (smallMap ? deepestReductionOnSmallMaps : deepestReduction),
              d.outputChannelsPerGroup >= 16 else { return false }
        let positions = d.outputHeight * d.outputWidth
        let kg = d.outputChannelsPerGroup
        func use(_ n: Int, _ block: Int) -> Double { Double(n) / Double((n + block - 1) / block * block) }
        return positions < 64 || use(kg, 64) * use(positions, 6) > use(positions, 64) * 1.05
    }

    /// Positions per task. Few (plane, channel block) tasks that the threads cannot share evenly — MobileNetV2's
    /// 960→160 layer at 7² is three 64-channel blocks on two threads, one thread idle a third of the time — are
    /// split along positions as well, into chunks of whole 6-row panels of at least 12 positions, until the tasks fill
    /// the threads evenly or number four per thread; fewer than two per thread are then doubled.
    static func chunkPositions(positions: Int, tasks: Int, threads: Int) -> Int {
        guard threads > 1 else { return positions }
        var chunks = 1
        while tasks * chunks < 4 * threads && (tasks * chunks) % threads != 0 && positions / (chunks + 1) >= 12 {
            chunks += 1
        }
        if tasks * chunks < 2 * threads && positions / (2 * chunks) >= 24 { chunks *= 2 }
        return chunks == 1 ? positions : ((positions + chunks - 1) / chunks + 5) / 6 * 6
    }

    init(descriptor d: ConvolutionDescriptor, options: PlanOptions) throws {
        descriptor = d
        subsamples = !d.isStrideOne
        let positions = d.outputHeight * d.outputWidth
        let (planes, kg) = (d.batch * d.groups, d.outputChannelsPerGroup)
        // Blocks of whole strips where possible, enough of them for 4 tasks per thread when the planes are few.
        let wantedBlocks = max(1, (4 * options.threads + planes - 1) / planes)
        let strips = (kg + 63) / 64
        let blocks = min(wantedBlocks, strips)
        blockChannels = min(kg, ((strips + blocks - 1) / blocks * 64 + 15) / 16 * 16)
        channelBlocks = (kg + blockChannels - 1) / blockChannels
        chunkPositions = Self.chunkPositions(positions: positions, tasks: planes * channelBlocks, threads: options.threads)
        positionChunks = (positions + chunkPositions - 1) / chunkPositions
        workers = Parallel.workers(threads: options.threads, tasks: planes * channelBlocks * positionChunks)
        let what = "the pointwise workspace"
        var layout = WorkspaceLayout()
        subsampled = try layout.reserve(Float.self, count: subsamples
            ? try CheckedArithmetic.product([d.batch, d.inputChannels, positions], what: what) : 0, what: what)
        product = try layout.reserve(Float.self, count: try CheckedArithmetic.product([chunkPositions, blockChannels],
                                                                                     what: what),
                                     workers: workers, what: what)
        let multiplier = options.matrixEngine.makeMultiplier()
        gemmScratch = try layout.reserve(UInt8.self, count: multiplier.workspaceBytes(m: chunkPositions, n: blockChannels,
                                                                                      k: d.channelsPerGroup),
                                         workers: workers, what: what)
        try ResourceLimits.check(what, bytes: layout.byteCount, limit: options.limits.maxWorkspaceBytes)
        // Memory passes: the strided input's subsampling only. The product block goes to the output through register
        // transposes while it is in L1/L2, as any plan writes its output; priced at memory speed, as it was, it made
        // the selector keep `direct` on 14² layers where this plan is 1.4–1.8× faster.
        let moved = Double(subsamples ? d.batch * d.inputChannels * positions * 2 : 0)
        summary = PlanDescription(
            backend: "im2col", variant: "pointwise transposed",
            errorBound: options.matrixEngine.errorBound(depth: d.channelsPerGroup),
            errorSource: options.matrixEngine.errorSource,
            typicalError: options.matrixEngine.typicalError(depth: d.channelsPerGroup),
            workspaceBytes: layout.byteCount, persistentBytes: d.weightCount * 4,
            work: WorkEstimate([.memory(bytes: moved * 4),
                                .gemm(flops: Double(d.directFLOPs), m: chunkPositions, n: blockChannels,
                                      k: d.channelsPerGroup, tasks: planes * channelBlocks * positionChunks)]))
        try options.accuracy.admit(summary)
    }
}

import ConvLabCore

/// The direct backend's backward-data pass for strided depthwise layers of 16+ channels, vectorised across channels,
/// without the inserted zeros. As a forward problem on zero-inserted dy (`DataGradientAsForward`) a stride-2 layer
/// multiplies four times the products it needs, and as stride-1 phases (`DataGradientAsPhases`) it repeats the passes
/// over dy and dx per phase — both ran MobileNetV2's and ShuffleNet's strided depthwise layers at 0.17–0.30× oneDNN.
///
/// With ih + pt = sh·q + a and iw + pl = sw·p + b, dx[ih][iw] = Σ_{u,v} dy[q − u][p − v] ⊙ w[a + sh·u][b + sw·v]
/// over the taps of the position's phase (a + sh·u < R, b + sw·v < S): about R·S/(sh·sw) products each, 16 channels a
/// vector. A task is a band of dx rows of one image and block of 16 channels: it transposes the dy rows the band reads
/// into a zero-margined [row][column][16] buffer, computes each dx row phase by phase, 8 positions of one column phase
/// at a time on 8 accumulators (one weight vector load per tap, one dy load per tap and position), and transposes the
/// band back into the 16 dx planes. On nChw16c tensors (`executeBlocked`) the band reads dy's rows and writes dx's
/// rows where they are, without the transpositions. Each dx element sums its taps in (u, v) order, so no result depends on the thread
/// count. Dilated layers keep zero insertion.
struct ChannelBlockedDepthwiseDataGradientGeometry: Sendable {
    let descriptor: ConvolutionDescriptor
    let channelBlocks: Int
    let taps: Int
    /// Zero columns before dy's first column and after its last in the band buffer (taps reach back ⌈S/sw⌉ − 1
    /// columns; a block of 8 positions reads up to 7 past the last one).
    let leftMargin: Int
    let bufferWidth: Int
    let bandRows: Int
    let bandsPerBlock: Int
    /// dy rows (plus margin rows) a band reads: rows q − (⌈R/sh⌉ − 1) … q of every dx row in it.
    let gradientRows: Int
    let tasks: Int
    let workers: Int
    let stage: WorkspaceRegion<Float>
    let gradient: WorkspaceRegion<Float>
    let result: WorkspaceRegion<Float>
    let summary: PlanDescription

    /// Depthwise (one input and one output channel per group), 16+ channels, stride > 1, no dilation.
    static func applies(to d: ConvolutionDescriptor) -> Bool {
        d.channelsPerGroup == 1 && d.outputChannelsPerGroup == 1 && d.inputChannels >= 16 && !d.isStrideOne
            && d.isUndilated
    }

    init(descriptor d: ConvolutionDescriptor, options: PlanOptions, caches: MachineCaches = .current) throws {
        descriptor = d
        channelBlocks = (d.inputChannels + 15) / 16
        taps = d.kernelHeight * d.kernelWidth
        let (sh, sw) = (d.strideHeight, d.strideWidth)
        leftMargin = (d.kernelWidth + sw - 1) / sw
        // Columns p of the last dx column's phase reach (W − 1 + pl)/sw, and dy's own Wo columns must fit.
        let width = leftMargin + max(d.outputWidth, (d.inputWidth - 1 + d.padding.left) / sw + 1) + 8
        bufferWidth = width
        let reachRows = (d.kernelHeight + sh - 1) / sh
        // Bands: their buffers (dy rows × bufferWidth, dx rows × W, the transposed stage) in half of L2, and enough
        // tasks for 8 per thread when images × blocks are too few (bands only split work; every dx element is written
        // by one band).
        let bytesPerPosition = 16 * MemoryLayout<Float>.stride
        func rowsOfGradient(_ rows: Int) -> Int { (rows - 1) / sh + reachRows + 1 }
        func bandBytes(_ rows: Int) -> Int {
            let g = rowsOfGradient(rows)
            return (g * width + rows * d.inputWidth + g * d.outputWidth) * bytesPerPosition
        }
        var fitting = d.inputHeight
        while fitting > 1 && bandBytes(fitting) > caches.level2Bytes / 2 { fitting = (fitting + 1) / 2 }
        let independent = d.batch * channelBlocks
        let wanted = max(1, (8 * options.threads + independent - 1) / independent)
        bandRows = max(1, min(fitting, (d.inputHeight + wanted - 1) / wanted))
        bandsPerBlock = (d.inputHeight + bandRows - 1) / bandRows
        gradientRows = rowsOfGradient(bandRows)
        tasks = independent * bandsPerBlock
        workers = Parallel.workers(threads: options.threads, tasks: tasks)
        let what = "the depthwise backward-data band buffers"
        var layout = WorkspaceLayout()
        stage = try layout.reserve(Float.self, count: try CheckedArithmetic.product(
            [max(gradientRows * d.outputWidth, bandRows * d.inputWidth), 16], what: what), workers: workers, what: what)
        gradient = try layout.reserve(Float.self, count: try CheckedArithmetic.product([gradientRows, bufferWidth, 16],
                                                                                       what: what),
                                      workers: workers, what: what)
        result = try layout.reserve(Float.self, count: try CheckedArithmetic.product([bandRows, d.inputWidth, 16],
                                                                                     what: what),
                                    workers: workers, what: what)
        try ResourceLimits.check(what, bytes: layout.byteCount, limit: options.limits.maxWorkspaceBytes)
        // FLOPs computed: each dx position's taps, rounded up to whole blocks of 8 positions per row and column phase.
        let flops = 2 * Double(d.batch * channelBlocks * 16) * Double(d.inputHeight * d.inputWidth)
            * Double(taps) / Double(sh * sw)
        let terms = d.reductionLength(for: .backwardData)
        summary = PlanDescription(
            backend: "direct", pass: .backwardData, variant: "depthwise channel-blocked, \(sh)x\(sw) phases",
            errorBound: dotProductErrorBound(terms: terms), typicalError: TypicalError.sequentialDotProduct(terms: terms),
            workspaceBytes: layout.byteCount, persistentBytes: channelBlocks * taps * 64,
            work: WorkEstimate([.memory(bytes: Double(d.inputCount + d.outputCount) * 4),
                                .loadBoundKernel(flops: flops, taps: max(1, taps / (sh * sw)), tasks: tasks)],
                               depthwiseKernels: true))
        try options.accuracy.admit(summary)
    }
}

struct ChannelBlockedDepthwiseDataGradientPlan: ChannelBlockedPassExecution {
    typealias Vector = SIMD16<Float>
    let geometry: ChannelBlockedDepthwiseDataGradientGeometry
    /// Weights as [channel block][r][s][16 lanes], zero in lanes past the last channel.
    let packedWeights: AlignedStorage<Float>

    var descriptor: ConvolutionDescriptor { geometry.descriptor }
    var summary: PlanDescription { geometry.summary }

    init(geometry: ChannelBlockedDepthwiseDataGradientGeometry, weights: Tensor<Float>) {
        self.geometry = geometry
        packedWeights = DepthwiseBand(descriptor: geometry.descriptor).packedWeights(weights)
    }

    func execute(_ operands: PassOperands, workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?) throws {
        try validate(operands, workspace: workspace)
        run(operands, workspace: workspace, layout: .nchw, profile: profile)
    }

    func executeBlocked(_ operands: PassOperands, workspace: UnsafeMutableRawBufferPointer,
                        profile: ExecutionProfile?) throws {
        try validateBlocked(operands, workspace: workspace)
        run(operands, workspace: workspace, layout: .nChw16c, profile: profile)
    }

    private func run(_ operands: PassOperands, workspace: UnsafeMutableRawBufferPointer, layout: TensorLayout,
                     profile: ExecutionProfile?) {
        let g = geometry
        let shared = UncheckedSendable((operands.input.baseAddress!, operands.output.baseAddress!, workspace))
        measurePhase("convolve", in: profile) {
            packedWeights.withUnsafeBufferPointer { w in
                let weights = UncheckedSendable(w.baseAddress!)
                Parallel.forEach(taskCount: g.tasks, threads: g.workers) { worker, task in
                    let (dy, dx, workspace) = shared.value
                    let band = task % g.bandsPerBlock
                    let block = (task / g.bandsPerBlock) % g.channelBlocks
                    let n = task / (g.bandsPerBlock * g.channelBlocks)
                    runBand(n: n, block: block, firstRow: band * g.bandRows, dy: dy, dx: dx, layout: layout,
                            weights: weights.value + block * g.taps * 16,
                            stage: g.stage.pointer(in: workspace, worker: worker),
                            buffer: g.gradient.pointer(in: workspace, worker: worker),
                            result: g.result.pointer(in: workspace, worker: worker))
                }
            }
        }
    }

    private func runBand(n: Int, block: Int, firstRow: Int, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>,
                         layout: TensorLayout, weights: UnsafePointer<Float>, stage: UnsafeMutablePointer<Float>,
                         buffer: UnsafeMutablePointer<Float>, result: UnsafeMutablePointer<Float>) {
        let d = descriptor, g = geometry
        let (sh, sw, R, S) = (d.strideHeight, d.strideWidth, d.kernelHeight, d.kernelWidth)
        let (Ho, Wo, W) = (d.outputHeight, d.outputWidth, d.inputWidth)
        let rows = min(g.bandRows, d.inputHeight - firstRow)
        let (first, channels) = (block * 16, min(16, d.inputChannels - block * 16))
        // dy rows [lowRow, lowRow + gradientRows) (some outside [0, Ho): zero) into the buffer, columns at leftMargin.
        let lowRow = (firstRow + d.padding.top) / sh - ((R + sh - 1) / sh - 1)
        let (lo, hi) = (max(lowRow, 0), min(lowRow + g.gradientRows, Ho))
        // Rows [lo, hi) of dy as [row − lo][column][16]: transposed into the stage, or the blocked tensor's own rows.
        let rowsOfGradient: UnsafePointer<Float>
        if layout == .nchw {
            if lo < hi {
                ChannelBlocking.toBlocked(dy + (n * d.outputChannels + first) * Ho * Wo, planeStride: Ho * Wo,
                                          from: lo * Wo, count: (hi - lo) * Wo, channels: channels, into: stage)
            }
            rowsOfGradient = UnsafePointer(stage)
        } else {
            rowsOfGradient = dy + ((n * g.channelBlocks + block) * Ho + lo) * Wo * 16
        }
        let rowFloats = g.bufferWidth * 16
        for i in 0..<g.gradientRows {
            let row = buffer + i * rowFloats
            let source = lowRow + i
            guard source >= lo && source < hi else {
                zeroFloats(row, count: rowFloats)
                continue
            }
            zeroFloats(row, count: g.leftMargin * 16)
            copyFloats(rowsOfGradient + (source - lo) * Wo * 16, to: row + g.leftMargin * 16, count: Wo * 16)
            zeroFloats(row + (g.leftMargin + Wo) * 16, count: rowFloats - (g.leftMargin + Wo) * 16)
        }
        // The band's dx rows, [row][column][16]: the worker's buffer, or for nChw16c the output block's own rows.
        let results = layout == .nchw ? result
            : dx + ((n * g.channelBlocks + block) * d.inputHeight + firstRow) * W * 16
        for r in 0..<rows {
            let ih = firstRow + r
            let (q, a) = ((ih + d.padding.top) / sh, (ih + d.padding.top) % sh)
            let rowTaps = a < R ? (R - a + sh - 1) / sh : 0
            let target = results + r * W * 16
            for b in 0..<sw {
                // Columns iw = sw·p + b − pl of this phase inside [0, W).
                let firstP = (d.padding.left - b + sw - 1) / sw
                let endP = (W - 1 + d.padding.left - b) >= 0 ? (W - 1 + d.padding.left - b) / sw + 1 : 0
                guard endP > firstP else { continue }
                let columnTaps = b < S ? (S - b + sw - 1) / sw : 0
                // dy row q of the buffer at its column p = 0 (leftMargin; row q − u is u rows above), this phase's
                // weight of tap (0, 0) (tap (u, v) sh rows and sw columns of the kernel on), dx column sw·p + b − pl
                // of position p.
                let row = StridedDepthwiseDataRow(
                    positions: firstP..<endP, gradient: UnsafePointer(buffer + (q - lowRow) * rowFloats + g.leftMargin * 16),
                    gradientRow: rowFloats, weights: weights + (a * S + b) * 16, weightRow: sh * S * 16,
                    weightColumn: sw * 16, target: target + (b - d.padding.left) * 16, step: sw * 16)
                switch (rowTaps, columnTaps) {
                case (1, 1): row.taps1x1()
                case (1, 2): row.taps1x2()
                case (2, 1): row.taps2x1()
                case (2, 2): row.taps2x2()
                case (2, 3): row.taps2x3()
                case (3, 2): row.taps3x2()
                case (3, 3): row.taps3x3()
                default: row.runAnySize(rowTaps, columnTaps)
                }
            }
        }
        guard layout == .nchw else { return }
        ChannelBlocking.fromBlocked(result, count: rows * W, channels: channels,
                                    into: dx + (n * d.inputChannels + first) * d.inputHeight * W + firstRow * W,
                                    planeStride: d.inputHeight * W)
    }
}

/// One dx row's positions of one phase of a strided depthwise layer, 8 at a time on 8 accumulators: dx at position p
/// sums dy[q − u][p − v] ⊙ w(u, v) over the phase's U × V taps in (u, v) order. Inlined with constant U and V (1–3:
/// 3×3 and 5×5 at stride 2) the weights stay in registers for the whole row, the dy rows are pointers stepped by 8
/// positions, and taps v and v + 1, which read 7 of the same dy vectors, load each once (9 or 10 dy loads per 16 or
/// 24 FMAs). Per block, the loop over taps with its offsets recomputed had cost more than the block's 8–32 FMAs.
struct StridedDepthwiseDataRow {
    typealias Vector = SIMD16<Float>
    let positions: Range<Int>
    /// dy row q at position 0; row q − u is `u · gradientRow` floats before it.
    let gradient: UnsafePointer<Float>
    let gradientRow: Int
    /// The weight of tap (0, 0); tap (u, v) is `u · weightRow + v · weightColumn` floats on.
    let weights: UnsafePointer<Float>
    let weightRow: Int
    let weightColumn: Int
    /// dx of position 0 of the phase; positions `step` floats apart.
    let target: UnsafeMutablePointer<Float>
    let step: Int

    @inline(never) func taps1x1() { run(1, 1) }
    @inline(never) func taps1x2() { run(1, 2) }
    @inline(never) func taps2x1() { run(2, 1) }
    @inline(never) func taps2x2() { run(2, 2) }
    @inline(never) func taps2x3() { run(2, 3) }
    @inline(never) func taps3x2() { run(3, 2) }
    @inline(never) func taps3x3() { run(3, 3) }

    /// U, V ≤ 3, constants after inlining.
    @inline(__always)
    private func run(_ U: Int, _ V: Int) {
        @inline(__always) func w(_ u: Int, _ v: Int) -> Vector {
            u < U && v < V ? loadVector(weights + (u &* weightRow &+ v &* weightColumn)) : Vector()
        }
        let (w00, w01, w02, w10, w11, w12) = (w(0, 0), w(0, 1), w(0, 2), w(1, 0), w(1, 1), w(1, 2))
        let (w20, w21, w22) = (w(2, 0), w(2, 1), w(2, 2))
        @inline(__always) func preloaded(_ u: Int, _ v: Int) -> Vector {
            switch (u, v) {
            case (0, 0): return w00
            case (0, 1): return w01
            case (0, 2): return w02
            case (1, 0): return w10
            case (1, 1): return w11
            case (1, 2): return w12
            case (2, 0): return w20
            case (2, 1): return w21
            default: return w22
            }
        }
        blocks(U, V, preloaded)
    }

    /// Any tap counts (kernels of more than 3 taps per phase and direction), weights loaded per tap.
    func runAnySize(_ U: Int, _ V: Int) {
        blocks(U, V) { u, v in loadVector(weights + (u &* weightRow &+ v &* weightColumn)) }
    }

    /// The row's positions 8 at a time: each block's taps in (u, v) order, `weight(u, v)` tap (u, v)'s weights.
    @inline(__always)
    private func blocks(_ U: Int, _ V: Int, _ weight: (Int, Int) -> Vector) {
        var p = positions.lowerBound
        while p < positions.upperBound {
            var (a0, a1, a2, a3) = (Vector(), Vector(), Vector(), Vector())
            var (a4, a5, a6, a7) = (Vector(), Vector(), Vector(), Vector())
            for u in 0..<U {
                let x = gradient.advanced(by: p &* 16 &- u &* gradientRow)
                for v in 0..<V {
                    let wv = weight(u, v)
                    let column = x - v &* 16
                    a0.addProduct(loadVector(column), wv); a1.addProduct(loadVector(column + 16), wv)
                    a2.addProduct(loadVector(column + 32), wv); a3.addProduct(loadVector(column + 48), wv)
                    a4.addProduct(loadVector(column + 64), wv); a5.addProduct(loadVector(column + 80), wv)
                    a6.addProduct(loadVector(column + 96), wv); a7.addProduct(loadVector(column + 112), wv)
                }
            }
            store(a0, a1, a2, a3, a4, a5, a6, a7, at: p)
            p &+= 8
        }
    }

    /// The block of positions p… (at most 8, up to the row's end) into dx.
    @inline(__always)
    private func store(_ a0: Vector, _ a1: Vector, _ a2: Vector, _ a3: Vector, _ a4: Vector, _ a5: Vector,
                       _ a6: Vector, _ a7: Vector, at p: Int) {
        let count = min(8, positions.upperBound &- p)
        let t = target + p &* step
        storeVector(a0, t)
        if count > 1 { storeVector(a1, t + step) }
        if count > 2 { storeVector(a2, t + 2 &* step) }
        if count > 3 { storeVector(a3, t + 3 &* step) }
        if count > 4 { storeVector(a4, t + 4 &* step) }
        if count > 5 { storeVector(a5, t + 5 &* step) }
        if count > 6 { storeVector(a6, t + 6 &* step) }
        if count > 7 { storeVector(a7, t + 7 &* step) }
    }
}

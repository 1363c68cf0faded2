import ConvLabCore

/// The `direct` backend's plan for dense layers (one group, any kernel, stride, padding and dilation) on nChw16c
/// tensors: the 1×1 plan's register tiles (`ChannelBlockedPointwisePlan`) with the kernel's taps as more terms of the
/// sum. On NCHW the general direct plan keeps 6 output channels × 64 positions per register block, so every tap loads
/// whole position vectors; in the blocked layout the 16 input channels of a position are one cache line and the 64
/// output channels of a tile one register row — the schedule oneDNN's AVX-512 direct kernels use.
///
/// y[oh][ow][k..k+63] = Σ_(r,s,c) xp[oh·sh + r·dh][ow·sw + s·dw][c] · w[r][s][c][k..k+63], over a tile of 6, 12 or
/// 24 positions of one output row (4, 2 or 1 output blocks: 24 accumulators). First the input is copied once into a
/// zero-padded blocked buffer (`xp`, borders and a tail of zeros, so no tap needs a bounds check); then a task owns a
/// range of one image's output rows and a range of 64-channel groups, and walks the input channels in chunks whose
/// rows for one tile stay in L1, row by row, every group per row, every tap of the chunk per tile. Weights are packed at plan time as
/// [group][r][s][channel][64 lanes]. Each output sums its terms in (chunk, r, s, channel) order, whatever the thread
/// count.
struct ChannelBlockedDirectPlan: Sendable {
    let geometry: ChannelBlockedDirectGeometry
    /// [group of 4 output blocks][r][s][input channel][64 lanes], zero past the last output channel.
    let packedWeights: [Float]

    var descriptor: ConvolutionDescriptor { geometry.descriptor }

    init(geometry: ChannelBlockedDirectGeometry, weights: Tensor<Float>) {
        self.geometry = geometry
        let d = geometry.descriptor
        let (C, K, R, S) = (d.inputChannels, d.outputChannels, d.kernelHeight, d.kernelWidth)
        var packed = [Float](repeating: 0, count: geometry.groups * R * S * C * 64)
        weights.withUnsafeBufferPointer { w in
            for k in 0..<K {
                for c in 0..<C {
                    for r in 0..<R {
                        for s in 0..<S {
                            packed[((((k / 64) * R + r) * S + s) * C + c) * 64 + k % 64] = w[((k * C + c) * R + r) * S + s]
                        }
                    }
                }
            }
        }
        packedWeights = packed
    }

    func run(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
             workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?) {
        let (d, g) = (descriptor, geometry)
        let shared = UncheckedSendable((input.baseAddress!, output.baseAddress!, workspace))
        measurePhase("pad", in: profile) {
            // One task per image and channel block: its rows into the padded buffer, zero around them.
            Parallel.forEach(taskCount: d.batch * g.inputBlocks, threads: g.workers) { _, plane in
                let (x, _, workspace) = shared.value
                let padded = g.padded.pointer(in: workspace) + plane * g.paddedPlane
                let source = x + plane * d.inputHeight * d.inputWidth * 16
                let (top, left) = (d.padding.top, d.padding.left)
                for row in 0..<g.paddedHeight {
                    let target = padded + row * g.paddedWidth * 16
                    let inputRow = row - top
                    guard inputRow >= 0 && inputRow < d.inputHeight else {
                        zeroFloats(target, count: g.paddedWidth * 16)
                        continue
                    }
                    let columns = min(d.inputWidth, g.paddedWidth - left)
                    zeroFloats(target, count: left * 16)
                    copyFloats(source + inputRow * d.inputWidth * 16, to: target + left * 16, count: columns * 16)
                    zeroFloats(target + (left + columns) * 16, count: (g.paddedWidth - left - columns) * 16)
                }
            }
            zeroFloats(g.padded.pointer(in: shared.value.2) + d.batch * g.inputBlocks * g.paddedPlane,
                       count: g.tailFloats)
        }
        measurePhase("convolve", in: profile) {
            packedWeights.withUnsafeBufferPointer { w in
                let weights = UncheckedSendable(w.baseAddress!)
                Parallel.forEach(taskCount: g.tasks, threads: g.workers) { _, task in
                    let (_, y, workspace) = shared.value
                    let range = task % g.groupRanges
                    let rows = (task / g.groupRanges) % g.rowRanges
                    let n = task / (g.groupRanges * g.rowRanges)
                    runTask(n: n, rows: (rows * d.outputHeight / g.rowRanges)..<((rows + 1) * d.outputHeight / g.rowRanges),
                            groups: (range * g.groupsPerRange)..<min(g.groups, (range + 1) * g.groupsPerRange),
                            xp: UnsafePointer(g.padded.pointer(in: workspace)), y: y, weights: weights.value)
                }
            }
        }
    }

    private func runTask(n: Int, rows: Range<Int>, groups: Range<Int>, xp: UnsafePointer<Float>,
                         y: UnsafeMutablePointer<Float>, weights: UnsafePointer<Float>) {
        let d = descriptor, g = geometry
        let (C, R, S, Ho, Wo) = (d.inputChannels, d.kernelHeight, d.kernelWidth, d.outputHeight, d.outputWidth)
        let rowFloats = g.paddedWidth * 16
        var chunkStart = 0
        while chunkStart < C {
            let channels = min(g.chunkChannels, C - chunkStart)
            let chunk = xp + (n * g.inputBlocks + chunkStart / 16) * g.paddedPlane
            let steps = BlockedTileSteps(blockStride: g.paddedPlane, tapRow: d.dilationHeight * rowFloats,
                                         tapColumn: d.dilationWidth * 16, kernelHeight: R, kernelWidth: S,
                                         channels: channels, weightTap: C * 64)
            let accumulate = chunkStart > 0
            // Row by row, every group: the row's input (R rows of the chunk) is read from L1 by all groups, whose
            // weight panels (a quarter of L2 at most) stay in L2.
            for oh in rows {
                let inputRow = chunk + oh * d.strideHeight * rowFloats
                for group in groups {
                    let blocks = min(4, g.outputBlocks - group * 4)
                    let columns = blocks == 1 ? 24 : blocks == 2 ? 12 : 6
                    let panel = weights + group * R * S * C * 64 + chunkStart * 64
                    let outputRow = y + ((n * g.outputBlocks + group * 4) * Ho + oh) * Wo * 16
                    var ow = 0
                    while ow < Wo {
                        let arguments = BlockedTileArguments(
                            input: inputRow + ow * d.strideWidth * 16, weights: panel, output: outputRow + ow * 16,
                            outputBlockStride: Ho * Wo * 16, storeBlocks: blocks, valid: min(columns, Wo - ow),
                            accumulate: accumulate)
                        switch (blocks, d.strideWidth) {
                        case (1, 1): BlockedTileKernel.blocks1(arguments, steps, step: 16)
                        case (1, _): BlockedTileKernel.blocks1(arguments, steps, step: d.strideWidth * 16)
                        case (2, 1): BlockedTileKernel.blocks2(arguments, steps, step: 16)
                        case (2, _): BlockedTileKernel.blocks2(arguments, steps, step: d.strideWidth * 16)
                        case (_, 1): BlockedTileKernel.blocks4s1(arguments, steps)
                        case (_, 2): BlockedTileKernel.blocks4s2(arguments, steps)
                        default: BlockedTileKernel.blocks4(arguments, steps, step: d.strideWidth * 16)
                        }
                        ow += columns
                    }
                }
            }
            chunkStart += channels
        }
    }
}

/// Steps of one chunk through the padded input (floats) and the weights: between channel blocks, kernel rows and
/// columns; the kernel's size; the chunk's channels; floats between one tap's weights and the next's.
struct BlockedTileSteps {
    let blockStride: Int
    let tapRow: Int
    let tapColumn: Int
    let kernelHeight: Int
    let kernelWidth: Int
    let channels: Int
    let weightTap: Int
}

/// One tile: its first position's tap (0, 0) in the padded input, the group's weights at the chunk's first channel,
/// the output's first block at the tile's first position.
struct BlockedTileArguments {
    let input: UnsafePointer<Float>
    let weights: UnsafePointer<Float>
    let output: UnsafeMutablePointer<Float>
    let outputBlockStride: Int
    let storeBlocks: Int
    let valid: Int
    let accumulate: Bool
}

/// The register tiles: `B` output blocks × `P` positions (24 accumulators), `step` floats between positions.
enum BlockedTileKernel {
    typealias Vector = SIMD16<Float>

    @inline(never) static func blocks4s1(_ a: BlockedTileArguments, _ s: BlockedTileSteps) { tile(4, 6, a, s, 16) }
    @inline(never) static func blocks4s2(_ a: BlockedTileArguments, _ s: BlockedTileSteps) { tile(4, 6, a, s, 32) }
    @inline(never) static func blocks4(_ a: BlockedTileArguments, _ s: BlockedTileSteps, step: Int) {
        tile(4, 6, a, s, step)
    }
    @inline(never) static func blocks2(_ a: BlockedTileArguments, _ s: BlockedTileSteps, step: Int) {
        tile(2, 12, a, s, step)
    }
    @inline(never) static func blocks1(_ a: BlockedTileArguments, _ s: BlockedTileSteps, step: Int) {
        tile(1, 24, a, s, step)
    }

    /// Accumulator i holds block i / P, position i % P. Inlined with constant B and P, every branch on them folds.
    @inline(__always)
    static func tile(_ B: Int, _ P: Int, _ a: BlockedTileArguments, _ s: BlockedTileSteps, _ step: Int) {
        let N = B * P
        var a0 = Vector(), a1 = Vector(), a2 = Vector(), a3 = Vector(), a4 = Vector(), a5 = Vector()
        var a6 = Vector(), a7 = Vector(), a8 = Vector(), a9 = Vector(), a10 = Vector(), a11 = Vector()
        var a12 = Vector(), a13 = Vector(), a14 = Vector(), a15 = Vector(), a16 = Vector(), a17 = Vector()
        var a18 = Vector(), a19 = Vector(), a20 = Vector(), a21 = Vector(), a22 = Vector(), a23 = Vector()
        for r in 0..<s.kernelHeight {
            for t in 0..<s.kernelWidth {
                let tap = a.input + (r &* s.tapRow &+ t &* s.tapColumn)
                var w = a.weights + (r &* s.kernelWidth &+ t) &* s.weightTap
                var block = 0
                while block &* 16 < s.channels {
                    let lanes = min(16, s.channels &- block &* 16)
                    let row = tap + block &* s.blockStride
                    for lane in 0..<lanes {
                        let x = row + lane
                        let w0 = loadVector(w)
                        let w1 = B > 1 ? loadVector(w + 16) : Vector()
                        let w2 = B > 2 ? loadVector(w + 32) : Vector()
                        let w3 = B > 3 ? loadVector(w + 48) : Vector()
                        @inline(__always) func weight(_ i: Int) -> Vector {
                            switch i / P { case 0: return w0; case 1: return w1; case 2: return w2; default: return w3 }
                        }
                        @inline(__always) func input(_ i: Int) -> Vector { Vector(repeating: x[(i % P) &* step]) }
                        a0.addProduct(input(0), weight(0))
                        if N > 1 { a1.addProduct(input(1), weight(1)) }
                        if N > 2 { a2.addProduct(input(2), weight(2)) }
                        if N > 3 { a3.addProduct(input(3), weight(3)) }
                        if N > 4 { a4.addProduct(input(4), weight(4)) }
                        if N > 5 { a5.addProduct(input(5), weight(5)) }
                        if N > 6 { a6.addProduct(input(6), weight(6)) }
                        if N > 7 { a7.addProduct(input(7), weight(7)) }
                        if N > 8 { a8.addProduct(input(8), weight(8)) }
                        if N > 9 { a9.addProduct(input(9), weight(9)) }
                        if N > 10 { a10.addProduct(input(10), weight(10)) }
                        if N > 11 { a11.addProduct(input(11), weight(11)) }
                        if N > 12 { a12.addProduct(input(12), weight(12)) }
                        if N > 13 { a13.addProduct(input(13), weight(13)) }
                        if N > 14 { a14.addProduct(input(14), weight(14)) }
                        if N > 15 { a15.addProduct(input(15), weight(15)) }
                        if N > 16 { a16.addProduct(input(16), weight(16)) }
                        if N > 17 { a17.addProduct(input(17), weight(17)) }
                        if N > 18 { a18.addProduct(input(18), weight(18)) }
                        if N > 19 { a19.addProduct(input(19), weight(19)) }
                        if N > 20 { a20.addProduct(input(20), weight(20)) }
                        if N > 21 { a21.addProduct(input(21), weight(21)) }
                        if N > 22 { a22.addProduct(input(22), weight(22)) }
                        if N > 23 { a23.addProduct(input(23), weight(23)) }
                        w += 64
                    }
                    block &+= 1
                }
            }
        }
        @inline(__always) func finish(_ i: Int, _ v: Vector) {
            guard i < N, i / P < a.storeBlocks, i % P < a.valid else { return }
            let target = a.output + (i / P) &* a.outputBlockStride + (i % P) &* 16
            storeVector(a.accumulate ? loadVector(target) + v : v, target)
        }
        finish(0, a0); finish(1, a1); finish(2, a2); finish(3, a3); finish(4, a4); finish(5, a5)
        finish(6, a6); finish(7, a7); finish(8, a8); finish(9, a9); finish(10, a10); finish(11, a11)
        finish(12, a12); finish(13, a13); finish(14, a14); finish(15, a15); finish(16, a16); finish(17, a17)
        finish(18, a18); finish(19, a19); finish(20, a20); finish(21, a21); finish(22, a22); finish(23, a23)
    }
}

/// The general direct plan on NCHW tensors paired with the channel-blocked dense plan for nChw16c ones. One
/// workspace serves both.
struct DirectWithBlockedEntry: ChannelBlockedExecution {
    let general: DirectPlan
    let blocked: ChannelBlockedDirectPlan

    var descriptor: ConvolutionDescriptor { general.descriptor }
    var summary: PlanDescription { DepthwiseRowsWithBlockedEntry.summary(rows: general.summary, blocked: blockedSummary) }
    var blockedSummary: PlanDescription { blocked.geometry.summary }

    func execute(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
                 workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?) throws {
        try validateBuffers(input: input, output: output, workspace: workspace)
        try general.execute(input: input, output: output, workspace: workspace, profile: profile)
    }

    func executeBlocked(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
                        workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?) throws {
        try validateBlockedBuffers(input: input, output: output, workspace: workspace)
        blocked.run(input: input, output: output, workspace: workspace, profile: profile)
    }
}

/// The channel-blocked dense plan's geometry: the padded input buffer, chunks of input channels, ranges of output
/// rows and of 64-channel groups per task.
struct ChannelBlockedDirectGeometry: Sendable {
    let descriptor: ConvolutionDescriptor
    let inputBlocks: Int
    let outputBlocks: Int
    let groups: Int
    let paddedHeight: Int
    let paddedWidth: Int
    /// Floats of one padded channel block of one image.
    let paddedPlane: Int
    /// Zeros after the last padded plane: what a row's last tile reads past its end.
    let tailFloats: Int
    let chunkChannels: Int
    let rowRanges: Int
    let groupsPerRange: Int
    let groupRanges: Int
    let tasks: Int
    let workers: Int
    let padded: WorkspaceRegion<Float>
    let summary: PlanDescription

    /// One group and a kernel of more than one tap or with padding (plain 1×1 layers have their own plan).
    static func applies(to d: ConvolutionDescriptor) -> Bool {
        d.groups == 1 && !ChannelBlockedPointwiseGeometry.applies(to: d)
    }

    init(descriptor d: ConvolutionDescriptor, options: PlanOptions, caches: MachineCaches = .current) throws {
        descriptor = d
        inputBlocks = (d.inputChannels + 15) / 16
        outputBlocks = (d.outputChannels + 15) / 16
        groups = (outputBlocks + 3) / 4
        // Rows and columns every output reads, and at least the input's own (a padding past the kernel's reach).
        paddedHeight = max((d.outputHeight - 1) * d.strideHeight + (d.kernelHeight - 1) * d.dilationHeight + 1,
                           d.padding.top + d.inputHeight)
        paddedWidth = max((d.outputWidth - 1) * d.strideWidth + (d.kernelWidth - 1) * d.dilationWidth + 1,
                          d.padding.left + d.inputWidth)
        let what = "the channel-blocked padded input"
        paddedPlane = try CheckedArithmetic.product([paddedHeight, paddedWidth, 16], what: what)
        // A row's last tile reads up to 23 positions past the row (strided: 23 steps).
        tailFloats = 24 * d.strideWidth * 16
        let float = MemoryLayout<Float>.stride
        // A chunk: one tile's input for every tap (R rows of 24 steps plus the kernel's reach) in half of L1.
        let tileColumns = 23 * d.strideWidth + (d.kernelWidth - 1) * d.dilationWidth + 1
        chunkChannels = max(16, caches.level1DataBytes / 2 / (d.kernelHeight * tileColumns * float) / 16 * 16)
        // Tasks: rows × groups, 4 per thread, splitting the side that re-reads fewer bytes (more row ranges read the
        // weights again; more group ranges the input); group ranges start from weight panels in a quarter of L2.
        let Ho = d.outputHeight
        let panelBytes = d.kernelHeight * d.kernelWidth * d.inputChannels * 64 * float
        var rows = 1
        var groupRangeCount = min(groups, max(1, (groups * panelBytes + caches.level2Bytes / 4 - 1)
                                                 / (caches.level2Bytes / 4)))
        while d.batch * rows * groupRangeCount < 4 * options.threads && (rows < Ho || groupRangeCount < groups) {
            let weightBytes = panelBytes * groups, inputBytes = d.inputCount / d.batch * float
            if groupRangeCount < groups && (weightBytes >= inputBytes || rows == Ho) {
                groupRangeCount += 1
            } else {
                rows += 1
            }
        }
        rowRanges = rows
        groupsPerRange = (groups + groupRangeCount - 1) / groupRangeCount
        groupRanges = (groups + groupsPerRange - 1) / groupsPerRange
        tasks = d.batch * rowRanges * groupRanges
        workers = Parallel.workers(threads: options.threads, tasks: tasks)
        var layout = WorkspaceLayout()
        let paddedCount = try CheckedArithmetic.sum([try CheckedArithmetic.product([d.batch, inputBlocks, paddedPlane],
                                                                                    what: what), tailFloats], what: what)
        padded = try layout.reserve(Float.self, count: paddedCount, what: what)
        try ResourceLimits.check(what, bytes: layout.byteCount, limit: options.limits.maxWorkspaceBytes)
        let flops = 2 * Double(d.batch * d.outputHeight * d.outputWidth) * Double(groups * 64)
            * Double(d.inputChannels * d.kernelHeight * d.kernelWidth)
        summary = PlanDescription(
            backend: "direct", variant: "channel-blocked", errorBound: DirectBackend.errorBound(d),
            typicalError: DirectBackend.typicalError(d), workspaceBytes: layout.byteCount,
            persistentBytes: groups * d.kernelHeight * d.kernelWidth * d.inputChannels * 64 * 4,
            work: WorkEstimate([.memory(bytes: Double(d.inputCount + paddedCount + d.outputCount) * 4),
                                .gemm(flops: flops, m: d.outputHeight * d.outputWidth, n: groups * 64,
                                      k: d.inputChannels * d.kernelHeight * d.kernelWidth, tasks: tasks)]))
        try options.accuracy.admit(summary)
    }
}

import ConvLabCore

/// The `direct` backend's 1×1 plan on nChw16c tensors: output channels along the lanes, positions broadcast. On NCHW a
/// 1×1 layer is a GEMM whose B operand (the input planes) must be packed first, and the small maps of real networks
/// (7×7 to 28×28, batch 1) left the native GEMM at half of oneDNN's rate. In the blocked layout the input is already
/// what the kernel reads: position p, channel c at block c/16, lane c%16, so no copy is needed.
///
/// y[p][k..k+63] = Σ_c x[p][c] · w[c][k..k+63]: a register tile of 4 output blocks × 6 positions (24 accumulators,
/// 4 weight vectors and 6 broadcasts per channel, 24 FMAs per 10 loads), 2 × 12 or 1 × 24 for a last group of fewer
/// blocks (8+ independent chains). A task owns a range of one image's tiles of 24 positions and a range of 64-channel
/// output groups, sized so its input chunk and its weight panels ([group][channel][64 lanes], packed at plan time) each
/// stay in L2 and split further (positions or groups, whichever re-reads fewer bytes) until every thread has 4 tasks:
/// on 7×7 maps with 2048 channels a task of one 24-position tile re-read the 4 MB of weights per tile from L3. It walks
/// the input channels in chunks whose 24 positions fit half of L1. Strided layers gather their positions into
/// the worker's scratch first (as does an image's last, partial tile: no read beyond the tensor). Each output sums
/// its channels in order, chunk after chunk, so no result depends on the thread count.
struct ChannelBlockedPointwisePlan: Sendable {
    typealias Vector = SIMD16<Float>
    let geometry: ChannelBlockedPointwiseGeometry
    /// [group of 4 output blocks][input channel][64 lanes], zero past the last output channel.
    let packedWeights: [Float]

    var descriptor: ConvolutionDescriptor { geometry.descriptor }

    init(geometry: ChannelBlockedPointwiseGeometry, weights: Tensor<Float>) {
        self.geometry = geometry
        let d = geometry.descriptor
        let (C, K) = (d.inputChannels, d.outputChannels)
        var packed = [Float](repeating: 0, count: geometry.groups * C * 64)
        weights.withUnsafeBufferPointer { w in
            for k in 0..<K {
                for c in 0..<C { packed[((k / 64) * C + c) * 64 + k % 64] = w[k * C + c] }
            }
        }
        packedWeights = packed
    }

    func run(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
             workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?) {
        let g = geometry
        let shared = UncheckedSendable((input.baseAddress!, output.baseAddress!, workspace))
        measurePhase("convolve", in: profile) {
            packedWeights.withUnsafeBufferPointer { w in
                let weights = UncheckedSendable(w.baseAddress!)
                Parallel.forEach(taskCount: g.tasks, threads: g.workers) { worker, task in
                    let (x, y, workspace) = shared.value
                    let range = task % g.groupRanges
                    let tileRange = (task / g.groupRanges) % g.tileRanges
                    let n = task / (g.groupRanges * g.tileRanges)
                    runTask(n: n, tiles: (tileRange * g.tilesPerRange)..<min(g.tilesPerImage, (tileRange + 1) * g.tilesPerRange),
                            groups: (range * g.groupsPerRange)..<min(g.groups, (range + 1) * g.groupsPerRange),
                            x: x, y: y, weights: weights.value,
                            scratch: g.scratch.pointer(in: workspace, worker: worker))
                }
            }
        }
    }

    /// One image's tiles × groups, chunk by chunk of input channels: the chunk's rows of every tile (in place, or
    /// gathered into the scratch) are read by every group, and each group's chunk of weights by every tile.
    private func runTask(n: Int, tiles: Range<Int>, groups: Range<Int>, x: UnsafePointer<Float>,
                         y: UnsafeMutablePointer<Float>, weights: UnsafePointer<Float>,
                         scratch: UnsafeMutablePointer<Float>) {
        let d = descriptor, g = geometry
        let tilePositions = ChannelBlockedPointwiseGeometry.tilePositions
        let (C, Q, H, W) = (d.inputChannels, d.outputHeight * d.outputWidth, d.inputHeight, d.inputWidth)
        let outputBlock = Q * 16
        let slotFloats = g.chunkChannels / 16 * tilePositions * 16
        func valid(_ tile: Int) -> Int { min(tilePositions, Q - tile * tilePositions) }
        func gathers(_ tile: Int) -> Bool { !d.isStrideOne || valid(tile) < tilePositions }
        var chunkStart = 0
        while chunkStart < C {
            let channels = min(g.chunkChannels, C - chunkStart)
            let firstBlock = chunkStart / 16
            let chunkBlocks = (channels + 15) / 16
            // Tiles that cannot be read in place (strided, or an image's partial last tile) into their scratch
            // slot as [block][24][16], zero past the valid positions.
            for tile in tiles where gathers(tile) {
                let slot = scratch + (tile - tiles.lowerBound) * slotFloats
                for b in 0..<chunkBlocks {
                    let plane = x + (n * g.inputBlocks + firstBlock + b) * H * W * 16
                    let target = slot + b * tilePositions * 16
                    for i in 0..<tilePositions {
                        guard i < valid(tile) else {
                            zeroFloats(target + i * 16, count: 16)
                            continue
                        }
                        let position = tile * tilePositions + i
                        let (oh, ow) = (position / d.outputWidth, position % d.outputWidth)
                        copyFloats(plane + (oh * d.strideHeight * W + ow * d.strideWidth) * 16, to: target + i * 16,
                                   count: 16)
                    }
                }
            }
            let accumulate = chunkStart > 0
            for group in groups {
                let blocks = min(4, g.outputBlocks - group * 4)
                let panel = weights + (group * C + chunkStart) * 64
                for tile in tiles {
                    let firstPosition = tile * tilePositions
                    let inPlace = !gathers(tile)
                    let arguments = PointwiseTileArguments(
                        input: inPlace ? x + ((n * g.inputBlocks + firstBlock) * Q + firstPosition) * 16
                            : UnsafePointer(scratch + (tile - tiles.lowerBound) * slotFloats),
                        blockStride: inPlace ? Q * 16 : tilePositions * 16, channels: channels, weights: panel,
                        output: y + ((n * g.outputBlocks + group * 4) * Q + firstPosition) * 16,
                        outputBlockStride: outputBlock, storeBlocks: blocks, accumulate: accumulate)
                    let count = valid(tile)
                    switch blocks {
                    case 1:
                        PointwiseTileKernel.blocks1(arguments, valid: count)
                    case 2:
                        for sub in stride(from: 0, to: count, by: 12) {
                            PointwiseTileKernel.blocks2(arguments.offset(positions: sub), valid: min(12, count - sub))
                        }
                    default:
                        for sub in stride(from: 0, to: count, by: 6) {
                            PointwiseTileKernel.blocks4(arguments.offset(positions: sub), valid: min(6, count - sub))
                        }
                    }
                }
            }
            chunkStart += channels
        }
    }
}

/// The general direct plan on NCHW tensors paired with the channel-blocked 1×1 plan for nChw16c ones: the layout a
/// caller hands in picks the plan. One workspace serves both.
struct PointwiseWithBlockedEntry: ChannelBlockedExecution {
    let general: DirectPlan
    let blocked: ChannelBlockedPointwisePlan

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

/// One microkernel call: `input` at the tile's first position ([block][position][16], `blockStride` floats between
/// blocks), `channels` input channels of the chunk, the group's weight panel ([channel][64]), and the output's first
/// block at the same position.
struct PointwiseTileArguments {
    let input: UnsafePointer<Float>
    let blockStride: Int
    let channels: Int
    let weights: UnsafePointer<Float>
    let output: UnsafeMutablePointer<Float>
    let outputBlockStride: Int
    let storeBlocks: Int
    let accumulate: Bool

    func offset(positions: Int) -> PointwiseTileArguments {
        PointwiseTileArguments(input: input + positions * 16, blockStride: blockStride, channels: channels,
                               weights: weights, output: output + positions * 16, outputBlockStride: outputBlockStride,
                               storeBlocks: storeBlocks, accumulate: accumulate)
    }
}

/// The register tiles: `B` output blocks × `P` positions, B·P = 24 accumulators.
enum PointwiseTileKernel {
    typealias Vector = SIMD16<Float>

    @inline(never) static func blocks4(_ a: PointwiseTileArguments, valid: Int) { tile(4, 6, a, valid) }
    @inline(never) static func blocks2(_ a: PointwiseTileArguments, valid: Int) { tile(2, 12, a, valid) }
    @inline(never) static func blocks1(_ a: PointwiseTileArguments, valid: Int) { tile(1, 24, a, valid) }

    /// Accumulator i holds block i / P, position i % P. Inlined with constant B and P, every branch on them folds.
    @inline(__always)
    static func tile(_ B: Int, _ P: Int, _ a: PointwiseTileArguments, _ valid: Int) {
        let N = B * P
        var a0 = Vector(), a1 = Vector(), a2 = Vector(), a3 = Vector(), a4 = Vector(), a5 = Vector()
        var a6 = Vector(), a7 = Vector(), a8 = Vector(), a9 = Vector(), a10 = Vector(), a11 = Vector()
        var a12 = Vector(), a13 = Vector(), a14 = Vector(), a15 = Vector(), a16 = Vector(), a17 = Vector()
        var a18 = Vector(), a19 = Vector(), a20 = Vector(), a21 = Vector(), a22 = Vector(), a23 = Vector()
        var block = 0
        while block * 16 < a.channels {
            let lanes = min(16, a.channels - block * 16)
            let row = a.input + block &* a.blockStride
            var w = a.weights + block &* 1024
            for lane in 0..<lanes {
                let x = row + lane
                let w0 = loadVector(w)
                let w1 = B > 1 ? loadVector(w + 16) : Vector()
                let w2 = B > 2 ? loadVector(w + 32) : Vector()
                let w3 = B > 3 ? loadVector(w + 48) : Vector()
                @inline(__always) func weight(_ i: Int) -> Vector {
                    switch i / P { case 0: return w0; case 1: return w1; case 2: return w2; default: return w3 }
                }
                @inline(__always) func input(_ i: Int) -> Vector { Vector(repeating: x[(i % P) &* 16]) }
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
            block += 1
        }
        @inline(__always) func finish(_ i: Int, _ v: Vector) {
            guard i < N, i / P < a.storeBlocks, i % P < valid else { return }
            let target = a.output + (i / P) &* a.outputBlockStride + (i % P) &* 16
            storeVector(a.accumulate ? loadVector(target) + v : v, target)
        }
        finish(0, a0); finish(1, a1); finish(2, a2); finish(3, a3); finish(4, a4); finish(5, a5)
        finish(6, a6); finish(7, a7); finish(8, a8); finish(9, a9); finish(10, a10); finish(11, a11)
        finish(12, a12); finish(13, a13); finish(14, a14); finish(15, a15); finish(16, a16); finish(17, a17)
        finish(18, a18); finish(19, a19); finish(20, a20); finish(21, a21); finish(22, a22); finish(23, a23)
    }
}

/// The channel-blocked 1×1 plan's geometry: chunks of input channels, tiles of 24 positions, ranges of 64-channel
/// output groups per task, and the per-worker gather scratch.
struct ChannelBlockedPointwiseGeometry: Sendable {
    let descriptor: ConvolutionDescriptor
    let inputBlocks: Int
    let outputBlocks: Int
    /// Groups of 4 output blocks (64 output channels).
    let groups: Int
    /// Input channels per chunk: a multiple of 16 whose 24 positions fill at most half of L1.
    let chunkChannels: Int
    let tilesPerImage: Int
    /// Tiles of one image a task computes (their chunk of input rows is read by each of its groups).
    let tilesPerRange: Int
    let tileRanges: Int
    let groupsPerRange: Int
    let groupRanges: Int
    let tasks: Int
    let workers: Int
    let scratch: WorkspaceRegion<Float>
    let summary: PlanDescription

    static let tilePositions = 24

    /// 1×1, one group, no padding (a padded 1×1 layer's border outputs read only zeros), any stride and batch.
    static func applies(to d: ConvolutionDescriptor) -> Bool {
        d.kernelHeight == 1 && d.kernelWidth == 1 && d.groups == 1 && d.padding == .zero
    }

    init(descriptor d: ConvolutionDescriptor, options: PlanOptions, caches: MachineCaches = .current) throws {
        descriptor = d
        inputBlocks = (d.inputChannels + 15) / 16
        outputBlocks = (d.outputChannels + 15) / 16
        groups = (outputBlocks + 3) / 4
        let float = MemoryLayout<Float>.stride
        // A chunk: its 24 positions in half of L1 (the kernel's broadcasts), so the tile's rows are read from memory
        // once and by every group from L1.
        chunkChannels = max(16, caches.level1DataBytes / 2 / (Self.tilePositions * float) / 16 * 16)
        let positions = d.outputHeight * d.outputWidth
        tilesPerImage = (positions + Self.tilePositions - 1) / Self.tilePositions
        // A task's input chunk (its tiles) and weight panels (its groups) each in a quarter of L2; then, until there
        // are 4 tasks per thread, halve whichever side the other re-reads more bytes of: a split of positions reads
        // the weights again, a split of groups the input. (8 tasks per thread read ResNet-50's 4 MB of 2048 → 512
        // weights twice: 1.25× slower on the Intel kind.)
        let chunkBytesPerTile = Self.tilePositions * min(chunkChannels, inputBlocks * 16) * float
        let panelBytes = d.inputChannels * 64 * float
        var tiles = max(1, min(tilesPerImage, caches.level2Bytes / 4 / chunkBytesPerTile))
        var groupsPerTask = max(1, min(groups, caches.level2Bytes / 4 / panelBytes))
        let (imageTiles, allGroups) = (tilesPerImage, groups)
        func taskCount() -> Int {
            d.batch * ((imageTiles + tiles - 1) / tiles) * ((allGroups + groupsPerTask - 1) / groupsPerTask)
        }
        while taskCount() < 4 * options.threads && (tiles > 1 || groupsPerTask > 1) {
            let weightBytes = groupsPerTask * 64 * d.inputChannels, inputBytes = tiles * Self.tilePositions * d.inputChannels
            if groupsPerTask > 1 && (weightBytes >= inputBytes || tiles == 1) {
                groupsPerTask = (groupsPerTask + 1) / 2
            } else {
                tiles = (tiles + 1) / 2
            }
        }
        tilesPerRange = tiles
        tileRanges = (tilesPerImage + tiles - 1) / tiles
        groupsPerRange = groupsPerTask
        groupRanges = (groups + groupsPerTask - 1) / groupsPerTask
        tasks = taskCount()
        workers = Parallel.workers(threads: options.threads, tasks: tasks)
        var layout = WorkspaceLayout()
        scratch = try layout.reserve(Float.self, count: try CheckedArithmetic.product(
            [tilesPerRange, chunkChannels / 16, Self.tilePositions, 16], what: "the 1×1 gather scratch"),
            workers: workers, what: "the 1×1 gather scratch")
        try ResourceLimits.check("the 1×1 gather scratch", bytes: layout.byteCount,
                                 limit: options.limits.maxWorkspaceBytes)
        let flops = 2 * Double(d.batch * positions) * Double(groups * 64) * Double(d.inputChannels)
        summary = PlanDescription(
            backend: "direct", variant: "1x1 channel-blocked", errorBound: DirectBackend.errorBound(d),
            typicalError: DirectBackend.typicalError(d), workspaceBytes: layout.byteCount,
            persistentBytes: groups * d.inputChannels * 64 * 4,
            work: WorkEstimate([.memory(bytes: Double(d.inputCount + d.outputCount) * 4),
                                .gemm(flops: flops, m: positions, n: groups * 64, k: d.inputChannels, tasks: tasks)]))
        try options.accuracy.admit(summary)
    }
}

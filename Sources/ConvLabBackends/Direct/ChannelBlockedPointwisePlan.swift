import ConvLabCore

/// The `direct` backend's 1×1 plan on nChw16c tensors: output channels along the lanes, positions broadcast. On NCHW a
/// 1×1 layer is a GEMM whose B operand (the input planes) must be packed first, and the small maps of real networks
/// (7×7 to 28×28, batch 1) left the native GEMM at half of oneDNN's rate. In the blocked layout the input is already
/// what the kernel reads: position p, channel c at block c/16, lane c%16, so no copy is needed.
///
/// y[p][k..k+63] = Σ_c x[p][c] · w[c][k..k+63] on the register tiles of `BlockedTileKernel` (4 output blocks × 6
/// positions: 4 weight vectors and 6 broadcasts per channel, 24 FMAs per 10 loads; 3 × 8, 2 × 12 or 1 × 24 for a last group
/// of fewer blocks). A task owns an even range of one image's positions and a range of 64-channel output
/// groups, sized so its input chunk and its weight panels ([group][channel][64 lanes], packed at plan time) each stay
/// in L2 and split further (`BlockedTaskSplit`): on 7×7 maps with 2048 channels, tasks of one 24-position tile re-read
/// the 4 MB of weights per tile from L3. It walks
/// the input channels in chunks whose weights for one group fit two thirds of L1. Strided layers first gather the
/// positions their outputs read into one buffer, once (`gathered`, zeros after it for the last tile's reach), and
/// then run as stride-1 layers on it: gathered per task and chunk, ResNet-50's 512 → 1024 1×1/2 copied its input once
/// per group range, 8 times (the tensor's last tile at stride 1 is gathered into the worker's scratch: no read beyond
/// the tensor). Each output sums its channels in order, chunk after chunk — on small maps whose groups do not split
/// evenly, in two slices of the channels added at the end (`ChannelBlockedPointwiseGeometry.reductionSlices(_:)`) —
/// so no result depends on the thread count.
struct ChannelBlockedPointwisePlan: BlockedOnlyPlan {
    let geometry: ChannelBlockedPointwiseGeometry
    /// [group of 4 output blocks][input channel][64 lanes], zero past the last output channel.
    let packedWeights: AlignedStorage<Float>

    var descriptor: ConvolutionDescriptor { geometry.descriptor }
    var blockedSummary: PlanDescription { geometry.summary }

    init(geometry: ChannelBlockedPointwiseGeometry, weights: Tensor<Float>) {
        self.geometry = geometry
        packedWeights = blockedTileWeights(weights, geometry.descriptor)
    }

    func run(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
             workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?) {
        let (d, g) = (descriptor, geometry)
        let strided = !d.isStrideOne
        if strided {
            let gathered = g.gathered.pointer(in: workspace)
            measurePhase("gather input", in: profile) {
                gatherOutputPositions(of: input.baseAddress!, d, into: gathered, threads: g.workers)
                zeroFloats(gathered + d.batch * g.inputBlocks * d.outputHeight * d.outputWidth * 16, count: 24 * 16)
            }
        }
        let tasksPerSlice = g.tasks / g.reductionSlices
        forEachBlockedTileTask(g.tasks, workers: g.workers, weights: packedWeights, input: input, output: output,
                               workspace: workspace, profile: profile) { worker, task, x, y, workspace, weights in
            let (slice, sliceTask) = (task / tasksPerSlice, task % tasksPerSlice)
            let range = sliceTask % g.groupRanges
            let positions = (sliceTask / g.groupRanges) % g.positionRanges
            let n = sliceTask / (g.groupRanges * g.positionRanges)
            runTask(n: n, positions: g.positions(positions),
                    groups: (range * g.groupsPerRange)..<min(g.groups, (range + 1) * g.groupsPerRange),
                    channels: g.sliceChannels(slice),
                    x: strided ? UnsafePointer(g.gathered.pointer(in: workspace)) : x, readsPastEnd: strided,
                    y: slice == 0 ? y : g.partialSums.pointer(in: workspace) + (slice - 1) * g.outputFloats,
                    weights: weights, scratch: g.scratch.pointer(in: workspace, worker: worker))
        }
        if g.reductionSlices > 1 {
            // y = slice 0's sum + slice 1's (+ …), added in slice order, a task per image and output block.
            let shared = UncheckedSendable((output.baseAddress!, g.partialSums.pointer(in: workspace)))
            let plane = d.outputHeight * d.outputWidth * 16
            measurePhase("add slices", in: profile) {
                Parallel.forEach(taskCount: d.batch * g.outputBlocks, threads: g.workers) { _, block in
                    let (y, partial) = shared.value
                    for slice in 1..<g.reductionSlices {
                        addFloats(partial + (slice - 1) * g.outputFloats + block * plane, into: y + block * plane,
                                  count: plane)
                    }
                }
            }
        }
    }

    /// One image's range of positions × a range of groups, chunk by chunk of input channels: the chunk's rows of the
    /// positions (in `x`: the input, or its gathered positions) are read by every group, and each group's chunk of
    /// weights by every register tile of the range. A range's last tile may read positions past it (its results are
    /// not stored): in place, except past the end of an `x` that is the tensor (`readsPastEnd` false), where that
    /// tail is gathered into the scratch, zero-padded.
    private func runTask(n: Int, positions: Range<Int>, groups: Range<Int>, channels slice: Range<Int>,
                         x: UnsafePointer<Float>, readsPastEnd: Bool,
                         y: UnsafeMutablePointer<Float>, weights: UnsafePointer<Float>,
                         scratch: UnsafeMutablePointer<Float>) {
        let d = descriptor, g = geometry
        let (C, Q) = (d.inputChannels, d.outputHeight * d.outputWidth)
        let outputBlock = Q * 16
        // Gathered rows: in the last image, where a tile reading past the map would read past the tensor, the
        // positions from the range's last whole 24 on. (Any tile reads at most up to the range's start plus its
        // length rounded up to 24: tiles are 6, 8, 12 or 24 wide.)
        let gatherStart = positions.lowerBound + (positions.count / 24) * 24
        let gathers = !readsPastEnd && n == d.batch - 1 && positions.lowerBound + (positions.count + 23) / 24 * 24 > Q
        let gatherWidth = g.scratchPositions
        // What the tail's tiles read past its positions must be zeros (garbage could be denormal, and slow): zeroed
        // once, by the first chunk (the later ones rewrite only the positions themselves). Zeroing the whole scratch
        // row every chunk was 5% of MobileNetV2's 960 → 160 at 7², one tail position a task.
        let tailReach = !gathers ? 0 : groups.reduce(0) { reach, group in
            max(reach, blockedTileReach(count: positions.upperBound - gatherStart,
                                        blocks: min(4, g.outputBlocks - group * 4)))
        }
        var chunkStart = slice.lowerBound
        while chunkStart < slice.upperBound {
            let channels = min(g.chunkChannels, slice.upperBound - chunkStart)
            let firstBlock = chunkStart / 16
            let chunkBlocks = (channels + 15) / 16
            if gathers {
                let count = positions.upperBound - gatherStart
                for b in 0..<chunkBlocks {
                    let target = scratch + b * gatherWidth * 16
                    copyFloats(x + ((n * g.inputBlocks + firstBlock + b) * Q + gatherStart) * 16, to: target,
                               count: count * 16)
                    if chunkStart == slice.lowerBound {
                        zeroFloats(target + count * 16, count: (tailReach - count) * 16)
                    }
                }
            }
            let accumulate = chunkStart > slice.lowerBound
            let inPlace = BlockedTileSteps(blockStride: Q * 16, tapRow: 0, tapColumn: 0, kernelHeight: 1, kernelWidth: 1,
                                           channels: channels, weightTap: 0)
            let gathered = BlockedTileSteps(blockStride: gatherWidth * 16, tapRow: 0, tapColumn: 0, kernelHeight: 1,
                                            kernelWidth: 1, channels: channels, weightTap: 0)
            for group in groups {
                let blocks = min(4, g.outputBlocks - group * 4)
                let columns = 24 / blocks  // 1 × 24, 2 × 12, 3 × 8, 4 × 6
                func arguments(at start: Int, fromScratch: Bool) -> BlockedTileArguments {
                    BlockedTileArguments(
                        input: fromScratch ? UnsafePointer(scratch + (start - gatherStart) * 16)
                            : x + ((n * g.inputBlocks + firstBlock) * Q + start) * 16,
                        weights: weights + (group * C + chunkStart) * 64,
                        output: y + ((n * g.outputBlocks + group * 4) * Q + start) * 16,
                        outputBlockStride: outputBlock, storeBlocks: blocks,
                        valid: min(columns, positions.upperBound - start), accumulate: accumulate)
                }
                var start = positions.lowerBound
                // Whole 4 × 6 tiles reading the tensor in one call; the rest (and the gathered tail) tile by tile.
                let inPlaceEnd = gathers ? min(positions.upperBound, gatherStart) : positions.upperBound
                if blocks == 4 && inPlaceEnd - start >= 6 {
                    let tiles = (inPlaceEnd - start) / 6
                    BlockedTileKernel.blocks4s1(arguments(at: start, fromScratch: false), inPlace, tiles: tiles)
                    start += tiles * 6
                }
                while start < positions.upperBound {
                    let fromScratch = gathers && start >= gatherStart
                    let arguments = arguments(at: start, fromScratch: fromScratch)
                    runBlockedRowTile(arguments, blocks: blocks, tiling: (columns, false),
                                      fromScratch ? gathered : inPlace, step: 16)
                    start += columns
                }
            }
            chunkStart += channels
        }
    }
}

/// Positions a group of `blocks` output blocks reads for `count` outputs from a tile boundary: whole tiles of
/// `24 / blocks` positions, and a last one of under 6 exactly (`BlockedTileKernel.tail`; on 2 blocks, under 12:
/// 2 × 6 and a tail).
func blockedTileReach(count: Int, blocks: Int) -> Int {
    let columns = 24 / blocks
    var start = 0
    while start < count {
        let left = count - start
        start += left < 6 || blocks == 2 && left < 12 ? left : columns
    }
    return start
}

/// Every input block's 16-channel vectors (nChw16c x of a 1×1 layer) at the positions its outputs read, [n][block]
/// [oh·Wo + ow][16], a task per image and block: a strided 1×1 layer's input as a stride-1 one's.
func gatherOutputPositions(of x: UnsafePointer<Float>, _ d: ConvolutionDescriptor,
                           into target: UnsafeMutablePointer<Float>, threads: Int) {
    let (plane, positions) = (d.inputHeight * d.inputWidth * 16, d.outputHeight * d.outputWidth)
    let shared = UncheckedSendable((x, target))
    Parallel.forEach(taskCount: d.batch * ((d.inputChannels + 15) / 16), threads: threads) { _, block in
        let (x, target) = shared.value
        gatherOutputPositions(of: x + block * plane, d, positions: 0..<positions, into: target + block * positions * 16)
    }
}

/// The 16-channel vectors of one nChw16c input block at the positions `positions` of a 1×1 layer's outputs read
/// (oh·sh, ow·sw), one after another into `target`.
@inline(__always)
func gatherOutputPositions(of block: UnsafePointer<Float>, _ d: ConvolutionDescriptor, positions: Range<Int>,
                           into target: UnsafeMutablePointer<Float>) {
    for i in 0..<positions.count {
        let position = positions.lowerBound + i
        let (oh, ow) = (position / d.outputWidth, position % d.outputWidth)
        copyFloats(block + (oh * d.strideHeight * d.inputWidth + ow * d.strideWidth) * 16, to: target + i * 16,
                   count: 16)
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
    /// Input channels per chunk: a multiple of 16 whose weights for one group fill at most two thirds of L1.
    let chunkChannels: Int
    /// Ranges of the input channels summed apart, each into its own copy of y, added in slice order at the end: 1, or
    /// 2 (`reductionSlices(_:)`).
    let reductionSlices: Int
    /// Floats of one copy of y.
    let outputFloats: Int
    /// Slices 1…: their sums, [slice − 1][n][block][position][16].
    let partialSums: WorkspaceRegion<Float>
    /// Ranges of each image's positions (multiples of 6 long, the last one ragged), one per task and group range.
    let positionRanges: Int
    let groupsPerRange: Int
    let groupRanges: Int
    let tasks: Int
    let workers: Int
    /// A strided layer's input at the positions its outputs read, [n][block][oh·Wo + ow][16], and 24 positions of
    /// zeros after it (what the last tile reads past the end).
    let gathered: WorkspaceRegion<Float>
    /// Positions of a gathered tail (stride 1, the tensor's last), zero-padded for the widest register tile to read.
    let scratchPositions: Int
    let scratch: WorkspaceRegion<Float>
    let summary: PlanDescription

    /// 1×1, one group, no padding (a padded 1×1 layer's border outputs read only zeros), any stride and batch.
    static func applies(to d: ConvolutionDescriptor) -> Bool {
        d.kernelHeight == 1 && d.kernelWidth == 1 && d.groups == 1 && d.padding == .zero
    }

    /// Two slices of the input channels where a small map's work cannot be dealt evenly otherwise: at most 64 output
    /// positions per image (7² and 8² maps, where every further range of positions re-reads every weight panel, for
    /// a tile or two of work), an odd number of 64-channel output groups and an odd batch (no even number of workers
    /// shares them evenly), and at least 256 input channels (8 blocks a slice). Each worker then sums half the
    /// channels for every output, its half of the weights read once. MobileNetV2's 960 → 160 at 7² took 3 groups × 4
    /// ranges of 12 positions, each worker reading every panel twice: against oneDNN in the same run (Zen 5, 2
    /// threads) 0.872 → 0.947, 0.0344 → 0.0318 ms; its 320 → 1280 backward-data (1280 → 320 here: 5 groups) 0.757 →
    /// 0.869; 1152 → 192 and 960 → 320 at 7² 4–7% faster; 576 → 96 at 14² 8% slower, and 2048 → 512 at 7² (8 groups)
    /// the same, so neither is sliced. One thread pays for the add, 1.7%. Fixed by the shape, not the thread count,
    /// so the bits do not depend on it.
    static func reductionSlices(_ d: ConvolutionDescriptor) -> Int {
        let groups = (d.outputChannels + 63) / 64
        return d.outputHeight * d.outputWidth <= 64 && groups % 2 == 1 && d.batch % 2 == 1 && d.inputChannels >= 256
            ? 2 : 1
    }

    /// Slice `slice`'s input channels: whole 16-channel blocks, dealt evenly.
    func sliceChannels(_ slice: Int) -> Range<Int> {
        let (c, blocks) = (descriptor.inputChannels, inputBlocks)
        func boundary(_ i: Int) -> Int { i == reductionSlices ? c : i * blocks / reductionSlices * 16 }
        return boundary(slice)..<boundary(slice + 1)
    }

    /// The Q positions' ⌈Q/6⌉ tiles of 6 dealt evenly to the R ranges (range i starts at tile ⌊i·T/R⌋; the last
    /// ends at Q). Rounding each range's start down to a multiple of 6 instead made 49 positions in 3 ranges
    /// 12 + 18 + 19 rather than 18 + 18 + 13.
    func positions(_ range: Int) -> Range<Int> {
        let q = descriptor.outputHeight * descriptor.outputWidth
        let tiles = (q + 5) / 6
        func boundary(_ i: Int) -> Int { i == positionRanges ? q : min(q, i * tiles / positionRanges * 6) }
        return boundary(range)..<boundary(range + 1)
    }

    init(descriptor d: ConvolutionDescriptor, options: PlanOptions, caches: MachineCaches = .current) throws {
        descriptor = d
        inputBlocks = (d.inputChannels + 15) / 16
        outputBlocks = (d.outputChannels + 15) / 16
        groups = (outputBlocks + 3) / 4
        let float = MemoryLayout<Float>.stride
        // A chunk: one group's weights for it (chunk × 64 lanes) in two thirds of L1, so every register tile of the
        // range reads them from L1, beside its few positions' rows. Sized instead for 24 positions' rows in half of
        // L1 (256 channels: a 64 KiB weight chunk, read from L2 by each tile), 1×1 layers at 7–56 px took 1.06–1.10×
        // the time (Intel, 2 threads, alternated runs: ResNet-50's 2048 → 512 at 7² 0.427 → 0.391 ms); 64 channels
        // was slower again on most.
        chunkChannels = max(16, caches.level1DataBytes * 2 / 3 / (64 * float) / 16 * 16)
        let positions = d.outputHeight * d.outputWidth
        reductionSlices = Self.reductionSlices(d)
        // Position ranges even to 6 positions (tiles of 24 had left a 49-position map one task of a single position).
        let chunkBytesPerPosition = min(chunkChannels, inputBlocks * 16) * float
        let quarter = caches.level2Bytes / 4
        let split = BlockedTaskSplit(
            batch: d.batch, ranges: max(1, (positions * chunkBytesPerPosition + quarter - 1) / quarter),
            maxRanges: max(1, positions / 6), groups: groups,
            groupRanges: max(1, (groups * d.inputChannels * 64 * float + quarter - 1) / quarter),
            weightBytes: d.inputChannels * groups * 64, inputBytes: positions * d.inputChannels,
            threads: max(1, options.threads / reductionSlices), units: (positions + 5) / 6, outputBlocks: outputBlocks)
        (positionRanges, groupsPerRange, groupRanges) = (split.ranges, split.groupsPerRange, split.groupRanges)
        tasks = reductionSlices * d.batch * positionRanges * groupRanges
        workers = Parallel.workers(threads: options.threads, tasks: tasks)
        // A tail of up to 23 positions, plus one widest tile's reach.
        scratchPositions = 48
        var layout = WorkspaceLayout()
        outputFloats = try CheckedArithmetic.product([d.batch, outputBlocks, positions, 16], what: "the 1×1 slice sums")
        partialSums = try layout.reserve(Float.self, count: try CheckedArithmetic.product(
            [reductionSlices - 1, outputFloats], what: "the 1×1 slice sums"), what: "the 1×1 slice sums")
        gathered = try layout.reserve(Float.self, count: d.isStrideOne ? 0 : try CheckedArithmetic.sum([
            try CheckedArithmetic.product([d.batch, inputBlocks, positions, 16], what: "the 1×1 gathered input"),
            24 * 16], what: "the 1×1 gathered input"), what: "the 1×1 gathered input")
        scratch = try layout.reserve(Float.self, count: try CheckedArithmetic.product(
            [min(chunkChannels, inputBlocks * 16) / 16, scratchPositions, 16], what: "the 1×1 gather scratch"),
            workers: workers, what: "the 1×1 gather scratch")
        try ResourceLimits.check("the 1×1 gather scratch", bytes: layout.byteCount,
                                 limit: options.limits.maxWorkspaceBytes)
        let flops = 2 * Double(d.batch * positions) * Double(outputBlocks * 16) * Double(d.inputChannels)
        summary = PlanDescription(
            backend: "direct", variant: reductionSlices > 1 ? "1x1 channel-blocked, \(reductionSlices) channel slices"
                : "1x1 channel-blocked", errorBound: DirectBackend.errorBound(d),
            typicalError: DirectBackend.typicalError(d), workspaceBytes: layout.byteCount,
            persistentBytes: groups * d.inputChannels * 64 * 4,
            work: WorkEstimate([.memory(bytes: Double(d.inputCount + d.outputCount + 2 * gathered.count
                                                      + 2 * partialSums.count) * 4),
                                .gemm(flops: flops, m: positions, n: groups * 64, k: d.inputChannels, tasks: tasks)]))
        try options.accuracy.admit(summary)
    }
}

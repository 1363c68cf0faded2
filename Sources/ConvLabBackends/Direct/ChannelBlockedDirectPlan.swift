import ConvLabCore

/// The `direct` backend's plan for dense layers (one group, any kernel, stride, padding and dilation) on nChw16c
/// tensors: the register tiles of `BlockedTileKernel` (as in the 1×1 plan, `ChannelBlockedPointwisePlan`) with the
/// kernel's taps as more terms of the sum. On NCHW the general direct plan keeps 6 output channels × 64 positions per
/// register block, so every tap loads whole position vectors; in the blocked layout the 16 input channels of a position
/// are one cache line and the 64 output channels of a tile one register row — the schedule oneDNN's AVX-512 direct
/// kernels use.
///
/// y[oh][ow][k..k+63] = Σ_(r,s,c) xp[oh·sh + r·dh][ow·sw + s·dw][c] · w[r][s][c][k..k+63], over a tile of 6, 12 or
/// 24 positions of one output row (4, 2 or 1 output blocks). First the input is copied once into a zero-padded
/// blocked buffer (`xp`, borders and a tail of zeros, so no tap needs a bounds check); then a task owns a range of one
/// image's output rows and a range of 64-channel groups, and walks the input channels in chunks whose rows for one
/// tile stay in L1, row by row, every group per row, every tap of the chunk per tile. Weights are packed at plan time
/// as [group][r][s][channel][64 lanes]. Each output sums its terms in (chunk, r, s, channel) order, whatever the
/// thread count.
struct ChannelBlockedDirectPlan: BlockedOnlyPlan {
    let geometry: ChannelBlockedDirectGeometry
    /// [group of 4 output blocks][r][s][input channel][64 lanes], zero past the last output channel.
    let packedWeights: AlignedStorage<Float>

    var descriptor: ConvolutionDescriptor { geometry.descriptor }
    var blockedSummary: PlanDescription { geometry.summary }

    init(geometry: ChannelBlockedDirectGeometry, weights: Tensor<Float>) {
        self.geometry = geometry
        packedWeights = blockedTileWeights(weights, geometry.descriptor)
    }

    func run(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
             workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?) {
        let (d, g) = (descriptor, geometry)
        measurePhase("pad", in: profile) {
            padBlockedPlanes(input.baseAddress!, count: d.batch * g.inputBlocks, height: d.inputHeight,
                             width: d.inputWidth, top: d.padding.top, left: d.padding.left,
                             into: g.padded.pointer(in: workspace), paddedHeight: g.paddedHeight,
                             paddedWidth: g.paddedWidth, tailFloats: g.tailFloats, threads: g.workers)
        }
        forEachBlockedTileTask(g.tasks, workers: g.workers, weights: packedWeights, input: input, output: output,
                               workspace: workspace, profile: profile) { _, task, _, y, workspace, weights in
            let (n, rows, groups) = g.task(task)
            let window = BlockedDirectWindow(
                input: UnsafePointer(g.padded.pointer(in: workspace)) + n * g.inputBlocks * g.paddedPlane,
                inputRow: g.paddedWidth * 16, inputBlock: g.paddedPlane,
                output: y + n * g.outputBlocks * d.outputHeight * d.outputWidth * 16, outputRow: d.outputWidth * 16,
                outputStep: 16, outputBlock: d.outputHeight * d.outputWidth * 16)
            g.runTask(window, rows: rows, groups: groups, weights: weights)
        }
    }
}

/// `count` planes (channel blocks of images) of height × width positions of 16 lanes from `source` into `padded`, each
/// `padBlockedPlane`, a task per plane, then `tailFloats` zeros after the last: what a row's last tile reads past it.
func padBlockedPlanes(_ source: UnsafePointer<Float>, count: Int, height: Int, width: Int, top: Int, left: Int,
                      into padded: UnsafeMutablePointer<Float>, paddedHeight: Int, paddedWidth: Int, tailFloats: Int,
                      threads: Int) {
    let shared = UncheckedSendable((source, padded))
    Parallel.forEach(taskCount: count, threads: threads) { _, plane in
        let (source, padded) = shared.value
        padBlockedPlane(source + plane * height * width * 16, height: height, width: width, top: top, left: left,
                        into: padded + plane * paddedHeight * paddedWidth * 16, paddedHeight: paddedHeight,
                        paddedWidth: paddedWidth)
    }
    zeroFloats(padded + count * paddedHeight * paddedWidth * 16, count: tailFloats)
}

/// Rows `top`… and columns `left`… of `padded` (paddedHeight × paddedWidth positions of 16 lanes) from the
/// height × width positions of `source`, zero around them: one channel block of one image.
func padBlockedPlane(_ source: UnsafePointer<Float>, height: Int, width: Int, top: Int, left: Int,
                     into padded: UnsafeMutablePointer<Float>, paddedHeight: Int, paddedWidth: Int) {
    for row in 0..<paddedHeight {
        let target = padded + row * paddedWidth * 16
        let inputRow = row - top
        guard inputRow >= 0 && inputRow < height else {
            zeroFloats(target, count: paddedWidth * 16)
            continue
        }
        let columns = min(width, paddedWidth - left)
        zeroFloats(target, count: left * 16)
        copyFloats(source + inputRow * width * 16, to: target + left * 16, count: columns * 16)
        zeroFloats(target + (left + columns) * 16, count: (paddedWidth - left - columns) * 16)
    }
}

/// Where one image's task of the dense blocked schedule reads and writes: the padded input's first channel block at
/// the task's input row 0, column 0, and the floats between its rows and channel blocks; the output's first block at
/// output (0, 0), and the floats between output rows, positions and blocks (a phase of a strided backward-data writes
/// every s-th row and position of dx).
struct BlockedDirectWindow {
    let input: UnsafePointer<Float>
    let inputRow: Int
    let inputBlock: Int
    let output: UnsafeMutablePointer<Float>
    let outputRow: Int
    let outputStep: Int
    let outputBlock: Int
}

extension ChannelBlockedDirectGeometry {
    /// Task `index`'s image, output rows (a range of `rowRanges`) and 64-channel groups (a range of `groupRanges`).
    func task(_ index: Int) -> (image: Int, rows: Range<Int>, groups: Range<Int>) {
        let (range, rows) = (index % groupRanges, (index / groupRanges) % rowRanges)
        return (index / (groupRanges * rowRanges),
                (rows * descriptor.outputHeight / rowRanges)..<((rows + 1) * descriptor.outputHeight / rowRanges),
                (range * groupsPerRange)..<min(groups, (range + 1) * groupsPerRange))
    }

    /// One task: output `rows` of 64-channel `groups` of one image, the input channels in chunks.
    func runTask(_ window: BlockedDirectWindow, rows: Range<Int>, groups: Range<Int>, weights: UnsafePointer<Float>) {
        let d = descriptor
        let (C, R, S, Wo) = (d.inputChannels, d.kernelHeight, d.kernelWidth, d.outputWidth)
        var chunkStart = 0
        while chunkStart < C {
            let channels = min(chunkChannels, C - chunkStart)
            let chunk = window.input + chunkStart / 16 * window.inputBlock
            let steps = BlockedTileSteps(blockStride: window.inputBlock, tapRow: d.dilationHeight * window.inputRow,
                                         tapColumn: d.dilationWidth * 16, kernelHeight: R, kernelWidth: S,
                                         channels: channels, weightTap: C * 64)
            let accumulate = chunkStart > 0
            // Row by row, every group: the row's input (R rows of the chunk) is read from L1 by all groups, whose
            // weight panels (a quarter of L2 at most) stay in L2.
            for oh in rows {
                let inputRow = chunk + oh * d.strideHeight * window.inputRow
                for group in groups {
                    let blocks = min(4, outputBlocks - group * 4)
                    let tiling = blockedRowTiling(blocks: blocks, width: Wo)
                    let panel = weights + group * R * S * C * 64 + chunkStart * 64
                    let outputRow = window.output + group * 4 * window.outputBlock + oh * window.outputRow
                    runBlockedRow(BlockedTileArguments(input: inputRow, weights: panel, output: outputRow,
                                                       outputBlockStride: window.outputBlock, storeBlocks: blocks,
                                                       valid: Wo, accumulate: accumulate,
                                                       outputStep: window.outputStep),
                                  blocks: blocks, width: Wo, tiling: tiling, steps, step: d.strideWidth * 16)
                }
            }
            chunkStart += channels
        }
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

    /// `padsInput` false: the caller runs the tasks on an input it padded itself (the phases of a strided
    /// backward-data, `ChannelBlockedPhasedDataGradientPlan`), and no padded buffer is reserved.
    init(descriptor d: ConvolutionDescriptor, options: PlanOptions, caches: MachineCaches = .current,
         padsInput: Bool = true) throws {
        descriptor = d
        inputBlocks = (d.inputChannels + 15) / 16
        outputBlocks = (d.outputChannels + 15) / 16
        groups = (outputBlocks + 3) / 4
        // Rows and columns every output reads, and at least the input's own (a padding past the kernel's reach).
        paddedHeight = max(d.inputRows(forOutputRows: d.outputHeight), d.padding.top + d.inputHeight)
        paddedWidth = max((d.outputWidth - 1) * d.strideWidth + (d.kernelWidth - 1) * d.dilationWidth + 1,
                          d.padding.left + d.inputWidth)
        let what = "the channel-blocked padded input"
        paddedPlane = try CheckedArithmetic.product([paddedHeight, paddedWidth, 16], what: what)
        // A row's last tile reads up to 23 positions past the row (strided: 23 steps).
        tailFloats = 24 * d.strideWidth * 16
        let float = MemoryLayout<Float>.stride
        // A chunk: one tile's input for every tap (R rows of 24 steps plus the kernel's reach) in half of L1. Where a
        // row takes several register tiles, each of them reads the group's weights for the chunk (chunk × R·S × 64
        // lanes) again, so the chunk is also cut until those fit two thirds of L1 (16 channels of a 3×3 kernel):
        // measured on the Intel kind, one thread, 1.06–1.10× on 3×3 layers with 17–56-wide rows (ResNet-50's
        // 128-channel 3×3 at 28² and at 56²/2, Inception's 288 → 384 at 35²/2, 64 channels at 56²); rows that are one
        // tile (14 wide, 2 × 14) were 5% slower with it and keep the input-sized chunk.
        let tileColumns = 23 * d.strideWidth + (d.kernelWidth - 1) * d.dilationWidth + 1
        let inputChunk = max(16, caches.level1DataBytes / 2 / (d.kernelHeight * tileColumns * float) / 16 * 16)
        let tiling = blockedRowTiling(blocks: min(4, outputBlocks), width: d.outputWidth)
        let tilesPerRow = (d.outputWidth + tiling.columns - 1) / tiling.columns
        let weightChunk = max(16, caches.level1DataBytes * 2 / 3 / (d.kernelHeight * d.kernelWidth * 64 * float)
                                  / 16 * 16)
        chunkChannels = tilesPerRow > 1 ? min(inputChunk, weightChunk) : inputChunk
        // Tasks: ranges of output rows × ranges of groups (`BlockedTaskSplit`), from one row range and weight panels in
        // a quarter of L2.
        let panelBytes = d.kernelHeight * d.kernelWidth * d.inputChannels * 64 * float
        let quarter = caches.level2Bytes / 4
        let split = BlockedTaskSplit(
            batch: d.batch, ranges: 1, maxRanges: d.outputHeight, groups: groups,
            groupRanges: max(1, (groups * panelBytes + quarter - 1) / quarter), weightBytes: panelBytes * groups,
            inputBytes: d.inputCount / d.batch * float, threads: options.threads, units: d.outputHeight,
            outputBlocks: outputBlocks)
        (rowRanges, groupsPerRange, groupRanges) = (split.ranges, split.groupsPerRange, split.groupRanges)
        tasks = d.batch * rowRanges * groupRanges
        workers = Parallel.workers(threads: options.threads, tasks: tasks)
        var layout = WorkspaceLayout()
        let paddedCount = !padsInput ? 0 : try CheckedArithmetic.sum(
            [try CheckedArithmetic.product([d.batch, inputBlocks, paddedPlane], what: what), tailFloats], what: what)
        padded = try layout.reserve(Float.self, count: paddedCount, what: what)
        try ResourceLimits.check(what, bytes: layout.byteCount, limit: options.limits.maxWorkspaceBytes)
        let flops = 2 * Double(d.batch * d.outputHeight * d.outputWidth) * Double(outputBlocks * 16)
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

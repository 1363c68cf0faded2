import ConvLabCore

/// The `direct` backend's channel-blocked plan for dense layers on few input channels (C ≤ 4: the RGB or grey stems of
/// most networks, 3×3/2, 4×4/4, 7×7/2, 11×11/4, 9×9): NCHW x (the image) in, nChw16c y out, as oneDNN's stem kernels.
///
/// The tap-by-tap blocked plan (`ChannelBlockedDirectPlan`) copies the whole input into a padded blocked buffer, 16
/// lanes per pixel of which 3 are data, and walks the kernel tap by tap with 3 terms each: on MobileNetV2's 3×3/2
/// stem it ran at a third of the NCHW plan's speed. This plan uses the same register tiles (`BlockedTileKernel`: output
/// channels along the lanes, pixels broadcast, 4 × 6, 3 × 8, 2 × 12, 2 × 14 or 1 × 24 vectors) over a band buffer
/// that holds the input rows a task reads as [row][column][C], zero-padded, C floats per pixel: a kernel row of an
/// undilated layer is then one run of S·C consecutive terms (9 for 3×3 RGB, 33 for 11×11), as its packed weights are.
/// A task (a band of output rows of one image, every output channel) fills its band itself, a few tens of KiB that
/// stay in cache, and stores its tiles straight into y.
///
/// On NCHW tensors the polyphase plan stays: measured on the Intel kind (2 threads, alternated runs), this schedule
/// with an NCHW band fill and 16×16 transposes of each output row was 1.07–1.34× slower on five of eight stems (the
/// transposes of a 64-channel 224² output cost a third of VGG's first layer) and faster only on ConvNeXt's 4×4/4.
///
/// Each output sums its terms in (r, s, c) order, so the bits do not depend on the thread count.
struct FewChannelDirectPlan: BlockedOnlyPlan {
    let geometry: FewChannelDirectGeometry
    /// [group of `geometry.groupBlocks` output blocks][r][s][input channel][64 lanes], zero past the group and the last
    /// output channel.
    let packedWeights: AlignedStorage<Float>

    var descriptor: ConvolutionDescriptor { geometry.descriptor }
    var blockedSummary: PlanDescription { geometry.summary }
    /// The image as it is: blocked, a pixel of 3 channels would be 16 lanes, and reading those cost this plan 40% of
    /// its time on MobileNetV2's and ConvNeXt's stems (Intel, 2 threads).
    var inputLayout: TensorLayout { .nchw }

    init(geometry: FewChannelDirectGeometry, weights: Tensor<Float>) {
        self.geometry = geometry
        packedWeights = blockedTileWeights(weights, geometry.descriptor, groupBlocks: geometry.groupBlocks)
    }

    func run(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
             workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?) {
        let g = geometry
        forEachBlockedTileTask(g.tasks, workers: g.workers, weights: packedWeights, input: input, output: output,
                               workspace: workspace, profile: profile) { worker, task, x, y, workspace, weights in
            runBand(n: task / g.bands, firstRow: task % g.bands * g.bandRows, x: x, y: y, weights: weights,
                    band: g.band.pointer(in: workspace, worker: worker))
        }
    }

    private func runBand(n: Int, firstRow: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                         weights: UnsafePointer<Float>, band: UnsafeMutablePointer<Float>) {
        let d = descriptor, g = geometry
        let (C, R, S, Ho, Wo) = (d.inputChannels, d.kernelHeight, d.kernelWidth, d.outputHeight, d.outputWidth)
        let rows = min(g.bandRows, Ho - firstRow)
        fillBand(n: n, firstRow: firstRow, rows: rows, x: x, band: band)
        let rowFloats = g.paddedWidth * C
        let step = d.strideWidth * C
        for local in 0..<rows {
            let oh = firstRow + local
            let inputRow = band + local * d.strideHeight * rowFloats
            for group in 0..<g.groups {
                let blocks = min(g.groupBlocks, g.outputBlocks - group * g.groupBlocks)
                let tiling = blockedRowTiling(blocks: blocks, width: Wo)
                let panel = weights + group * R * S * C * 64
                let outputRow = y + ((n * g.outputBlocks + group * g.groupBlocks) * Ho + oh) * Wo * 16
                runBlockedRow(BlockedTileArguments(input: inputRow, weights: panel, output: outputRow,
                                                   outputBlockStride: Ho * Wo * 16, storeBlocks: blocks, valid: Wo,
                                                   accumulate: false),
                              blocks: blocks, width: Wo, tiling: tiling, g.steps, step: step)
            }
        }
    }

    /// The input rows that output rows `firstRow..<firstRow + rows` read, as [row][column][C]: band row i is padded
    /// row firstRow·sh + i, column j padded column j; zero outside the input.
    private func fillBand(n: Int, firstRow: Int, rows: Int, x: UnsafePointer<Float>, band: UnsafeMutablePointer<Float>) {
        // (x is NCHW: `inputLayout`.)
        let d = descriptor, g = geometry
        let (C, H, W, width) = (d.inputChannels, d.inputHeight, d.inputWidth, g.paddedWidth)
        let rowFloats = width * C
        // Input columns [first, end) land at band columns [first + left, end + left).
        let left = d.padding.left
        let first = max(0, -left), end = min(W, width - left)
        for i in 0..<d.inputRows(forOutputRows: rows) {
            let target = band + i * rowFloats
            let ih = (firstRow * d.strideHeight + i) - d.padding.top
            guard ih >= 0 && ih < H && first < end else {
                zeroFloats(target, count: rowFloats)
                continue
            }
            zeroFloats(target, count: (first + left) * C)
            // Pixel by pixel from the C planes: the image is read once (NCHW, C floats a pixel), not as 16 lanes.
            // Grey and RGB get their own loops: with C a runtime bound for every image, the stems ran 1.1–1.9× slower
            // (ConvNeXt's 0.11 → 0.21 ms, MobileNetV2's 0.11 → 0.17; Intel, 2 threads, alternated runs).
            let source = x + (n * C * H + ih) * W + first
            let pixels = target + (first + left) * C
            let plane = H * W
            switch C {
            case 1: pixels.update(from: source, count: end - first)
            case 3:
                for p in 0..<(end - first) {
                    pixels[3 * p] = source[p]; pixels[3 * p + 1] = source[plane + p]; pixels[3 * p + 2] = source[2 * plane + p]
                }
            default:
                for p in 0..<(end - first) {
                    for c in 0..<C { pixels[p * C + c] = source[c * plane + p] }
                }
            }
            zeroFloats(target + (end + left) * C, count: (width - end - left) * C)
        }
    }
}

/// The few-channel plan's geometry: the band buffer (rows × padded columns × C, per worker), the tiles' steps through
/// it, bands of output rows per task.
struct FewChannelDirectGeometry: Sendable {
    let descriptor: ConvolutionDescriptor
    let outputBlocks: Int
    /// Output blocks per group (one register tile's channels): 4 (4 × 6 tiles), or 3 (3 × 8) where that computes
    /// fewer padded positions (`groupBlocks(outputBlocks:width:)`).
    let groupBlocks: Int
    let groups: Int
    /// Padded input columns a band row holds: every column a tile of the last, partial tile of a row reads.
    let paddedWidth: Int
    let bandRows: Int
    let bands: Int
    let tasks: Int
    let workers: Int
    /// How the tiles walk the band: per kernel row, the S·C pixels' floats of an undilated row are one run of
    /// consecutive terms (9 for a 3×3 RGB kernel) as the weights are; a dilated row is S runs of C.
    let steps: BlockedTileSteps
    let band: WorkspaceRegion<Float>
    let summary: PlanDescription

    /// Input channels up to this many: pixels are broadcast one channel at a time, so the plan wastes nothing on few
    /// channels, but a wider layer is better served by the blocked tiles over whole 16-channel blocks.
    static let maximumChannels = 4

    /// One group, at most `maximumChannels` input channels, at least 16 output channels (one full vector), any
    /// kernel but 1×1 (a 1×1 layer on 3 channels is a 3-term sum per output: memory-bound either way).
    static func applies(to d: ConvolutionDescriptor) -> Bool {
        d.groups == 1 && d.inputChannels <= maximumChannels && d.outputChannels >= 16
            && d.kernelHeight * d.kernelWidth > 1
    }

    /// 4 blocks a group, or 3 where the 3 × 8 tiles compute fewer block-positions (the lanes × positions a row's tiles
    /// compute, padding included): 96 output channels (ConvNeXt's 4×4/4, AlexNet's 11×11/4) are 3 + 3 blocks on rows
    /// of 56 or 55, 7 tiles of 3 × 8 each, where 4 + 2 computed 4 × 60 + 2 × 60 (a 4 × 2 or 4 × 1 tail, and a 2-block
    /// group at 14 loads per 24 FMAs).
    static func groupBlocks(outputBlocks: Int, width: Int) -> Int {
        func computed(_ groupBlocks: Int) -> Int {
            groupSizes(outputBlocks: outputBlocks, groupBlocks: groupBlocks)
                .map { $0 * tiledWidth(blocks: $0, width: width) }.reduce(0, +)
        }
        return outputBlocks % 4 != 0 && computed(3) < computed(4) ? 3 : 4
    }

    /// The blocks of each group, `groupBlocks` each but the last.
    static func groupSizes(outputBlocks: Int, groupBlocks: Int) -> [Int] {
        (0..<((outputBlocks + groupBlocks - 1) / groupBlocks)).map {
            min(groupBlocks, outputBlocks - $0 * groupBlocks)
        }
    }

    /// A row of `width` outputs padded to whole tiles of a `blocks`-block group.
    static func tiledWidth(blocks: Int, width: Int) -> Int {
        let columns = blockedRowTiling(blocks: blocks, width: width).columns
        return (width + columns - 1) / columns * columns
    }

    init(descriptor d: ConvolutionDescriptor, options: PlanOptions, caches: MachineCaches = .current) throws {
        descriptor = d
        outputBlocks = (d.outputChannels + 15) / 16
        groupBlocks = Self.groupBlocks(outputBlocks: outputBlocks, width: d.outputWidth)
        groups = (outputBlocks + groupBlocks - 1) / groupBlocks
        // A row's tiles may run past Wo, to a multiple of their width.
        let tiledWidth = Self.groupSizes(outputBlocks: outputBlocks, groupBlocks: groupBlocks)
            .map { Self.tiledWidth(blocks: $0, width: d.outputWidth) }.max()!
        paddedWidth = (tiledWidth - 1) * d.strideWidth + (d.kernelWidth - 1) * d.dilationWidth + 1
        let (C, rowFloats) = (d.inputChannels, paddedWidth * d.inputChannels)
        steps = d.dilationWidth == 1
            ? BlockedTileSteps(blockStride: 16, tapRow: d.dilationHeight * rowFloats, tapColumn: 0,
                               kernelHeight: d.kernelHeight, kernelWidth: 1, channels: d.kernelWidth * C,
                               weightTap: d.kernelWidth * C * 64)
            : BlockedTileSteps(blockStride: 0, tapRow: d.dilationHeight * rowFloats, tapColumn: d.dilationWidth * C,
                               kernelHeight: d.kernelHeight, kernelWidth: d.kernelWidth, channels: C,
                               weightTap: C * 64)
        let what = "the few-channel band buffer"
        let rowBytes = try CheckedArithmetic.product([paddedWidth, d.inputChannels, MemoryLayout<Float>.stride],
                                                     what: what)
        // Bands: enough tasks for 8 per thread when the batch alone is too few, each band's rows within a quarter of
        // L2 (the weight panels stream through the rest).
        let wanted = max(1, (8 * options.threads + d.batch - 1) / d.batch)
        var rowsPerBand = max(1, (d.outputHeight + wanted - 1) / wanted)
        func bandBytes(_ rows: Int) -> Int { d.inputRows(forOutputRows: rows) * rowBytes }
        while rowsPerBand > 1 && bandBytes(rowsPerBand) > caches.level2Bytes / 4 { rowsPerBand = (rowsPerBand + 1) / 2 }
        bandRows = rowsPerBand
        bands = (d.outputHeight + bandRows - 1) / bandRows
        tasks = try CheckedArithmetic.product([d.batch, bands], what: what)
        workers = Parallel.workers(threads: options.threads, tasks: tasks)
        var layout = WorkspaceLayout()
        let bandInputRows = d.inputRows(forOutputRows: bandRows)
        band = try layout.reserve(Float.self, count: try CheckedArithmetic.product(
            [bandInputRows, paddedWidth, d.inputChannels], what: what), workers: workers, what: what)
        try ResourceLimits.check(what, bytes: layout.byteCount, limit: options.limits.maxWorkspaceBytes)
        // Computed FLOPs: whole tiles of every output block (each group's tile is as wide as its blocks).
        let lanes = outputBlocks * 16
        let flops = 2 * Double(d.batch * d.outputHeight * tiledWidth) * Double(lanes) * Double(d.reductionLength)
        summary = PlanDescription(
            backend: "direct", variant: groupBlocks == 3 ? "few-channel, 3-block groups" : "few-channel",
            errorBound: DirectBackend.errorBound(d),
            typicalError: DirectBackend.typicalError(d), workspaceBytes: layout.byteCount,
            persistentBytes: groups * d.reductionLength * 64 * 4,
            work: WorkEstimate([.memory(bytes: Double(d.inputCount + d.outputCount) * 4),
                                .directKernel(flops: flops, reduction: d.reductionLength, tasks: tasks)]))
        try options.accuracy.admit(summary)
    }
}


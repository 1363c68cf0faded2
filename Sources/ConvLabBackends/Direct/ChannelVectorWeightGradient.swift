import ConvLabCore

/// The direct backend's backward-weights pass for layers with 16 or more output channels per group: output channels
/// along the vector lanes, so no lane is ever summed across.
///
/// dw[k][j] = Σ_n Σ_(oh,ow) dy[n][k][oh][ow] · xp[n][c][oh·sh + r·dh][ow·sw + s·dw] for tap j = (c, r, s) of a group,
/// xp the zero-padded input. With dy transposed to position-major rows (dyᵀ[q][k], q = oh·Wo + ow, output channels
/// rounded up to whole vectors), one step of the kernel loads 4 vectors of dyᵀ (64 output channels), broadcasts 6
/// input samples (6 taps) and does 24 FMAs into 24 accumulators: a GEMM's outer-product micro-kernel with the
/// positions as its depth, reading the input in place (any stride or dilation) instead of lowering it.
///
/// Against the position-vector kernel (`DirectWeightGradientGeometry`, kept for narrow groups) this visits only valid
/// output positions (that kernel's plane grid computes and discards ow ≥ Wo and rounds each image up to 64
/// positions), ends no sum in lane reductions (that one ends each image in 24), and packs no input unless the layer
/// pads on the top or left. The reduction runs in chunks of output positions whose dyᵀ rows stay in L1; every chunk
/// starts from zeroed registers and is added into a running dwᵀ, so the error grows with a chunk's length plus the
/// number of chunks, not with N·Ho·Wo. Two schedules, chosen from the layer's shape alone:
/// - **channel split** (large dw): dy is transposed once, and each task — a block of output channels × a range of
///   taps — runs over every chunk in order, adding into its own rows of dwᵀ;
/// - **reduction split** (dw small enough that a copy per slice stays in cache: stems, expansions, few input
///   channels over long reductions): each of a fixed number of slices of the chunks transposes its chunks' dy in
///   cache and runs every block and tap over them into its own partial dwᵀ; the partials are added in slice order.
/// Either way no element's summation order depends on the thread count.
struct ChannelVectorWeightGradientGeometry: Sendable {
    let descriptor: ConvolutionDescriptor

    /// A block of output-channel vectors one kernel call accumulates: 4 (64 channels), or 3, 2 or 1 for the
    /// remainder.
    struct ChannelBlock: Sendable {
        let firstVector: Int
        let vectors: Int
    }

    static let blockTaps = 6
    /// Slices of the reduction split, whatever the thread count.
    static let reductionSlices = 8

    /// Groups whose output channels fill at least one vector; narrower ones keep positions along the lanes.
    static func applies(to d: ConvolutionDescriptor) -> Bool { d.outputChannelsPerGroup >= 16 }

    /// Output channels per group rounded up to whole vectors: the row length of dyᵀ and dwᵀ (padding lanes zero).
    let laneChannels: Int
    let channelBlocks: [ChannelBlock]
    /// Kernel calls over a group's J taps: as many as blocks of 6 would take, the shortfall spread over blocks of 5
    /// that come last — 64 taps as 9 × 6 + 2 × 5, not 10 × 6 and a block of 4 computed as 6 (3% of the FMAs of a
    /// 64 → 64 1×1 layer, 12% at 16 or 32 taps). No sum changes: each tap's is over positions alone.
    let tapBlocks: Int
    let fiveTapBlocks: Int
    /// Channel split: tap blocks are dealt to tasks in `tapRanges` contiguous ranges of `tapBlocksPerRange`.
    let tapRanges: Int
    let tapBlocksPerRange: Int
    /// Reduction split: the N·chunksPerImage chunks in `slices` contiguous runs of `chunksPerSlice` (0: channel split).
    let slices: Int
    let chunksPerSlice: Int
    var splitsReduction: Bool { slices > 0 }
    let tasks: Int
    let threads: Int

    /// x itself when no tap reads padding (none on the top or left, none reached on the bottom or right), else a
    /// zero-padded copy of the rows and columns the taps reach.
    let readsInPlace: Bool
    let planeHeight: Int
    let planeWidth: Int
    var planeSize: Int { planeHeight * planeWidth }
    /// Where tap j = (c, r, s) of a group reads for output (0, 0), relative to the group's first input plane.
    let tapOffsets: [Int]
    /// The same on nChw16c x (`readsBlockedInput`), relative to the image's first block: in place, or in its
    /// zero-padded blocked copy where taps reach the padding; else empty.
    let blockedTapOffsets: [Int]

    /// Whether the nChw16c entry reads a blocked x: one group and more than 4 channels (a stem's image stays NCHW).
    static func readsBlockedInput(_ d: ConvolutionDescriptor) -> Bool {
        d.groups == 1 && d.inputChannels > FewChannelDirectGeometry.maximumChannels
    }

    /// The reduction is visited in rectangles of `chunkRows` × `chunkColumns` output positions (whole rows, or one
    /// row's segment): the positions of a chunk are consecutive in dy.
    let chunkRows: Int
    let chunkColumns: Int
    let columnChunks: Int
    let chunksPerImage: Int

    let paddedInput: WorkspaceRegion<Float>
    /// Reduction split on a padded NCHW x: each slice pads only the input rows its chunks read, image by image, into
    /// its worker's band (`bandInput`, planes of `bandRows` rows, read through `bandTapOffsets`), instead of a phase
    /// of its own copying every image whole before any sum starts. MobileNetV2's stem (3 → 32 3×3/2 at 224²): that
    /// phase was 13% of the pass, its 0.6 MB of copies written out to L3 and read back.
    let padsBands: Bool
    let bandRows: Int
    let bandTapOffsets: [Int]
    let bandInput: WorkspaceRegion<Float>
    /// Channel split: dyᵀ, [n][g][oh·Wo + ow][laneChannels]. Reduction split: one chunk's, per worker.
    let transposedGradient: WorkspaceRegion<Float>
    /// dwᵀ, [g][j][laneChannels]: the running sums (reduction split: one per slice).
    let transposedWeights: WorkspaceRegion<Float>
    /// The result wanted is dwᵀ itself, [j][Kg] (one group, whole vectors: `laneChannels` == Kg), not dw: the exchanged
    /// pointwise layer's (`PointwiseExchangedWeightGradientPlan`). The channel split then sums straight into the
    /// output, and nothing is transposed at the end.
    let resultIsTransposed: Bool
    let summary: PlanDescription

    init(descriptor d: ConvolutionDescriptor, options: PlanOptions, caches: MachineCaches = .current,
         resultIsTransposed: Bool = false) throws {
        descriptor = d
        threads = options.threads
        let (Kg, J, Ho, Wo) = (d.outputChannelsPerGroup, d.reductionLength, d.outputHeight, d.outputWidth)
        guard !resultIsTransposed || (d.groups == 1 && Kg % 16 == 0) else {
            throw ConvLabError.unsupported(backend: "direct", reason: "a transposed weight gradient needs one group "
                                           + "and whole 16-channel vectors (got \(d.groups) groups of \(Kg))")
        }
        self.resultIsTransposed = resultIsTransposed
        let vectors = (Kg + 15) / 16
        laneChannels = vectors * 16
        var blocks: [ChannelBlock] = []
        var first = 0
        for width in [4, 3, 2, 1] {
            while vectors - first >= width {
                blocks.append(ChannelBlock(firstVector: first, vectors: width))
                first += width
            }
        }
        channelBlocks = blocks
        tapBlocks = (J + Self.blockTaps - 1) / Self.blockTaps
        fiveTapBlocks = min(tapBlocks, tapBlocks * Self.blockTaps - J)

        let what = "the direct backend's backward-weights workspace"
        planeHeight = (Ho - 1) * d.strideHeight + d.kernelExtentHeight
        planeWidth = (Wo - 1) * d.strideWidth + d.kernelExtentWidth
        let inPlace = d.padding.top == 0 && d.padding.left == 0 && planeHeight <= d.inputHeight
            && planeWidth <= d.inputWidth
        readsInPlace = inPlace
        let (rowStride, channelStride) = readsInPlace ? (d.inputWidth, d.inputHeight * d.inputWidth)
            : (planeWidth, try CheckedArithmetic.product([planeHeight, planeWidth], what: what))
        tapOffsets = Self.planeTapOffsets(d, channelStride: channelStride, rowStride: rowStride)
        let (blockedRow, blockedPlane) = readsInPlace ? (d.inputWidth, d.inputHeight * d.inputWidth)
            : (planeWidth, planeHeight * planeWidth)
        blockedTapOffsets = !Self.readsBlockedInput(d) ? [] : (0..<J).map { j in
            let (c, r, s) = (j / (d.kernelHeight * d.kernelWidth), j / d.kernelWidth % d.kernelHeight, j % d.kernelWidth)
            return ((c / 16) * blockedPlane + r * d.dilationHeight * blockedRow + s * d.dilationWidth) * 16 + c % 16
        }

        // dyᵀ rows of one chunk (64 channels × 4 bytes per position for a 4-vector block) in half of L1.
        let positions = max(16, caches.level1DataBytes / 2 / (64 * MemoryLayout<Float>.stride))
        if Wo >= positions {
            columnChunks = (Wo + positions - 1) / positions
            chunkColumns = (Wo + columnChunks - 1) / columnChunks
            chunkRows = 1
        } else {
            columnChunks = 1
            chunkColumns = Wo
            chunkRows = min(Ho, positions / Wo)
        }
        chunksPerImage = columnChunks * ((Ho + chunkRows - 1) / chunkRows)
        let chunkPositions = chunkRows * chunkColumns

        // The reduction split when one dwᵀ per slice fits in an eighth of L2 and there is a chunk for every slice.
        let chunks = try CheckedArithmetic.product([d.batch, chunksPerImage], what: what)
        let weightsBytes = try CheckedArithmetic.product([d.groups, J, laneChannels, MemoryLayout<Float>.stride],
                                                         what: what)
        if weightsBytes <= caches.level2Bytes / 8 && chunks >= Self.reductionSlices {
            chunksPerSlice = (chunks + Self.reductionSlices - 1) / Self.reductionSlices
            slices = (chunks + chunksPerSlice - 1) / chunksPerSlice
            tapRanges = 1
            tapBlocksPerRange = tapBlocks
            tasks = slices
        } else {
            // Enough tasks for 8 per thread; more ranges only re-read dyᵀ, and never change a sum's order. Blocks of
            // 4 and 2 vectors make tasks of two sizes: with 4 per thread, ConvNeXt's exchanged 96 → 384 at 56² ran
            // 0.5 or 0.7 ms from run to run on 2 threads; with 8, 0.47 (and 960 → 160 at 7² 5% faster).
            let independent = d.groups * blocks.count
            tapRanges = min(tapBlocks, max(1, (8 * threads + independent - 1) / independent))
            tapBlocksPerRange = (tapBlocks + tapRanges - 1) / tapRanges
            slices = 0
            chunksPerSlice = 0
            tasks = independent * tapRanges
        }
        let workers = Parallel.workers(threads: threads, tasks: tasks)
        let bands = slices > 0 && !inPlace
        padsBands = bands
        if bands {
            // A slice's chunks of one image span at most this many output rows (`accumulate(slice:)`).
            let outputRows = min(Ho, ((chunksPerSlice - 1) / columnChunks + 2) * chunkRows)
            let (rows, width) = (min(planeHeight, (outputRows - 1) * d.strideHeight + d.kernelExtentHeight), planeWidth)
            let bandPlane = try CheckedArithmetic.product([rows, width], what: what)
            bandRows = rows
            bandTapOffsets = Self.planeTapOffsets(d, channelStride: bandPlane, rowStride: width)
        } else {
            (bandRows, bandTapOffsets) = (0, [])
        }

        var layout = WorkspaceLayout()
        // (The blocked entry's padded copy rounds the channels up to whole blocks; with bands, only it copies whole.)
        let copiesWhole = !inPlace && (!bands || Self.readsBlockedInput(d))
        paddedInput = try layout.reserve(Float.self, count: !copiesWhole ? 0 : try CheckedArithmetic.product(
            [d.batch, (d.inputChannels + 15) / 16 * 16, planeHeight, planeWidth], what: what), what: what)
        bandInput = try layout.reserve(Float.self, count: !padsBands ? 0 : try CheckedArithmetic.product(
            [d.inputChannels, bandRows, planeWidth], what: what), workers: workers, what: what)
        if slices > 0 {
            transposedGradient = try layout.reserve(Float.self, count: try CheckedArithmetic.product(
                [chunkPositions, laneChannels], what: what), workers: workers, what: what)
            transposedWeights = try layout.reserve(Float.self, count: try CheckedArithmetic.product(
                [slices, d.groups, J, laneChannels], what: what), what: what)
        } else {
            transposedGradient = try layout.reserve(Float.self, count: try CheckedArithmetic.product(
                [d.batch, d.groups, Ho, Wo, laneChannels], what: what), what: what)
            transposedWeights = try layout.reserve(Float.self, count: resultIsTransposed ? 0
                : try CheckedArithmetic.product([d.groups, J, laneChannels], what: what), what: what)
        }
        try ResourceLimits.check(what, bytes: layout.byteCount, limit: options.limits.maxWorkspaceBytes)

        let terms = d.reductionLength(for: .backwardWeights)
        let partials = chunks + slices
        let flops = 2 * Double(d.batch * Ho * Wo) * Double(d.groups * laneChannels)
            * Double(max(J, tapBlocks * (Self.blockTaps - 1)))
        // (Bands are written and read in cache.)
        let copied: Int = readsInPlace || padsBands ? 0 : 2 * d.batch * d.inputChannels * planeHeight * planeWidth
        // The channel split writes and reads dyᵀ once more than the reduction split, which transposes it in cache.
        let transposed: Int = slices > 0 ? 0 : 2 * d.batch * d.groups * Ho * Wo * laneChannels
        // A channel split whose running sums outgrow half of L2 reads and writes them from L3 once per chunk:
        // ResNet-50's 2048→512 1×1 at 7² moved 4 MiB of sums 4 times for 0.1 GFLOP (priced as compute alone, it was
        // chosen over im2col, 2.5× faster). With block-major sums what must stay is one task's (its taps × at most 64
        // lanes); K-wide rows (a transposed result) fold into a few sets, so there the whole dwᵀ counts. Priced on the
        // whole dwᵀ, Inception-v3's 7×1 and 3×3/2 layers (0.7 and 4 MiB, 38 and 221 KiB per task) went to im2col,
        // 1.43× and 1.27× slower than direct.
        let taskSumsBytes = resultIsTransposed ? weightsBytes
            : tapBlocksPerRange * Self.blockTaps * 64 * MemoryLayout<Float>.stride
        let spilled: Int = slices == 0 && taskSumsBytes > caches.level2Bytes / 2
            ? weightsBytes / MemoryLayout<Float>.stride * (2 * chunks) : 0
        let streamed: Int = copied + d.outputCount + transposed + d.inputCount + d.weightCount + spilled
        let variant = "channel vectors, " + (slices > 0 ? "\(slices) slices of " : "")
            + "\(chunkRows)x\(chunkColumns) chunks" + (readsInPlace ? "" : padsBands ? ", padded copy by slice"
                                                          : ", padded copy")
        summary = PlanDescription(
            backend: "direct", pass: .backwardWeights, variant: variant,
            // Each chunk is summed from zero (two interleaved chains for the narrow blocks, shorter still), then added
            // to the running sum: a chain of one chunk's terms plus one addition per chunk (and per slice).
            errorBound: blockedDotProductErrorBound(terms: terms, blockTerms: chunkPositions, partials: partials),
            typicalError: TypicalError.dotProduct(terms: terms, blockTerms: chunkPositions, partials: partials),
            workspaceBytes: layout.byteCount,
            work: WorkEstimate([
                .memory(bytes: Double(streamed) * 4),
                // The kernel's inner loop runs along one row of a chunk: 7-wide rows leave its overhead unamortised.
                .directKernel(flops: flops, reduction: chunkColumns, tasks: tasks)]))
        try options.accuracy.admit(summary)
    }

    /// Where tap j = (c, r, s) of a group reads for output (0, 0) in NCHW planes `channelStride` floats apart with
    /// rows `rowStride` apart (x itself, its padded copy, or a slice's band).
    static func planeTapOffsets(_ d: ConvolutionDescriptor, channelStride: Int, rowStride: Int) -> [Int] {
        var offsets: [Int] = []
        offsets.reserveCapacity(d.reductionLength)
        for c in 0..<d.channelsPerGroup {
            for r in 0..<d.kernelHeight {
                for s in 0..<d.kernelWidth {
                    offsets.append(c * channelStride + r * d.dilationHeight * rowStride + s * d.dilationWidth)
                }
            }
        }
        return offsets
    }

    /// The first tap of tap block `block` (J for `tapBlocks`).
    func firstTap(ofBlock block: Int) -> Int {
        let sixes = tapBlocks - fiveTapBlocks
        let start = block <= sixes ? block * Self.blockTaps
            : sixes * Self.blockTaps + (block - sixes) * (Self.blockTaps - 1)
        return min(descriptor.reductionLength, start)
    }

    /// Taps tap block `block` is computed for (its last may lie past J: repeated, never stored).
    func width(ofBlock block: Int) -> Int { block < tapBlocks - fiveTapBlocks ? Self.blockTaps : Self.blockTaps - 1 }

    /// The rectangle of output positions chunk `index` of an image covers.
    func chunk(_ index: Int) -> (row: Int, column: Int, rows: Int, columns: Int) {
        let (row, column) = ((index / columnChunks) * chunkRows, (index % columnChunks) * chunkColumns)
        return (row, column, min(chunkRows, descriptor.outputHeight - row),
                min(chunkColumns, descriptor.outputWidth - column))
    }
}

struct ChannelVectorWeightGradientPlan: PassPlan {
    let geometry: ChannelVectorWeightGradientGeometry

    var descriptor: ConvolutionDescriptor { geometry.descriptor }
    var summary: PlanDescription { geometry.summary }

    func execute(_ operands: PassOperands, workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?) throws {
        try validate(operands, workspace: workspace)
        run(operands, workspace: workspace, blockedGradient: false, profile: profile)
    }

    /// Both entry points, on checked operands: dy NCHW (transposed to dyᵀ) or nChw16c (read in place; one group); dw
    /// K×C/G×R×S, or Oihw16o (`blockedResult`, one group).
    func run(_ operands: PassOperands, workspace: UnsafeMutableRawBufferPointer, blockedGradient: Bool,
             blockedResult: Bool = false, profile: ExecutionProfile?) {
        let (d, g) = (descriptor, geometry)
        let (padded, dyT, dwT) = (g.paddedInput.pointer(in: workspace), g.transposedGradient.pointer(in: workspace),
                                  g.transposedWeights.pointer(in: workspace))
        let shared = UncheckedSendable((operands.input.baseAddress!, operands.gradOutput.baseAddress!,
                                        operands.output.baseAddress!, padded, workspace))
        let (Kg, Q, L) = (d.outputChannelsPerGroup, d.outputHeight * d.outputWidth, g.laneChannels)
        let channelRows = (Kg + 15) / 16
        // Planes to pad (channel blocks of a blocked x), each in `pieces` row ranges: a stem has only 3, and whole
        // planes left one of two threads a plane to copy alone (MobileNetV2's stem, 2 threads: this phase
        // 0.022–0.026 -> 0.017–0.020 ms).
        let blockedInput = blockedGradient && !g.blockedTapOffsets.isEmpty
        let bands = g.padsBands && !blockedInput
        let planes = g.readsInPlace || bands ? 0
            : d.batch * (blockedInput ? (d.inputChannels + 15) / 16 : d.inputChannels)
        let pieces = planes == 0 ? 1 : min(g.planeHeight, (4 * g.threads + planes - 1) / planes)
        let copies = planes * pieces
        let transposes = g.splitsReduction || blockedGradient ? 0 : d.batch * d.groups * channelRows
        measurePhase("pad input and transpose gradient", in: profile) {
            Parallel.forEach(taskCount: copies + transposes, threads: g.threads) { _, task in
                let (x, dy, _, padded, _) = shared.value
                if task < copies {
                    let (plane, piece) = (task / pieces, task % pieces)
                    let rows = piece * g.planeHeight / pieces ..< (piece + 1) * g.planeHeight / pieces
                    if blockedInput {
                        let (source, target) = (x + plane * d.inputHeight * d.inputWidth * 16,
                                                padded + (plane * g.planeSize + rows.lowerBound * g.planeWidth) * 16)
                        padBlockedPlane(source, height: d.inputHeight, width: d.inputWidth,
                                        top: d.padding.top - rows.lowerBound, left: d.padding.left, into: target,
                                        paddedHeight: rows.count, paddedWidth: g.planeWidth)
                    } else {
                        g.pad(x + plane * d.inputHeight * d.inputWidth, rows: rows, into: padded + plane * g.planeSize)
                    }
                    return
                }
                // 16 output channels of one image and group: dy[k][q] → dyᵀ[q][k].
                let (plane, rowBlock) = ((task - copies) / channelRows, (task - copies) % channelRows)
                let first = rowBlock * 16
                ChannelBlocking.toBlocked(dy + (plane * Kg + first) * Q, planeStride: Q, from: 0, count: Q,
                                          channels: min(16, Kg - first), into: dyT + plane * Q * L + first,
                                          positionStride: L)
            }
        }
        let tapOffsets = bands ? g.bandTapOffsets : blockedInput ? g.blockedTapOffsets : g.tapOffsets
        tapOffsets.withUnsafeBufferPointer { offsets in
            let view = UncheckedSendable(bands ? g.bandView(offsets: offsets.baseAddress!)
                                         : g.inputView(blocked: blockedInput, offsets: offsets.baseAddress!))
            measurePhase("accumulate", in: profile) {
                Parallel.forEach(taskCount: g.tasks, threads: g.threads) { worker, task in
                    let (x, dy, dw, padded, workspace) = shared.value
                    let input = g.readsInPlace || bands ? x : UnsafePointer(padded)
                    if g.splitsReduction {
                        g.accumulate(slice: task, input: input, inputView: view.value, gradient: dy,
                                     blocked: blockedGradient,
                                     buffer: g.transposedGradient.pointer(in: workspace, worker: worker),
                                     band: bands ? g.bandInput.pointer(in: workspace, worker: worker) : nil,
                                     sums: g.transposedWeights.pointer(in: workspace))
                    } else {
                        g.accumulate(task: task, input: input, inputView: view.value,
                                     gradient: blockedGradient ? dy : UnsafePointer(dyT),
                                     view: blockedGradient ? g.blockedView : g.transposedView,
                                     sums: g.resultIsTransposed ? dw : dwT, weights: dw, blockedResult: blockedResult)
                    }
                }
            }
        }
        guard g.splitsReduction else { return }
        measurePhase("add slices", in: profile) {
            // Tasks of 64 rows of dwᵀ within a group: the slices' rows added into slice 0's in slice order, then
            // transposed into dw.
            let (J, rows) = (d.reductionLength, d.groups * d.reductionLength)
            let pieces = (J + 63) / 64
            Parallel.forEach(taskCount: d.groups * pieces, threads: g.threads) { _, task in
                let (_, _, dw, _, _) = shared.value
                let (group, taps) = (task / pieces, ((task % pieces) * 64)..<min(J, (task % pieces) * 64 + 64))
                for row in (group * J + taps.lowerBound)..<(group * J + taps.upperBound) {
                    for slice in 1..<g.slices {
                        addFloats(dwT + (slice * rows + row) * L, into: dwT + row * L, count: L)
                    }
                }
                g.store(UnsafePointer(dwT + group * J * L), rowStride: L, group: group, taps: taps, lanes: 0..<L,
                        into: dw, blockedResult: blockedResult)
            }
        }
    }
}

/// The channel-vector weight gradient with its nChw16c entry point (one group): dy blocked, read in place — a
/// position's 16-channel vectors are the kernel's vectors, one plane apart — instead of transposed chunk by chunk
/// into dyᵀ. x is the NCHW image for a stem (at most 4 channels, `blockedInputLayout`), as the forward stems take it;
/// else nChw16c, read in place where no tap reaches the padding (1×1 and unpadded layers): a tap's broadcast is then
/// one float of a position's 16-channel line.
struct ChannelVectorWeightGradientWithBlockedEntry: ChannelBlockedPassExecution {
    let plan: ChannelVectorWeightGradientPlan

    static func applies(to g: ChannelVectorWeightGradientGeometry) -> Bool {
        g.descriptor.groups == 1
            && (g.descriptor.inputChannels <= FewChannelDirectGeometry.maximumChannels || !g.blockedTapOffsets.isEmpty)
    }

    var descriptor: ConvolutionDescriptor { plan.descriptor }
    var summary: PlanDescription { plan.summary }
    var blockedInputLayout: TensorLayout { plan.geometry.blockedTapOffsets.isEmpty ? .nchw : .nChw16c }

    func execute(_ operands: PassOperands, workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?) throws {
        try plan.execute(operands, workspace: workspace, profile: profile)
    }

    func executeBlocked(_ operands: PassOperands, workspace: UnsafeMutableRawBufferPointer,
                        profile: ExecutionProfile?) throws {
        try validateBlocked(operands, workspace: workspace)
        plan.run(operands, workspace: workspace, blockedGradient: true, blockedResult: true, profile: profile)
    }
}

extension ChannelVectorWeightGradientGeometry {
    /// How the kernels step through dy: floats between neighbouring positions of a row, between its 16-channel
    /// vectors at one position, and between a group's images.
    struct GradientView {
        let column: Int
        let block: Int
        let image: Int
    }

    /// dyᵀ, [n][g][oh·Wo + ow][laneChannels]: the NCHW entry's transposes (channel split).
    var transposedView: GradientView {
        GradientView(column: laneChannels, block: 16, image: descriptor.outputHeight * descriptor.outputWidth * laneChannels)
    }

    /// One chunk's dyᵀ in a worker's buffer (the reduction split's NCHW entry): [position][laneChannels].
    var chunkView: GradientView { GradientView(column: laneChannels, block: 16, image: 0) }

    /// nChw16c dy in place (one group): a position's vectors are planes apart.
    var blockedView: GradientView {
        let plane = descriptor.outputHeight * descriptor.outputWidth * 16
        return GradientView(column: 16, block: plane, image: laneChannels / 16 * plane)
    }

    /// How the kernels read x: floats between images, a group's first channels, rows and columns of output positions
    /// (stride included), and each tap's offset.
    struct InputView {
        let image: Int
        let group: Int
        let row: Int
        let column: Int
        let offsets: UnsafePointer<Int>
    }

    /// x NCHW (or its padded copy) with `tapOffsets`; nChw16c x (or its padded blocked copy) with
    /// `blockedTapOffsets`.
    func inputView(blocked: Bool, offsets: UnsafePointer<Int>) -> InputView {
        let d = descriptor
        if blocked {
            let (width, plane) = readsInPlace ? (d.inputWidth, d.inputHeight * d.inputWidth * 16)
                : (planeWidth, planeSize * 16)
            return InputView(image: (d.inputChannels + 15) / 16 * plane, group: 0,
                             row: d.strideHeight * width * 16, column: d.strideWidth * 16, offsets: offsets)
        }
        let strides = inputStrides
        return InputView(image: d.inputChannels * strides.channel, group: d.channelsPerGroup * strides.channel,
                         row: d.strideHeight * strides.row, column: d.strideWidth, offsets: offsets)
    }

    /// A worker's band (`padsBands`): planes of `bandRows` rows of the padded plane's width, with `bandTapOffsets`;
    /// the chunks' rows are then counted from the band's first (`accumulate(slice:)`).
    func bandView(offsets: UnsafePointer<Int>) -> InputView {
        let d = descriptor
        return InputView(image: 0, group: d.channelsPerGroup * bandRows * planeWidth,
                         row: d.strideHeight * planeWidth, column: d.strideWidth, offsets: offsets)
    }

    /// Rows `rows` of the zero-padded rows and columns of one input plane that taps reach, row `firstRow` of them
    /// at `target`.
    func pad(_ plane: UnsafePointer<Float>, rows: Range<Int>, into target: UnsafeMutablePointer<Float>,
             firstRow: Int = 0) {
        let d = descriptor
        for i in rows {
            let ih = i - d.padding.top
            copyPaddedRow(ih >= 0 && ih < d.inputHeight ? plane + ih * d.inputWidth : nil, width: d.inputWidth,
                          offset: -d.padding.left, into: target + (i - firstRow) * planeWidth, count: planeWidth)
        }
    }

    /// Floats between a group's input planes as the kernel reads them (x itself or the padded copy).
    private var inputStrides: (row: Int, channel: Int) {
        readsInPlace ? (descriptor.inputWidth, descriptor.inputHeight * descriptor.inputWidth) : (planeWidth, planeSize)
    }

    /// Where a chunk's sums go. `rows`: dwᵀ rows, `sums + j·L + lane` (the reduction split's; a transposed result's).
    /// `blockMajor`: a block's rows of its own lanes, `sums + J·lane + j·width` (the channel split's running sums,
    /// `accumulate(task:)`). `blockedResult`: dw itself in Oihw16o, `sums + J·lane + j·16`, each further vector J·16
    /// on (the blocked entry's channel split: the kernels' registers are that layout, so nothing is transposed).
    enum SumsLayout {
        case rows
        case blockMajor
        case blockedResult
    }

    /// Channel split, one task: a block of output-channel vectors of one group × a range of tap blocks, over the
    /// whole reduction, into its rows of dwᵀ; then those rows into dw. The running sums are block-major — the block's
    /// rows of its own lanes, J·lane floats into the group's — unless the result is dwᵀ itself, or Oihw16o dw
    /// (`blockedResult`), summed in place.
    ///
    /// Block-major: a task's rows of a K-wide dwᵀ are 256 bytes every K·4 (2 KiB at K = 512), and those strides fold
    /// into an eighth of L2's sets — VGG-16's 512-channel 14² layer, 3 chunks, re-read its 0.6 MB of sums per task
    /// from L3 and ran at 36% of peak; contiguous, they stay in L2.
    func accumulate(task: Int, input: UnsafePointer<Float>, inputView: InputView, gradient: UnsafePointer<Float>,
                    view: GradientView, sums: UnsafeMutablePointer<Float>, weights dw: UnsafeMutablePointer<Float>,
                    blockedResult: Bool) {
        let d = descriptor
        let (J, Wo, L) = (d.reductionLength, d.outputWidth, laneChannels)
        let range = task % tapRanges
        let block = channelBlocks[(task / tapRanges) % channelBlocks.count]
        let group = task / (tapRanges * channelBlocks.count)
        let blockRange = min(tapBlocks, range * tapBlocksPerRange)..<min(tapBlocks, (range + 1) * tapBlocksPerRange)
        guard !blockRange.isEmpty else { return }
        let taps = firstTap(ofBlock: blockRange.lowerBound)..<firstTap(ofBlock: blockRange.upperBound)
        let lane = block.firstVector * 16
        let groupSums = blockedResult ? dw : sums + group * J * L
        let layout: SumsLayout = blockedResult ? .blockedResult : resultIsTransposed ? .rows : .blockMajor
        for n in 0..<d.batch {
            let gradientImage = gradient + (n * d.groups + group) * view.image
            for index in 0..<chunksPerImage {
                let c = chunk(index)
                accumulate(chunk: c, image: n, group: group, input: input, inputView: inputView,
                           gradient: gradientImage + (c.row * Wo + c.column) * view.column, gradientRow: Wo * view.column,
                           view: view, blocks: CollectionOfOne(block), tapBlocks: blockRange, sums: groupSums,
                           layout: layout, first: n == 0 && index == 0)
            }
        }
        if layout == .blockMajor {
            let width = block.vectors * 16
            store(UnsafePointer(groupSums + J * lane), rowStride: width, group: group, taps: taps,
                  lanes: lane..<(lane + width), into: dw)
        }
    }

    /// dwᵀ rows `taps` of one group, lanes `lanes` (whole vectors) → dw[k][j] (KCRS), 16×16 transposes (a transposed
    /// result: the rows copied as they are; `blockedResult`: each vector to its place in Oihw16o dw). `rows`: row 0 at
    /// lane `lanes.lowerBound`, rows `rowStride` floats apart (L for K-wide rows, the block's width for the channel
    /// split's block-major sums). Element by element, the
    /// stores J floats apart all fell into one L1 set and ran at a miss each (ResNet-50's 2048→512 1×1 at 7²: 2.9 ms
    /// against 0.4 for the whole convolution).
    func store(_ rows: UnsafePointer<Float>, rowStride: Int, group: Int, taps: Range<Int>, lanes: Range<Int>,
               into dw: UnsafeMutablePointer<Float>, blockedResult: Bool = false) {
        let (Kg, J, L) = (descriptor.outputChannelsPerGroup, descriptor.reductionLength, laneChannels)
        if blockedResult {  // one group: each row's 16-lane vectors to their taps of Oihw16o dw
            for j in taps {
                for k in stride(from: lanes.lowerBound, to: lanes.upperBound, by: 16) {
                    storeVector(loadVector(rows + j * rowStride + k - lanes.lowerBound), dw + (k / 16 * J + j) * 16)
                }
            }
            return
        }
        if resultIsTransposed {  // one group, L == Kg: the rows are the result's
            for j in taps { (dw + j * L + lanes.lowerBound).update(from: rows + j * rowStride, count: lanes.count) }
            return
        }
        for k in stride(from: lanes.lowerBound, to: min(lanes.upperBound, Kg), by: 16) {
            ChannelBlocking.fromBlocked(rows + taps.lowerBound * rowStride + (k - lanes.lowerBound), count: taps.count,
                                        channels: min(16, Kg - k), into: dw + (group * Kg + k) * J + taps.lowerBound,
                                        planeStride: J, positionStride: rowStride)
        }
    }

    /// Reduction split, one slice: its chunks in order, each group's dy of it transposed into `buffer` (nChw16c dy:
    /// read in place) and run through every block and tap, into the slice's own dwᵀ. With a `band` (`padsBands`),
    /// `input` is x itself and `inputView` the band's: the rows the slice's chunks of an image read are padded into
    /// the band first.
    func accumulate(slice: Int, input x: UnsafePointer<Float>, inputView: InputView, gradient dy: UnsafePointer<Float>,
                    blocked: Bool, buffer: UnsafeMutablePointer<Float>, band: UnsafeMutablePointer<Float>?,
                    sums: UnsafeMutablePointer<Float>) {
        let d = descriptor
        let (Kg, J, Q, L) = (d.outputChannelsPerGroup, d.reductionLength, d.outputHeight * d.outputWidth, laneChannels)
        let sliceSums = sums + slice * d.groups * J * L
        let chunks = (slice * chunksPerSlice)..<min(d.batch * chunksPerImage, (slice + 1) * chunksPerSlice)
        let input = band.map { UnsafePointer($0) } ?? x
        var bandOrigin = 0
        for global in chunks {
            let (n, c) = (global / chunksPerImage, chunk(global % chunksPerImage))
            let (first, count) = (c.row * d.outputWidth + c.column, c.rows * c.columns)
            if let band {
                if global == chunks.lowerBound || global % chunksPerImage == 0 {
                    // The padded rows this slice's chunks of image n read, from its first chunk's to its last's.
                    let last = chunk((min(chunks.upperBound, (n + 1) * chunksPerImage) - 1) % chunksPerImage)
                    bandOrigin = c.row
                    let rows = (c.row * d.strideHeight)..<min(planeHeight, (last.row + last.rows - 1) * d.strideHeight
                                                                 + d.kernelExtentHeight)
                    for channel in 0..<d.inputChannels {
                        pad(x + (n * d.inputChannels + channel) * d.inputHeight * d.inputWidth, rows: rows,
                            into: band + channel * bandRows * planeWidth, firstRow: rows.lowerBound)
                    }
                }
            }
            // Where the chunk's taps read: its rows from the band's first, with a band (the gradient's stay as are).
            let source = (row: c.row - bandOrigin, column: c.column, rows: c.rows, columns: c.columns)
            if blocked {
                let view = blockedView
                accumulate(chunk: source, image: n, group: 0, input: input, inputView: inputView,
                           gradient: dy + n * view.image + first * 16, gradientRow: d.outputWidth * 16, view: view,
                           blocks: channelBlocks, tapBlocks: 0..<tapBlocks, sums: sliceSums,
                           first: global == slice * chunksPerSlice)
                continue
            }
            for group in 0..<d.groups {
                for k in stride(from: 0, to: Kg, by: 16) {
                    ChannelBlocking.toBlocked(dy + (n * d.outputChannels + group * Kg + k) * Q, planeStride: Q,
                                              from: first, count: count, channels: min(16, Kg - k),
                                              into: buffer + k, positionStride: L)
                }
                accumulate(chunk: source, image: n, group: group, input: input, inputView: inputView,
                           gradient: buffer,
                           gradientRow: c.columns * L, view: chunkView,
                           blocks: channelBlocks, tapBlocks: 0..<tapBlocks, sums: sliceSums + group * J * L,
                           first: global == slice * chunksPerSlice)
            }
        }
    }

    /// One chunk of one image and group through the given blocks and tap blocks: the kernel calls, 6 or 5 taps each
    /// (`tapBlocks`), adding into dwᵀ rows `sums + j·L` (dyᵀ of the chunk at `gradient`, rows `gradientRow` floats
    /// apart), or storing them for the `first` chunk of a task; `layout` says where (`SumsLayout`). The chunk's row
    /// and column place it in the input as `inputView` sees it.
    private func accumulate<Blocks: Collection<ChannelBlock>>(
        chunk c: (row: Int, column: Int, rows: Int, columns: Int), image n: Int, group: Int,
        input: UnsafePointer<Float>, inputView: InputView, gradient: UnsafePointer<Float>, gradientRow: Int,
        view: GradientView, blocks: Blocks, tapBlocks: Range<Int>, sums: UnsafeMutablePointer<Float>,
        layout: SumsLayout = .rows, first: Bool) {
        let (L, J) = (laneChannels, descriptor.reductionLength)
        let steps = ChannelVectorKernels.Steps(inputRow: inputView.row, inputColumn: inputView.column,
                                               gradientRow: gradientRow, gradientColumn: view.column,
                                               gradientBlock: view.block)
        let tapOffsets = inputView.offsets
        let image = input + n * inputView.image + group * inputView.group
        let inputStart = image + c.row * steps.inputRow + c.column * steps.inputColumn
        for block in blocks {
            let lane = block.firstVector * 16
            let (base, strides): (UnsafeMutablePointer<Float>, ChannelVectorKernels.SumStrides)
            switch layout {
            case .rows: (base, strides) = (sums + lane, .init(tap: L, vector: 16))
            case .blockMajor: (base, strides) = (sums + J * lane, .init(tap: block.vectors * 16, vector: 16))
            case .blockedResult: (base, strides) = (sums + J * lane, .init(tap: 16, vector: J * 16))
            }
            for tapBlock in tapBlocks {
                let (j, width) = (firstTap(ofBlock: tapBlock), width(ofBlock: tapBlock))
                let count = firstTap(ofBlock: tapBlock + 1) - j
                // Taps past the last repeat it (computed, never stored).
                func tap(_ t: Int) -> UnsafePointer<Float> { inputStart + tapOffsets[j + min(t, count - 1)] }
                let (dyStart, target) = (gradient + block.firstVector * view.block, base + j * strides.tap)
                func run<Windows: KernelTaps, let Width: Int>(_ windows: Windows, _ kind: Compiled<Width>) {
                    switch block.vectors {
                    case 4:
                        ChannelVectorKernels.accumulate4(taps: windows, width: kind, gradient: dyStart, rows: c.rows,
                                                         columns: c.columns, steps: steps, into: target,
                                                         strides: strides, taps: count, first: first)
                    case 3:
                        ChannelVectorKernels.accumulate3(taps: windows, width: kind, gradient: dyStart, rows: c.rows,
                                                         columns: c.columns, steps: steps, into: target,
                                                         strides: strides, taps: count, first: first)
                    case 2:
                        ChannelVectorKernels.accumulate2(taps: windows, width: kind, gradient: dyStart, rows: c.rows,
                                                         columns: c.columns, steps: steps, into: target,
                                                         strides: strides, taps: count, first: first)
                    default:
                        ChannelVectorKernels.accumulate1(taps: windows, width: kind, gradient: dyStart, rows: c.rows,
                                                         columns: c.columns, steps: steps, into: target,
                                                         strides: strides, taps: count, first: first)
                    }
                }
                func run<Windows: KernelTaps>(_ windows: Windows) {
                    if width == Self.blockTaps { run(windows, Compiled<6>()) } else { run(windows, Compiled<5>()) }
                }
                // A block's taps one float apart are broadcast from one pointer, others from six.
                if count == width && (1..<count).allSatisfy({ tapOffsets[j + $0] == tapOffsets[j] + $0 }) {
                    run(ConsecutiveTapWindows(first: tap(0)))
                } else {
                    run(TapWindows(pointers: (tap(0), tap(1), tap(2), tap(3), tap(4), tap(5))))
                }
            }
        }
    }
}

/// The six input windows a channel-vector kernel call broadcasts from: sample i of tap t is `self[t, i]`.
protocol KernelTaps {
    subscript(t: Int, i: Int) -> Float { get }
}

/// Six windows anywhere (taps across kernel rows or channels of an NCHW input).
struct TapWindows: KernelTaps {
    let pointers: ChannelVectorKernels.Taps6

    @inline(__always) subscript(t: Int, i: Int) -> Float {
        switch t {
        case 0: return pointers.0[i]
        case 1: return pointers.1[i]
        case 2: return pointers.2[i]
        case 3: return pointers.3[i]
        case 4: return pointers.4[i]
        default: return pointers.5[i]
        }
    }
}

/// Six windows one float apart — consecutive channels of an nChw16c block, consecutive columns of a kernel row in
/// NCHW: one pointer, the taps constant offsets from it. With six pointers the 1 × 6 kernel kept three of them on the
/// stack and reloaded them on every step (objdump, AMD Zen 5).
struct ConsecutiveTapWindows: KernelTaps {
    let first: UnsafePointer<Float>

    @inline(__always) subscript(t: Int, i: Int) -> Float { first[i &+ t] }
}

/// The outer-product kernels of the channel-vector backward-weights pass: per output position, vectors of dyᵀ
/// (output channels) times broadcast input samples (taps), added into registers; at the end of a chunk the
/// registers are added into dwᵀ rows (`sums + t·strides.tap`, vector v at `+ v·strides.vector`) for the first `taps`
/// taps. Each kernel computes `Width` = 6 taps or 5 (the blocks that absorb a layer's shortfall, `tapBlocks`), a
/// `Compiled` count: each width its own copy, the sixth tap's code folded away in the 5-tap one.
enum ChannelVectorKernels {
    typealias Vector = SIMD16<Float>
    typealias Taps6 = (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>,
                       UnsafePointer<Float>, UnsafePointer<Float>)

    /// Where a kernel call's sums go: floats between one tap's and the next's, and between a tap's 16-channel vectors
    /// (16 in dwᵀ rows and block-major sums; J·16 in an Oihw16o dw, summed in place).
    struct SumStrides {
        let tap: Int
        let vector: Int
    }

    /// Floats between consecutive output positions in the input (stride) and in dyᵀ, per column and per row.
    struct Steps {
        let inputRow: Int
        let inputColumn: Int
        let gradientRow: Int
        let gradientColumn: Int
        /// Floats between a position's 16-channel vectors: 16 in dyᵀ, a plane in nChw16c dy.
        let gradientBlock: Int
    }

    /// The positions of a chunk in one loop, the next row's start set on a row's last column: as two nested loops the
    /// compiler moved nine accumulators of the 4 × 6 kernel between registers, one through the stack, on every step
    /// (objdump); VGG's 3 → 64 3×3 backward-weights took 1.04× the time. `input` is the position's offset into the
    /// taps' windows, `gradient` its dyᵀ vectors.
    struct ChunkWalk {
        private(set) var input = 0
        private(set) var gradient: UnsafePointer<Float>
        private let start: UnsafePointer<Float>
        private let columns: Int
        private let steps: Steps
        private var row = 0
        private var column = 0

        @inline(__always) init(gradient: UnsafePointer<Float>, columns: Int, steps: Steps) {
            (self.gradient, start, self.columns, self.steps) = (gradient, gradient, columns, steps)
        }

        @inline(__always) mutating func advance() {
            column &+= 1
            if column == columns {
                (row, column) = (row &+ 1, 0)
                (input, gradient) = (row &* steps.inputRow, start + row &* steps.gradientRow)
            } else {
                input &+= steps.inputColumn
                gradient += steps.gradientColumn
            }
        }
    }

    /// A chunk's sums into dwᵀ: stored by a task's first chunk (no zeroing pass, no read), added by the others.
    @inline(__always)
    static func put(_ v: Vector, _ p: UnsafeMutablePointer<Float>, _ first: Bool) {
        storeVector(first ? v : loadVector(p) + v, p)
    }

    /// 64 output channels × 6 taps: 4 loads and 6 broadcasts per 24 FMAs (5 broadcasts per 20 at `Width` 5).
    @inline(never)
    static func accumulate4<Taps: KernelTaps, let Width: Int>(
        taps x: Taps, width: Compiled<Width>, gradient: UnsafePointer<Float>, rows: Int, columns: Int, steps: Steps,
        into sums: UnsafeMutablePointer<Float>, strides: SumStrides, taps: Int, first: Bool) {
        let sixth = Width > 5
        var a00 = Vector(), a01 = Vector(), a02 = Vector(), a03 = Vector()
        var a10 = Vector(), a11 = Vector(), a12 = Vector(), a13 = Vector()
        var a20 = Vector(), a21 = Vector(), a22 = Vector(), a23 = Vector()
        var a30 = Vector(), a31 = Vector(), a32 = Vector(), a33 = Vector()
        var a40 = Vector(), a41 = Vector(), a42 = Vector(), a43 = Vector()
        var a50 = Vector(), a51 = Vector(), a52 = Vector(), a53 = Vector()
        let gb = steps.gradientBlock
        var walk = ChunkWalk(gradient: gradient, columns: columns, steps: steps)
        for _ in 0..<(columns > 0 ? rows &* columns : 0) {
            let (i, dy) = (walk.input, walk.gradient)
            do {
                let d0 = loadVector(dy), d1 = loadVector(dy + gb), d2 = loadVector(dy + 2 &* gb)
                let d3 = loadVector(dy + 3 &* gb)
                var b = Vector(repeating: x[0, i])
                a00.addProduct(b, d0); a01.addProduct(b, d1); a02.addProduct(b, d2); a03.addProduct(b, d3)
                b = Vector(repeating: x[1, i])
                a10.addProduct(b, d0); a11.addProduct(b, d1); a12.addProduct(b, d2); a13.addProduct(b, d3)
                b = Vector(repeating: x[2, i])
                a20.addProduct(b, d0); a21.addProduct(b, d1); a22.addProduct(b, d2); a23.addProduct(b, d3)
                b = Vector(repeating: x[3, i])
                a30.addProduct(b, d0); a31.addProduct(b, d1); a32.addProduct(b, d2); a33.addProduct(b, d3)
                b = Vector(repeating: x[4, i])
                a40.addProduct(b, d0); a41.addProduct(b, d1); a42.addProduct(b, d2); a43.addProduct(b, d3)
                if sixth {
                    b = Vector(repeating: x[5, i])
                    a50.addProduct(b, d0); a51.addProduct(b, d1); a52.addProduct(b, d2); a53.addProduct(b, d3)
                }
            }
            walk.advance()
        }
        @inline(__always) func finish(_ t: Int, _ v0: Vector, _ v1: Vector, _ v2: Vector, _ v3: Vector) {
            guard t < taps else { return }
            let (s, v) = (sums + t &* strides.tap, strides.vector)
            put(v0, s, first); put(v1, s + v, first); put(v2, s + 2 &* v, first); put(v3, s + 3 &* v, first)
        }
        finish(0, a00, a01, a02, a03); finish(1, a10, a11, a12, a13); finish(2, a20, a21, a22, a23)
        finish(3, a30, a31, a32, a33); finish(4, a40, a41, a42, a43)
        if sixth { finish(5, a50, a51, a52, a53) }
    }

    /// 48 output channels × 6 (or 5) taps: 3 loads and 6 broadcasts per 18 FMAs (18 chains, enough for the FMA
    /// latency). A 3-vector remainder (112 or 240 channels) ran as 2 + 1 vectors, the 1 × 6 kernel at 7 loads per 6
    /// FMAs.
    @inline(never)
    static func accumulate3<Taps: KernelTaps, let Width: Int>(
        taps x: Taps, width: Compiled<Width>, gradient: UnsafePointer<Float>, rows: Int, columns: Int, steps: Steps,
        into sums: UnsafeMutablePointer<Float>, strides: SumStrides, taps: Int, first: Bool) {
        let sixth = Width > 5
        var a00 = Vector(), a01 = Vector(), a02 = Vector()
        var a10 = Vector(), a11 = Vector(), a12 = Vector()
        var a20 = Vector(), a21 = Vector(), a22 = Vector()
        var a30 = Vector(), a31 = Vector(), a32 = Vector()
        var a40 = Vector(), a41 = Vector(), a42 = Vector()
        var a50 = Vector(), a51 = Vector(), a52 = Vector()
        let gb = steps.gradientBlock
        var walk = ChunkWalk(gradient: gradient, columns: columns, steps: steps)
        for _ in 0..<(columns > 0 ? rows &* columns : 0) {
            let (i, dy) = (walk.input, walk.gradient)
            do {
                let d0 = loadVector(dy), d1 = loadVector(dy + gb), d2 = loadVector(dy + 2 &* gb)
                var b = Vector(repeating: x[0, i])
                a00.addProduct(b, d0); a01.addProduct(b, d1); a02.addProduct(b, d2)
                b = Vector(repeating: x[1, i])
                a10.addProduct(b, d0); a11.addProduct(b, d1); a12.addProduct(b, d2)
                b = Vector(repeating: x[2, i])
                a20.addProduct(b, d0); a21.addProduct(b, d1); a22.addProduct(b, d2)
                b = Vector(repeating: x[3, i])
                a30.addProduct(b, d0); a31.addProduct(b, d1); a32.addProduct(b, d2)
                b = Vector(repeating: x[4, i])
                a40.addProduct(b, d0); a41.addProduct(b, d1); a42.addProduct(b, d2)
                if sixth {
                    b = Vector(repeating: x[5, i])
                    a50.addProduct(b, d0); a51.addProduct(b, d1); a52.addProduct(b, d2)
                }
            }
            walk.advance()
        }
        @inline(__always) func finish(_ t: Int, _ v0: Vector, _ v1: Vector, _ v2: Vector) {
            guard t < taps else { return }
            let (s, v) = (sums + t &* strides.tap, strides.vector)
            put(v0, s, first); put(v1, s + v, first); put(v2, s + 2 &* v, first)
        }
        finish(0, a00, a01, a02); finish(1, a10, a11, a12); finish(2, a20, a21, a22)
        finish(3, a30, a31, a32); finish(4, a40, a41, a42)
        if sixth { finish(5, a50, a51, a52) }
    }

    /// 32 output channels × 6 (or 5) taps, two positions a step into two accumulator sets (24 registers).
    @inline(never)
    static func accumulate2<Taps: KernelTaps, let Width: Int>(
        taps x: Taps, width: Compiled<Width>, gradient: UnsafePointer<Float>, rows: Int, columns: Int, steps: Steps,
        into sums: UnsafeMutablePointer<Float>, strides: SumStrides, taps: Int, first: Bool) {
        let sixth = Width > 5
        var a00 = Vector(), a01 = Vector(), a10 = Vector(), a11 = Vector(), a20 = Vector(), a21 = Vector()
        var a30 = Vector(), a31 = Vector(), a40 = Vector(), a41 = Vector(), a50 = Vector(), a51 = Vector()
        var b00 = Vector(), b01 = Vector(), b10 = Vector(), b11 = Vector(), b20 = Vector(), b21 = Vector()
        var b30 = Vector(), b31 = Vector(), b40 = Vector(), b41 = Vector(), b50 = Vector(), b51 = Vector()
        let (ic, gc, gb) = (steps.inputColumn, steps.gradientColumn, steps.gradientBlock)
        for row in 0..<rows {
            var i = row &* steps.inputRow
            var dy = gradient + row &* steps.gradientRow
            var column = 0
            while column + 2 <= columns {
                let d0 = loadVector(dy), d1 = loadVector(dy + gb)
                let e0 = loadVector(dy + gc), e1 = loadVector(dy + gc + gb)
                var b = Vector(repeating: x[0, i]), c = Vector(repeating: x[0, i &+ ic])
                a00.addProduct(b, d0); a01.addProduct(b, d1); b00.addProduct(c, e0); b01.addProduct(c, e1)
                b = Vector(repeating: x[1, i]); c = Vector(repeating: x[1, i &+ ic])
                a10.addProduct(b, d0); a11.addProduct(b, d1); b10.addProduct(c, e0); b11.addProduct(c, e1)
                b = Vector(repeating: x[2, i]); c = Vector(repeating: x[2, i &+ ic])
                a20.addProduct(b, d0); a21.addProduct(b, d1); b20.addProduct(c, e0); b21.addProduct(c, e1)
                b = Vector(repeating: x[3, i]); c = Vector(repeating: x[3, i &+ ic])
                a30.addProduct(b, d0); a31.addProduct(b, d1); b30.addProduct(c, e0); b31.addProduct(c, e1)
                b = Vector(repeating: x[4, i]); c = Vector(repeating: x[4, i &+ ic])
                a40.addProduct(b, d0); a41.addProduct(b, d1); b40.addProduct(c, e0); b41.addProduct(c, e1)
                if sixth {
                    b = Vector(repeating: x[5, i]); c = Vector(repeating: x[5, i &+ ic])
                    a50.addProduct(b, d0); a51.addProduct(b, d1); b50.addProduct(c, e0); b51.addProduct(c, e1)
                }
                i &+= 2 &* ic
                dy += 2 &* gc
                column += 2
            }
            if column < columns {
                let d0 = loadVector(dy), d1 = loadVector(dy + gb)
                var b = Vector(repeating: x[0, i])
                a00.addProduct(b, d0); a01.addProduct(b, d1)
                b = Vector(repeating: x[1, i]); a10.addProduct(b, d0); a11.addProduct(b, d1)
                b = Vector(repeating: x[2, i]); a20.addProduct(b, d0); a21.addProduct(b, d1)
                b = Vector(repeating: x[3, i]); a30.addProduct(b, d0); a31.addProduct(b, d1)
                b = Vector(repeating: x[4, i]); a40.addProduct(b, d0); a41.addProduct(b, d1)
                if sixth { b = Vector(repeating: x[5, i]); a50.addProduct(b, d0); a51.addProduct(b, d1) }
            }
        }
        @inline(__always) func finish(_ t: Int, _ v0: Vector, _ v1: Vector) {
            guard t < taps else { return }
            put(v0, sums + t &* strides.tap, first); put(v1, sums + t &* strides.tap + strides.vector, first)
        }
        finish(0, a00 + b00, a01 + b01); finish(1, a10 + b10, a11 + b11); finish(2, a20 + b20, a21 + b21)
        finish(3, a30 + b30, a31 + b31); finish(4, a40 + b40, a41 + b41)
        if sixth { finish(5, a50 + b50, a51 + b51) }
    }

    /// 16 output channels × 6 (or 5) taps, two positions a step into two accumulator sets.
    @inline(never)
    static func accumulate1<Taps: KernelTaps, let Width: Int>(
        taps x: Taps, width: Compiled<Width>, gradient: UnsafePointer<Float>, rows: Int, columns: Int, steps: Steps,
        into sums: UnsafeMutablePointer<Float>, strides: SumStrides, taps: Int, first: Bool) {
        let sixth = Width > 5
        var a0 = Vector(), a1 = Vector(), a2 = Vector(), a3 = Vector(), a4 = Vector(), a5 = Vector()
        var b0 = Vector(), b1 = Vector(), b2 = Vector(), b3 = Vector(), b4 = Vector(), b5 = Vector()
        let (ic, gc) = (steps.inputColumn, steps.gradientColumn)
        for row in 0..<rows {
            var i = row &* steps.inputRow
            var dy = gradient + row &* steps.gradientRow
            var column = 0
            while column + 2 <= columns {
                let d = loadVector(dy), e = loadVector(dy + gc)
                a0.addProduct(Vector(repeating: x[0, i]), d); b0.addProduct(Vector(repeating: x[0, i &+ ic]), e)
                a1.addProduct(Vector(repeating: x[1, i]), d); b1.addProduct(Vector(repeating: x[1, i &+ ic]), e)
                a2.addProduct(Vector(repeating: x[2, i]), d); b2.addProduct(Vector(repeating: x[2, i &+ ic]), e)
                a3.addProduct(Vector(repeating: x[3, i]), d); b3.addProduct(Vector(repeating: x[3, i &+ ic]), e)
                a4.addProduct(Vector(repeating: x[4, i]), d); b4.addProduct(Vector(repeating: x[4, i &+ ic]), e)
                if sixth {
                    a5.addProduct(Vector(repeating: x[5, i]), d); b5.addProduct(Vector(repeating: x[5, i &+ ic]), e)
                }
                i &+= 2 &* ic
                dy += 2 &* gc
                column += 2
            }
            if column < columns {
                let d = loadVector(dy)
                a0.addProduct(Vector(repeating: x[0, i]), d); a1.addProduct(Vector(repeating: x[1, i]), d)
                a2.addProduct(Vector(repeating: x[2, i]), d); a3.addProduct(Vector(repeating: x[3, i]), d)
                a4.addProduct(Vector(repeating: x[4, i]), d)
                if sixth { a5.addProduct(Vector(repeating: x[5, i]), d) }
            }
        }
        @inline(__always) func finish(_ t: Int, _ v: Vector) { if t < taps { put(v, sums + t &* strides.tap, first) } }
        finish(0, a0 + b0); finish(1, a1 + b1); finish(2, a2 + b2); finish(3, a3 + b3); finish(4, a4 + b4)
        if sixth { finish(5, a5 + b5) }
    }
}

import ConvLabCore

/// The direct backend's backward-weights pass for depthwise layers with 16 or more channels, vectorised across
/// channels: 16 channels share a vector, so 7×7 and 14×14 maps (49 and 196 positions: rows narrower than one vector)
/// waste no lanes, and stride and dilation are only pointer steps. The per-plane row plan
/// (`DepthwiseWeightGradientGeometry`) and, at stride > 1, the narrow grid kernel ran MobileNetV2's 960-channel 7×7
/// layer 20× and its strided layers 10× slower than oneDNN (Intel kind): each plane was a task of a few hundred FLOPs
/// ending in lane sums.
///
/// dw[c][r][s] = Σ_n Σ_(oy,ox) dy[n][c][oy][ox] · xp[n][c][oy·sh + r·dh][ox·sw + s·dw]
///
/// A task owns one block of 16 channels and a fixed group of images. Per image and band of output rows it lays the
/// input rows the band reads into a zero-padded [row][column][16] buffer (`DepthwiseBand`, as the forward plan does)
/// and transposes the band's dy rows to [position][16]; then for each piece of the kernel (up to 25 taps: a 3×3 or
/// 5×5 whole, a 7×7 in rows of three) one pass over the band's positions loads one dy vector and one input vector per
/// tap, with one accumulator per tap, and adds them into the task's sums at the end of the band. On nChw16c x and dy
/// (`executeBlocked`) dy is read in place, and so is x: a 3×3 "same" layer at stride 1 with its padding implied
/// (`slidesInPlace`), other layers where the image has enough outputs (`readsInPlace`) region by region of the output
/// (the border rows and columns the padding reaches, the interior), each with the taps that land in the image. The
/// image groups'
/// sums are added in order at the end. Bands and image groups depend only on the layer and the caches, so no sum's
/// order depends on the thread count.
struct ChannelBlockedDepthwiseWeightGradientGeometry: Sendable {
    let descriptor: ConvolutionDescriptor
    let band: DepthwiseBand
    let channelBlocks: Int
    let taps: Int
    let bandRows: Int
    let bands: Int
    let imagesPerGroup: Int
    let imageGroups: Int
    let tasks: Int
    let workers: Int
    let threads: Int
    /// The kernel in pieces of whole tap rows (or, for rows of more than 25 taps, row segments): one kernel call each.
    let pieces: [DepthwiseTapPiece]
    let stage: WorkspaceRegion<Float>
    let gradientStage: WorkspaceRegion<Float>
    let padded: WorkspaceRegion<Float>
    /// [image group][channel block][tap][16].
    let partials: WorkspaceRegion<Float>
    /// On nChw16c tensors: runs of output rows (columns) whose taps read the same kernel rows (columns) inside the
    /// image — the top and bottom rows the padding reaches, the interior, … — and for each pair of runs the pieces of
    /// that box of taps. The kernel then reads x in place, each region with only the taps that land in the image.
    let regions: DepthwiseRegions
    /// The pieces of each region's box of taps, region i·columnRuns + j.
    let regionPieces: [[DepthwiseTapPiece]]
    /// A 3×3, stride-1, undilated layer padded by one on every side: on nChw16c tensors the padding is implied in
    /// `DepthwiseChannelGradientKernel.slidingPadded3x3` rather than copied into a band or handled region by region.
    /// MobileNetV2's layers, alternated runs on the Intel kind: 960 channels at 7² 12.5 → 9.5 µs, 576 at 14² 16.2 →
    /// 11.6, 144 at 28² (read by regions before) 14.5 → 10.3.
    let slidesInPlace: Bool
    /// A 3×3, stride-2, undilated layer padded by one on the top and left and at most one on the bottom and right
    /// (MobileNetV2's and ShuffleNet's downsampling layers): on nChw16c tensors read in place by
    /// `DepthwiseChannelGradientKernel.slidingPaddedStride2x3x3`, one chain per band like the padded band's, rather
    /// than region by region through the generic kernel for the edges.
    let slidesStride2InPlace: Bool
    /// The kernel's steps through a padded band (NCHW) and through an nChw16c block in place.
    let bandSteps: DepthwiseGradientSteps
    let inPlaceSteps: DepthwiseGradientSteps
    let summary: PlanDescription

    /// A box of taps in pieces of whole tap rows (or, for rows of more than 25 taps, row segments).
    static func pieces(rows: Range<Int>, columns: Range<Int>) -> [DepthwiseTapPiece] {
        var pieces: [DepthwiseTapPiece] = []
        guard !rows.isEmpty && !columns.isEmpty else { return pieces }
        if columns.count <= maxPieceTaps {
            let rowsPerPiece = maxPieceTaps / columns.count
            for r in stride(from: rows.lowerBound, to: rows.upperBound, by: rowsPerPiece) {
                pieces.append(DepthwiseTapPiece(firstRow: r, rows: min(rowsPerPiece, rows.upperBound - r),
                                                firstColumn: columns.lowerBound, columns: columns.count))
            }
        } else {
            let segments = (columns.count + maxPieceTaps - 1) / maxPieceTaps
            let width = (columns.count + segments - 1) / segments
            for r in rows {
                for s in stride(from: columns.lowerBound, to: columns.upperBound, by: width) {
                    pieces.append(DepthwiseTapPiece(firstRow: r, rows: 1, firstColumn: s,
                                                    columns: min(width, columns.upperBound - s)))
                }
            }
        }
        return pieces
    }

    /// Tasks the image groups aim for with the channel blocks, whatever the thread count.
    static let targetTasks = 8
    /// Accumulators one kernel call holds (with the dy vector and a load, 27 of the 32 vector registers).
    static let maxPieceTaps = 25

    /// Depthwise (one input and one output channel per group) with at least 16 channels, at stride > 1, on rows of
    /// fewer than 48 outputs, or with 25 taps or more; wider stride-1 rows of smaller kernels keep the row plan, which
    /// needs no transposes. Measured on the Intel kind, 2 threads, against the row plan: 3×3 on 56-112 px 1.2-2.2×
    /// slower, 5×5 on 56² (96 channels) 1.4× faster, ConvNeXt's 7×7 on 56² 1.9×, RepLKNet's 31×31 on 56² 1.8×.
    /// (Its own rule, not the forward plan's: the forward's sliding rows win at every width, this pass's kernels do
    /// not — taking 3×3 at 56² and 112² here measured 1.07–1.10× slower.)
    static func applies(to d: ConvolutionDescriptor) -> Bool {
        ChannelBlockedDepthwiseGeometry.supports(d)
            && (ChannelBlockedDepthwiseGeometry.rowPlanUnderfills(d) || d.kernelHeight * d.kernelWidth >= 25)
    }

    init(descriptor d: ConvolutionDescriptor, options: PlanOptions, caches: MachineCaches = .current) throws {
        descriptor = d
        threads = options.threads
        let band = DepthwiseBand(descriptor: d)
        self.band = band
        channelBlocks = (d.inputChannels + 15) / 16
        let (R, S) = (d.kernelHeight, d.kernelWidth)
        taps = R * S
        pieces = Self.pieces(rows: 0..<R, columns: 0..<S)
        // A band's buffers (input stage, dy rows, padded rows; 64 bytes per position) in half of L2.
        let bytesPerPosition = 16 * MemoryLayout<Float>.stride
        let width = band.paddedWidth
        func bandBytes(_ rows: Int) -> Int {
            let inputRows = d.inputRows(forOutputRows: rows)
            return (inputRows * d.inputWidth + rows * d.outputWidth + inputRows * width) * bytesPerPosition
        }
        var fitting = d.outputHeight
        while fitting > 1 && bandBytes(fitting) > caches.level2Bytes / 2 { fitting = (fitting + 1) / 2 }
        bandRows = fitting
        bands = (d.outputHeight + bandRows - 1) / bandRows
        let wantedGroups = min(d.batch, max(1, (Self.targetTasks + channelBlocks - 1) / channelBlocks))
        imagesPerGroup = (d.batch + wantedGroups - 1) / wantedGroups
        imageGroups = (d.batch + imagesPerGroup - 1) / imagesPerGroup
        tasks = channelBlocks * imageGroups
        workers = Parallel.workers(threads: threads, tasks: tasks)

        let what = "the depthwise backward-weights band buffers"
        let inputRows = d.inputRows(forOutputRows: bandRows)
        var layout = WorkspaceLayout()
        stage = try layout.reserve(Float.self, count: try CheckedArithmetic.product([inputRows, d.inputWidth, 16],
                                                                                    what: what),
                                   workers: workers, what: what)
        gradientStage = try layout.reserve(Float.self, count: try CheckedArithmetic.product(
            [bandRows, d.outputWidth, 16], what: what), workers: workers, what: what)
        padded = try layout.reserve(Float.self, count: try CheckedArithmetic.product([inputRows, band.paddedWidth, 16],
                                                                                     what: what),
                                    workers: workers, what: what)
        partials = try layout.reserve(Float.self, count: try CheckedArithmetic.product(
            [imageGroups, channelBlocks, taps, 16], what: what), what: what)
        try ResourceLimits.check(what, bytes: layout.byteCount, limit: options.limits.maxWorkspaceBytes)

        let regions = DepthwiseRegions(descriptor: d)
        self.regions = regions
        slidesInPlace = R == 3 && SlidingDepthwise.applies(to: d)
        let p = d.padding
        slidesStride2InPlace = R == 3 && S == 3 && d.strideHeight == 2 && d.strideWidth == 2 && d.isUndilated
            && p.top == 1 && p.left == 1 && p.bottom <= 1 && p.right <= 1
        regionPieces = regions.rowRuns.flatMap { rowRun in
            regions.columnRuns.map { Self.pieces(rows: rowRun.taps, columns: $0.taps) }
        }
        bandSteps = DepthwiseGradientSteps(inputRow: d.strideHeight * band.rowFloats, inputColumn: d.strideWidth * 16,
                                           tapRow: d.dilationHeight * band.rowFloats,
                                           tapColumn: d.dilationWidth * 16, gradientRow: d.outputWidth * 16)
        let inputRowFloats = d.inputWidth * 16
        inPlaceSteps = DepthwiseGradientSteps(inputRow: d.strideHeight * inputRowFloats,
                                              inputColumn: d.strideWidth * 16,
                                              tapRow: d.dilationHeight * inputRowFloats,
                                              tapColumn: d.dilationWidth * 16, gradientRow: d.outputWidth * 16)

        let terms = d.reductionLength(for: .backwardWeights)
        // Read in place, each region of a band is its own chain: up to this many partial sums per band.
        let chains = regions.readsInPlace && !slidesInPlace && !slidesStride2InPlace ? regions.count : 1
        let flops = 2 * Double(d.batch * channelBlocks * 16) * Double(d.outputHeight * d.outputWidth) * Double(taps)
        summary = PlanDescription(
            backend: "direct", pass: .backwardWeights, variant: "depthwise channel-blocked",
            // A band's positions in one chain per tap (on nChw16c tensors, per region of the band), added into the
            // running sum once per band (region) and image; then the image groups' sums in order.
            errorBound: blockedDotProductErrorBound(terms: terms, blockTerms: bandRows * d.outputWidth,
                                                    partials: d.batch * bands * chains + imageGroups),
            typicalError: TypicalError.dotProduct(terms: terms, blockTerms: bandRows * d.outputWidth,
                                                  partials: d.batch * bands * chains + imageGroups),
            workspaceBytes: layout.byteCount,
            work: WorkEstimate([.memory(bytes: Double(d.inputCount + d.outputCount) * 4),
                                .loadBoundKernel(flops: flops, taps: min(taps, Self.maxPieceTaps), tasks: tasks)],
                               depthwiseKernels: true))
        try options.accuracy.admit(summary)
    }
}

/// Taps [firstRow, firstRow + rows) × [firstColumn, firstColumn + columns) of a depthwise kernel: one kernel call.
struct DepthwiseTapPiece: Sendable {
    let firstRow: Int
    let rows: Int
    let firstColumn: Int
    let columns: Int
}

struct ChannelBlockedDepthwiseWeightGradientPlan: ChannelBlockedPassExecution {
    let geometry: ChannelBlockedDepthwiseWeightGradientGeometry

    var descriptor: ConvolutionDescriptor { geometry.descriptor }
    var summary: PlanDescription { geometry.summary }

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
        let (d, g) = (descriptor, geometry)
        let shared = UncheckedSendable((operands.input.baseAddress!, operands.gradOutput.baseAddress!,
                                        operands.output.baseAddress!, workspace))
        let (planeSize, Q) = (d.inputHeight * d.inputWidth, d.outputHeight * d.outputWidth)
        measurePhase("accumulate", in: profile) {
            Parallel.forEach(taskCount: g.tasks, threads: g.workers) { worker, task in
                let (x, dy, dw, workspace) = shared.value
                let (block, group) = (task % g.channelBlocks, task / g.channelBlocks)
                let (first, channels) = (block * 16, min(16, d.inputChannels - block * 16))
                // On nChw16c tensors dw is Oihw16o, [block][tap][16]: the sums' own layout, so one image group sums
                // into dw itself.
                let sumsIntoResult = layout == .nChw16c && g.imageGroups == 1
                let sums = sumsIntoResult ? dw + block * g.taps * 16
                    : g.partials.pointer(in: workspace) + (group * g.channelBlocks + block) * g.taps * 16
                // One band of one image read in place by the sliding kernel: its sums are the task's, stored as they
                // are (no zeroing pass and no read-back: 7² maps of 60 blocks are ~500 cycles a block).
                let storesSums = layout == .nChw16c && (g.slidesInPlace || g.slidesStride2InPlace) && g.bands == 1
                    && g.imagesPerGroup == 1
                if !storesSums { sums.update(repeating: 0, count: g.taps * 16) }
                let (stage, gradient, padded) = (g.stage.pointer(in: workspace, worker: worker),
                                                 g.gradientStage.pointer(in: workspace, worker: worker),
                                                 g.padded.pointer(in: workspace, worker: worker))
                for n in (group * g.imagesPerGroup)..<min(d.batch, (group + 1) * g.imagesPerGroup) {
                    for bandIndex in 0..<g.bands {
                        let firstRow = bandIndex * g.bandRows
                        let rows = min(g.bandRows, d.outputHeight - firstRow)
                        if layout == .nchw {
                            g.band.fill(firstRow: firstRow, rows: rows,
                                        from: .planes(x + (n * d.inputChannels + first) * planeSize,
                                                      channels: channels, stage: stage),
                                        into: padded)
                            ChannelBlocking.toBlocked(dy + (n * d.outputChannels + first) * Q, planeStride: Q,
                                                      from: firstRow * d.outputWidth, count: rows * d.outputWidth,
                                                      channels: channels, into: gradient)
                            accumulate(g.pieces, rows: rows, columns: d.outputWidth, gradient: UnsafePointer(gradient),
                                       base: UnsafePointer(padded), origin: 0, steps: g.bandSteps, into: sums)
                        } else if g.slidesInPlace {
                            let plane = n * g.channelBlocks + block
                            DepthwiseChannelGradientKernel.slidingPadded3x3(
                                gradient: dy + (plane * Q + firstRow * d.outputWidth) * 16,
                                input: x + plane * planeSize * 16, firstRow: firstRow, rows: rows,
                                height: d.inputHeight, width: d.inputWidth, into: sums, adding: !storesSums)
                        } else if g.slidesStride2InPlace {
                            let plane = n * g.channelBlocks + block
                            DepthwiseChannelGradientKernel.slidingPaddedStride2x3x3(
                                gradient: dy + (plane * Q + firstRow * d.outputWidth) * 16,
                                input: x + plane * planeSize * 16, firstRow: firstRow, rows: rows,
                                height: d.inputHeight, width: d.inputWidth, outputWidth: d.outputWidth, into: sums,
                                adding: !storesSums)
                        } else if g.regions.readsInPlace {
                            let plane = n * g.channelBlocks + block
                            accumulateInPlace(band: firstRow..<(firstRow + rows), x: x + plane * planeSize * 16,
                                              dy: dy + plane * Q * 16, into: sums)
                        } else {
                            let plane = n * g.channelBlocks + block
                            g.band.fill(firstRow: firstRow, rows: rows, from: .blocked(x + plane * planeSize * 16),
                                        into: padded)
                            accumulate(g.pieces, rows: rows, columns: d.outputWidth,
                                       gradient: dy + (plane * Q + firstRow * d.outputWidth) * 16,
                                       base: UnsafePointer(padded), origin: 0, steps: g.bandSteps, into: sums)
                        }
                    }
                }
                // One image group: the block's sums are final, written here rather than in a second parallel pass
                // (on MobileNetV2's 7×7 maps that pass and its fork-join were a third of the time).
                if g.imageGroups == 1 && !sumsIntoResult {
                    writeBlock(block, partials: g.partials.pointer(in: workspace), into: dw)
                }
            }
        }
        guard g.imageGroups > 1 else { return }
        measurePhase("add image groups", in: profile) {
            Parallel.forEach(taskCount: g.channelBlocks, threads: g.workers) { _, block in
                let (_, _, dw, workspace) = shared.value
                writeBlock(block, partials: g.partials.pointer(in: workspace), into: dw, blocked: layout == .nChw16c)
            }
        }
    }

    /// The given pieces of the kernel over `rows` × `columns` positions, dy and the input as `steps` says. The first
    /// position's tap (0, 0) would read `origin` floats from `base` — before the image where the padding reaches, so
    /// the pointer is formed per piece, where only the piece's own taps, inside the image, are read.
    private func accumulate(_ pieces: [DepthwiseTapPiece], rows: Int, columns: Int, gradient: UnsafePointer<Float>,
                            base: UnsafePointer<Float>, origin: Int, steps: DepthwiseGradientSteps,
                            into sums: UnsafeMutablePointer<Float>) {
        guard rows > 0 && columns > 0 else { return }
        let S = descriptor.kernelWidth
        for piece in pieces {
            DepthwiseChannelGradientKernel.run(
                piece, gradient: gradient,
                input: base + (origin + piece.firstRow * steps.tapRow + piece.firstColumn * steps.tapColumn),
                rows: rows, columns: columns, steps: steps,
                into: sums + (piece.firstRow * S + piece.firstColumn) * 16, sumRowStride: S * 16)
        }
    }

    /// One band of output rows on nChw16c tensors, read where they are: region by region (runs of rows × runs of
    /// columns), each with the taps that land in the image. The padded copy of the band this replaces cost more than
    /// the sums on MobileNetV2's strided maps (Intel kind: 3×3/2 on 144 channels at 56², 0.043 → 0.021 ms).
    private func accumulateInPlace(band: Range<Int>, x: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                                   into sums: UnsafeMutablePointer<Float>) {
        let (d, g) = (descriptor, geometry)
        let (W, Wo) = (d.inputWidth, d.outputWidth)
        for (i, rowRun) in g.regions.rowRuns.enumerated() {
            let rows = band.clamped(to: rowRun.outputs)
            guard !rows.isEmpty else { continue }
            for (j, columnRun) in g.regions.columnRuns.enumerated() {
                let columns = columnRun.outputs
                let origin = ((rows.lowerBound * d.strideHeight - d.padding.top) * W
                              + columns.lowerBound * d.strideWidth - d.padding.left) * 16
                accumulate(g.regionPieces[i * g.regions.columnRuns.count + j], rows: rows.count, columns: columns.count,
                           gradient: dy + (rows.lowerBound * Wo + columns.lowerBound) * 16, base: x, origin: origin,
                           steps: g.inPlaceSteps, into: sums)
            }
        }
    }

    /// dw of one block of 16 channels: the image groups' sums, added in group order ([tap][16] → [channel][tap], or
    /// kept [tap][16] for Oihw16o dw: `blocked`).
    private func writeBlock(_ block: Int, partials: UnsafeMutablePointer<Float>, into dw: UnsafeMutablePointer<Float>,
                            blocked: Bool = false) {
        let (d, g) = (descriptor, geometry)
        let channels = min(16, d.inputChannels - block * 16)
        if blocked {
            for t in 0..<g.taps {
                var sum = loadVector(partials + (block * g.taps + t) * 16)
                for group in 1..<max(g.imageGroups, 1) {
                    sum += loadVector(partials + ((group * g.channelBlocks + block) * g.taps + t) * 16)
                }
                storeVector(sum, dw + (block * g.taps + t) * 16)
            }
            return
        }
        if g.imageGroups == 1 {
            ChannelBlocking.fromBlocked(partials + block * g.taps * 16, count: g.taps, channels: channels,
                                        into: dw + block * 16 * g.taps, planeStride: g.taps)
            return
        }
        for t in 0..<g.taps {
            for c in 0..<channels {
                var sum = partials[(block * g.taps + t) * 16 + c]
                for group in 1..<max(g.imageGroups, 1) {
                    sum += partials[((group * g.channelBlocks + block) * g.taps + t) * 16 + c]
                }
                dw[(block * 16 + c) * g.taps + t] = sum
            }
        }
    }
}

/// Floats between consecutive output rows and columns in the input the kernel reads (stride), between taps
/// (dilation), and between rows of dy.
struct DepthwiseGradientSteps {
    let inputRow: Int
    let inputColumn: Int
    let tapRow: Int
    let tapColumn: Int
    let gradientRow: Int
}

/// sums[(t / columns)·sumRowStride + (t % columns)·16] += Σ_(oy,ox) dy[oy][ox] ⊙ x[oy·sh + r·dh][ox·sw + s·dw] for
/// the piece's taps t = (r, s), 16 channels a vector: one dy load, and one input load and FMA per tap and position.
enum DepthwiseChannelGradientKernel {
    typealias Vector = SIMD16<Float>

    /// Common pieces (3×3 and 5×5 whole, 7-tap rows, dilation 1) get their own copy of the loop, every tap's offset
    /// an immediate or a multiple of the row step; other pieces read their taps' offsets from a table.
    static func run(_ piece: DepthwiseTapPiece, gradient: UnsafePointer<Float>, input: UnsafePointer<Float>, rows: Int,
                    columns: Int, steps: DepthwiseGradientSteps, into sums: UnsafeMutablePointer<Float>,
                    sumRowStride: Int) {
        let arguments = (gradient, input, rows, columns, steps, sums, sumRowStride)
        switch (piece.rows, piece.columns, steps.tapColumn) {
        case (3, 3, 16) where steps.inputColumn == 16: sliding3x3(arguments)
        case (3, 3, 16) where steps.inputColumn == 32: slidingStride2x3x3(arguments)
        case (3, 3, 16): whole3x3(arguments)
        case (5, 5, 16): whole5x5(arguments)
        case (3, 7, 16): rows3x7(arguments)
        case (1, 7, 16): row1x7(arguments)
        default:
            withUnsafeTemporaryAllocation(of: Int.self, capacity: piece.rows * piece.columns) { offsets in
                for t in offsets.indices {
                    offsets[t] = (t / piece.columns) * steps.tapRow + (t % piece.columns) * steps.tapColumn
                }
                let table = offsets.baseAddress!
                accumulate(piece.rows, piece.columns, { table[$0] }, gradient, input, rows, columns, steps, sums,
                           sumRowStride)
            }
        }
    }

    typealias Arguments = (UnsafePointer<Float>, UnsafePointer<Float>, Int, Int, DepthwiseGradientSteps,
                           UnsafeMutablePointer<Float>, Int)

    /// A stride-1 3×3 piece: along a row, the input vector of tap (r, 2) at position ox is that of tap (r, 1) at
    /// ox + 1 and of tap (r, 0) at ox + 2, so each input vector is loaded once and kept in registers while it slides
    /// across the three taps: per position one dy load and three input loads for 9 FMAs, where `whole3x3` loads 10.
    /// That kernel was bound by its loads (one per FMA): MobileNetV2's 384-channel 14² layer ran at 70 GFLOP/s on one
    /// core. The same sums in the same order, so the same bits.
    @inline(never) static func sliding3x3(_ a: Arguments) {
        eachRow(a) { sliding, gradient, x0, x1, x2, columns in
            // Taps (r, 0) and (r, 1) of the first position; tap (r, 2) of position ox is column ox + 2.
            _ = sliding.slide(gradient: gradient, x0, x1, x2, lead: 2, count: columns,
                              carried: (loadVector(x0), loadVector(x0 + 16), loadVector(x1), loadVector(x1 + 16),
                                        loadVector(x2), loadVector(x2 + 16)))
        }
    }

    /// A stride-2 3×3 piece: tap (r, 2) of position ox reads input column 2·ox + 2, which tap (r, 0) of position
    /// ox + 1 reads again, so it is carried: per position one dy load and six input loads for 9 FMAs, where
    /// `whole3x3` loads 10 (the stride-2 layers of MobileNetV2 and ShuffleNet). The same sums in the same order, so
    /// the same bits.
    @inline(never) static func slidingStride2x3x3(_ a: Arguments) {
        eachRow(a) { sliding, gradient, x0, x1, x2, columns in
            // Tap (r, 0) of the first position is column 0; position ox's other taps are columns 2·ox + 1 and + 2.
            _ = sliding.slideStride2(gradient: gradient, x0, x1, x2, positions: 0..<columns, lead: 1,
                                     carried: (loadVector(x0), loadVector(x1), loadVector(x2)))
        }
    }

    /// The sliding pieces' frame: `row(sums, dy row, input rows of kernel rows 0, 1, 2, columns)` for every output row
    /// of the piece, then the sums added into `sums`.
    @inline(__always)
    private static func eachRow(_ a: Arguments,
                                _ row: (inout Sliding3x3Sums, UnsafePointer<Float>, UnsafePointer<Float>,
                                        UnsafePointer<Float>, UnsafePointer<Float>, Int) -> Void) {
        let (gradient, input, rows, columns, steps, sums, sumRowStride) = a
        var sliding = Sliding3x3Sums()
        for oy in 0..<rows {
            let x0 = input + oy &* steps.inputRow
            row(&sliding, gradient + oy &* steps.gradientRow, x0, x0 + steps.tapRow, x0 + 2 &* steps.tapRow, columns)
        }
        sliding.finish(into: sums, rowStride: sumRowStride)
    }

    /// `slidingStride2x3x3` on one nChw16c channel block of a layer `slidesStride2InPlace` accepts, read in place: the
    /// taps that fall outside the image (kernel row 0 of the first output row, row 2 where 2·oy + 1 is past the last
    /// input row, column 0 of the first position, column 2 of the last where 2·ox + 1 is past the last column) are
    /// skipped. The band path's products in its order without its zero products, so the same sums.
    @inline(never)
    static func slidingPaddedStride2x3x3(gradient: UnsafePointer<Float>, input: UnsafePointer<Float>, firstRow: Int,
                                         rows: Int, height: Int, width: Int, outputWidth: Int,
                                         into sums: UnsafeMutablePointer<Float>, adding: Bool) {
        var sliding = Sliding3x3Sums()
        let rowFloats = width &* 16
        let lastReadsRight = 2 &* (outputWidth &- 1) &+ 1 < width
        for oy in 0..<rows {
            let y = firstRow &+ oy
            let g = gradient + oy &* outputWidth &* 16
            // Kernel row r reads input row 2y + r − 1: row 0 absent at the top, row 2 past the bottom.
            let x1 = input + 2 &* y &* rowFloats
            let (x0, x2) = (x1 - rowFloats, x1 + rowFloats)
            withRowMask(above: y > 0, below: 2 &* y &+ 1 < height) { rows in
                sliding.rowStride2(rows, gradient: g, x0, x1, x2, width: outputWidth, lastReadsRight: lastReadsRight)
            }
        }
        sliding.finish(into: sums, rowStride: 3 * 16, adding: adding)
    }

    /// `sliding3x3` on a 3×3 "same" layer (stride 1, padding 1) read in place from one nChw16c channel block: the taps
    /// that fall in the padding — the kernel row above the image's first row and below its last, the column left of
    /// a row's first position and right of its last — are skipped, not multiplied by zeros (on 7² maps those were a
    /// fifth of the products), so the band is not copied and nothing outside the image is read. Each remaining
    /// product is added in the same order as on the padded band, so the sums are the same. `gradient`: the band's
    /// first dy row.
    @inline(never)
    static func slidingPadded3x3(gradient: UnsafePointer<Float>, input: UnsafePointer<Float>, firstRow: Int,
                                 rows: Int, height: Int, width: Int, into sums: UnsafeMutablePointer<Float>,
                                 adding: Bool) {
        var sliding = Sliding3x3Sums()
        let rowFloats = width &* 16
        for oy in 0..<rows {
            let g = gradient + oy &* rowFloats
            let y = firstRow &+ oy
            let x1 = input + y &* rowFloats
            // Kernel row 0 reads the image row above, row 2 the one below; absent at the image's edges.
            let (x0, x2) = (x1 - rowFloats, x1 + rowFloats)
            withRowMask(above: y > 0, below: y < height &- 1) { rows in
                sliding.row(rows, gradient: g, x0, x1, x2, width: width)
            }
        }
        sliding.finish(into: sums, rowStride: 3 * 16, adding: adding)
    }

    /// `body(rows)` with the kernel rows that land in the image as a constant mask (bit 0: the row above, present
    /// unless at the image's top; bit 1: always; bit 2: the row below), so each case gets its own copy of the row.
    @inline(__always)
    private static func withRowMask(above: Bool, below: Bool, _ body: (Int) -> Void) {
        switch (above, below) {
        case (true, true): body(0b111)
        case (false, true): body(0b110)
        case (true, false): body(0b011)
        case (false, false): body(0b010)
        }
    }

    @inline(never) static func whole3x3(_ a: Arguments) {
        accumulate(3, 3, { ($0 / 3) &* a.4.tapRow &+ ($0 % 3) &* 16 }, a.0, a.1, a.2, a.3, a.4, a.5, a.6)
    }

    @inline(never) static func whole5x5(_ a: Arguments) {
        accumulate(5, 5, { ($0 / 5) &* a.4.tapRow &+ ($0 % 5) &* 16 }, a.0, a.1, a.2, a.3, a.4, a.5, a.6)
    }

    @inline(never) static func rows3x7(_ a: Arguments) {
        accumulate(3, 7, { ($0 / 7) &* a.4.tapRow &+ ($0 % 7) &* 16 }, a.0, a.1, a.2, a.3, a.4, a.5, a.6)
    }

    @inline(never) static func row1x7(_ a: Arguments) {
        accumulate(1, 7, { $0 &* 16 }, a.0, a.1, a.2, a.3, a.4, a.5, a.6)
    }

    /// `offset(t)`: floats from a position's first tap to tap t (inlined: constant-folded in the copies above).
    @inline(__always)
    static func accumulate(_ tapRows: Int, _ tapColumns: Int, _ offset: (Int) -> Int,
                           _ gradient: UnsafePointer<Float>, _ input: UnsafePointer<Float>, _ rows: Int,
                           _ columns: Int, _ steps: DepthwiseGradientSteps, _ sums: UnsafeMutablePointer<Float>,
                           _ sumRowStride: Int) {
        let T = tapRows * tapColumns
        var a0 = Vector(), a1 = Vector(), a2 = Vector(), a3 = Vector(), a4 = Vector(), a5 = Vector(), a6 = Vector(), a7 = Vector(), a8 = Vector(), a9 = Vector(), a10 = Vector(), a11 = Vector(), a12 = Vector(), a13 = Vector(), a14 = Vector(), a15 = Vector(), a16 = Vector(), a17 = Vector(), a18 = Vector(), a19 = Vector(), a20 = Vector(), a21 = Vector(), a22 = Vector(), a23 = Vector(), a24 = Vector()
        for oy in 0..<rows {
            let g = gradient + oy &* steps.gradientRow
            var q = input + oy &* steps.inputRow
            for ox in 0..<columns {
                let d = loadVector(g + ox &* 16)
                @inline(__always) func tap(_ t: Int) -> UnsafePointer<Float> { q + offset(t) }
                a0.addProduct(d, loadVector(q))
                if T > 1 { a1.addProduct(d, loadVector(tap(1))) }
                if T > 2 { a2.addProduct(d, loadVector(tap(2))) }
                if T > 3 { a3.addProduct(d, loadVector(tap(3))) }
                if T > 4 { a4.addProduct(d, loadVector(tap(4))) }
                if T > 5 { a5.addProduct(d, loadVector(tap(5))) }
                if T > 6 { a6.addProduct(d, loadVector(tap(6))) }
                if T > 7 { a7.addProduct(d, loadVector(tap(7))) }
                if T > 8 { a8.addProduct(d, loadVector(tap(8))) }
                if T > 9 { a9.addProduct(d, loadVector(tap(9))) }
                if T > 10 { a10.addProduct(d, loadVector(tap(10))) }
                if T > 11 { a11.addProduct(d, loadVector(tap(11))) }
                if T > 12 { a12.addProduct(d, loadVector(tap(12))) }
                if T > 13 { a13.addProduct(d, loadVector(tap(13))) }
                if T > 14 { a14.addProduct(d, loadVector(tap(14))) }
                if T > 15 { a15.addProduct(d, loadVector(tap(15))) }
                if T > 16 { a16.addProduct(d, loadVector(tap(16))) }
                if T > 17 { a17.addProduct(d, loadVector(tap(17))) }
                if T > 18 { a18.addProduct(d, loadVector(tap(18))) }
                if T > 19 { a19.addProduct(d, loadVector(tap(19))) }
                if T > 20 { a20.addProduct(d, loadVector(tap(20))) }
                if T > 21 { a21.addProduct(d, loadVector(tap(21))) }
                if T > 22 { a22.addProduct(d, loadVector(tap(22))) }
                if T > 23 { a23.addProduct(d, loadVector(tap(23))) }
                if T > 24 { a24.addProduct(d, loadVector(tap(24))) }
                q += steps.inputColumn
            }
        }
        @inline(__always) func finish(_ t: Int, _ v: Vector) {
            guard t < T else { return }
            let s = sums + (t / tapColumns) &* sumRowStride + (t % tapColumns) &* 16
            storeVector(loadVector(s) + v, s)
        }
        finish(0, a0)
        finish(1, a1)
        finish(2, a2)
        finish(3, a3)
        finish(4, a4)
        finish(5, a5)
        finish(6, a6)
        finish(7, a7)
        finish(8, a8)
        finish(9, a9)
        finish(10, a10)
        finish(11, a11)
        finish(12, a12)
        finish(13, a13)
        finish(14, a14)
        finish(15, a15)
        finish(16, a16)
        finish(17, a17)
        finish(18, a18)
        finish(19, a19)
        finish(20, a20)
        finish(21, a21)
        finish(22, a22)
        finish(23, a23)
        finish(24, a24)
    }
}

/// The nine running sums of a stride-1 3×3 piece and the row step of the sliding kernels: along a row, the input
/// vector of tap (r, 2) at position ox is that of tap (r, 1) at ox + 1 and of tap (r, 0) at ox + 2, so each is loaded
/// once and carried. Inlined, the sums stay in registers.
struct Sliding3x3Sums {
    typealias Vector = SIMD16<Float>
    typealias Carried = (Vector, Vector, Vector, Vector, Vector, Vector)
    var a00 = Vector(), a01 = Vector(), a02 = Vector(), a10 = Vector(), a11 = Vector(), a12 = Vector()
    var a20 = Vector(), a21 = Vector(), a22 = Vector()

    /// Positions 0..<count of one output row (dy vectors from `gradient`): `carried` holds taps (r, 0) and (r, 1) of
    /// position 0 for rows r = 0, 1, 2, and tap (r, 2) of position ox is the vector at `x_r + (ox + lead)·16`.
    /// Kernel rows not in `rows` (bit r) are neither read nor added. Returns the carried taps of position `count`.
    @inline(__always)
    mutating func slide(gradient: UnsafePointer<Float>, _ x0: UnsafePointer<Float>, _ x1: UnsafePointer<Float>,
                        _ x2: UnsafePointer<Float>, lead: Int, count: Int, carried: Carried,
                        rows: Int = 0b111) -> Carried {
        var (p00, p01, p10, p11, p20, p21) = carried
        for ox in 0..<count {
            let next = ox &+ lead
            let (n0, n1, n2) = (Self.load(rows, 0, x0, next), Self.load(rows, 1, x1, next), Self.load(rows, 2, x2, next))
            add(loadVector(gradient + ox &* 16), p00, p01, n0, p10, p11, n1, p20, p21, n2, rows: rows)
            (p00, p01, p10, p11, p20, p21) = (p01, n0, p11, n1, p21, n2)
        }
        return (p00, p01, p10, p11, p20, p21)
    }

    /// Positions `positions` of one output row of a stride-2 layer: tap (r, 0) of the first is `carried`, its taps
    /// (r, 1) and (r, 2) columns 2·ox + lead and 2·ox + lead + 1 of x_r, and tap (r, 2) of each position is carried
    /// as tap (r, 0) of the next. Kernel rows not in `rows` are neither read nor added. Returns the last carried.
    @inline(__always)
    mutating func slideStride2(gradient: UnsafePointer<Float>, _ x0: UnsafePointer<Float>, _ x1: UnsafePointer<Float>,
                               _ x2: UnsafePointer<Float>, positions: Range<Int>, lead: Int,
                               carried: (Vector, Vector, Vector), rows: Int = 0b111) -> (Vector, Vector, Vector) {
        var (p0, p1, p2) = carried
        for ox in positions {
            let c = 2 &* ox &+ lead
            let (m0, n0) = (Self.load(rows, 0, x0, c), Self.load(rows, 0, x0, c &+ 1))
            let (m1, n1) = (Self.load(rows, 1, x1, c), Self.load(rows, 1, x1, c &+ 1))
            let (m2, n2) = (Self.load(rows, 2, x2, c), Self.load(rows, 2, x2, c &+ 1))
            add(loadVector(gradient + ox &* 16), p0, m0, n0, p1, m1, n1, p2, m2, n2, rows: rows)
            (p0, p1, p2) = (n0, n1, n2)
        }
        return (p0, p1, p2)
    }

    /// x_r's vector at `column`, or zero where bit r of `rows` is clear (that kernel row is outside the image: not
    /// read).
    @inline(__always)
    static func load(_ rows: Int, _ r: Int, _ x: UnsafePointer<Float>, _ column: Int) -> Vector {
        rows & (1 << r) != 0 ? loadVector(x + column &* 16) : Vector()
    }

    /// A row of one position whose only taps in the image are its middle column, input column 0 (a 1-wide image).
    @inline(__always)
    mutating func middleOnly(_ rows: Int, gradient g: UnsafePointer<Float>, _ x0: UnsafePointer<Float>,
                             _ x1: UnsafePointer<Float>, _ x2: UnsafePointer<Float>) {
        let zero = Vector()
        add(loadVector(g), zero, Self.load(rows, 0, x0, 0), zero, zero, Self.load(rows, 1, x1, 0), zero, zero,
            Self.load(rows, 2, x2, 0), zero, rows: rows, columns: 0b010)
    }

    /// One output row of a 3×3 "same" layer, `width` positions read in place (x_r: the image row kernel row r reads,
    /// used only if bit r of `rows` is set): the first position without its left taps, the last without its right
    /// ones, the positions between sliding.
    @inline(__always)
    mutating func row(_ rows: Int, gradient g: UnsafePointer<Float>, _ x0: UnsafePointer<Float>,
                      _ x1: UnsafePointer<Float>, _ x2: UnsafePointer<Float>, width: Int) {
        let zero = Vector()
        @inline(__always) func load(_ r: Int, _ x: UnsafePointer<Float>, _ column: Int) -> Vector {
            Self.load(rows, r, x, column)
        }
        guard width > 1 else { return middleOnly(rows, gradient: g, x0, x1, x2) }
        let first: Carried = (load(0, x0, 0), load(0, x0, 1), load(1, x1, 0), load(1, x1, 1), load(2, x2, 0),
                              load(2, x2, 1))
        add(loadVector(g), zero, first.0, first.1, zero, first.2, first.3, zero, first.4, first.5,
            rows: rows, columns: 0b110)
        let last = slide(gradient: g + 16, x0, x1, x2, lead: 2, count: width &- 2, carried: first, rows: rows)
        add(loadVector(g + (width &- 1) &* 16), last.0, last.1, zero, last.2, last.3, zero, last.4, last.5, zero,
            rows: rows, columns: 0b011)
    }

    /// One output row of a stride-2 3×3 layer padded by one on the left, `width` positions read in place (x_r: the
    /// image row kernel row r reads, used only if bit r of `rows` is set; position ox reads columns 2·ox − 1 …
    /// 2·ox + 1): the first position without its left taps, the last without its right ones unless `lastReadsRight`,
    /// tap (r, 2) of each position carried as tap (r, 0) of the next.
    @inline(__always)
    mutating func rowStride2(_ rows: Int, gradient g: UnsafePointer<Float>, _ x0: UnsafePointer<Float>,
                             _ x1: UnsafePointer<Float>, _ x2: UnsafePointer<Float>, width: Int, lastReadsRight: Bool) {
        let zero = Vector()
        @inline(__always) func load(_ r: Int, _ x: UnsafePointer<Float>, _ column: Int) -> Vector {
            Self.load(rows, r, x, column)
        }
        guard width > 1 || lastReadsRight else { return middleOnly(rows, gradient: g, x0, x1, x2) }
        var (p0, p1, p2) = (load(0, x0, 1), load(1, x1, 1), load(2, x2, 1))
        add(loadVector(g), zero, load(0, x0, 0), p0, zero, load(1, x1, 0), p1, zero, load(2, x2, 0), p2,
            rows: rows, columns: 0b110)
        let whole = lastReadsRight ? width : width &- 1
        (p0, p1, p2) = slideStride2(gradient: g, x0, x1, x2, positions: 1..<max(1, whole), lead: 0,
                                    carried: (p0, p1, p2), rows: rows)
        if !lastReadsRight {
            let ox = width &- 1
            let c = 2 &* ox
            add(loadVector(g + ox &* 16), p0, load(0, x0, c), zero, p1, load(1, x1, c), zero, p2, load(2, x2, c),
                zero, rows: rows, columns: 0b011)
        }
    }

    /// One position: dy vector d times its nine taps' input vectors, row by row; taps outside `rows` × `columns`
    /// (bit r, bit s) skipped. The masks are constants after inlining.
    @inline(__always)
    mutating func add(_ d: Vector, _ x00: Vector, _ x01: Vector, _ x02: Vector, _ x10: Vector, _ x11: Vector,
                      _ x12: Vector, _ x20: Vector, _ x21: Vector, _ x22: Vector, rows: Int = 0b111,
                      columns: Int = 0b111) {
        @inline(__always) func on(_ r: Int, _ s: Int) -> Bool { rows & (1 << r) != 0 && columns & (1 << s) != 0 }
        if on(0, 0) { a00.addProduct(d, x00) }
        if on(0, 1) { a01.addProduct(d, x01) }
        if on(0, 2) { a02.addProduct(d, x02) }
        if on(1, 0) { a10.addProduct(d, x10) }
        if on(1, 1) { a11.addProduct(d, x11) }
        if on(1, 2) { a12.addProduct(d, x12) }
        if on(2, 0) { a20.addProduct(d, x20) }
        if on(2, 1) { a21.addProduct(d, x21) }
        if on(2, 2) { a22.addProduct(d, x22) }
    }

    /// sums[r·rowStride + s·16] += a_rs (or = a_rs, not `adding`).
    @inline(__always)
    func finish(into sums: UnsafeMutablePointer<Float>, rowStride: Int, adding: Bool = true) {
        @inline(__always) func put(_ r: Int, _ s: Int, _ v: Vector) {
            let target = sums + r &* rowStride + s &* 16
            storeVector(adding ? loadVector(target) + v : v, target)
        }
        put(0, 0, a00); put(0, 1, a01); put(0, 2, a02); put(1, 0, a10); put(1, 1, a11); put(1, 2, a12)
        put(2, 0, a20); put(2, 1, a21); put(2, 2, a22)
    }
}

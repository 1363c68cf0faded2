import ConvLabCore

/// The `direct` backend's plan for depthwise layers vectorised across channels: 16 channels share one SIMD16 vector,
/// so a 7×7 or 14×14 plane (49 or 196 floats, rows narrower than one 64-wide block) wastes no lanes, and stride and
/// dilation are only pointer steps. The per-plane row plan (`DepthwisePlan`) ran MobileNetV2's 384-channel 14×14
/// layer at 6 GFLOP/s, a twentieth of oneDNN, because each plane was a task of a few hundred FLOPs.
///
/// A task is a band of output rows of one image and one block of 16 channels. It transposes the input rows the band
/// reads from NCHW into [position][16 channels] (16×16 register transposes, `ChannelBlocking`), or on nChw16c tensors
/// (`executeBlocked`) reads those rows as they are; lays them into a zero-padded band buffer; computes 8 output
/// positions at a time as Σ over (r, s) of w[r][s] ⊙ x[…] (one load and one FMA per tap and position, 16 channels
/// each); and transposes the band back into the 16 output planes (or writes the blocked rows). Every buffer is a
/// slice of the worker's workspace sized to stay in L2. Two shapes skip the padded band and its zero products: 3×3,
/// 5×5 and 7×7 kernels padded to keep the size slide along the unpadded rows (`SlidingDepthwise`), and kernels as
/// wide as the image sum each row input position by input position (`SpanningDepthwise`). Otherwise, on nChw16c
/// tensors whose interior (the outputs every tap of which reads the image) holds most of the outputs, nothing is
/// copied: the band is computed region by region in place (`DepthwiseRegions`), each output summing the taps of its
/// region's box. Each output is summed in (r, s) order, so the bits do not depend on the thread count.
struct ChannelBlockedDepthwisePlan: ChannelBlockedExecution, BlockedOnlyPlan {
    typealias Vector = SIMD16<Float>
    let geometry: ChannelBlockedDepthwiseGeometry
    /// Weights as [channel block][r][s][16 lanes], zero in lanes past the last channel.
    let packedWeights: AlignedStorage<Float>

    var descriptor: ConvolutionDescriptor { geometry.descriptor }
    var summary: PlanDescription { geometry.summary }

    init(geometry: ChannelBlockedDepthwiseGeometry, weights: Tensor<Float>) {
        self.geometry = geometry
        packedWeights = DepthwiseBand(descriptor: geometry.descriptor).packedWeights(weights)
    }

    func execute(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
                 workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?) throws {
        try validateBuffers(input: input, output: output, workspace: workspace)
        run(input: input, output: output, workspace: workspace, layout: .nchw, profile: profile)
    }

    /// The same bands on nChw16c tensors: rows of a channel block are already [position][16 channels], so the
    /// transpositions in and out disappear and the bands read and write the tensors directly.
    func executeBlocked(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
                        workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?) throws {
        try validateBlockedBuffers(input: input, output: output, workspace: workspace)
        run(input: input, output: output, workspace: workspace, layout: .nChw16c, profile: profile)
    }

    /// The blocked entry without its checks, for a pairing that made them (`PlanWithBlockedEntry`).
    func run(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
             workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?) {
        run(input: input, output: output, workspace: workspace, layout: .nChw16c, profile: profile)
    }

    private func run(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
                     workspace: UnsafeMutableRawBufferPointer, layout: TensorLayout, profile: ExecutionProfile?) {
        let g = geometry
        let shared = UncheckedSendable((input.baseAddress!, output.baseAddress!, workspace))
        measurePhase("convolve", in: profile) {
            packedWeights.withUnsafeBufferPointer { w in
                let weights = UncheckedSendable(w.baseAddress!)
                Parallel.forEach(taskCount: g.tasks, threads: g.workers) { worker, task in
                    let (x, y, workspace) = shared.value
                    let band = task % g.bandsPerBlock
                    let block = (task / g.bandsPerBlock) % g.channelBlocks
                    let n = task / (g.bandsPerBlock * g.channelBlocks)
                    runBand(n: n, block: block, firstRow: band * g.bandRows, x: x, y: y, layout: layout,
                            weights: weights.value + block * g.taps * 16,
                            stage: g.stage.pointer(in: workspace, worker: worker),
                            padded: g.padded.pointer(in: workspace, worker: worker))
                }
            }
        }
    }

    private func runBand(n: Int, block: Int, firstRow: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                         layout: TensorLayout, weights: UnsafePointer<Float>, stage: UnsafeMutablePointer<Float>,
                         padded: UnsafeMutablePointer<Float>) {
        let d = descriptor, g = geometry
        let rows = min(g.bandRows, d.outputHeight - firstRow)
        if g.spansWidth || g.slides {
            runUnpaddedBand(n: n, block: block, band: firstRow..<(firstRow + rows), x: x, y: y, layout: layout,
                            weights: weights, stage: stage, results: padded)
            return
        }
        if layout == .nChw16c && g.regions.readsInPlace {
            runBandInPlace(n: n, block: block, band: firstRow..<(firstRow + rows), x: x, y: y, weights: weights)
            return
        }
        let firstChannel = block * 16
        let channels = min(16, d.inputChannels - firstChannel)
        let planeSize = d.inputHeight * d.inputWidth
        let paddedRows = d.inputRows(forOutputRows: rows)
        let vectorsPerRow = g.band.rowFloats
        g.band.fill(firstRow: firstRow, rows: rows, from: layout == .nchw
                        ? .planes(x + (n * d.inputChannels + firstChannel) * planeSize, channels: channels, stage: stage)
                        : .blocked(x + (n * g.channelBlocks + block) * planeSize * 16),
                    into: padded)
        // Positions past the last output column read the slack after the last row: zero, so nothing uninitialised is read.
        zeroFloats(padded + paddedRows * vectorsPerRow, count: g.slackFloats)
        // The band's outputs, [position][16 channels], into the stage (its input copy is no longer needed), or for
        // nChw16c straight into the output block's rows. A row's last block computes 8 positions and stores the
        // valid ones: a 7- or 14-wide row is one or two blocks.
        let steps = RowSteps(width: d.outputWidth, stride: d.strideWidth * 16, dilation: d.dilationWidth * 16,
                             rowStep: d.dilationHeight * vectorsPerRow)
        let outputPlaneSize = d.outputHeight * d.outputWidth
        let results = layout == .nchw ? stage
            : y + ((n * g.channelBlocks + block) * outputPlaneSize + firstRow * d.outputWidth) * 16
        for oy in 0..<rows {
            // Kernel rows that read padding rows add zeros: from 5×5 on, only those inside the image are summed (5×5
            // on 7×7 maps: 19 of 25 taps on average, 1.12× faster). On 3×3 the clipped rows' copy of the loop lost
            // more than the third of a row's taps it saves (7×7 and 14×14 maps, 3–7% slower, Intel kind).
            let taps = g.clipsRows ? d.kernelRowsInside(outputRow: firstRow + oy) : 0..<d.kernelHeight
            convolveRow(padded + (oy * d.strideHeight + taps.lowerBound * d.dilationHeight) * vectorsPerRow,
                        weights + taps.lowerBound * d.kernelWidth * 16, results + oy * d.outputWidth * 16, steps,
                        R: taps.count, S: d.kernelWidth)
        }
        guard layout == .nchw else { return }
        let wo = d.outputWidth
        ChannelBlocking.fromBlocked(stage, count: rows * wo, channels: channels,
                                    into: y + (n * d.outputChannels + firstChannel) * outputPlaneSize + firstRow * wo,
                                    planeStride: outputPlaneSize)
    }

    /// A row's outputs, and the steps through the padded band in floats: between output positions, between taps
    /// along a row, between kernel rows.
    struct RowSteps {
        let width: Int
        let stride: Int
        let dilation: Int
        let rowStep: Int
    }

    /// One output row of an R × S box of taps (the kernel rows inside the image, or a region's box read in place),
    /// weights rows of the kernel's width apart. Common kernel widths and strides get their own copy of the row loop,
    /// with the tap loops unrolled and every load offset an immediate: with runtime steps the compiler kept 72 offsets on
    /// the stack, and at 9 taps the loop overhead cost as much as the FMAs. Rows clipped at the image's top and bottom
    /// edges (fewer kernel rows) get a copy with the loop over kernel rows left at runtime.
    private func convolveRow(_ rows: UnsafePointer<Float>, _ weights: UnsafePointer<Float>,
                             _ target: UnsafeMutablePointer<Float>, _ steps: RowSteps, R: Int, S: Int) {
        let d = descriptor
        let weightRow = d.kernelWidth * 16
        let constantSteps = d.dilationWidth == 1 && d.strideWidth <= 2
        let square = R == S
        switch (S, constantSteps ? d.strideWidth : 0, square) {
        case (3, 1, true): convolveRow(rows, weights, target, steps, R: 3, S: 3, stride: 16, dilation: 16, weightRow: weightRow)
        case (3, 2, true): convolveRow(rows, weights, target, steps, R: 3, S: 3, stride: 32, dilation: 16, weightRow: weightRow)
        case (5, 1, true): convolveRow(rows, weights, target, steps, R: 5, S: 5, stride: 16, dilation: 16, weightRow: weightRow)
        case (5, 2, true): convolveRow(rows, weights, target, steps, R: 5, S: 5, stride: 32, dilation: 16, weightRow: weightRow)
        case (7, 1, true): convolveRow(rows, weights, target, steps, R: 7, S: 7, stride: 16, dilation: 16, weightRow: weightRow)
        case (7, 2, true): convolveRow(rows, weights, target, steps, R: 7, S: 7, stride: 32, dilation: 16, weightRow: weightRow)
        // Rows clipped at the image's top or bottom edge: the kernel-row loop at runtime, the row's taps unrolled.
        case (5, 1, false): convolveRow(rows, weights, target, steps, R: R, S: 5, stride: 16, dilation: 16, weightRow: weightRow)
        case (7, 1, false): convolveRow(rows, weights, target, steps, R: R, S: 7, stride: 16, dilation: 16, weightRow: weightRow)
        case (_, 1, _):  // other widths at stride 1 (31×31 on 56×56 maps): constant steps still
            convolveRow(rows, weights, target, steps, R: R, S: S, stride: 16, dilation: 16, weightRow: weightRow)
        default:
            convolveRow(rows, weights, target, steps, R: R, S: S, stride: steps.stride, dilation: steps.dilation,
                        weightRow: weightRow)
        }
    }

    /// One output row, 8 positions at a time: 8 independent accumulators of 16 channels (one alone would wait on
    /// each FMA's latency), one load and one FMA per tap and position. A partial last block stores its valid
    /// positions only (it reads past the row: the padded band's slack). Taps (r, s) < (R, S) read the weights at
    /// r·weightRow + s·16. Inlined with constant R and S, the tap loops unroll.
    @inline(__always)
    private func convolveRow(_ rows: UnsafePointer<Float>, _ weights: UnsafePointer<Float>,
                             _ target: UnsafeMutablePointer<Float>, _ steps: RowSteps, R: Int, S: Int,
                             stride step: Int, dilation: Int, weightRow: Int) {
        var ox = 0
        while ox < steps.width {
            var a0 = Vector(), a1 = Vector(), a2 = Vector(), a3 = Vector()
            var a4 = Vector(), a5 = Vector(), a6 = Vector(), a7 = Vector()
            for r in 0..<R {
                for s in 0..<S {
                    let p = rows + ox * step + r * steps.rowStep + s * dilation
                    let b = loadVector(weights + r * weightRow + s * 16)
                    a0.addProduct(loadVector(p), b); a1.addProduct(loadVector(p + step), b)
                    a2.addProduct(loadVector(p + 2 * step), b); a3.addProduct(loadVector(p + 3 * step), b)
                    a4.addProduct(loadVector(p + 4 * step), b); a5.addProduct(loadVector(p + 5 * step), b)
                    a6.addProduct(loadVector(p + 6 * step), b); a7.addProduct(loadVector(p + 7 * step), b)
                }
            }
            storeAccumulators(min(8, steps.width - ox), (a0, a1, a2, a3, a4, a5, a6, a7), to: target + ox * 16)
            ox += 8
        }
    }

    /// A run of fewer than 8 positions of a row (a region read in place narrower than a block), N = `count`
    /// accumulators: the same sums in the same (r, s) order as `convolveRow`, without reading past the region.
    private func convolveShort(count: Int, _ rows: UnsafePointer<Float>, _ weights: UnsafePointer<Float>,
                               _ target: UnsafeMutablePointer<Float>, _ steps: RowSteps, R: Int, S: Int) {
        let weightRow = descriptor.kernelWidth * 16
        switch count {
        case 1: Self.convolveShort(Compiled<1>(), rows, weights, target, steps, R: R, S: S, weightRow: weightRow)
        case 2: Self.convolveShort(Compiled<2>(), rows, weights, target, steps, R: R, S: S, weightRow: weightRow)
        case 3: Self.convolveShort(Compiled<3>(), rows, weights, target, steps, R: R, S: S, weightRow: weightRow)
        case 4: Self.convolveShort(Compiled<4>(), rows, weights, target, steps, R: R, S: S, weightRow: weightRow)
        case 5: Self.convolveShort(Compiled<5>(), rows, weights, target, steps, R: R, S: S, weightRow: weightRow)
        case 6: Self.convolveShort(Compiled<6>(), rows, weights, target, steps, R: R, S: S, weightRow: weightRow)
        default: Self.convolveShort(Compiled<7>(), rows, weights, target, steps, R: R, S: S, weightRow: weightRow)
        }
    }

    @inline(never)
    private static func convolveShort<let N: Int>(_: Compiled<N>, _ rows: UnsafePointer<Float>,
                                                  _ weights: UnsafePointer<Float>, _ target: UnsafeMutablePointer<Float>,
                                                  _ steps: RowSteps, R: Int, S: Int, weightRow: Int) {
        let count = N
        let step = steps.stride
        var a0 = Vector(), a1 = Vector(), a2 = Vector(), a3 = Vector(), a4 = Vector(), a5 = Vector(), a6 = Vector()
        for r in 0..<R {
            for s in 0..<S {
                let p = rows + r * steps.rowStep + s * steps.dilation
                let b = loadVector(weights + r * weightRow + s * 16)
                a0.addProduct(loadVector(p), b)
                if count > 1 { a1.addProduct(loadVector(p + step), b) }
                if count > 2 { a2.addProduct(loadVector(p + 2 * step), b) }
                if count > 3 { a3.addProduct(loadVector(p + 3 * step), b) }
                if count > 4 { a4.addProduct(loadVector(p + 4 * step), b) }
                if count > 5 { a5.addProduct(loadVector(p + 5 * step), b) }
                if count > 6 { a6.addProduct(loadVector(p + 6 * step), b) }
            }
        }
        storeAccumulators(count, (a0, a1, a2, a3, a4, a5, a6, Vector()), to: target)
    }

    /// One band read from unpadded rows, the padding implied and never multiplied: 3×3, 5×5 and 7×7 layers padded to
    /// keep their size (`SlidingDepthwise`), or a kernel that spans the image's width (`SpanningDepthwise`). x is read
    /// in place (nChw16c) or from its rows transposed into the stage; the outputs go to the output block's rows or, for
    /// NCHW, through `results` back into 16 planes.
    private func runUnpaddedBand(n: Int, block: Int, band: Range<Int>, x: UnsafePointer<Float>,
                                 y: UnsafeMutablePointer<Float>, layout: TensorLayout, weights: UnsafePointer<Float>,
                                 stage: UnsafeMutablePointer<Float>, results: UnsafeMutablePointer<Float>) {
        let d = descriptor, g = geometry
        let (H, W, Wo) = (d.inputHeight, d.inputWidth, d.outputWidth)
        let top = d.padding.top
        let (firstChannel, channels) = (block * 16, min(16, d.inputChannels - block * 16))
        // Input rows [lo, hi) are the ones the band's outputs read, as [row − lo][column][16].
        let lo = max(0, band.lowerBound - top)
        let hi = min(H, band.upperBound - 1 - top + d.kernelHeight)
        let source: UnsafePointer<Float>
        let target: UnsafeMutablePointer<Float>
        let outputPlane = d.outputHeight * Wo
        if layout == .nchw {
            if lo < hi {
                ChannelBlocking.toBlocked(x + (n * d.inputChannels + firstChannel) * H * W, planeStride: H * W,
                                          from: lo * W, count: (hi - lo) * W, channels: channels, into: stage)
            }
            (source, target) = (UnsafePointer(stage), results)
        } else {
            source = x + ((n * g.channelBlocks + block) * H + lo) * W * 16
            target = y + ((n * g.channelBlocks + block) * outputPlane + band.lowerBound * Wo) * 16
        }
        if g.slides {
            SlidingDepthwise.run(kernel: d.kernelWidth, band: band, rows: source, firstRow: lo, height: H, width: W,
                                 weights: weights, target: target)
        } else {
            SpanningDepthwise.run(d, band: band, rows: source, firstRow: lo, weights: weights, target: target)
        }
        guard layout == .nchw else { return }
        ChannelBlocking.fromBlocked(results, count: band.count * Wo, channels: channels,
                                    into: y + (n * d.outputChannels + firstChannel) * outputPlane + band.lowerBound * Wo,
                                    planeStride: outputPlane)
    }

    /// One band on nChw16c tensors, read in place (`DepthwiseRegions`): each region's outputs sum the taps of its box,
    /// in (r, s) order as in the band; outputs whose taps all fall in the padding are zero. The padded copy of the band
    /// this replaces was as much of the time as the FMAs on MobileNetV2's strided maps.
    private func runBandInPlace(n: Int, block: Int, band: Range<Int>, x: UnsafePointer<Float>,
                                y: UnsafeMutablePointer<Float>, weights: UnsafePointer<Float>) {
        let d = descriptor, g = geometry
        let (W, Wo, S) = (d.inputWidth, d.outputWidth, d.kernelWidth)
        let plane = n * g.channelBlocks + block
        let (input, output) = (x + plane * d.inputHeight * W * 16, y + plane * d.outputHeight * Wo * 16)
        let (step, dilation, rowStep) = (d.strideWidth * 16, d.dilationWidth * 16, d.dilationHeight * W * 16)
        for rowRun in g.regions.rowRuns {
            let rows = band.clamped(to: rowRun.outputs)
            for columnRun in g.regions.columnRuns {
                let (columns, taps) = (columnRun.outputs, (rows: rowRun.taps, columns: columnRun.taps))
                // Whole blocks of 8 through the unrolled row loops, then one more block of 8 that ends at the region's
                // end (it recomputes up to 7 outputs: the same sums, the same bits); runs narrower than 8 positions
                // with as many accumulators as positions. Nothing reads past the region's inputs.
                let count = columns.count
                let blocks = RowSteps(width: count / 8 * 8, stride: step, dilation: dilation, rowStep: rowStep)
                let lastBlock = RowSteps(width: 8, stride: step, dilation: dilation, rowStep: rowStep)
                let w = weights + (taps.rows.lowerBound * S + taps.columns.lowerBound) * 16
                for oy in rows {
                    let target = output + (oy * Wo + columns.lowerBound) * 16
                    guard !taps.rows.isEmpty && !taps.columns.isEmpty else {
                        zeroFloats(target, count: columns.count * 16)
                        continue
                    }
                    let first = input + ((oy * d.strideHeight - d.padding.top + taps.rows.lowerBound * d.dilationHeight)
                                         * W + columns.lowerBound * d.strideWidth - d.padding.left
                                         + taps.columns.lowerBound * d.dilationWidth) * 16
                    let (boxRows, boxColumns) = (taps.rows.count, taps.columns.count)
                    if count < 8 {
                        convolveShort(count: count, first, w, target, blocks, R: boxRows, S: boxColumns)
                        continue
                    }
                    convolveRow(first, w, target, blocks, R: boxRows, S: boxColumns)
                    if count % 8 != 0 {
                        convolveRow(first + (count - 8) * step, w, target + (count - 8) * 16, lastBlock, R: boxRows,
                                    S: boxColumns)
                    }
                }
            }
        }
    }
}

/// The channel-blocked depthwise plan's geometry: the padded band buffer, the band height, the task split and the
/// per-worker scratch (the transposed stage and the padded band).
struct ChannelBlockedDepthwiseGeometry: Sendable {
    let descriptor: ConvolutionDescriptor
    let channelBlocks: Int
    let taps: Int
    let band: DepthwiseBand
    var paddedWidth: Int { band.paddedWidth }
    /// Floats after the padded band that the last row's partial block of 8 positions reads: 7 steps of the stride.
    let slackFloats: Int
    let bandRows: Int
    let bandsPerBlock: Int
    let tasks: Int
    let workers: Int
    let stage: WorkspaceRegion<Float>
    let padded: WorkspaceRegion<Float>
    /// How nChw16c tensors are read in place (or, where that does not pay, through the padded band).
    let regions: DepthwiseRegions
    /// Whether rows are summed by `SpanningDepthwise` (a kernel as wide as the image, where the layer does not slide),
    /// on both layouts.
    let spansWidth: Bool
    /// Whether rows are summed by `SlidingDepthwise` (3×3, 5×5 or 7×7, stride 1, size-keeping padding), on both
    /// layouts.
    let slides: Bool
    /// Whether the padded band's rows skip kernel rows that read padding rows (kernels of 5 rows and more).
    var clipsRows: Bool { Self.clipsRows(descriptor) }
    static func clipsRows(_ d: ConvolutionDescriptor) -> Bool { d.kernelHeight >= 5 }
    let summary: PlanDescription

    /// Depthwise with one output channel per group (K = C = G) and at least 16 channels (fewer leave lanes idle),
    /// any padding, dilation and batch, where the row plan does not fill its 64-wide blocks: at stride > 1 (it does
    /// not apply) and on rows of fewer than 48 outputs (under 3/4 of a block). Measured on the Intel kind, 2 threads:
    /// 28-wide rows 0.063 vs 0.085 ms (192 channels) and 0.11 vs 0.16 (240 channels, 5×5); at 56 and 112 the row
    /// plan won against the padded band (0.125 vs 0.18 and 0.155 ms), its transposes-free loads reused across four
    /// output rows. Against the sliding rows (`SlidingDepthwise`) it loses at every width, so layers that slide take
    /// this plan on NCHW too (A/B, NCHW, 2 threads: 144 channels at 56² 0.108 → 0.093 ms, 32 at 112² 0.099 → 0.084,
    /// ConvNeXt's 7×7 at 56² 0.158 → 0.143).
    static func applies(to d: ConvolutionDescriptor) -> Bool {
        supports(d) && (rowPlanUnderfills(d) || SlidingDepthwise.applies(to: d))
    }

    /// Where the row plan leaves its 64-wide blocks part empty: at stride > 1 (it does not apply) and on rows of fewer
    /// than 48 outputs. Both passes' plans take these layers.
    static func rowPlanUnderfills(_ d: ConvolutionDescriptor) -> Bool { !d.isStrideOne || d.outputWidth < 48 }

    /// Whether the plan can run `d` at all (then it also serves the row plan's nChw16c entry point).
    static func supports(_ d: ConvolutionDescriptor) -> Bool {
        d.channelsPerGroup == 1 && d.outputChannelsPerGroup == 1 && d.inputChannels >= 16
    }

    init(descriptor d: ConvolutionDescriptor, options: PlanOptions, caches: MachineCaches = .current) throws {
        descriptor = d
        channelBlocks = (d.inputChannels + 15) / 16
        taps = d.kernelHeight * d.kernelWidth
        band = DepthwiseBand(descriptor: d)
        regions = DepthwiseRegions(descriptor: d)
        slides = SlidingDepthwise.applies(to: d)
        spansWidth = !slides && SpanningDepthwise.applies(to: d)
        slackFloats = 7 * d.strideWidth * 16
        // A band's buffers: the stage holds max(input rows × W, output rows × Wo) positions, the padded band its rows
        // × paddedWidth, 64 bytes per position. Bands are as tall as fits in half of L2 (the other half streams the
        // planes), and short enough to give every thread 8 tasks when images × channel blocks alone are too few.
        let bytesPerPosition = 16 * MemoryLayout<Float>.stride
        let width = band.paddedWidth
        func bandBytes(_ rows: Int) -> Int {
            let inputRows = d.inputRows(forOutputRows: rows)
            return (max(inputRows * d.inputWidth, rows * d.outputWidth) + inputRows * width) * bytesPerPosition
        }
        var fitting = d.outputHeight
        while fitting > 1 && bandBytes(fitting) > caches.level2Bytes / 2 { fitting = (fitting + 1) / 2 }
        let independent = d.batch * channelBlocks
        let wantedBands = max(1, (8 * options.threads + independent - 1) / independent)
        bandRows = max(1, min(fitting, (d.outputHeight + wantedBands - 1) / wantedBands))
        bandsPerBlock = (d.outputHeight + bandRows - 1) / bandRows
        tasks = independent * bandsPerBlock
        workers = Parallel.workers(threads: options.threads, tasks: tasks)
        let inputRows = d.inputRows(forOutputRows: bandRows)
        var layout = WorkspaceLayout()
        let stageCount = try CheckedArithmetic.product(
            [max(inputRows * d.inputWidth, bandRows * d.outputWidth), 16], what: "the depthwise channel-blocked stage")
        stage = try layout.reserve(Float.self, count: stageCount, workers: workers, what: "the depthwise stage")
        let paddedCount = try CheckedArithmetic.sum(
            [try CheckedArithmetic.product([inputRows, band.paddedWidth, 16], what: "the depthwise band buffer"), slackFloats],
            what: "the depthwise band buffer")
        padded = try layout.reserve(Float.self, count: paddedCount,
                                    workers: workers, what: "the depthwise band buffer")
        try ResourceLimits.check("the depthwise band buffers", bytes: layout.byteCount,
                                 limit: options.limits.maxWorkspaceBytes)
        // Computed FLOPs: every output of every 16-lane block (zero lanes included), the taps each row computes: kernel
        // rows inside the image times the input columns (spanning) or the kernel's width on whole blocks of 8.
        let rowTaps = !Self.clipsRows(d) ? d.outputHeight * d.kernelHeight
            : (0..<d.outputHeight).reduce(0) { $0 + d.kernelRowsInside(outputRow: $1).count }
        let computedPerPlane = spansWidth ? rowTaps * d.inputWidth * d.outputWidth
            : slides ? rowTaps * (d.kernelWidth * d.outputWidth - (d.kernelWidth * d.kernelWidth - 1) / 4)
            : regions.readsInPlace ? d.outputHeight * d.outputWidth * taps
            : rowTaps * d.kernelWidth * ((d.outputWidth + 7) / 8 * 8)
        let flops = 2 * Double(d.batch * channelBlocks * 16) * Double(computedPerPlane)
        // As for the row plan, long sums pay off while the band of 16 channels they read stays in cache (here: L2).
        let fitsCache = paddedCount * MemoryLayout<Float>.stride <= MachineCaches.current.level2Bytes / 2
        summary = PlanDescription(
            backend: "direct",
            variant: "depthwise channel-blocked"
                + (spansWidth ? ", width-spanning" : slides ? ", sliding \(d.kernelHeight)x\(d.kernelWidth)" : ""),
            errorBound: DirectBackend.errorBound(d),
            typicalError: DirectBackend.typicalError(d),
            workspaceBytes: layout.byteCount, persistentBytes: channelBlocks * taps * 64,
            work: WorkEstimate([.memory(bytes: Double(d.inputCount + d.outputCount) * 4),
                                .loadBoundKernel(flops: flops, taps: fitsCache ? d.reductionLength : 9, tasks: tasks)],
                               depthwiseKernels: true))
        try options.accuracy.admit(summary)
    }
}

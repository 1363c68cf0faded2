import ConvLabCore

/// The `direct` backend's plan for depthwise layers (one input channel per group, any channel multiplier) at
/// stride 1: MobileNet-style 3×3/5×5 layers, where the general plan's padded copy of the whole input cost as much as
/// the convolution itself (dw3, 32 channels at 112²: 0.074 ms of 0.17).
///
/// A task is a band of output rows of one input plane. It copies the input rows the band reads into a small
/// zero-padded buffer in its own workspace slice (L1/L2-resident, so padding costs a copy within cache instead of a
/// pass through memory), then, for each output channel of the group, computes 64 outputs at a time as
/// Σ over (r, s) of w[r][s] · row[r·dh][ox + s·dw …] — R·S broadcasts and 4·R·S unaligned loads per 64 outputs,
/// accumulated in 4 registers and stored once. Each output is summed in (r, s) order by one worker, so the result
/// does not depend on the thread count.
struct DepthwisePlan: ConvolutionPlan {
    let geometry: DepthwiseGeometry
    /// Weights per output channel, R·S each (KCRS with C/G = 1 is already this layout).
    let weights: [Float]

    var descriptor: ConvolutionDescriptor { geometry.descriptor }
    var summary: PlanDescription { geometry.summary }

    init(geometry: DepthwiseGeometry, weights: Tensor<Float>) {
        self.geometry = geometry
        self.weights = weights.scalars
    }

    static let block = DepthwiseGeometry.block
    private var rowStride: Int { geometry.rowStride }

    func execute(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
                 workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?) throws {
        try validateBuffers(input: input, output: output, workspace: workspace)
        let d = descriptor
        let geometry = geometry
        let scratch = geometry.scratch
        let shared = UncheckedSendable((input.baseAddress!, output.baseAddress!, workspace))
        // Padding columns are zero once per execution and never written again: each band overwrites only the row
        // interiors (a libc call per short row cost as much as the convolution of that row on small maps).
        measurePhase("zero row buffers", in: profile) {
            for worker in 0..<geometry.workers {
                scratch.pointer(in: workspace, worker: worker).update(repeating: 0, count: scratch.count)
            }
        }
        measurePhase("convolve", in: profile) {
            weights.withUnsafeBufferPointer { w in
                let weightBase = UncheckedSendable(w.baseAddress!)
                Parallel.forEach(taskCount: geometry.tasks, threads: geometry.workers) { worker, task in
                    let (x, y, workspace) = shared.value
                    let plane = task / geometry.bandsPerPlane
                    let firstRow = (task % geometry.bandsPerPlane) * geometry.bandRows
                    let rows = min(geometry.bandRows, d.outputHeight - firstRow)
                    let buffer = scratch.pointer(in: workspace, worker: worker)
                    fillRows(from: x + plane * d.inputHeight * d.inputWidth, firstOutputRow: firstRow,
                             outputRows: rows, into: buffer)
                    let (n, c) = (plane / d.inputChannels, plane % d.inputChannels)
                    let kg = d.outputChannelsPerGroup
                    for k in (c * kg)..<((c + 1) * kg) {
                        let out = y + ((n * d.outputChannels + k) * d.outputHeight + firstRow) * d.outputWidth
                        convolveBand(rows: buffer, outputRows: rows,
                                     weights: weightBase.value + k * d.kernelHeight * d.kernelWidth, output: out)
                    }
                }
            }
        }
    }

    /// Copies the input rows that output rows [first, first + count) read into the interiors of the buffer rows
    /// (their padding columns are already zero); rows in the padding get zero interiors.
    private func fillRows(from x: UnsafePointer<Float>, firstOutputRow first: Int, outputRows count: Int,
                          into buffer: UnsafeMutablePointer<Float>) {
        let d = descriptor
        let reach = (d.kernelHeight - 1) * d.dilationHeight
        for i in 0..<(count + reach) {
            let inputRow = first + i - d.padding.top
            let target = buffer + i * rowStride + d.padding.left
            if (0..<d.inputHeight).contains(inputRow) {
                copyFloats(x + inputRow * d.inputWidth, to: target, count: d.inputWidth)
            } else {
                zeroFloats(target, count: d.inputWidth)
            }
        }
    }

    /// One output channel over a band, 64 outputs per step. Without dilation along rows, four output rows are
    /// computed together: each loaded input vector feeds every row whose window contains it (R + 3 input rows
    /// instead of 4·R), and 16 independent accumulators hide the FMA latency that four alone would expose
    /// (measured: 1 row at a time ran at ~45 GFLOP/s on 3×3, latency-bound). Taps are still summed in (r, s)
    /// order for every output.
    private func convolveBand(rows: UnsafePointer<Float>, outputRows: Int, weights: UnsafePointer<Float>,
                              output: UnsafeMutablePointer<Float>) {
        let d = descriptor
        let wo = d.outputWidth
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 4 * Self.block) { tileBuffer in
            let tile = tileBuffer.baseAddress!
            var oy = 0
            if d.dilationHeight == 1 {
                while oy + 4 <= outputRows {
                    var ox = 0
                    while ox < wo {
                        // Full blocks go straight to the output; a partial last block goes through the tile.
                        let full = wo - ox >= Self.block
                        fourRows(rows: rows + oy * rowStride + ox, weights: weights,
                                 target: full ? output + oy * wo + ox : tile, targetStride: full ? wo : Self.block)
                        if !full {
                            for j in 0..<4 { (output + (oy + j) * wo + ox).update(from: tile + j * Self.block, count: wo - ox) }
                        }
                        ox += Self.block
                    }
                    oy += 4
                }
            }
            while oy < outputRows {
                var ox = 0
                while ox < wo {
                    let full = wo - ox >= Self.block
                    oneRow(rows: rows + oy * rowStride + ox, weights: weights, tile: full ? output + oy * wo + ox : tile)
                    if !full { (output + oy * wo + ox).update(from: tile, count: wo - ox) }
                    ox += Self.block
                }
                oy += 1
            }
        }
    }

    /// 4 output rows × 64 columns into `target` (rows `targetStride` apart); `rows` points at the first input row.
    @inline(__always)
    private func fourRows(rows: UnsafePointer<Float>, weights: UnsafePointer<Float>, target: UnsafeMutablePointer<Float>,
                          targetStride: Int) {
        typealias Vector = SIMD16<Float>
        let (R, S, dw) = (descriptor.kernelHeight, descriptor.kernelWidth, descriptor.dilationWidth)
        var a00 = Vector(), a01 = Vector(), a02 = Vector(), a03 = Vector()
        var a10 = Vector(), a11 = Vector(), a12 = Vector(), a13 = Vector()
        var a20 = Vector(), a21 = Vector(), a22 = Vector(), a23 = Vector()
        var a30 = Vector(), a31 = Vector(), a32 = Vector(), a33 = Vector()
        for i in 0..<(R + 3) {
            let row = rows + i * rowStride
            for s in 0..<S {
                // Each input vector is loaded once and feeds every output row j whose tap r = i − j exists: R + 3
                // rows of loads for 4 output rows instead of 4·R (the unaligned loads, not the FMAs, bound this).
                let p = row + s * dw
                let x0 = loadVector(p), x1 = loadVector(p + 16)
                let x2 = loadVector(p + 32), x3 = loadVector(p + 48)
                if i < R {
                    let b = Vector(repeating: weights[i * S + s])
                    a00.addProduct(x0, b); a01.addProduct(x1, b); a02.addProduct(x2, b); a03.addProduct(x3, b)
                }
                if i >= 1 && i - 1 < R {
                    let b = Vector(repeating: weights[(i - 1) * S + s])
                    a10.addProduct(x0, b); a11.addProduct(x1, b); a12.addProduct(x2, b); a13.addProduct(x3, b)
                }
                if i >= 2 && i - 2 < R {
                    let b = Vector(repeating: weights[(i - 2) * S + s])
                    a20.addProduct(x0, b); a21.addProduct(x1, b); a22.addProduct(x2, b); a23.addProduct(x3, b)
                }
                if i >= 3 && i - 3 < R {
                    let b = Vector(repeating: weights[(i - 3) * S + s])
                    a30.addProduct(x0, b); a31.addProduct(x1, b); a32.addProduct(x2, b); a33.addProduct(x3, b)
                }
            }
        }
        @inline(__always) func put(_ j: Int, _ v0: Vector, _ v1: Vector, _ v2: Vector, _ v3: Vector) {
            let t = target + j * targetStride
            storeVector(v0, t); storeVector(v1, t + 16)
            storeVector(v2, t + 32); storeVector(v3, t + 48)
        }
        put(0, a00, a01, a02, a03); put(1, a10, a11, a12, a13)
        put(2, a20, a21, a22, a23); put(3, a30, a31, a32, a33)
    }

    /// 1 output row × 64 columns into `tile`, any dilation.
    @inline(__always)
    private func oneRow(rows: UnsafePointer<Float>, weights: UnsafePointer<Float>, tile: UnsafeMutablePointer<Float>) {
        typealias Vector = SIMD16<Float>
        let d = descriptor
        let (R, S, dh, dw) = (d.kernelHeight, d.kernelWidth, d.dilationHeight, d.dilationWidth)
        var a0 = Vector(), a1 = Vector(), a2 = Vector(), a3 = Vector()
        for r in 0..<R {
            let row = rows + r * dh * rowStride
            for s in 0..<S {
                let p = row + s * dw
                let b = Vector(repeating: weights[r * S + s])
                a0.addProduct(loadVector(p), b); a1.addProduct(loadVector(p + 16), b)
                a2.addProduct(loadVector(p + 32), b); a3.addProduct(loadVector(p + 48), b)
            }
        }
        storeVector(a0, tile); storeVector(a1, tile + 16)
        storeVector(a2, tile + 32); storeVector(a3, tile + 48)
    }
}

/// The depthwise plan's geometry: padded row buffers, bands of output rows per task, per-worker scratch.
struct DepthwiseGeometry: Sendable {
    let descriptor: ConvolutionDescriptor
    /// Floats per padded row: left padding, the input row, right padding, then slack for the last vector's reads.
    let rowStride: Int
    /// Output rows per task.
    let bandRows: Int
    let bandsPerPlane: Int
    let tasks: Int
    let workers: Int
    let scratch: WorkspaceRegion<Float>
    let summary: PlanDescription

    static let block = 64

    /// Depthwise at stride 1 (any padding, dilation, batch, channel multiplier) on rows of at least 24 outputs:
    /// narrower rows leave most of each 64-wide block idle, and the general plan, whose blocks run across rows,
    /// is faster there (512 channels at 14²: 0.089 vs 0.126 ms; at 28² this plan wins, 0.12 vs 0.15).
    static func applies(to d: ConvolutionDescriptor) -> Bool {
        d.channelsPerGroup == 1 && d.isStrideOne && d.outputWidth >= 24
    }

    init(descriptor d: ConvolutionDescriptor, options: PlanOptions) throws {
        descriptor = d
        let blocks = (d.outputWidth + Self.block - 1) / Self.block
        // The furthest read is the last block's last vector at the last tap: blocks·64 + (S−1)·dw floats.
        rowStride = (max(blocks * Self.block + (d.kernelWidth - 1) * d.dilationWidth,
                         d.padding.left + d.inputWidth + d.padding.right) + 15) / 16 * 16
        let reach = (d.kernelHeight - 1) * d.dilationHeight
        // Bands: a scratch of about 64 KiB (rows plus the kernel's reach), and at least 8 tasks per thread when the
        // planes alone are too few.
        let fitting = max(16 * 1024 / rowStride - reach, 1)
        let planes = d.batch * d.inputChannels
        let wantedBands = max(1, (8 * options.threads + planes - 1) / planes)
        bandRows = max(1, min(fitting, (d.outputHeight + wantedBands - 1) / wantedBands))
        bandsPerPlane = (d.outputHeight + bandRows - 1) / bandRows
        tasks = planes * bandsPerPlane
        workers = Parallel.workers(threads: options.threads, tasks: tasks)
        var layout = WorkspaceLayout()
        let what = "the depthwise row buffers"
        scratch = try layout.reserve(Float.self, count: try CheckedArithmetic.product([bandRows + reach, rowStride], what: what),
                                     workers: workers, what: what)
        try ResourceLimits.check(what, bytes: layout.byteCount, limit: options.limits.maxWorkspaceBytes)
        // Computed FLOPs: whole 64-wide blocks of every output row, for every output channel.
        let flops = 2 * Double(d.batch * d.outputChannels * d.outputHeight * blocks * Self.block)
            * Double(d.kernelHeight * d.kernelWidth)
        // Long sums amortise the per-row work only while the R input rows a tap loop reads stay in L1 (31 rows of a
        // 1,054-float row do not: 130 KB); otherwise the kernel is priced as a 3×3's (see `loadBoundTapFactor`).
        let fitsL1 = (reach + 1) * rowStride * MemoryLayout<Float>.stride <= MachineCaches.current.level1DataBytes
        summary = PlanDescription(
            backend: "direct", variant: "depthwise rows", errorBound: DirectBackend.errorBound(d),
            typicalError: DirectBackend.typicalError(d),
            workspaceBytes: layout.byteCount, persistentBytes: d.weightCount * 4,
            work: WorkEstimate([.memory(bytes: Double(d.inputCount + d.outputCount) * 4),
                                .loadBoundKernel(flops: flops, taps: fitsL1 ? d.reductionLength : 9, tasks: tasks)],
                               depthwiseKernels: true))
        try options.accuracy.admit(summary)
    }
}

import ConvLabCore

/// The direct backend's backward-weights pass for depthwise layers at stride 1 (one input channel per group, any
/// channel multiplier, padding, dilation, batch): the general pass packs x and dy onto the polyphase grid in memory
/// and runs one gradient row against six taps, which on MobileNet-style layers cost more in packing than in
/// arithmetic (dw3, 32 channels at 112²: 0.39 ms, oneDNN 0.045).
///
/// dw[k][r][s] = Σ_n Σ_oh Σ_ow dy[n,k,oh,ow] · x[n,c, oh − pt + r·dh, ow − pl + s·dw]  (c = k / multiplier)
///
/// A task owns one output channel k and runs over every image and band of output rows in order, so the result does
/// not depend on the thread count. Per band it copies the input rows the band reads (zero-padded, like the forward
/// depthwise plan) and the band's dy rows (zero-filled to whole vectors) into an L1-sized buffer of its own, then for
/// each tap row r and up to 8 taps s at a time sums dy[oh][p] · xrow[oh + r·dh][p + s·dw] over the band: two output
/// rows per step on separate accumulators, 2 + 2·taps loads per 2·taps FMAs.
struct DepthwiseWeightGradientGeometry: Sendable {
    let descriptor: ConvolutionDescriptor
    /// Floats per dy row in the band buffer: Wo rounded up to whole vectors (the tail is zero).
    let gradientStride: Int
    /// Floats per padded input row: the last vector's furthest tap must stay inside the row.
    let rowStride: Int
    /// Output rows per band (even: the kernel takes rows in pairs; rows past Ho are zero).
    let bandRows: Int
    let bands: Int
    let workers: Int
    let threads: Int
    let scratch: WorkspaceRegion<Float>
    let summary: PlanDescription

    static let tapBlock = 8

    /// Depthwise at stride 1, any row width. Measured against the grid plan on the Intel kind, 2 threads: 2.8×
    /// faster on 32 channels at 112², 3.5× on 384 at 14², 2.1× on 960 at 7² (7 of 16 lanes busy, still ahead), 3.1×
    /// on 5×5 at 14².
    static func applies(to d: ConvolutionDescriptor) -> Bool {
        d.channelsPerGroup == 1 && d.isStrideOne
    }

    init(descriptor d: ConvolutionDescriptor, options: PlanOptions) throws {
        descriptor = d
        threads = options.threads
        gradientStride = (d.outputWidth + 15) / 16 * 16
        rowStride = (max(gradientStride + (d.kernelWidth - 1) * d.dilationWidth,
                         d.padding.left + d.inputWidth + d.padding.right) + 15) / 16 * 16
        let reach = (d.kernelHeight - 1) * d.dilationHeight
        // About 32 KiB of band buffer (L1 on both machine kinds we have seen); the band's shape depends only on the
        // layer, never on the thread count, so neither does the order of the sums.
        // Bands of equal height (even: rows go in pairs), so the last band is not mostly rows past Ho.
        let fitting = max(2, (8192 - reach * rowStride) / (rowStride + gradientStride))
        bands = (d.outputHeight + fitting - 1) / fitting
        bandRows = ((d.outputHeight + bands - 1) / bands + 1) / 2 * 2
        workers = Parallel.workers(threads: threads, tasks: d.outputChannels)
        let what = "the depthwise backward-weights band buffers"
        var layout = WorkspaceLayout()
        scratch = try layout.reserve(Float.self, count: try CheckedArithmetic.product(
            [bandRows + reach, rowStride], what: what) + bandRows * gradientStride, workers: workers, what: what)
        try ResourceLimits.check(what, bytes: layout.byteCount, limit: options.limits.maxWorkspaceBytes)
        let flops = 2 * Double(d.batch * d.outputChannels * bands * bandRows * gradientStride)
            * Double(d.kernelHeight * d.kernelWidth)
        // As for the forward rows plan: long sums amortise the per-row work only while the R input rows a tap loop
        // reads stay in L1. A single-channel 1024² image's 15×15 gradient (15 rows of 1,040 floats: 62 KB) was priced
        // at a third of its time, and direct chosen over fft-tiled, 2.4× faster there.
        let fitsL1 = (reach + 1) * rowStride * MemoryLayout<Float>.stride <= MachineCaches.current.level1DataBytes
        summary = PlanDescription(
            backend: "direct", pass: .backwardWeights, variant: "depthwise rows",
            // Each lane sums its column of a band's even (or odd) rows, a + b and the lanes are added (≤ 16
            // roundings), and the bands' and images' sums are added in turn.
            errorBound: blockedDotProductErrorBound(terms: d.reductionLength(for: .backwardWeights),
                                                    blockTerms: (bandRows + 1) / 2 * (gradientStride / 16) + 16,
                                                    partials: d.batch * bands),
            typicalError: TypicalError.dotProduct(terms: d.reductionLength(for: .backwardWeights),
                                                  blockTerms: (bandRows + 1) / 2 * (gradientStride / 16),
                                                  partials: d.batch * bands),
            workspaceBytes: layout.byteCount,
            work: WorkEstimate([.memory(bytes: Double(d.inputCount + d.outputCount) * 4),
                                .loadBoundKernel(flops: flops, taps: fitsL1 ? d.reductionLength(for: .backwardWeights) : 9,
                                                 tasks: d.outputChannels)],
                               depthwiseKernels: true))
        try options.accuracy.admit(summary)
    }
}

struct DepthwiseWeightGradientPlan: PassPlan {
    let geometry: DepthwiseWeightGradientGeometry

    var descriptor: ConvolutionDescriptor { geometry.descriptor }
    var summary: PlanDescription { geometry.summary }

    func execute(_ operands: PassOperands, workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?) throws {
        try validate(operands, workspace: workspace)
        let (d, g) = (descriptor, geometry)
        let shared = UncheckedSendable((operands.input.baseAddress!, operands.gradOutput.baseAddress!,
                                        operands.output.baseAddress!, workspace))
        let (R, S) = (d.kernelHeight, d.kernelWidth)
        let reach = (R - 1) * d.dilationHeight
        // The band buffers' padding columns and dy's tail columns are zero once per execution and never written
        // again: each band only overwrites row interiors (a libc call per short row cost more than the kernel).
        measurePhase("zero band buffers", in: profile) {
            for worker in 0..<g.workers { g.scratch.pointer(in: workspace, worker: worker).update(repeating: 0, count: g.scratch.count) }
        }
        measurePhase("accumulate", in: profile) {
            Parallel.forEach(taskCount: d.outputChannels, threads: g.workers) { worker, k in
                let (x, dy, dw, workspace) = shared.value
                let rows = g.scratch.pointer(in: workspace, worker: worker)
                let gradient = rows + (g.bandRows + reach) * g.rowStride
                let c = k / d.outputChannelsPerGroup
                // The task's own R·S outputs hold the running sums (a stack buffer of R·S floats overran its frame's
                // guard in the optimised build for 21×21 and larger kernels while AddressSanitizer saw no bad access).
                do {
                    let sums = dw + k * R * S
                    sums.update(repeating: 0, count: R * S)
                    for n in 0..<d.batch {
                        let plane = x + (n * d.inputChannels + c) * d.inputHeight * d.inputWidth
                        let gradientPlane = dy + (n * d.outputChannels + k) * d.outputHeight * d.outputWidth
                        for band in 0..<g.bands {
                            let first = band * g.bandRows
                            for i in 0..<(g.bandRows + reach) {
                                let inputRow = first + i - d.padding.top
                                let target = rows + i * g.rowStride + d.padding.left
                                if (0..<d.inputHeight).contains(inputRow) {
                                    copyFloats(plane + inputRow * d.inputWidth, to: target, count: d.inputWidth)
                                } else {
                                    zeroFloats(target, count: d.inputWidth)
                                }
                            }
                            for i in 0..<g.bandRows {
                                let target = gradient + i * g.gradientStride
                                if first + i < d.outputHeight {
                                    copyFloats(gradientPlane + (first + i) * d.outputWidth, to: target,
                                               count: d.outputWidth)
                                } else {
                                    zeroFloats(target, count: d.outputWidth)
                                }
                            }
                            for r in 0..<R {
                                var s = 0
                                while s < S {
                                    let taps = min(DepthwiseWeightGradientGeometry.tapBlock, S - s)
                                    DepthwiseGradientKernel.run(
                                        taps: taps, gradient: UnsafePointer(gradient), gradientStride: g.gradientStride,
                                        input: UnsafePointer(rows + r * d.dilationHeight * g.rowStride + s * d.dilationWidth),
                                        rowStride: g.rowStride, rows: g.bandRows, dilation: d.dilationWidth,
                                        into: sums + r * S + s)
                                    s += taps
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// sums[t] += Σ_{rows} Σ_p gradient[row][p] · input[row][p + t·dilation] for t < taps (1…8), p over whole vectors
/// of the gradient row. The switch gives each tap count its own copy of the kernel with the unused accumulators
/// folded away.
enum DepthwiseGradientKernel {
    typealias Vector = SIMD16<Float>

    static func run(taps: Int, gradient: UnsafePointer<Float>, gradientStride: Int, input: UnsafePointer<Float>,
                    rowStride: Int, rows: Int, dilation: Int, into sums: UnsafeMutablePointer<Float>) {
        switch taps {
        case 1: kernel(1, gradient, gradientStride, input, rowStride, rows, dilation, sums)
        case 2: kernel(2, gradient, gradientStride, input, rowStride, rows, dilation, sums)
        case 3: kernel(3, gradient, gradientStride, input, rowStride, rows, dilation, sums)
        case 4: kernel(4, gradient, gradientStride, input, rowStride, rows, dilation, sums)
        case 5: kernel(5, gradient, gradientStride, input, rowStride, rows, dilation, sums)
        case 6: kernel(6, gradient, gradientStride, input, rowStride, rows, dilation, sums)
        case 7: kernel(7, gradient, gradientStride, input, rowStride, rows, dilation, sums)
        default: kernel(8, gradient, gradientStride, input, rowStride, rows, dilation, sums)
        }
    }

    /// Rows in pairs (`rows` is even): the even row's products on the a-accumulators, the odd row's on b, so each
    /// accumulator takes one FMA per step and the FMA latency stays hidden.
    @inline(__always)
    static func kernel(_ taps: Int, _ g: UnsafePointer<Float>, _ gStride: Int, _ x: UnsafePointer<Float>,
                       _ xStride: Int, _ rows: Int, _ dw: Int, _ sums: UnsafeMutablePointer<Float>) {
        var a0 = Vector(), a1 = Vector(), a2 = Vector(), a3 = Vector()
        var a4 = Vector(), a5 = Vector(), a6 = Vector(), a7 = Vector()
        var b0 = Vector(), b1 = Vector(), b2 = Vector(), b3 = Vector()
        var b4 = Vector(), b5 = Vector(), b6 = Vector(), b7 = Vector()
        var row = 0
        while row < rows {
            let (g0, g1) = (g + row * gStride, g + (row + 1) * gStride)
            let (x0, x1) = (x + row * xStride, x + (row + 1) * xStride)
            var p = 0
            while p < gStride {
                let d0 = loadVector(g0 + p), d1 = loadVector(g1 + p)
                let (u, v) = (x0 + p, x1 + p)
                a0.addProduct(d0, loadVector(u)); b0.addProduct(d1, loadVector(v))
                if taps > 1 { a1.addProduct(d0, loadVector(u + dw)); b1.addProduct(d1, loadVector(v + dw)) }
                if taps > 2 { a2.addProduct(d0, loadVector(u + 2 * dw)); b2.addProduct(d1, loadVector(v + 2 * dw)) }
                if taps > 3 { a3.addProduct(d0, loadVector(u + 3 * dw)); b3.addProduct(d1, loadVector(v + 3 * dw)) }
                if taps > 4 { a4.addProduct(d0, loadVector(u + 4 * dw)); b4.addProduct(d1, loadVector(v + 4 * dw)) }
                if taps > 5 { a5.addProduct(d0, loadVector(u + 5 * dw)); b5.addProduct(d1, loadVector(v + 5 * dw)) }
                if taps > 6 { a6.addProduct(d0, loadVector(u + 6 * dw)); b6.addProduct(d1, loadVector(v + 6 * dw)) }
                if taps > 7 { a7.addProduct(d0, loadVector(u + 7 * dw)); b7.addProduct(d1, loadVector(v + 7 * dw)) }
                p += 16
            }
            row += 2
        }
        sums[0] += horizontalSum(a0 + b0)
        if taps > 1 { sums[1] += horizontalSum(a1 + b1) }
        if taps > 2 { sums[2] += horizontalSum(a2 + b2) }
        if taps > 3 { sums[3] += horizontalSum(a3 + b3) }
        if taps > 4 { sums[4] += horizontalSum(a4 + b4) }
        if taps > 5 { sums[5] += horizontalSum(a5 + b5) }
        if taps > 6 { sums[6] += horizontalSum(a6 + b6) }
        if taps > 7 { sums[7] += horizontalSum(a7 + b7) }
    }
}

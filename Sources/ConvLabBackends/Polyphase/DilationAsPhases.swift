import ConvLabCore

/// A dilated stride-1 layer as one undilated layer over its polyphase components, so that algorithms whose tiles
/// need adjacent taps (Winograd) serve DeepLab-style dilated layers.
///
/// With x zero-padded (xp) and dilation (dh, dw), y[oh][ow] = Σ_{r,s} xp[oh + r·dh][ow + s·dw]·w[r][s]. Output rows
/// oh ≡ α (mod dh) read only padded rows ≡ α (mod dh), and at consecutive positions of that component: writing
/// oh = a·dh + α, the row a·dh + α + r·dh is row a + r of component α. So phase (α, β) of the output is an undilated,
/// unpadded correlation of phase (α, β) of xp with the same weights. The dh·dw phases have the same weights and
/// differ by at most one row or column in size, so they run as the batch of **one** undilated problem: images
/// of ⌈Ho/dh⌉ + R − 1 rows and ⌈Wo/dw⌉ + S − 1 columns (components zero-filled to that size; the extra outputs
/// are computed and dropped), N·dh·dw of them. A dilation larger than the output keeps only the phases some output
/// lies on. The inner plan — its tiles, transforms and GEMMs — does the work; this adds one gather of the input
/// and one scatter of the output, and leaves the sums (and so the error bound) as they were: each output still sums
/// (C/G)·R·S products.
///
/// backward-weights is the same split: dw = Σ over the batch of the inner problem, whose batch holds every phase of
/// x and of dy. (backward-data needs nothing of its own: it runs as a forward dilated problem.)
struct DilationAsPhases: Sendable {
    let descriptor: ConvolutionDescriptor
    /// The undilated problem over the phases: batch N·phaseRows·phaseColumns, stride 1, no padding.
    let inner: ConvolutionDescriptor
    /// Row and column phases that hold outputs: min(dilation, output size).
    let phaseRows: Int
    let phaseColumns: Int

    var phases: Int { phaseRows * phaseColumns }

    /// Throws `.unsupported` for strided or undilated layers, `.sizeOverflow`/`.memoryLimitExceeded` when the
    /// phase batch would not fit.
    init(_ d: ConvolutionDescriptor) throws {
        guard d.isStrideOne else {
            throw ConvLabError.unsupported(backend: "dilation as phases",
                                           reason: "stride \(d.strideHeight)x\(d.strideWidth): the phases need stride 1")
        }
        guard !d.isUndilated else {
            throw ConvLabError.unsupported(backend: "dilation as phases", reason: "the layer is not dilated")
        }
        descriptor = d
        phaseRows = min(d.dilationHeight, d.outputHeight)
        phaseColumns = min(d.dilationWidth, d.outputWidth)
        let batch = try CheckedArithmetic.product([d.batch, phaseRows, phaseColumns],
                                                  what: "the batch of dilation phases")
        let (rows, columns) = (Self.phaseSize(d.outputHeight, d.dilationHeight),
                               Self.phaseSize(d.outputWidth, d.dilationWidth))
        inner = try ConvolutionDescriptor(
            batch: batch, inputChannels: d.inputChannels, inputHeight: rows + d.kernelHeight - 1,
            inputWidth: columns + d.kernelWidth - 1, outputChannels: d.outputChannels, kernelHeight: d.kernelHeight,
            kernelWidth: d.kernelWidth, groups: d.groups)
    }

    /// Outputs of the largest phase along an axis of `size` outputs and dilation `dilation`.
    static func phaseSize(_ size: Int, _ dilation: Int) -> Int { (size + dilation - 1) / dilation }

    /// Index in the inner batch of phase (α, β) of image n.
    func innerImage(n: Int, row α: Int, column β: Int) -> Int { (n * phaseRows + α) * phaseColumns + β }

    /// The variant text: "dilation 6x6 as 36 phases" and the inner plan's own.
    func variant(inner: String) -> String {
        let d = descriptor
        return "dilation \(d.dilationHeight)x\(d.dilationWidth) as \(phases) phases" + (inner.isEmpty ? "" : ": \(inner)")
    }

    // MARK: Gather and scatter

    /// The phases of the zero-padded input x (N×C×H×W) into the inner input (every float written, zeros included).
    func gatherInput(_ x: UnsafePointer<Float>, into target: UnsafeMutablePointer<Float>, threads: Int) {
        let d = descriptor
        gather(x, planeHeight: d.inputHeight, planeWidth: d.inputWidth, channels: d.inputChannels,
               rowOffset: -d.padding.top, columnOffset: -d.padding.left, phaseHeight: inner.inputHeight,
               phaseWidth: inner.inputWidth, into: target, threads: threads)
    }

    /// The phases of dy (N×K×Ho×Wo) into the inner problem's output shape, zero where a phase is shorter.
    func gatherGradient(_ dy: UnsafePointer<Float>, into target: UnsafeMutablePointer<Float>, threads: Int) {
        let d = descriptor
        gather(dy, planeHeight: d.outputHeight, planeWidth: d.outputWidth, channels: d.outputChannels,
               rowOffset: 0, columnOffset: 0, phaseHeight: inner.outputHeight, phaseWidth: inner.outputWidth,
               into: target, threads: threads)
    }

    /// Source planes per gather task: half of a 512 KiB budget, so a block stays in L2 while every phase reads it.
    static let gatherBlockBytes = 256 * 1024

    /// Phase (α, β) of plane p, row a, column b = p[a·dh + α + rowOffset][b·dw + β + columnOffset] (zero outside p).
    /// A task takes a block of source planes (L2-resident) and writes its phases one after another, each a single
    /// sequential run over the block's channels. (A task per source plane writing all its phases at once wrote
    /// dh·dw streams C·plane floats apart, which alias in the caches: aspp6's gather took 4.5 ms instead of ~1.)
    private func gather(_ source: UnsafePointer<Float>, planeHeight H: Int, planeWidth W: Int, channels C: Int,
                        rowOffset: Int, columnOffset: Int, phaseHeight: Int, phaseWidth: Int,
                        into target: UnsafeMutablePointer<Float>, threads: Int) {
        let d = descriptor
        let (plane, dw) = (phaseHeight * phaseWidth, d.dilationWidth)
        // Columns b of phase β that read inside the row: the same for every row, so computed once. The rows are
        // short (8 floats for aspp6's phases): plain loops, no per-row calls.
        let valid = (0..<phaseColumns).map {
            validOutputRange(outputSize: phaseWidth, stride: dw, offset: $0 + columnOffset, inputSize: W)
        }
        let blockChannels = max(1, min(C, Self.gatherBlockBytes / max(1, H * W * 4)))
        let blocks = (C + blockChannels - 1) / blockChannels
        let shared = UncheckedSendable((source, target))
        Parallel.forEach(taskCount: d.batch * blocks, threads: threads) { _, task in
            let (source, target) = shared.value
            let (n, first) = (task / blocks, (task % blocks) * blockChannels)
            let channels = first..<min(C, first + blockChannels)
            for α in 0..<phaseRows {
                for β in 0..<phaseColumns {
                    let (lower, upper, offset) = (valid[β].lowerBound, valid[β].upperBound, β + columnOffset)
                    let phaseImage = target + innerImage(n: n, row: α, column: β) * C * plane
                    for c in channels {
                        let sourcePlane = source + (n * C + c) * H * W
                        let destination = phaseImage + c * plane
                        for a in 0..<phaseHeight {
                            let row = a * d.dilationHeight + α + rowOffset
                            let out = destination + a * phaseWidth
                            guard row >= 0 && row < H else {
                                for b in 0..<phaseWidth { out[b] = 0 }
                                continue
                            }
                            let input = sourcePlane + row * W + offset
                            for b in 0..<lower { out[b] = 0 }
                            for b in lower..<upper { out[b] = input[b * dw] }
                            for b in upper..<phaseWidth { out[b] = 0 }
                        }
                    }
                }
            }
        }
    }

    /// y (N×K×Ho×Wo) from the inner output: output row oh = a·dh + α interleaves row a of the phases (α, ·).
    func scatterOutput(_ phased: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, threads: Int) {
        let (d, f) = (descriptor, inner)
        let (Ho, Wo, K) = (d.outputHeight, d.outputWidth, d.outputChannels)
        let (dh, dw) = (d.dilationHeight, d.dilationWidth)
        let plane = f.outputHeight * f.outputWidth
        let shared = UncheckedSendable((phased, y))
        Parallel.forEach(taskCount: d.batch * K, threads: threads) { _, task in
            let (phased, y) = shared.value
            let (n, k) = (task / K, task % K)
            let target = y + task * Ho * Wo
            for oh in 0..<Ho {
                let (a, α) = (oh / dh, oh % dh)
                let row = target + oh * Wo
                for β in 0..<phaseColumns {
                    let source = phased + (innerImage(n: n, row: α, column: β) * K + k) * plane + a * f.outputWidth
                    var (b, ow) = (0, β)
                    while ow < Wo {
                        row[ow] = source[b]
                        b += 1
                        ow += dw
                    }
                }
            }
        }
    }
}

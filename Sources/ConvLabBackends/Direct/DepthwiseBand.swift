import ConvLabCore

/// The zero-padded input rows a band of depthwise output rows reads, 16 channels per position: [row][column][16 lanes],
/// `paddedWidth` columns a row. Shared by the channel-blocked forward plan and its weight gradient, so both read the
/// same padded rows (output (oy, ox) with tap (r, s) reads row oy·sh + r·dh, column ox·sw + s·dw of the band).
struct DepthwiseBand: Sendable {
    let descriptor: ConvolutionDescriptor
    /// Columns of the padded band: (Wo − 1)·s + (S − 1)·d + 1, the furthest column an output reads, plus one.
    let paddedWidth: Int
    /// The input columns the outputs read are [0, this): the rest of a row lies beyond the right edge's reach.
    let lastInputColumn: Int

    init(descriptor d: ConvolutionDescriptor) {
        descriptor = d
        paddedWidth = (d.outputWidth - 1) * d.strideWidth + (d.kernelWidth - 1) * d.dilationWidth + 1
        lastInputColumn = max(0, min(d.inputWidth, paddedWidth - d.padding.left))
    }

    /// Floats of one padded row.
    var rowFloats: Int { paddedWidth * 16 }

    /// Where a band's rows come from: `channels` (≤ 16) NCHW planes of one image, transposed through `stage`; or the
    /// rows of one nChw16c channel block (its plane's first float), read as they are.
    enum Source {
        case planes(UnsafePointer<Float>, channels: Int, stage: UnsafeMutablePointer<Float>)
        case blocked(UnsafePointer<Float>)
    }

    /// Writes the padded rows that output rows [firstRow, firstRow + rows) read into `padded`: input rows clipped to
    /// the image, zero columns and rows around them.
    func fill(firstRow: Int, rows: Int, from source: Source, into padded: UnsafeMutablePointer<Float>) {
        let d = descriptor
        let firstPaddedRow = firstRow * d.strideHeight
        let paddedRows = descriptor.inputRows(forOutputRows: rows)
        let lo = max(firstPaddedRow - d.padding.top, 0)
        let hi = min(firstPaddedRow + paddedRows - d.padding.top, d.inputHeight)
        let rowsSource: UnsafePointer<Float>  // [input row − lo][column][16]
        switch source {
        case let .planes(planes, channels, stage):
            if lo < hi {
                ChannelBlocking.toBlocked(planes, planeStride: d.inputHeight * d.inputWidth, from: lo * d.inputWidth,
                                          count: (hi - lo) * d.inputWidth, channels: channels, into: stage)
            }
            rowsSource = UnsafePointer(stage)
        case let .blocked(block):
            rowsSource = block + lo * d.inputWidth * 16
        }
        let vectorsPerRow = rowFloats
        for i in 0..<paddedRows {
            let row = padded + i * vectorsPerRow
            let inputRow = firstPaddedRow + i - d.padding.top
            guard inputRow >= lo && inputRow < hi, lastInputColumn > 0 else {
                zeroFloats(row, count: vectorsPerRow)
                continue
            }
            let (left, interior) = (d.padding.left * 16, lastInputColumn * 16)
            zeroFloats(row, count: left)
            copyFloats(rowsSource + (inputRow - lo) * d.inputWidth * 16, to: row + left, count: interior)
            zeroFloats(row + left + interior, count: vectorsPerRow - left - interior)
        }
    }

    /// Depthwise weights (C×1×R×S) as [channel block][r][s][16 lanes], zero in lanes past the last channel: what the
    /// channel-blocked kernels load, one vector per tap.
    func packedWeights(_ weights: Tensor<Float>) -> AlignedStorage<Float> {
        let d = descriptor
        let (taps, blocks) = (d.kernelHeight * d.kernelWidth, (d.inputChannels + 15) / 16)
        let packed = AlignedStorage<Float>(count: blocks * taps * 16)
        weights.withUnsafeBufferPointer { w in
            for c in 0..<d.inputChannels {
                for t in 0..<taps { packed.pointer[((c / 16) * taps + t) * 16 + c % 16] = w[c * taps + t] }
            }
        }
        return packed
    }
}

/// Consecutive outputs along one axis whose taps read the same kernel rows (or columns) inside the image.
struct DepthwiseOutputRun: Sendable {
    let outputs: Range<Int>
    let taps: Range<Int>

    /// The runs of `outputs` outputs along an axis (output o, tap t reads o·stride + t·dilation − padding of `size`),
    /// in order; outputs whose every tap falls in the padding form runs with no taps.
    static func runs(outputs: Int, stride: Int, taps: Int, dilation: Int, padding: Int, size: Int)
        -> [DepthwiseOutputRun] {
        // Tap t of output o reads o·stride − padding + t·dilation: the taps inside [0, size), none as 0..<0.
        func valid(_ o: Int) -> Range<Int> {
            let taps = validOutputRange(outputSize: taps, stride: dilation, offset: o * stride - padding, inputSize: size)
            return taps.isEmpty ? 0..<0 : taps
        }
        var runs: [DepthwiseOutputRun] = []
        var o = 0
        while o < outputs {
            let taps = valid(o)
            var end = o + 1
            while end < outputs && valid(end) == taps { end += 1 }
            runs.append(DepthwiseOutputRun(outputs: o..<end, taps: taps))
            o = end
        }
        return runs
    }
}

/// The regions of a depthwise layer's output plane that the channel-blocked plans read nChw16c tensors by in place:
/// runs of rows × runs of columns, each region's outputs reading the same box of taps inside the image (the border
/// rows and columns the padding reaches, the interior). Read in place, nothing is copied, but the border regions run
/// generic, smaller kernel calls: worth it where the interior holds at least `minimumInteriorShare` of the outputs.
struct DepthwiseRegions: Sendable {
    let rowRuns: [DepthwiseOutputRun]
    let columnRuns: [DepthwiseOutputRun]
    /// Whether the plans read nChw16c tensors in place (else through the padded band, as NCHW ones).
    let readsInPlace: Bool

    var count: Int { rowRuns.count * columnRuns.count }

    /// Measured on the Intel kind (2 threads, network layers, in place ÷ padded band, forward and backward-weights):
    /// interior 86–97% of the outputs (3×3 at 112², 56², 28², 28²/2; 5×5/2 at 56²) 0.44–0.88; 80% and less (7×7 at 56²,
    /// 3×3 at 14², 5×5 at 28² and below, 31×31 at 56², 13×13 at 7²) 1.0–4.3.
    static let minimumInteriorShare = 0.85

    init(descriptor d: ConvolutionDescriptor) {
        rowRuns = DepthwiseOutputRun.runs(outputs: d.outputHeight, stride: d.strideHeight, taps: d.kernelHeight,
                                          dilation: d.dilationHeight, padding: d.padding.top, size: d.inputHeight)
        columnRuns = DepthwiseOutputRun.runs(outputs: d.outputWidth, stride: d.strideWidth, taps: d.kernelWidth,
                                             dilation: d.dilationWidth, padding: d.padding.left, size: d.inputWidth)
        let interiorRows = rowRuns.filter { $0.taps.count == d.kernelHeight }.reduce(0) { $0 + $1.outputs.count }
        let interiorColumns = columnRuns.filter { $0.taps.count == d.kernelWidth }.reduce(0) { $0 + $1.outputs.count }
        readsInPlace = Double(interiorRows * interiorColumns)
            >= Self.minimumInteriorShare * Double(d.outputHeight * d.outputWidth)
    }
}

/// Stores the first `count` (≤ 8) of eight accumulators, consecutive positions of one [position][16 lanes] row from
/// `target`: the end of every position-blocked depthwise kernel (a row's last block, a short run, a block narrower than
/// 8). Inlined, with a constant count the branches fold.
@inline(__always)
func storeAccumulators(_ count: Int, _ a: (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>,
                                          SIMD16<Float>, SIMD16<Float>, SIMD16<Float>),
                       to target: UnsafeMutablePointer<Float>) {
    storeVector(a.0, target)
    if count > 1 { storeVector(a.1, target + 16) }
    if count > 2 { storeVector(a.2, target + 32) }
    if count > 3 { storeVector(a.3, target + 48) }
    if count > 4 { storeVector(a.4, target + 64) }
    if count > 5 { storeVector(a.5, target + 80) }
    if count > 6 { storeVector(a.6, target + 96) }
    if count > 7 { storeVector(a.7, target + 112) }
}

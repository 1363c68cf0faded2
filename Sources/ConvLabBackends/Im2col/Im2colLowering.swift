import ConvLabCore

/// The column matrix of im2col and its adjoint: col[j][q] = x[c, oh·sh + r·dh − pt, ow·sw + s·dw − pl] for
/// j = (c, r, s) of one group and output position q = (oh, ow), zero in the padding. `lower` builds rows of it (the
/// forward pass and backward-weights read it); `scatterAdd` adds rows of a column matrix back into the input
/// positions they came from (col2im, the backward-data pass). Both walk one output row's segment at a time, so padding
/// is a range, not a branch per element.
struct Im2colLowering {
    let descriptor: ConvolutionDescriptor

    /// Fills col[(j − rows.lowerBound) · leadingDimension + (q − firstColumn)] for j in `rows` (default: all
    /// (C/G)·R·S) and q in firstColumn..<firstColumn + width, from one group's input planes `x`.
    func lower(_ x: UnsafePointer<Float>, into col: UnsafeMutablePointer<Float>, leadingDimension: Int,
               firstColumn: Int, width: Int, rows: Range<Int>? = nil) {
        let d = descriptor
        let (H, W, Wo, R, S) = (d.inputHeight, d.inputWidth, d.outputWidth, d.kernelHeight, d.kernelWidth)
        for j in rows ?? 0..<d.reductionLength {
            let (c, r, s) = (j / (R * S), (j / S) % R, j % S)
            let channel = x + c * H * W
            let row = col + (j - (rows?.lowerBound ?? 0)) * leadingDimension
            let columnOffset = s * d.dilationWidth - d.padding.left
            var q = firstColumn
            let end = firstColumn + width
            while q < end {
                // One output row's part of the tile: ow in owStart..<owStart + (segmentEnd − q).
                let oh = q / Wo
                let segmentEnd = min(end, (oh + 1) * Wo)
                let ih = oh * d.strideHeight + r * d.dilationHeight - d.padding.top
                let owStart = q - oh * Wo
                copyPaddedRow(ih >= 0 && ih < H ? channel + ih * W : nil, width: W, stride: d.strideWidth,
                              offset: owStart * d.strideWidth + columnOffset, into: row + (q - firstColumn),
                              count: segmentEnd - q)
                q = segmentEnd
            }
        }
    }

    /// x[c, ih, iw] += col[(j − rows.lowerBound) · leadingDimension + (q − firstColumn)] for j = (c, r, s) in `rows`
    /// and q in firstColumn..<firstColumn + width: col2im into one group's planes `x`. Positions in the padding are
    /// dropped. Entries are added in (j, q) order, so the sum order is fixed by the tiling, never by threads.
    func scatterAdd(_ col: UnsafePointer<Float>, leadingDimension: Int, firstColumn: Int, width: Int,
                    rows: Range<Int>, into x: UnsafeMutablePointer<Float>) {
        let d = descriptor
        let (H, W, Wo, R, S) = (d.inputHeight, d.inputWidth, d.outputWidth, d.kernelHeight, d.kernelWidth)
        for j in rows {
            let (c, r, s) = (j / (R * S), (j / S) % R, j % S)
            let channel = x + c * H * W
            let row = col + (j - rows.lowerBound) * leadingDimension
            let columnOffset = s * d.dilationWidth - d.padding.left
            var q = firstColumn
            let end = firstColumn + width
            while q < end {
                let oh = q / Wo
                let segmentEnd = min(end, (oh + 1) * Wo)
                let ih = oh * d.strideHeight + r * d.dilationHeight - d.padding.top
                if ih >= 0 && ih < H {
                    let owStart = q - oh * Wo
                    let valid = validOutputRange(outputSize: segmentEnd - q, stride: d.strideWidth,
                                                 offset: owStart * d.strideWidth + columnOffset, inputSize: W)
                    let target = channel + ih * W + owStart * d.strideWidth + columnOffset
                    let source = row + (q - firstColumn)
                    if d.strideWidth == 1 {
                        for t in valid { target[t] += source[t] }
                    } else {
                        for t in valid { target[t * d.strideWidth] += source[t] }
                    }
                }
                q = segmentEnd
            }
        }
    }
}

/// Tiling and data movement of `WinogradPlan`: output tiles of outputHeight×outputWidth read input patches of
/// tileHeight×tileWidth (n = m + r − 1 per axis) that overlap by r − 1. Rows of the GEMMs are (image, tile) pairs.
struct WinogradGeometry: Sendable {
    let descriptor: ConvolutionDescriptor
    let outputHeight: Int
    let outputWidth: Int
    let tileHeight: Int
    let tileWidth: Int
    let tileRows: Int
    let tileColumns: Int
    /// C/G and K/G rounded up to whole 16-channel vectors.
    let paddedChannels: Int
    let paddedOutputChannels: Int
    /// Rows and columns of the zero-padded, channel-blocked input: every tile's patch lies inside it.
    let blockedHeight: Int
    let blockedWidth: Int

    init(descriptor d: ConvolutionDescriptor, height: WinogradTransform, width: WinogradTransform) {
        descriptor = d
        outputHeight = height.outputSize
        outputWidth = width.outputSize
        tileHeight = height.tileSize
        tileWidth = width.tileSize
        tileRows = (d.outputHeight + outputHeight - 1) / outputHeight
        tileColumns = (d.outputWidth + outputWidth - 1) / outputWidth
        paddedChannels = (d.channelsPerGroup + 15) / 16 * 16
        paddedOutputChannels = (d.outputChannelsPerGroup + 15) / 16 * 16
        blockedHeight = tileRows * outputHeight + tileHeight - outputHeight
        blockedWidth = tileColumns * outputWidth + tileWidth - outputWidth
    }

    var tilesPerImage: Int { tileRows * tileColumns }

    /// A contiguous range of tile rows over the whole batch (tile row t of image n is number n·tileRows + t); its
    /// tiles are the GEMM rows of one pass, row (number − firstTileRow)·tileColumns + tile column.
    struct Chunk: Sendable {
        let firstTileRow: Int
        let tileRows: Int
    }
    /// Transform-domain points per tile (one GEMM each): tileHeight × tileWidth.
    var points: Int { tileHeight * tileWidth }
    var channelBlocks: Int { paddedChannels / 16 }
    var blockedPlane: Int { blockedHeight * blockedWidth * 16 }
    var blockedInputCount: Int { descriptor.batch * descriptor.groups * channelBlocks * blockedPlane }

    /// Writes block `task` = (n, g, channel block) of the padded, 16-channel-blocked input: element (h, w, lane) is
    /// x[n, g·C/G + block·16 + lane, h − pt, w − pl], zero outside the image and past C/G. Full 16×16 pieces (16
    /// channels × 16 columns of one row) go through `Transpose16`; ragged edges element by element.
    func blockInput(_ x: UnsafePointer<Float>, task: Int, into blocked: UnsafeMutablePointer<Float>) {
        let d = descriptor
        let block = task % channelBlocks
        let g = (task / channelBlocks) % d.groups
        let n = task / (channelBlocks * d.groups)
        let target = blocked + task * blockedPlane
        let (H, W, pt, pl) = (d.inputHeight, d.inputWidth, d.padding.top, d.padding.left)
        let planeSize = H * W
        let lanes = min(16, d.channelsPerGroup - block * 16)
        let firstChannel = x + (n * d.inputChannels + g * d.channelsPerGroup + block * 16) * planeSize
        let rowFloats = blockedWidth * 16
        // Zero the padding rows and, in image rows, the padding columns on both sides.
        target.update(repeating: 0, count: min(pt, blockedHeight) * rowFloats)
        let bottom = min(pt + H, blockedHeight)
        (target + bottom * rowFloats).update(repeating: 0, count: (blockedHeight - bottom) * rowFloats)
        let imageColumns = min(W, blockedWidth - pl)
        for h in pt..<bottom {
            let row = target + h * rowFloats
            row.update(repeating: 0, count: pl * 16)
            (row + (pl + imageColumns) * 16).update(repeating: 0, count: (blockedWidth - pl - imageColumns) * 16)
            let source = firstChannel + (h - pt) * W
            var w = 0
            if lanes == 16 {
                while w + 16 <= imageColumns {
                    Transpose16.transpose(source + w, stride: planeSize, into: row + (pl + w) * 16, stride: 16)
                    w += 16
                }
            }
            for column in w..<imageColumns {
                let element = row + (pl + column) * 16
                for lane in 0..<16 { element[lane] = lane < lanes ? source[lane * planeSize + column] : 0 }
            }
        }
    }

    /// Input transform of one tile row, `task` = (g, channel block, tile row of the chunk): V = Bᵀ_h · d · B_w per
    /// tile, written as X[g][ξν][tile][c]. (A tile-major X[g][tile][ξν][c] measured slower: one constant-stride
    /// stream per point ξν suits the hardware prefetchers better than n² lines 1 KiB apart per tile.)
    func transformInputRow(task: Int, chunk: Chunk, blocked: UnsafeMutablePointer<Float>,
                           transform: (height: TransformMatrix, width: TransformMatrix),
                           into transformed: UnsafeMutablePointer<Float>) {
        let d = descriptor
        let local = task % chunk.tileRows
        let block = (task / chunk.tileRows) % channelBlocks
        let g = task / (chunk.tileRows * channelBlocks)
        let number = chunk.firstTileRow + local
        let (n, tileRow) = (number / tileRows, number % tileRows)
        let plane = (n * d.groups + g) * channelBlocks + block
        let rows = chunk.tileRows * tileColumns
        let (nh, nw, cp) = (tileHeight, tileWidth, paddedChannels)
        let source = blocked + plane * blockedPlane + tileRow * outputHeight * blockedWidth * 16
        let matrixStride = rows * cp
        let groupBase = transformed + g * points * matrixStride + block * 16
        withUnsafeTemporaryAllocation(byteCount: nh * nw * 64, alignment: 64) { raw in
            let columnsDone = raw.baseAddress!.bindMemory(to: Float.self, capacity: nh * nw * 16)
            for tileColumn in 0..<tileColumns {
                let patch = source + tileColumn * outputWidth * 16
                // Bᵀ_h along the patch's columns: columnsDone[ξ][j] = Σ_i Bᵀ_h[ξ][i]·d[i][j].
                for j in 0..<nw {
                    transform.height.apply(input: patch + j * 16, inputStride: blockedWidth * 16,
                                           output: columnsDone + j * 16, outputStride: nw * 16)
                }
                // B_w along rows, straight into the GEMM operands: X[ξν][row] = Σ_j columnsDone[ξ][j]·Bᵀ_w[ν][j].
                let row = local * tileColumns + tileColumn
                for xi in 0..<nh {
                    transform.width.apply(input: columnsDone + xi * nw * 16, inputStride: 16,
                                          output: groupBase + (xi * nw * rows + row) * cp, outputStride: matrixStride)
                }
            }
        }
    }

    /// Floats of one worker's output row buffer: outputHeight rows × (tileColumns·outputWidth) columns × 16 channels.
    var outputRowFloats: Int { outputHeight * tileColumns * outputWidth * 16 }

    /// Output transform of one tile row, `task` = (n, g, output block, tile row): Y = Aᵀ_h · M · A_w per tile, for 16
    /// output channels at once, gathered into `rowBuffer` ([row][column][16]) and written to the NCHW output with
    /// `Transpose16` (ragged edges element by element; edge tiles keep only their valid outputs).
    func transformOutputRow(task: Int, chunk: Chunk, products: UnsafeMutablePointer<Float>,
                            transform: (height: TransformMatrix, width: TransformMatrix),
                            rowBuffer: UnsafeMutablePointer<Float>, into y: UnsafeMutablePointer<Float>) {
        let d = descriptor
        let outputBlocks = paddedOutputChannels / 16
        let local = task % chunk.tileRows
        let block = (task / chunk.tileRows) % outputBlocks
        let g = task / (chunk.tileRows * outputBlocks)
        let number = chunk.firstTileRow + local
        let (n, tileRow) = (number / tileRows, number % tileRows)
        let rows = chunk.tileRows * tileColumns
        let (nh, nw, mh, mw, kp) = (tileHeight, tileWidth, outputHeight, outputWidth, paddedOutputChannels)
        let matrixStride = rows * kp
        let groupBase = products + g * points * matrixStride + block * 16
        let bufferWidth = tileColumns * mw
        withUnsafeTemporaryAllocation(byteCount: mh * nw * 64, alignment: 64) { raw in
            let rowsDone = raw.baseAddress!.bindMemory(to: Float.self, capacity: mh * nw * 16)
            for tileColumn in 0..<tileColumns {
                let row = local * tileColumns + tileColumn
                let source = groupBase + row * kp
                // Aᵀ_h: rowsDone[i][ν] = Σ_ξ Aᵀ_h[i][ξ]·M[ξν] (M[g][ξν][tile][k]).
                for nu in 0..<nw {
                    transform.height.apply(input: source + nu * matrixStride, inputStride: nw * matrixStride,
                                           output: rowsDone + nu * 16, outputStride: nw * 16)
                }
                // A_w: rowBuffer[i][tileColumn·mw + j] = Σ_ν rowsDone[i][ν]·Aᵀ_w[j][ν].
                for i in 0..<mh {
                    transform.width.apply(input: rowsDone + i * nw * 16, inputStride: 16,
                                          output: rowBuffer + (i * bufferWidth + tileColumn * mw) * 16,
                                          outputStride: 16)
                }
            }
        }
        let lanes = min(16, d.outputChannelsPerGroup - block * 16)
        let planeSize = d.outputHeight * d.outputWidth
        let outputChannels = y + (n * d.outputChannels + g * d.outputChannelsPerGroup + block * 16) * planeSize
        for i in 0..<min(mh, d.outputHeight - tileRow * mh) {
            let buffer = rowBuffer + i * bufferWidth * 16
            let target = outputChannels + (tileRow * mh + i) * d.outputWidth
            var w = 0
            if lanes == 16 {
                while w + 16 <= d.outputWidth {
                    Transpose16.transpose(buffer + w * 16, stride: 16, into: target + w, stride: planeSize)
                    w += 16
                }
            }
            for column in w..<d.outputWidth {
                for lane in 0..<lanes { target[lane * planeSize + column] = buffer[column * 16 + lane] }
            }
        }
    }
}

import ConvLabCore

/// Tiling and data movement of `WinogradPlan`: output tiles of outputHeight×outputWidth read input patches of
/// tileHeight×tileWidth (n = m + r − 1 per axis) that overlap by r − 1. Rows of the GEMMs are tiles.
///
/// Two buffers carry data between the stages, both per group: X[ξν][row][c] (transformed input, C padded to 16) and
/// M[ξν][row][k] (GEMM products). The primitives below work on one tile row at a time and take explicit pointers, so
/// the phase-parallel and the fused-per-worker execution of `WinogradPlan` share them.
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

    /// Floats from one point's matrix of `rows` rows × `width` floats to the next (X, M, and the weight gradient's
    /// U and V): the matrix rounded up to an odd number of 64-byte lines. A transform writes (or reads) one vector of
    /// every point per tile; at a whole number of 4 KiB pages apart (F(4,3)'s 224-row passes on 128 channels are 28
    /// pages) those vectors all fall in one set of L1 and a few of L2, and evict each other.
    static func pointStride(rows: Int, width: Int) -> Int { (((rows * width + 15) / 16) | 1) * 16 }
    /// Transform-domain points per tile (one GEMM each): tileHeight × tileWidth.
    var points: Int { tileHeight * tileWidth }
    var channelBlocks: Int { paddedChannels / 16 }
    var outputBlocks: Int { paddedOutputChannels / 16 }
    /// Floats of one blocked row: blockedWidth columns × 16 channels.
    var blockedRowFloats: Int { blockedWidth * 16 }
    /// Blocked rows that `tileRowCount` consecutive tile rows read.
    func blockedRows(tileRows count: Int) -> Int { count * outputHeight + tileHeight - outputHeight }

    /// Writes blocked rows firstRow..<firstRow+rowCount of one channel block of image n, group g: element
    /// (h, w, lane) is x[n, g·C/G + block·16 + lane, h − pt, w − pl], zero outside the image and past C/G.
    /// Full 16×16 pieces (16 channels × 16 columns of one row) go through `Transpose16`, ragged edges element-wise.
    func blockInput(_ x: UnsafePointer<Float>, n: Int, g: Int, block: Int, firstRow: Int, rowCount: Int,
                    into target: UnsafeMutablePointer<Float>) {
        let d = descriptor
        let planeSize = d.inputHeight * d.inputWidth
        let lanes = min(16, d.channelsPerGroup - block * 16)
        let firstChannel = x + (n * d.inputChannels + g * d.channelsPerGroup + block * 16) * planeSize
        fillRows(firstRow: firstRow, rowCount: rowCount, into: target) { ih, row, columns in
            let source = firstChannel + ih * d.inputWidth
            var w = 0
            if lanes == 16 {
                while w + 16 <= columns {
                    Transpose16.transpose(source + w, stride: planeSize, into: row + w * 16, stride: 16)
                    w += 16
                }
            }
            for column in w..<columns {
                let element = row + column * 16
                for lane in 0..<16 { element[lane] = lane < lanes ? source[lane * planeSize + column] : 0 }
            }
        }
    }

    /// `blockInput` on an nChw16c x (one group): its rows are already [column][16 channels], so each row of the block
    /// is one copy between the zero padding — no transposes. Lanes past C are zero in the layout, and the filter
    /// transforms are zero there too.
    func copyBlockedInput(_ x: UnsafePointer<Float>, n: Int, block: Int, firstRow: Int, rowCount: Int,
                          into target: UnsafeMutablePointer<Float>) {
        let (H, W) = (descriptor.inputHeight, descriptor.inputWidth)
        let plane = x + (n * channelBlocks + block) * H * W * 16
        fillRows(firstRow: firstRow, rowCount: rowCount, into: target) { ih, row, columns in
            row.update(from: plane + ih * W * 16, count: columns * 16)
        }
    }

    /// Rows firstRow..<firstRow+rowCount of one channel block into the padded blocked buffer from x in `layout`:
    /// `blockInput` for NCHW, `copyBlockedInput` for nChw16c (one group).
    func blockRows(_ x: UnsafePointer<Float>, layout: TensorLayout, n: Int, g: Int, block: Int, firstRow: Int,
                   rowCount: Int, into target: UnsafeMutablePointer<Float>) {
        if layout == .nChw16c {
            copyBlockedInput(x, n: n, block: block, firstRow: firstRow, rowCount: rowCount, into: target)
        } else {
            blockInput(x, n: n, g: g, block: block, firstRow: firstRow, rowCount: rowCount, into: target)
        }
    }

    /// Blocked rows firstRow..<firstRow+rowCount: zero outside the image and in the padding columns; `copy(ih, row,
    /// columns)` writes the first `columns` columns of image row ih at `row` (the row's first image column).
    private func fillRows(firstRow: Int, rowCount: Int, into target: UnsafeMutablePointer<Float>,
                          _ copy: (Int, UnsafeMutablePointer<Float>, Int) -> Void) {
        let d = descriptor
        let (H, W, pt, pl) = (d.inputHeight, d.inputWidth, d.padding.top, d.padding.left)
        let imageColumns = min(W, blockedWidth - pl)
        for local in 0..<rowCount {
            let row = target + local * blockedRowFloats
            let ih = firstRow + local - pt
            guard ih >= 0 && ih < H else {
                row.update(repeating: 0, count: blockedRowFloats)
                continue
            }
            row.update(repeating: 0, count: pl * 16)
            copy(ih, row + pl * 16, imageColumns)
            (row + (pl + imageColumns) * 16).update(repeating: 0, count: (blockedWidth - pl - imageColumns) * 16)
        }
    }

    /// Floats of one worker's transform scratch: the input's height-transformed tile row (n_h × blockedWidth
    /// vectors) or the output's height-transformed tile row (m_h × n_w × tileColumns vectors), whichever is larger.
    var transformScratchFloats: Int {
        max(tileHeight * blockedWidth, outputHeight * tileWidth * tileColumns) * 16
    }

    /// Input transform of one tile row and one channel block: V = Bᵀ_h · d · B_w for every tile, from the tile row's
    /// patches at `patches` (its first blocked row, rows `blockedRowFloats` apart) into X[ξν][firstRow + tile][block].
    /// `x` is X of the group, `rows` the GEMM rows per point in it (points `pointStride` apart).
    ///
    /// Two sweeps: Bᵀ_h over the whole tile row (U[ξ][w] for every blocked column w — columns shared by neighbouring
    /// tiles are transformed once), then for each ξ, B_w over all tiles at once (tile t reads U[ξ][t·m_w …]).
    func transformInput(patches: UnsafePointer<Float>, block: Int, firstRow: Int, x: UnsafeMutablePointer<Float>,
                        rows: Int, transform: (height: TransformMatrix, width: TransformMatrix),
                        scratch: UnsafeMutablePointer<Float>) {
        let (nh, nw, cp) = (tileHeight, tileWidth, paddedChannels)
        let matrixStride = Self.pointStride(rows: rows, width: cp)
        transform.height.apply(input: patches, contractionStride: blockedRowFloats, blockStride: 16, blocks: blockedWidth,
                               output: scratch, outputRowStride: blockedRowFloats, outputBlockStride: 16)
        let base = x + firstRow * cp + block * 16
        for xi in 0..<nh {
            transform.width.apply(input: scratch + xi * blockedRowFloats, contractionStride: 16,
                                  blockStride: outputWidth * 16, blocks: tileColumns,
                                  output: base + xi * nw * matrixStride, outputRowStride: matrixStride,
                                  outputBlockStride: cp)
        }
    }

    /// Floats of one worker's output row buffer: outputHeight rows × (tileColumns·outputWidth) columns × 16 channels.
    var outputRowFloats: Int { outputHeight * tileColumns * outputWidth * 16 }

    /// Where an output transform writes one block of 16 output channels: NCHW, its 16 planes (the first at the
    /// pointer); nChw16c, the block's [row][column][16] plane.
    enum OutputTarget {
        case planes(UnsafeMutablePointer<Float>)
        case blocked(UnsafeMutablePointer<Float>)
    }

    /// Output transform of one tile row and one block of 16 output channels: Y = Aᵀ_h · M · A_w for every tile, from
    /// M[ξν][firstRow + tile][block] (`m` is M of the group, `rows` GEMM rows per point), into `rowBuffer`
    /// ([row][column][16]), then written to output rows tileRow·m_h… of `target`: NCHW planes with `Transpose16`
    /// (ragged edges element by element), or nChw16c rows as they are. Edge tiles keep only their valid outputs.
    ///
    /// Two sweeps over all tiles of the row: Aᵀ_h for each ν (scratch[ν][i][t]), then A_w for each output row i.
    func transformOutput(m: UnsafePointer<Float>, rows: Int, firstRow: Int, block: Int, tileRow: Int,
                         transform: (height: TransformMatrix, width: TransformMatrix),
                         scratch: UnsafeMutablePointer<Float>, rowBuffer: UnsafeMutablePointer<Float>,
                         target: OutputTarget) {
        let d = descriptor
        let (nw, mh, mw, kp) = (tileWidth, outputHeight, outputWidth, paddedOutputChannels)
        let matrixStride = Self.pointStride(rows: rows, width: kp)
        let base = m + firstRow * kp + block * 16
        let tiles = tileColumns
        for nu in 0..<nw {
            transform.height.apply(input: base + nu * matrixStride, contractionStride: nw * matrixStride,
                                   blockStride: kp, blocks: tiles,
                                   output: scratch + nu * mh * tiles * 16, outputRowStride: tiles * 16,
                                   outputBlockStride: 16)
        }
        let bufferWidth = tiles * mw
        for i in 0..<mh {
            transform.width.apply(input: scratch + i * tiles * 16, contractionStride: mh * tiles * 16,
                                  blockStride: 16, blocks: tiles,
                                  output: rowBuffer + i * bufferWidth * 16, outputRowStride: 16,
                                  outputBlockStride: mw * 16)
        }
        let validRows = min(mh, d.outputHeight - tileRow * mh)
        let outputChannels: UnsafeMutablePointer<Float>
        switch target {
        case .blocked(let plane):
            // The buffer's rows are the blocked output's rows: copy the valid columns.
            for i in 0..<validRows {
                (plane + (tileRow * mh + i) * d.outputWidth * 16).update(from: rowBuffer + i * bufferWidth * 16,
                                                                          count: d.outputWidth * 16)
            }
            return
        case .planes(let first): outputChannels = first
        }
        let lanes = min(16, d.outputChannelsPerGroup - block * 16)
        let planeSize = d.outputHeight * d.outputWidth
        // Ragged pieces (a row's last < 16 columns, or < 16 channels) are transposed in a 16×16 square and copied
        // out row by row: element by element, 16 stores to 16 planes per column, the output transform of a batch-8
        // 14×14 layer took 1.04–1.13 ms instead of 0.73–0.77 (F(4,3), 256 channels, Zen 5). (The input side keeps
        // its element-wise path: there the square's extra stores cost more than its strided loads saved.)
        // Two 1 KiB squares, each within the size Swift always places on the stack (one 2 KiB one fell back to the heap).
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 256) { first in
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 256) { second in
            let (gathered, transposed) = (first.baseAddress!, second.baseAddress!)
            gathered.update(repeating: 0, count: 256)
            for i in 0..<validRows {
                let buffer = rowBuffer + i * bufferWidth * 16
                let target = outputChannels + (tileRow * mh + i) * d.outputWidth
                var w = 0
                while w < d.outputWidth {
                    let width = min(16, d.outputWidth - w)
                    if lanes == 16 && width == 16 {
                        Transpose16.transpose(buffer + w * 16, stride: 16, into: target + w, stride: planeSize)
                    } else {
                        gathered.update(from: buffer + w * 16, count: width * 16)
                        Transpose16.transpose(gathered, stride: 16, into: transposed, stride: 16)
                        for lane in 0..<lanes {
                            let (from, to) = (transposed + lane * 16, target + lane * planeSize + w)
                            for column in 0..<width { to[column] = from[column] }
                        }
                    }
                    w += width
                }
            }
        }
        }
    }
}

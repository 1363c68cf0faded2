import ConvLabCore

/// The input layout of the direct backend: each channel zero-padded and split into stride phases.
///
/// Phase plane (ph, pw) holds the padded input samples at rows ≡ ph (mod sh) and columns ≡ pw (mod sw), so
/// padded sample (i, j) sits at row i / sh, column j / sw of plane (i mod sh, j mod sw). Output (oh, ow) with tap
/// (r, s) reads padded sample (oh·sh + r·dh, ow·sw + s·dw), which is plane ((r·dh) mod sh, (s·dw) mod sw) at
/// (oh + ⌊r·dh/sh⌋, ow + ⌊s·dw/sw⌋). With outputs numbered p = oh·Wq + ow on the plane's grid (Wq = plane width),
/// every tap becomes "base + offset(c, r, s) + p": 16 consecutive outputs read 16 consecutive floats, for any
/// stride, dilation and padding. Positions with ow ≥ Wo are computed and discarded (a waste of (Wq − Wo)/Wq).
struct PolyphaseGeometry: Sendable {
    let descriptor: ConvolutionDescriptor
    /// Rows and columns of one phase plane: ⌈(H + pt + pb)/sh⌉ × ⌈(W + pl + pr)/sw⌉.
    let planeHeight: Int
    let planeWidth: Int
    /// Phases (ph·sw + pw) that some tap reads; others are never packed.
    let usedPhases: [Int]
    /// Floats between consecutive phase planes: the plane plus slack so whole tiles can read past its end.
    let planeStride: Int
    /// Floats between consecutive channels: usedPhases.count · planeStride.
    let channelStride: Int
    /// Output positions on the plane grid, Ho·Wq, computed in tiles of `tileWidth`.
    let positionCount: Int
    let tileWidth: Int
    let tileCount: Int
    /// For j = (c·R + r)·S + s within a group: where tap (c, r, s) of position 0 reads, relative to the group's first
    /// channel. The micro-kernel's only addressing.
    let tapOffsets: [Int]

    /// Where the last tap of a channel reads, relative to the channel's first float: how far past a tile its
    /// reads reach.
    let reach: Int

    /// Throws `.sizeOverflow` when the padded, phase-split planes would not have an `Int` size (huge padding or
    /// dilation); `packedCount` is then exact and checked against the memory limit by the caller.
    init(descriptor d: ConvolutionDescriptor, tileWidth: Int) throws {
        descriptor = d
        self.tileWidth = tileWidth
        let (sh, sw) = (d.strideHeight, d.strideWidth)
        planeHeight = (d.paddedHeight + sh - 1) / sh
        planeWidth = (d.paddedWidth + sw - 1) / sw
        let what = "the direct backend's padded input"
        positionCount = try CheckedArithmetic.product([d.outputHeight, planeWidth], what: what)
        tileCount = (positionCount + tileWidth - 1) / tileWidth

        var slotOfPhase = [Int](repeating: -1, count: sh * sw)
        var used: [Int] = []
        var inPlaneOffsets: [(slotPhase: Int, offset: Int)] = []
        for r in 0..<d.kernelHeight {
            for s in 0..<d.kernelWidth {
                let (rowShift, columnShift) = (r * d.dilationHeight, s * d.dilationWidth)
                let phase = (rowShift % sh) * sw + columnShift % sw
                if slotOfPhase[phase] < 0 {
                    slotOfPhase[phase] = used.count
                    used.append(phase)
                }
                // (rowShift / sh)·Wq + columnShift / sw < planeHeight·planeWidth, checked just below.
                inPlaneOffsets.append((phase, (rowShift / sh) * planeWidth + columnShift / sw))
            }
        }
        usedPhases = used
        let plane = try CheckedArithmetic.product([planeHeight, planeWidth], what: what)
        let maxOffset = inPlaneOffsets.map(\.offset).max() ?? 0
        let needed = max(plane, maxOffset + tileCount * tileWidth)
        planeStride = (needed + 15) / 16 * 16
        channelStride = try CheckedArithmetic.product([used.count, planeStride], what: what)
        _ = try CheckedArithmetic.product([d.batch, d.inputChannels, channelStride], what: what)

        var offsets: [Int] = []
        offsets.reserveCapacity(d.reductionLength)
        for c in 0..<d.channelsPerGroup {
            for tap in inPlaneOffsets {
                offsets.append(c * channelStride + slotOfPhase[tap.slotPhase] * planeStride + tap.offset)
            }
        }
        tapOffsets = offsets
        let stride = planeStride
        reach = inPlaneOffsets.last.map { slotOfPhase[$0.slotPhase] * stride + $0.offset } ?? 0
    }

    /// Floats of the packed input for the whole batch.
    var packedCount: Int { descriptor.batch * descriptor.inputChannels * channelStride }

    /// Writes the padded phase planes of channel `channel` of image `n` (every float of its region, zeros included).
    func pack(_ x: UnsafePointer<Float>, n: Int, channel: Int, into packed: UnsafeMutablePointer<Float>) {
        for slot in usedPhases.indices { pack(x, n: n, channel: channel, slot: slot, into: packed) }
    }

    /// Writes one phase plane (`slot` indexes `usedPhases`) of channel `channel` of image `n`: a unit of work
    /// small enough that a 3-channel stride-2 input gives 12 tasks instead of 3.
    func pack(_ x: UnsafePointer<Float>, n: Int, channel: Int, slot: Int, into packed: UnsafeMutablePointer<Float>) {
        let d = descriptor
        let (H, W) = (d.inputHeight, d.inputWidth)
        let source = x + (n * d.inputChannels + channel) * H * W
        let channelBase = packed + (n * d.inputChannels + channel) * channelStride
        do {
            let phase = usedPhases[slot]
            let (ph, pw) = (phase / d.strideWidth, phase % d.strideWidth)
            let plane = channelBase + slot * planeStride
            let columnOffset = pw - d.padding.left
            for q in 0..<planeHeight {
                let ih = q * d.strideHeight + ph - d.padding.top
                copyPaddedRow(ih >= 0 && ih < H ? source + ih * W : nil, width: W, stride: d.strideWidth,
                              offset: columnOffset, into: plane + q * planeWidth, count: planeWidth)
            }
            (plane + planeHeight * planeWidth).update(repeating: 0, count: planeStride - planeHeight * planeWidth)
        }
    }

    /// Copies the valid outputs of one computed tile (rows of `tileWidth` positions, one per output channel) into
    /// the NCHW output planes, dropping positions with ow ≥ Wo or p ≥ Ho·Wq.
    func storeTile(_ tile: UnsafePointer<Float>, tileStride: Int, channels: Int, firstPosition: Int,
                   outputPlanes: UnsafeMutablePointer<Float>) {
        let d = descriptor
        let (Wo, planeSize) = (d.outputWidth, d.outputHeight * d.outputWidth)
        let end = min(firstPosition + tileWidth, positionCount)
        var p = firstPosition
        while p < end {
            let oh = p / planeWidth
            let rowStart = oh * planeWidth
            let segmentEnd = min(end, rowStart + Wo)
            if p < segmentEnd {
                // Segments are rows of at most 64 floats: inline copies, not a libc call each (12% of a stem's time).
                for channel in 0..<channels {
                    copyFloats(tile + channel * tileStride + (p - firstPosition),
                               to: outputPlanes + channel * planeSize + oh * Wo + (p - rowStart), count: segmentEnd - p)
                }
            }
            p = rowStart + planeWidth
        }
    }
}

/// How an activation tensor's floats are ordered. convlab's tensors are NCHW; `nChw16c` is the channel-blocked
/// layout oneDNN's fastest CPU kernels take (its "best case" in our comparisons, with the reorders untimed): channels in
/// blocks of 16, the 16 of a block adjacent for every (h, w), so one SIMD16 vector holds one position of 16 channels.
/// A plan that can run on it (`ChannelBlockedExecution`) is then measured both ways, and the NCHW row includes every
/// transposition the plan needs while the nChw16c row takes and returns blocked tensors.
public enum TensorLayout: String, CaseIterable, Hashable, Sendable, Codable {
    case nchw
    case nChw16c

    /// Channels per block of `nChw16c`.
    public static let channelBlock = 16

    /// Floats of an N×C×H×W tensor in this layout (nChw16c rounds C up to whole blocks, zero in the extra lanes),
    /// overflow-checked.
    public func count(batch: Int, channels: Int, height: Int, width: Int) throws -> Int {
        let c = self == .nchw ? channels : (channels + Self.channelBlock - 1) / Self.channelBlock * Self.channelBlock
        return try CheckedArithmetic.product([batch, c, height, width], what: "an \(rawValue) tensor")
    }
}

/// NCHW ↔ nChw16c. Element (n, c, h, w) of the blocked tensor is at ((n·⌈C/16⌉ + c/16)·H·W + h·W + w)·16 + c mod 16.
/// The span functions are the one implementation, shared with the depthwise plan's band buffers.
public enum ChannelBlocking {
    /// Blocks `nchw` (N·C·H·W floats) into `blocked` (N·⌈C/16⌉·H·W·16 floats); lanes past C are zero.
    public static func block(_ nchw: UnsafePointer<Float>, batch: Int, channels: Int, height: Int, width: Int,
                             into blocked: UnsafeMutablePointer<Float>) {
        let (plane, blocks) = (height * width, (channels + 15) / 16)
        for n in 0..<batch {
            for b in 0..<blocks {
                toBlocked(nchw + (n * channels + b * 16) * plane, planeStride: plane, from: 0, count: plane,
                          channels: min(16, channels - b * 16), into: blocked + (n * blocks + b) * plane * 16)
            }
        }
    }

    /// The inverse of `block`: the first C lanes of every block back into NCHW.
    public static func unblock(_ blocked: UnsafePointer<Float>, batch: Int, channels: Int, height: Int, width: Int,
                               into nchw: UnsafeMutablePointer<Float>) {
        let (plane, blocks) = (height * width, (channels + 15) / 16)
        for n in 0..<batch {
            for b in 0..<blocks {
                fromBlocked(blocked + (n * blocks + b) * plane * 16, count: plane, channels: min(16, channels - b * 16),
                            into: nchw + (n * channels + b * 16) * plane, planeStride: plane)
            }
        }
    }

    /// Positions [first, first + count) of `channels` ≤ 16 planes `planeStride` apart → [position][16 lanes]
    /// (lanes past `channels` zero), position rows `positionStride` floats apart (16: a channel block's rows; wider:
    /// 16 lanes of a position-major matrix). 16×16 blocks are transposed in registers, a partial block of channels
    /// through a zero-padded 16×16 tile, and a ragged end of the positions as the last 16 positions again (the block
    /// overlaps the previous one and rewrites the same values). Element by element, those parts cost more than the
    /// convolution on 116-channel or 56-wide layers. Fewer than 16 positions go element by element.
    @inline(__always)
    package static func toBlocked(_ planes: UnsafePointer<Float>, planeStride: Int, from first: Int, count: Int,
                                  channels: Int, into target: UnsafeMutablePointer<Float>, positionStride: Int = 16) {
        let source = planes + first
        guard count >= 16 else {
            for p in 0..<count {
                for lane in 0..<16 {
                    target[p * positionStride + lane] = lane < channels ? source[lane * planeStride + p] : 0
                }
            }
            return
        }
        var tile = Tile16()
        tile.withFloats { tile in
            var done = 0
            while done < count {
                let start = min(done, count - 16)
                if channels == 16 {
                    Transpose16.transpose(source + start, stride: planeStride, into: target + start * positionStride,
                                          stride: positionStride)
                } else {
                    for lane in 0..<channels { storeVector(loadVector(source + lane * planeStride + start), tile + lane * 16) }
                    Transpose16.transpose(tile, stride: 16, into: target + start * positionStride, stride: positionStride)
                }
                done = start + 16
            }
        }
    }

    /// [position][16 lanes] (rows `positionStride` floats apart) → the first `channels` of `count` consecutive
    /// positions of planes `planeStride` apart (partial blocks and ragged ends as in `toBlocked`).
    @inline(__always)
    package static func fromBlocked(_ source: UnsafePointer<Float>, count: Int, channels: Int,
                                    into planes: UnsafeMutablePointer<Float>, planeStride: Int,
                                    positionStride: Int = 16) {
        guard count >= 16 else {
            // Fewer than 16 positions (a 3×3 depthwise weight gradient's 9 taps, a band of a few positions): one
            // transpose into a stack tile, rows past `count` zero, then `count` floats per channel — instead of
            // count × channels scalar moves. The tile is written whole by the transpose, so it is not zeroed; full
            // blocks are transposed from where they are. (Through a zeroed copy of the rows and `memcpy` for the last
            // lanes, this write-out was a third of MobileNetV2's 960-channel 7² weight gradient on AMD Zen 5.)
            if channels == 16 && planeStride == count && count >= 8 {
                // A whole block into one contiguous [channel][count] run, straight from registers (`transpose`).
                Transpose16.transpose(source, stride: positionStride, rows: count, into: planes, stride: count,
                                      lastColumn: count)
                return
            }
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 256) { buffer in
                let columns = buffer.baseAddress!
                if channels == 16 {
                    Transpose16.transpose(source, stride: positionStride, rows: count, into: columns, stride: 16)
                } else {
                    // (Only the `channels` lanes a row has: a partial block may end its buffer.)
                    var tile = Tile16()
                    tile.withFloats { rows in
                        for p in 0..<count { (rows + p * 16).update(from: source + p * positionStride, count: channels) }
                        Transpose16.transpose(rows, stride: 16, into: columns, stride: 16)
                    }
                }
                @inline(__always) func copyLane(_ lane: Int, to target: UnsafeMutablePointer<Float>) {
                    for p in 0..<count { target[p] = columns[lane &* 16 &+ p] }
                }
                guard planeStride == count && channels > 1 else {
                    for lane in 0..<channels { copyLane(lane, to: planes + lane * planeStride) }
                    return
                }
                // The planes are one contiguous run (a weight gradient's [channel][tap]): lanes stored as whole
                // vectors whose tails the next lanes' stores overwrite, as long as the vector ends inside this
                // block's run; the last lanes copied exactly. Sixteen small copies cost as much as the 3×3
                // depthwise sums they wrote out.
                let run = channels * count
                var lane = 0
                while lane < channels && lane * count + 16 <= run {
                    storeVector(loadVector(columns + lane * 16), planes + lane * count)
                    lane += 1
                }
                for lane in lane..<channels { copyLane(lane, to: planes + lane * count) }
            }
            return
        }
        var tile = Tile16()
        tile.withFloats { tile in
            var done = 0
            while done < count {
                let start = min(done, count - 16)
                if channels == 16 {
                    Transpose16.transpose(source + start * positionStride, stride: positionStride, into: planes + start,
                                          stride: planeStride)
                } else {
                    Transpose16.transpose(source + start * positionStride, stride: positionStride, into: tile, stride: 16)
                    for lane in 0..<channels { storeVector(loadVector(tile + lane * 16), planes + lane * planeStride + start) }
                }
                done = start + 16
            }
        }
    }

    /// The shape [N, ⌈C/16⌉, H, W, 16] of an [N, C, H, W] tensor's nChw16c form.
    public static func blockedShape(_ shape: [Int]) -> [Int] {
        [shape[0], (shape[1] + 15) / 16, shape[2], shape[3], 16]
    }

    /// `tensor` (shape [N, C, H, W]) in nChw16c, as a flat tensor of shape [N, ⌈C/16⌉, H, W, 16].
    public static func blocked(_ tensor: Tensor<Float>) throws -> Tensor<Float> {
        guard tensor.shape.count == 4 else {
            throw ConvLabError.shapeMismatch(what: "a tensor to block", expected: "[N, C, H, W]",
                                             actual: "\(tensor.shape)")
        }
        let (n, c, h, w) = (tensor.shape[0], tensor.shape[1], tensor.shape[2], tensor.shape[3])
        var result = try Tensor<Float>(shape: blockedShape(tensor.shape))
        tensor.withUnsafeBufferPointer { source in
            result.withUnsafeMutableBufferPointer { target in
                block(source.baseAddress!, batch: n, channels: c, height: h, width: w, into: target.baseAddress!)
            }
        }
        return result
    }

    /// A blocked tensor of shape [N, ⌈C/16⌉, H, W, 16] back to NCHW with C channels.
    public static func unblocked(_ tensor: Tensor<Float>, channels c: Int) throws -> Tensor<Float> {
        guard tensor.shape.count == 5, tensor.shape[4] == 16, tensor.shape[1] == (c + 15) / 16 else {
            throw ConvLabError.shapeMismatch(what: "an nChw16c tensor of \(c) channels",
                                             expected: "[N, \((c + 15) / 16), H, W, 16]", actual: "\(tensor.shape)")
        }
        let (n, h, w) = (tensor.shape[0], tensor.shape[2], tensor.shape[3])
        var result = try Tensor<Float>(shape: [n, c, h, w])
        tensor.withUnsafeBufferPointer { source in
            result.withUnsafeMutableBufferPointer { target in
                unblock(source.baseAddress!, batch: n, channels: c, height: h, width: w, into: target.baseAddress!)
            }
        }
        return result
    }
}

/// Weights K×C/G×R×S ↔ their blocked form, `Oihw16o` in oneDNN's terms: output channels in blocks of 16 along the
/// lanes, [⌈K/16⌉][C/G][R][S][16], zero in the lanes past K. It is the nChw16c layout of the weights read as a
/// [1, K, 1, C/G·R·S] tensor, and the layout backward-weights' blocked entry points write dw in: the register tiles of
/// the channel-vector and depthwise kernels hold 16 output channels of one tap per vector, so this is what they store
/// without a transpose, as oneDNN's blocked kernels return their diff weights (its reorder to OIHW untimed).
extension ChannelBlocking {
    /// [⌈K/16⌉, C/G, R, S, 16] for a weight shape [K, C/G, R, S].
    public static func blockedWeightShape(_ shape: [Int]) -> [Int] {
        [(shape[0] + 15) / 16, shape[1], shape[2], shape[3], 16]
    }

    /// `weights` ([K, C/G, R, S]) in Oihw16o.
    public static func blockedWeights(_ weights: Tensor<Float>) throws -> Tensor<Float> {
        guard weights.shape.count == 4 else {
            throw ConvLabError.shapeMismatch(what: "weights to block", expected: "[K, C/G, R, S]",
                                             actual: "\(weights.shape)")
        }
        let (k, taps) = (weights.shape[0], weights.shape[1] * weights.shape[2] * weights.shape[3])
        var result = try Tensor<Float>(shape: blockedWeightShape(weights.shape))
        weights.withUnsafeBufferPointer { source in
            result.withUnsafeMutableBufferPointer { target in
                block(source.baseAddress!, batch: 1, channels: k, height: 1, width: taps, into: target.baseAddress!)
            }
        }
        return result
    }

    /// Blocked weights [⌈K/16⌉, C/G, R, S, 16] back to K×C/G×R×S with K output channels.
    public static func unblockedWeights(_ blocked: Tensor<Float>, outputChannels k: Int) throws -> Tensor<Float> {
        guard blocked.shape.count == 5, blocked.shape[4] == 16, blocked.shape[0] == (k + 15) / 16 else {
            throw ConvLabError.shapeMismatch(what: "Oihw16o weights of \(k) output channels",
                                             expected: "[\((k + 15) / 16), C/G, R, S, 16]", actual: "\(blocked.shape)")
        }
        let shape = [k, blocked.shape[1], blocked.shape[2], blocked.shape[3]]
        var result = try Tensor<Float>(shape: shape)
        blocked.withUnsafeBufferPointer { source in
            result.withUnsafeMutableBufferPointer { target in
                unblock(source.baseAddress!, batch: 1, channels: k, height: 1, width: shape[1] * shape[2] * shape[3],
                        into: target.baseAddress!)
            }
        }
        return result
    }
}

/// A 16×16 float tile on the stack (not `withUnsafeTemporaryAllocation`, which may use the heap), zero-initialised.
@usableFromInline
struct Tile16 {
    @usableFromInline var rows: (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>,
                                 SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>,
                                 SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>)
    @inlinable init() {
        let zero = SIMD16<Float>()
        rows = (zero, zero, zero, zero, zero, zero, zero, zero, zero, zero, zero, zero, zero, zero, zero, zero)
    }

    @inlinable @inline(__always)
    mutating func withFloats<R>(_ body: (UnsafeMutablePointer<Float>) -> R) -> R {
        withUnsafeMutableBytes(of: &rows) { body($0.baseAddress!.assumingMemoryBound(to: Float.self)) }
    }
}

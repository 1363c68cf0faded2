import CCacheHints
import ConvLabCore

/// The products of a `FilterTransformingProduct` pass of 14 tiles or more (VGG-16's 512-channel 14² layers: 16 tiles;
/// 7² layers at batch 4), shaped as a GEMM's register tile instead.
///
/// Why: the in-register kernel's tile (6 points ν × 4 tiles, U formed per channel) loads 30 values per 24 FMAs — one
/// broadcast of X per FMA — and ran at 62% of one core's peak on L1-resident data (Zen 5); with its 14 transform
/// operations per channel beside the 24 FMAs, 56% of peak on VGG-16's 14² layer. A 2-block × 8-tile tile (2 vectors of
/// U and 8 broadcasts per 16 FMAs) ran at 95%, with U read from L2. So here U is formed once per row ξ and chunk of
/// channels into a per-worker buffer U[ν][c][32] (two output blocks), and each point's product is a GEMM of the pass's
/// tiles (in groups of 8) × the chunk's channels × 32 output channels. The transform is then paid once per row ξ and
/// channel for all the pass's tiles, instead of once per 4 tiles.
extension FilterTransformingProduct {
    /// Tiles per register tile, and output blocks per register tile and per task.
    static let rowTiles = 8
    static let rowBlocks = 2

    /// Whether a pass of `rows` tiles runs the row products: 14 tiles or more, filling at least seven eighths of the
    /// 8-tile groups. Zen 5, 2 threads, 512 → 512 channels, against the in-register kernel: 16 tiles (14² and 13² maps,
    /// 7² at batch 4) 0.80–0.91× the time; 8 tiles (7² at batch 2), where U serves only 48 FMAs per transform, 1.08×;
    /// 12 tiles (7² at batch 3) in two groups of 8, 1.17×; 9 tiles (10² maps), 1.36×.
    static func usesRowProducts(rows: Int) -> Bool {
        rows >= 14 && 8 * rows >= 7 * rowGroups(rows) * rowTiles
    }

    static func rowGroups(_ rows: Int) -> Int { (rows + rowTiles - 1) / rowTiles }

    /// Input channels per chunk: a chunk's U (6 points × 32 lanes per channel) in a quarter of L1, where
    /// `transformRow` stores it, beside the chunk's raw filters it reads 6 times. Zen 5: a transform took 12 cycles
    /// per channel with U in L1, 31 with U for 128 channels (98 KiB) stored to L2; on VGG-16's 14² layer chunks of 16
    /// channels ran 0.96× the time of 32, chunks of 8 1.13× (the running sums are loaded and stored per chunk).
    static func rowChunkChannels(level1DataBytes: Int = MachineCaches.current.level1DataBytes) -> Int {
        max(8, level1DataBytes / 4 / (6 * 32 * 4))
    }

    /// Floats between the points ν of the U buffer: a chunk's 32 lanes per channel, and two lines more, so the 6 stores
    /// of one channel do not fall 4 KiB-aligned apart.
    static var rowPointStride: Int { rowChunkChannels() * 32 + 32 }

    /// Floats of one worker's scratch for a pass of `rows` tiles: U for a chunk, then the running sums of the 36
    /// points' products ([point][group][16 vectors], contiguous: M's rows are 2–32 KiB apart and collide in caches'
    /// sets).
    static func rowScratchFloats(rows: Int) -> Int { 6 * rowPointStride + 36 * rowGroups(rows) * 256 }

    /// X''[point][group of 8 tiles][c][8] from X[point][tile][cp] (points `xStride` apart) for one point, tiles past
    /// `rows` zero.
    static func repackForRows(x: UnsafePointer<Float>, xStride: Int, cp: Int, rows: Int, channels: Int, point: Int,
                              into target: UnsafeMutablePointer<Float>) {
        let groups = rowGroups(rows)
        for group in 0..<groups {
            let out = target + (point * groups + group) * channels * rowTiles
            for t in 0..<rowTiles {
                let tile = group * rowTiles + t
                guard tile < rows else {
                    for c in 0..<channels { out[c * rowTiles + t] = 0 }
                    continue
                }
                let source = x + point * xStride + tile * cp
                for c in 0..<channels { out[c * rowTiles + t] = source[c] }
            }
        }
    }

    /// M[ξν][every tile][16 channels of `blocks` (1 or 2) output blocks] for all 36 points: X'' of the group, the
    /// first block's filters (the second's `channels`·144 floats on), M at point (0, 0), tile 0 and the first block's
    /// first channel; points `mStride` and tiles `ldm` floats apart. `scratch`: `rowScratchFloats(rows:)`.
    func multiplyRows(x: UnsafePointer<Float>, channels: Int, filters: UnsafePointer<Float>, blocks: Int,
                      m: UnsafeMutablePointer<Float>, mStride: Int, ldm: Int, rows: Int,
                      scratch: UnsafeMutablePointer<Float>) {
        let groups = Self.rowGroups(rows)
        let (chunk, pointStride) = (Self.rowChunkChannels(), Self.rowPointStride)
        let sums = scratch + 6 * pointStride
        if blocks < Self.rowBlocks {
            // The kernel reads both halves of U: the unused one zero (not whatever the buffer held, which may be NaN).
            for nu in 0..<6 {
                for c in 0..<chunk { storeVector(SIMD16<Float>(), scratch + nu * pointStride + c * 32 + 16) }
            }
        }
        var start = 0
        while start < channels {
            let count = min(chunk, channels - start)
            let next = (start + count)..<min(channels, start + count + chunk)
            var step = 0
            // The next chunk's filters, from L3 toward L2, spread over this chunk's 36 point products: read on
            // demand, they stalled the transform (28 cycles per channel and block against 12 from L2, Zen 5).
            func prefetchNextFilters() {
                for block in 0..<blocks {
                    convlab_prefetch_slice_to_l2(filters + (block * channels + next.lowerBound) * Self.filterFloatsPerChannel,
                                                 next.count * Self.filterFloatsPerChannel * 4, step, 36)
                }
                step += 1
            }
            for xi in 0..<6 {
                for block in 0..<blocks {
                    let g = filters + (block * channels + start) * Self.filterFloatsPerChannel
                    func transform<let Kind: Int>(_ kind: Compiled<Kind>) {
                        let point = rowPoint(xi)
                        Self.transformRow(kind, point, point * point, a, b, filters: g, channels: count,
                                          into: scratch + block * 16, pointStride: pointStride)
                    }
                    switch xi {
                    case 0: transform(Compiled<0>())
                    case 5: transform(Compiled<2>())
                    default: transform(Compiled<1>())
                    }
                }
                for nu in 0..<6 {
                    prefetchNextFilters()
                    for group in 0..<groups {
                        Self.rowKernel(u: scratch + nu * pointStride,
                                       x: x + (((xi * 6 + nu) * groups + group) * channels + start) * Self.rowTiles,
                                       channels: count, sums: sums + ((xi * 6 + nu) * groups + group) * 256,
                                       first: start == 0,
                                       last: start + count == channels,
                                       m: m + (xi * 6 + nu) * mStride + group * Self.rowTiles * ldm, ldm: ldm,
                                       tiles: min(Self.rowTiles, rows - group * Self.rowTiles), blocks: blocks)
                    }
                }
            }
            start += count
        }
    }

    /// U[ξν] of one row ξ (`rowTransform`'s kind, point and squared point) for `channels` input channels of one
    /// block into `u`[ν][c][32] (points `pointStride` floats apart; `u` at the block's 16 lanes).
    @inline(never) @_optimize(size)
    static func transformRow<let Kind: Int>(_ kind: Compiled<Kind>, _ point: Float, _ squared: Float, _ a: Float,
                                            _ b: Float, filters: UnsafePointer<Float>, channels: Int,
                                            into u: UnsafeMutablePointer<Float>, pointStride: Int) {
        let (p, p2) = (Vector(repeating: point), Vector(repeating: squared))
        let (va, va2, vb, vb2) = (Vector(repeating: a), Vector(repeating: a * a), Vector(repeating: b),
                                  Vector(repeating: b * b))
        var (g, target) = (filters, u)
        for _ in 0..<channels {
            let (u0, u1, u2, u3, u4, u5) = rowTransform(kind, p, p2, va, va2, vb, vb2, g)
            storeVector(u0, target); storeVector(u1, target + pointStride)
            storeVector(u2, target + 2 * pointStride); storeVector(u3, target + 3 * pointStride)
            storeVector(u4, target + 4 * pointStride); storeVector(u5, target + 5 * pointStride)
            g += filterFloatsPerChannel
            target += 32
        }
    }

    /// M[tile][32 channels] = Σ_c X''[c][tile] · U[c][32] for one point and group of 8 tiles, one chunk of channels
    /// at a time: per channel 2 vectors of U and 8 broadcasts feed 16 FMAs on 16 accumulators. They start at zero on
    /// the `first` chunk, else from `sums` (16 contiguous vectors), and go to M after the `last` chunk (its first
    /// `tiles` tiles and `blocks` blocks), else back to `sums`.
    @inline(never) @_optimize(size)
    static func rowKernel(u: UnsafePointer<Float>, x: UnsafePointer<Float>, channels: Int,
                          sums: UnsafeMutablePointer<Float>, first: Bool, last: Bool,
                          m: UnsafeMutablePointer<Float>, ldm: Int, tiles: Int, blocks: Int) {
        @inline(__always) func start(_ i: Int) -> Vector { first ? Vector() : loadVector(sums + i * 16) }
        var a00 = start(0), a01 = start(1), a02 = start(2), a03 = start(3)
        var a04 = start(4), a05 = start(5), a06 = start(6), a07 = start(7)
        var a10 = start(8), a11 = start(9), a12 = start(10), a13 = start(11)
        var a14 = start(12), a15 = start(13), a16 = start(14), a17 = start(15)
        var (xp, up) = (x, u)
        for _ in 0..<channels {
            let (w0, w1) = (loadVector(up), loadVector(up + 16))
            @inline(__always) func add(_ t: Int, _ c0: inout Vector, _ c1: inout Vector) {
                let broadcast = Vector(repeating: xp[t])
                c0.addProduct(broadcast, w0)
                c1.addProduct(broadcast, w1)
            }
            add(0, &a00, &a10); add(1, &a01, &a11); add(2, &a02, &a12); add(3, &a03, &a13)
            add(4, &a04, &a14); add(5, &a05, &a15); add(6, &a06, &a16); add(7, &a07, &a17)
            xp += rowTiles
            up += 32
        }
        @inline(__always) func put(_ t: Int, _ c0: Vector, _ c1: Vector) {
            if !last {
                storeVector(c0, sums + t * 16)
                storeVector(c1, sums + (t + 8) * 16)
                return
            }
            guard t < tiles else { return }
            storeVector(c0, m + t * ldm)
            if blocks > 1 { storeVector(c1, m + t * ldm + 16) }
        }
        put(0, a00, a10); put(1, a01, a11); put(2, a02, a12); put(3, a03, a13)
        put(4, a04, a14); put(5, a05, a15); put(6, a06, a16); put(7, a07, a17)
    }
}

import ConvLabCore

/// The register tiles of the channel-blocked dense plans (`ChannelBlockedPointwisePlan`, `ChannelBlockedDirectPlan`):
/// output channels along the lanes, positions broadcast. Per input channel and tap, B weight vectors and P broadcasts
/// feed B·P = 24 FMAs on 24 accumulators (4 × 6, 3 × 8, 2 × 12 or 1 × 24: 8+ independent chains each), `vbroadcastss` and
/// `vfmadd231ps` only in the loop (checked with objdump). Each output sums its taps, then channels, in order.

/// Weights K×C×R×S as the tiles load them, [group of `groupBlocks` output blocks][r][s][input channel][64 lanes], zero
/// past the last output channel and past a group's blocks (a 1×1 layer: [group][channel][64]). Groups of 4 fill the
/// 64 lanes; the few-channel plan may group 3 blocks (its 3 × 8 tiles), the panel's last 16 lanes then unused.
func blockedTileWeights(_ weights: Tensor<Float>, _ d: ConvolutionDescriptor,
                        groupBlocks: Int = 4) -> AlignedStorage<Float> {
    let (C, K, R, S) = (d.inputChannels, d.outputChannels, d.kernelHeight, d.kernelWidth)
    let groupLanes = groupBlocks * 16
    let packed = AlignedStorage<Float>(count: (K + groupLanes - 1) / groupLanes * R * S * C * 64)
    weights.withUnsafeBufferPointer { w in
        for k in 0..<K {
            for c in 0..<C {
                for r in 0..<R {
                    for s in 0..<S {
                        packed.pointer[((((k / groupLanes) * R + r) * S + s) * C + c) * 64 + k % groupLanes]
                            = w[((k * C + c) * R + r) * S + s]
                    }
                }
            }
        }
    }
    return packed
}

/// The convolve phase of a blocked tile plan: `body(worker, task, x, y, workspace, weights)` for each of `tasks` tasks
/// on `workers` threads, with the packed weights pinned meanwhile.
func forEachBlockedTileTask(_ tasks: Int, workers: Int, weights: AlignedStorage<Float>,
                            input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
                            workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?,
                            _ body: (_ worker: Int, _ task: Int, _ x: UnsafePointer<Float>,
                                     _ y: UnsafeMutablePointer<Float>, _ workspace: UnsafeMutableRawBufferPointer,
                                     _ weights: UnsafePointer<Float>) -> Void) {
    let shared = UncheckedSendable((input.baseAddress!, output.baseAddress!, workspace))
    measurePhase("convolve", in: profile) {
        weights.withUnsafeBufferPointer { w in
            let packed = UncheckedSendable(w.baseAddress!)
            Parallel.forEach(taskCount: tasks, threads: workers) { worker, task in
                let (x, y, workspace) = shared.value
                body(worker, task, x, y, workspace, packed.value)
            }
        }
    }
}

/// How a channel-blocked dense plan splits an image into tasks: ranges of positions (or output rows) × ranges of
/// 64-channel groups. From the splits that keep a task's input and weight panels each within a quarter of L2, it
/// splits again on the side whose re-read costs fewer bytes (one more position range reads the weights again, one
/// more group range the input) until every thread has 4 tasks and, below 8 per thread, an even share. Tasks are
/// counted as the ranges come out: 20 groups in 8 ranges are 7 ranges of 3, and 7 tasks on 2 threads ran
/// MobileNetV2's last 1×1 10% slower than 10. (8 tasks per thread from the start read ResNet-50's 4 MB of 2048 → 512
/// weights twice: 1.25× slower on the Intel kind.)
///
/// Where the weights outweigh the input, it stops earlier, at 2 tasks per thread, once every thread's first share
/// (`WorkerPool`: worker w starts on tasks [w·T/W, (w+1)·T/W)) holds the same work — units (rows, or tiles of 6
/// positions) × output blocks: each further range re-reads every weight panel, and balanced shares need no
/// stealing. Inception-v3's 288 → 384 3×3/2 (17 output rows, 6 groups of 4 MB of panels) took 2 ranges of 9 and 8
/// rows × 6 groups, one share a ninth heavier than the other; its 6 groups in 3 + 3 are even.
struct BlockedTaskSplit: Sendable {
    let ranges: Int
    let groupsPerRange: Int
    let groupRanges: Int

    /// `weightBytes` and `inputBytes`: one image's, in the same unit. `units`: the rows (or tiles) the ranges deal,
    /// range i of R taking [⌊i·U/R⌋, ⌊(i+1)·U/R⌋); `outputBlocks`: the layer's, 4 to a group but the last.
    init(batch: Int, ranges initialRanges: Int, maxRanges: Int, groups: Int, groupRanges initialGroupRanges: Int,
         weightBytes: Int, inputBytes: Int, threads: Int, units: Int, outputBlocks: Int) {
        var (ranges, groupRangeCount) = (min(initialRanges, maxRanges), min(initialGroupRanges, groups))
        func perRange() -> Int { (groups + groupRangeCount - 1) / groupRangeCount }
        func taskCount() -> Int { batch * ranges * ((groups + perRange() - 1) / perRange()) }
        func balancedEnough() -> Bool {
            weightBytes >= inputBytes && taskCount() >= 2 * threads
                && Self.sharesAreEven(batch: batch, ranges: ranges, groupsPerRange: perRange(), groups: groups,
                                      units: units, outputBlocks: outputBlocks, threads: threads)
        }
        while (taskCount() < 4 * threads || (taskCount() % threads != 0 && taskCount() < 8 * threads))
                && !balancedEnough() && (ranges < maxRanges || groupRangeCount < groups) {
            if groupRangeCount < groups && (weightBytes >= inputBytes || ranges == maxRanges) {
                groupRangeCount += 1
            } else {
                ranges += 1
            }
        }
        self.ranges = ranges
        groupsPerRange = perRange()
        groupRanges = (groups + groupsPerRange - 1) / groupsPerRange
    }

    /// Whether the `threads` first shares of the tasks (image, range, group range; group range fastest) hold the
    /// same work, units × output blocks.
    static func sharesAreEven(batch: Int, ranges: Int, groupsPerRange: Int, groups: Int, units: Int,
                              outputBlocks: Int, threads: Int) -> Bool {
        let groupRanges = (groups + groupsPerRange - 1) / groupsPerRange
        let tasks = batch * ranges * groupRanges
        func work(_ task: Int) -> Int {
            let (range, groupRange) = ((task / groupRanges) % ranges, task % groupRanges)
            let rangeUnits = (range + 1) * units / ranges - range * units / ranges
            let firstBlock = groupRange * groupsPerRange * 4
            return rangeUnits * (min(outputBlocks, firstBlock + groupsPerRange * 4) - firstBlock)
        }
        let shares = (0..<threads).map { w in
            (w * tasks / threads..<(w + 1) * tasks / threads).reduce(0) { $0 + work($1) }
        }
        return shares.min() == shares.max()
    }
}

/// Steps of one chunk through the input (floats) and the weights: between channel blocks, kernel rows and columns;
/// the kernel's size (1×1 for the 1×1 plan); the chunk's channels; floats between one tap's weights and the next's.
struct BlockedTileSteps {
    let blockStride: Int
    let tapRow: Int
    let tapColumn: Int
    let kernelHeight: Int
    let kernelWidth: Int
    let channels: Int
    let weightTap: Int
}

/// One tile: its first position's tap (0, 0) in the (padded) input, the group's weights at the chunk's first channel,
/// the output's first block at the tile's first position; the output blocks and positions it stores, and the floats
/// between stored positions (16; s·16 where the outputs are one phase of a stride-s backward-data's dx).
struct BlockedTileArguments {
    let input: UnsafePointer<Float>
    let weights: UnsafePointer<Float>
    let output: UnsafeMutablePointer<Float>
    let outputBlockStride: Int
    let storeBlocks: Int
    let valid: Int
    let accumulate: Bool
    var outputStep = 16
}

/// How the dense blocked plans tile a row of `width` outputs for a group of `blocks` output blocks: positions per tile,
/// and whether a 4-block group runs as two 2 × 14 halves. 2 × 14 is taken where it computes a tenth of the row fewer
/// positions than the usual tile (2 × 12, 3 × 8, or 4 × 6 for 4 blocks): 13-, 14- and 28-wide rows, which those pad to 18,
/// 24 or 36. Measured on the Intel kind (nChw16c, 2 threads, alternated runs): 4-block groups on 13–14-wide rows
/// 0.71–0.78× the time (ResNet-50's 256-channel 14² 3×3 1.00 → 0.72 ms); where it saves less, 2 × 14 was no faster
/// (MobileNetV2's stem, 112 against 120 positions) or slower (ConvNeXt's stem at 56 wide, 1.15×).
func blockedRowTiling(blocks: Int, width: Int) -> (columns: Int, halves: Bool) {
    func padded(_ columns: Int) -> Int { (width + columns - 1) / columns * columns }
    switch blocks {
    case 2 where 10 * (padded(12) - padded(14)) > width: return (14, false)
    case 4 where 10 * (padded(6) - padded(14)) > width: return (14, true)
    default: return (24 / blocks, false)  // 1 × 24, 2 × 12, 3 × 8, 4 × 6
    }
}

/// A row of `width` outputs for a group of `blocks` output blocks, tiled as `blockedRowTiling` says: `a` addresses the
/// row's first tile (its `valid` is ignored), `step` floats between input positions. A 4-block group's whole 4 × 6
/// tiles run in one kernel call (`BlockedTileKernel.blocks4(_:_:step:tiles:)`), the rest tile by tile.
func runBlockedRow(_ a: BlockedTileArguments, blocks: Int, width: Int, tiling: (columns: Int, halves: Bool),
                   _ steps: BlockedTileSteps, step: Int) {
    var column = 0
    if blocks == 4 && !tiling.halves && width >= 6 {
        BlockedTileKernel.blocks4(a, steps, step: step, tiles: width / 6)
        column = width / 6 * 6
    }
    while column < width {
        let arguments = BlockedTileArguments(
            input: a.input + column * step, weights: a.weights, output: a.output + column * a.outputStep,
            outputBlockStride: a.outputBlockStride, storeBlocks: a.storeBlocks,
            valid: min(tiling.columns, width - column), accumulate: a.accumulate, outputStep: a.outputStep)
        runBlockedRowTile(arguments, blocks: blocks, tiling: tiling, steps, step: step)
        column += tiling.columns
    }
}

/// One tile of a row for a group of `blocks` output blocks, tiled as `blockedRowTiling` says: `a` addresses the whole
/// group (its 64-lane weight panel, its first output block); a split 4-block group runs as two 2 × 14 halves, the
/// second on lanes 32… of the panel and blocks 2 and 3 of the output. `step`: floats between positions.
func runBlockedRowTile(_ a: BlockedTileArguments, blocks: Int, tiling: (columns: Int, halves: Bool),
                       _ steps: BlockedTileSteps, step: Int) {
    for half in 0..<(tiling.halves ? 2 : 1) {
        let arguments = tiling.halves
            ? BlockedTileArguments(input: a.input, weights: a.weights + half * 32,
                                   output: a.output + half * 2 * a.outputBlockStride,
                                   outputBlockStride: a.outputBlockStride, storeBlocks: 2, valid: a.valid,
                                   accumulate: a.accumulate, outputStep: a.outputStep)
            : a
        switch (blocks, step) {
        case (_, _) where !tiling.halves && arguments.valid < 6:
            BlockedTileKernel.tail(arguments, steps, step: step, blocks: blocks)
        case (2, _) where tiling.columns == 12 && arguments.valid < 12:
            // 6–11 positions on 2 blocks: 2 × 6 and a tail, not a 2 × 12 tile half wasted (a 7-wide row's, or a
            // range's last 6–11 positions).
            // (The 2 × 6 tile stores its 6 positions; the tail the rest.)
            BlockedTileKernel.shaped(Compiled<2>(), Compiled<6>(), arguments, steps, step: step)
            if arguments.valid > 6 {
                BlockedTileKernel.tail(
                    BlockedTileArguments(input: arguments.input + 6 * step, weights: arguments.weights,
                                         output: arguments.output + 6 * arguments.outputStep,
                                         outputBlockStride: arguments.outputBlockStride,
                                         storeBlocks: arguments.storeBlocks, valid: arguments.valid - 6,
                                         accumulate: arguments.accumulate, outputStep: arguments.outputStep),
                    steps, step: step, blocks: blocks)
            }
        case (1, _): BlockedTileKernel.blocks1(arguments, steps, step: step)
        case (_, _) where tiling.columns == 14: BlockedTileKernel.blocks2x14(arguments, steps, step: step)
        case (2, _): BlockedTileKernel.blocks2(arguments, steps, step: step)
        case (3, _): BlockedTileKernel.blocks3(arguments, steps, step: step)
        default: BlockedTileKernel.blocks4(arguments, steps, step: step, tiles: 1)
        }
    }
}

/// The register tiles: `B` output blocks × `P` positions (24 accumulators, 28 for 2 × 14), `step` floats between
/// positions.
enum BlockedTileKernel {
    typealias Vector = SIMD16<Float>

    /// `tiles` whole 4 × 6 tiles one after another along a row (`a` the first; positions `step` floats apart in the
    /// input, `a.outputStep` in the output) in one call: of a call per tile, only the zeroed registers and the
    /// stores are left per tile, not the dispatch, the arguments and the prologue (a 64-term tile of a 1×1 layer
    /// on 64 channels is only 768 FMA cycles). A small gain: Zen 5, alternated runs, 64 → 64 at 64² 0.0712 →
    /// 0.0693 ms on 2 threads, 0.1366 → 0.1354 on 1; 256 → 256 at 28² 0.2175 → 0.2132. Steps 16 and 32 (stride 1
    /// and 2 on nChw16c) are compiled with the step a constant.
    static func blocks4(_ a: BlockedTileArguments, _ s: BlockedTileSteps, step: Int, tiles: Int) {
        switch step {
        case 16: blocks4s1(a, s, tiles: tiles)
        case 32: blocks4s2(a, s, tiles: tiles)
        default: blocks4Stepped(a, s, step: step, tiles: tiles)
        }
    }
    @inline(never) static func blocks4s1(_ a: BlockedTileArguments, _ s: BlockedTileSteps, tiles: Int) {
        tiles4x6(a, s, 16, tiles)
    }
    @inline(never) static func blocks4s2(_ a: BlockedTileArguments, _ s: BlockedTileSteps, tiles: Int) {
        tiles4x6(a, s, 32, tiles)
    }
    @inline(never) static func blocks4Stepped(_ a: BlockedTileArguments, _ s: BlockedTileSteps, step: Int, tiles: Int) {
        tiles4x6(a, s, step, tiles)
    }
    @inline(__always)
    static func tiles4x6(_ a: BlockedTileArguments, _ s: BlockedTileSteps, _ step: Int, _ tiles: Int) {
        for t in 0..<tiles {
            tile(4, 6, BlockedTileArguments(input: a.input + t &* 6 &* step, weights: a.weights,
                                            output: a.output + t &* 6 &* a.outputStep,
                                            outputBlockStride: a.outputBlockStride, storeBlocks: 4, valid: 6,
                                            accumulate: a.accumulate, outputStep: a.outputStep), s, step)
        }
    }
    /// The last tile of a row or range of a group of `blocks` blocks when fewer than 6 positions P = `a.valid` are
    /// left: B × P on the group's own 2 or 3 blocks where its 2P or 3P chains are the 8+ the FMA latency needs
    /// (P ≥ 3), else 4 × P (`blocks4Tail`, the zero blocks of a smaller group's panel computed too: there the chains
    /// bound the tile either way). On 2 blocks the 4 × P tile spent half its FMAs on zeros: MobileNetV2's stem (112 =
    /// 9 · 12 + 4 wide) had 6% of its time in its 4 × 4 tails. Each output sums its terms in the same order in every
    /// tile, so the bits do not change.
    static func tail(_ a: BlockedTileArguments, _ s: BlockedTileSteps, step: Int, blocks: Int) {
        switch (blocks, a.valid) {
        case (2, 3): shaped(Compiled<2>(), Compiled<3>(), a, s, step: step)
        case (2, 4): shaped(Compiled<2>(), Compiled<4>(), a, s, step: step)
        case (2, 5): shaped(Compiled<2>(), Compiled<5>(), a, s, step: step)
        case (3, 3): shaped(Compiled<3>(), Compiled<3>(), a, s, step: step)
        case (3, 4): shaped(Compiled<3>(), Compiled<4>(), a, s, step: step)
        case (3, 5): shaped(Compiled<3>(), Compiled<5>(), a, s, step: step)
        default: blocks4Tail(a, s, step: step)
        }
    }
    /// A B × P tile (`tile`) as its own copy, B and P constants in it (`Compiled`): only there does Swift fold them
    /// and keep the B·P accumulators in registers. The tails and the 2 × 6 tile take it; the whole tiles keep
    /// named functions for their attributes and notes.
    @inline(never)
    static func shaped<let B: Int, let P: Int>(_: Compiled<B>, _: Compiled<P>, _ a: BlockedTileArguments,
                                               _ s: BlockedTileSteps, step: Int) {
        tile(B, P, a, s, step)
    }

    /// The last tile of a row or range of a 4-block group when fewer than 6 positions are left, as a 4 × P tile with
    /// P = `a.valid`: a 7-wide row is 6 + 1 positions and a 49-position map 8 · 6 + 1, where a 4 × 6 tail computed
    /// 12 and 54 (the 7² maps of every network's last stage). At P = 1 its 4 chains are short of the 8 the FMA
    /// latency needs, so that tile splits its terms in two (`blocks4x1`). Groups of 1 block, and of 2 or 3 at P ≤ 2
    /// (`tail`), take it too, their 64-lane weight panels being zero past the group.
    static func blocks4Tail(_ a: BlockedTileArguments, _ s: BlockedTileSteps, step: Int) {
        switch a.valid {
        case 1: blocks4x1(a, s, step: step)
        case 2: shaped(Compiled<4>(), Compiled<2>(), a, s, step: step)
        case 3: shaped(Compiled<4>(), Compiled<3>(), a, s, step: step)
        case 4: shaped(Compiled<4>(), Compiled<4>(), a, s, step: step)
        default: shaped(Compiled<4>(), Compiled<5>(), a, s, step: step)
        }
    }
    /// One position: its 4 chains alone would run the FMAs at half rate (4 cycles of latency, 2 FMAs a cycle), and a
    /// 7-wide row's or a 49-position map's last position on 960 channels is 960 terms deep. So its terms alternate
    /// between two sets of 4 accumulators — each 16-channel block's even channels into one, odd into the other —
    /// added at the end. Zen 5, 1 thread: the tail was 4.4% of MobileNetV2's 960 → 160 1×1 at 7² (`perf`); 512 → 512
    /// 3×3 at 7² (a tail every 7 positions) 1.0826 → 1.0401 ms.
    @inline(never) static func blocks4x1(_ a: BlockedTileArguments, _ s: BlockedTileSteps, step: Int) {
        var a0 = Vector(), a1 = Vector(), a2 = Vector(), a3 = Vector()
        var b0 = Vector(), b1 = Vector(), b2 = Vector(), b3 = Vector()
        for r in 0..<s.kernelHeight {
            for t in 0..<s.kernelWidth {
                let tap = a.input + (r &* s.tapRow &+ t &* s.tapColumn)
                var w = a.weights + (r &* s.kernelWidth &+ t) &* s.weightTap
                var block = 0
                while block &* 16 < s.channels {
                    let lanes = min(16, s.channels &- block &* 16)
                    let row = tap + block &* s.blockStride
                    var lane = 0
                    while lane &+ 1 < lanes {
                        let (x, y) = (Vector(repeating: row[lane]), Vector(repeating: row[lane &+ 1]))
                        a0.addProduct(x, loadVector(w)); a1.addProduct(x, loadVector(w + 16))
                        a2.addProduct(x, loadVector(w + 32)); a3.addProduct(x, loadVector(w + 48))
                        b0.addProduct(y, loadVector(w + 64)); b1.addProduct(y, loadVector(w + 80))
                        b2.addProduct(y, loadVector(w + 96)); b3.addProduct(y, loadVector(w + 112))
                        w += 128
                        lane &+= 2
                    }
                    if lane < lanes {
                        let x = Vector(repeating: row[lane])
                        a0.addProduct(x, loadVector(w)); a1.addProduct(x, loadVector(w + 16))
                        a2.addProduct(x, loadVector(w + 32)); a3.addProduct(x, loadVector(w + 48))
                        w += 64
                    }
                    block &+= 1
                }
            }
        }
        @inline(__always) func finish(_ i: Int, _ v: Vector) {
            guard i < a.storeBlocks, a.valid > 0 else { return }
            let target = a.output + i &* a.outputBlockStride
            storeVector(a.accumulate ? loadVector(target) + v : v, target)
        }
        finish(0, a0 + b0); finish(1, a1 + b1); finish(2, a2 + b2); finish(3, a3 + b3)
    }
    /// Optimised for size: that keeps LLVM from unrolling the channel loop, which it did for `-target-cpu znver5`
    /// (AMD Zen 5), whose scheduling model allows larger unrolled bodies than the Intel kinds'. Unrolled twice, with
    /// 12 broadcasts per step beside 24 accumulators, the tile spilled 108 vector moves to the stack (objdump); rolled,
    /// none. Zen 5, 2 threads, alternated runs: MobileNetV2's stem 0.132 → 0.072 ms, ConvNeXt's 0.120 → 0.092,
    /// MobileNetV2's 960 → 160 1×1 at 7² (its last 2-block group) 0.057 → 0.049. The other tiles, unrolled or not,
    /// do not spill and time the same either way.
    @_optimize(size) @inline(never) static func blocks2(_ a: BlockedTileArguments, _ s: BlockedTileSteps, step: Int) {
        tile(2, 12, a, s, step)
    }
    /// 2 blocks × 14 positions (28 accumulators, 2 weights and a broadcast: 31 of the 32 registers; objdump: no vector
    /// spills) for 13-, 14- and 28-wide rows (`blockedRowTiling`).
    @inline(never) static func blocks2x14(_ a: BlockedTileArguments, _ s: BlockedTileSteps, step: Int) {
        tile(2, 14, a, s, step)
    }
    /// 3 blocks × 8 positions: a group of 48 output channels (112 = 64 + 48, 240 = 3 · 64 + 48) on the 4 × 6 tile
    /// computed a fourth block of zero weights, an eighth of a 112-channel layer's FMAs.
    @inline(never) static func blocks3(_ a: BlockedTileArguments, _ s: BlockedTileSteps, step: Int) {
        tile(3, 8, a, s, step)
    }
    @inline(never) static func blocks1(_ a: BlockedTileArguments, _ s: BlockedTileSteps, step: Int) {
        tile(1, 24, a, s, step)
    }

    /// Accumulator i holds block i % B, position i / B: in this order each broadcast feeds its B FMAs at once (in
    /// block order the 2 × 12 tile kept 12 broadcasts live beside 24 accumulators and spilled to the stack on every
    /// term). Inlined with constant B and P, every branch on them folds.
    @inline(__always)
    static func tile(_ B: Int, _ P: Int, _ a: BlockedTileArguments, _ s: BlockedTileSteps, _ step: Int) {
        let N = B * P
        var a0 = Vector(), a1 = Vector(), a2 = Vector(), a3 = Vector(), a4 = Vector(), a5 = Vector()
        var a6 = Vector(), a7 = Vector(), a8 = Vector(), a9 = Vector(), a10 = Vector(), a11 = Vector()
        var a12 = Vector(), a13 = Vector(), a14 = Vector(), a15 = Vector(), a16 = Vector(), a17 = Vector()
        var a18 = Vector(), a19 = Vector(), a20 = Vector(), a21 = Vector(), a22 = Vector(), a23 = Vector()
        var a24 = Vector(), a25 = Vector(), a26 = Vector(), a27 = Vector()
        for r in 0..<s.kernelHeight {
            for t in 0..<s.kernelWidth {
                let tap = a.input + (r &* s.tapRow &+ t &* s.tapColumn)
                var w = a.weights + (r &* s.kernelWidth &+ t) &* s.weightTap
                var block = 0
                while block &* 16 < s.channels {
                    let lanes = min(16, s.channels &- block &* 16)
                    let row = tap + block &* s.blockStride
                    for lane in 0..<lanes {
                        let x = row + lane
                        let w0 = loadVector(w)
                        let w1 = B > 1 ? loadVector(w + 16) : Vector()
                        let w2 = B > 2 ? loadVector(w + 32) : Vector()
                        let w3 = B > 3 ? loadVector(w + 48) : Vector()
                        @inline(__always) func weight(_ i: Int) -> Vector {
                            switch i % B { case 0: return w0; case 1: return w1; case 2: return w2; default: return w3 }
                        }
                        @inline(__always) func input(_ i: Int) -> Vector { Vector(repeating: x[(i / B) &* step]) }
                        a0.addProduct(input(0), weight(0))
                        if N > 1 { a1.addProduct(input(1), weight(1)) }
                        if N > 2 { a2.addProduct(input(2), weight(2)) }
                        if N > 3 { a3.addProduct(input(3), weight(3)) }
                        if N > 4 { a4.addProduct(input(4), weight(4)) }
                        if N > 5 { a5.addProduct(input(5), weight(5)) }
                        if N > 6 { a6.addProduct(input(6), weight(6)) }
                        if N > 7 { a7.addProduct(input(7), weight(7)) }
                        if N > 8 { a8.addProduct(input(8), weight(8)) }
                        if N > 9 { a9.addProduct(input(9), weight(9)) }
                        if N > 10 { a10.addProduct(input(10), weight(10)) }
                        if N > 11 { a11.addProduct(input(11), weight(11)) }
                        if N > 12 { a12.addProduct(input(12), weight(12)) }
                        if N > 13 { a13.addProduct(input(13), weight(13)) }
                        if N > 14 { a14.addProduct(input(14), weight(14)) }
                        if N > 15 { a15.addProduct(input(15), weight(15)) }
                        if N > 16 { a16.addProduct(input(16), weight(16)) }
                        if N > 17 { a17.addProduct(input(17), weight(17)) }
                        if N > 18 { a18.addProduct(input(18), weight(18)) }
                        if N > 19 { a19.addProduct(input(19), weight(19)) }
                        if N > 20 { a20.addProduct(input(20), weight(20)) }
                        if N > 21 { a21.addProduct(input(21), weight(21)) }
                        if N > 22 { a22.addProduct(input(22), weight(22)) }
                        if N > 23 { a23.addProduct(input(23), weight(23)) }
                        if N > 24 { a24.addProduct(input(24), weight(24)) }
                        if N > 25 { a25.addProduct(input(25), weight(25)) }
                        if N > 26 { a26.addProduct(input(26), weight(26)) }
                        if N > 27 { a27.addProduct(input(27), weight(27)) }
                        w += 64
                    }
                    block &+= 1
                }
            }
        }
        // A whole tile (every block and position stored) takes straight-line stores, one branch for `accumulate`:
        // through the per-accumulator checks below the stores were ~300 instructions, a fifth of a 27-term stem tile
        // (VGG's 3×3 on RGB).
        if a.storeBlocks == B && a.valid >= P {
            let (output, blockStride, step) = (a.output, a.outputBlockStride, a.outputStep)
            @inline(__always) func store(_ i: Int, _ v: Vector) {
                guard i < N else { return }
                storeVector(v, output + (i % B) &* blockStride + (i / B) &* step)
            }
            @inline(__always) func add(_ i: Int, _ v: Vector) {
                guard i < N else { return }
                let target = output + (i % B) &* blockStride + (i / B) &* step
                storeVector(loadVector(target) + v, target)
            }
            if a.accumulate {
                add(0, a0); add(1, a1); add(2, a2); add(3, a3); add(4, a4); add(5, a5); add(6, a6); add(7, a7)
                add(8, a8); add(9, a9); add(10, a10); add(11, a11); add(12, a12); add(13, a13); add(14, a14)
                add(15, a15); add(16, a16); add(17, a17); add(18, a18); add(19, a19); add(20, a20); add(21, a21)
                add(22, a22); add(23, a23); add(24, a24); add(25, a25); add(26, a26); add(27, a27)
            } else {
                store(0, a0); store(1, a1); store(2, a2); store(3, a3); store(4, a4); store(5, a5); store(6, a6)
                store(7, a7); store(8, a8); store(9, a9); store(10, a10); store(11, a11); store(12, a12)
                store(13, a13); store(14, a14); store(15, a15); store(16, a16); store(17, a17); store(18, a18)
                store(19, a19); store(20, a20); store(21, a21); store(22, a22); store(23, a23); store(24, a24)
                store(25, a25); store(26, a26); store(27, a27)
            }
            return
        }
        @inline(__always) func finish(_ i: Int, _ v: Vector) {
            guard i < N, i % B < a.storeBlocks, i / B < a.valid else { return }
            let target = a.output + (i % B) &* a.outputBlockStride + (i / B) &* a.outputStep
            storeVector(a.accumulate ? loadVector(target) + v : v, target)
        }
        finish(0, a0); finish(1, a1); finish(2, a2); finish(3, a3); finish(4, a4); finish(5, a5)
        finish(6, a6); finish(7, a7); finish(8, a8); finish(9, a9); finish(10, a10); finish(11, a11)
        finish(12, a12); finish(13, a13); finish(14, a14); finish(15, a15); finish(16, a16); finish(17, a17)
        finish(18, a18); finish(19, a19); finish(20, a20); finish(21, a21); finish(22, a22); finish(23, a23)
        finish(24, a24); finish(25, a25); finish(26, a26); finish(27, a27)
    }
}

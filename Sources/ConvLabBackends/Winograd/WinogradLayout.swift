import ConvLabCore
import ConvLabMatMul

/// Everything a Winograd plan is, from the descriptor and options alone: the transforms, the tiling
/// (`WinogradGeometry`), the schedule (fused per worker, or stage by stage), the workspace regions and the work.
/// `WinogradBackend.describe` and `WinogradPlan` are both built from it.
struct WinogradLayout: Sendable {
    /// How the stages are scheduled.
    enum Schedule: Sendable {
        /// Each worker takes `tileRows` tile rows of one image and runs all stages on them in its own buffers (cache
        /// resident, no barriers). Chosen when the filter transforms are small enough to re-read per chunk.
        case fused(tileRows: Int)
        /// Stage by stage over the whole batch, `tileRows` tile rows per pass, every stage parallel: the filter
        /// transforms (large for wide layers, e.g. 38 MiB for 512 channels) are read once per pass.
        case phases(tileRows: Int)
    }

    /// Workspace regions. Fused: one slice per worker of each, sized for one chunk. Phases: transformed input and
    /// products shared (one pass), the rest per worker (the blocked input: one tile row's patches).
    struct Buffers: Sendable {
        let blocked: WorkspaceRegion<Float>
        let transformed: WorkspaceRegion<Float>
        let products: WorkspaceRegion<Float>
        let gemmScratch: WorkspaceRegion<UInt8>
        let outputRows: WorkspaceRegion<Float>
        let transformScratch: WorkspaceRegion<Float>
        /// X repacked for `FilterTransformingProduct` (shared; empty otherwise).
        let repacked: WorkspaceRegion<Float>
        /// U of one row ξ for the row products' chunk of channels, per worker (empty unless they run).
        let filterRows: WorkspaceRegion<Float>
    }

    let descriptor: ConvolutionDescriptor
    let height: WinogradTransform
    let width: WinogradTransform
    let geometry: WinogradGeometry
    let schedule: Schedule
    let threads: Int
    /// Workers that have work in some stage; per-worker regions are reserved for this many.
    let workers: Int
    let filterFloats: Int
    /// The filter transforms of one point are stored as strips of this many columns (K), each C×width contiguous, so
    /// a GEMM reads its B as one sequential stream: 16 for short products (`usesShortProducts`), else 64 — the native
    /// kernel's width, and 2–6% faster than K-wide rows on ResNet/VGG 3×3 layers (alternated runs, Intel).
    var filterStripColumns: Int { usesShortProducts ? 16 : 64 }
    /// The engine is native and every GEMM of the schedule has 9–16 rows (tiles): `ShortProduct`, one pass over B.
    /// ResNet-50's 256-channel 14² layer, F(4,3) in 16-tile products: 0.53 → 0.38 ms (Intel, 2 threads, alternated
    /// runs). On 4-tile products (F(4,3) and F(6,3) on 7²) the 6×64 kernel already reads B once and was 5% faster.
    let usesShortProducts: Bool
    /// Set when the products transform the filters themselves (`FilterTransformingProduct`, `transformsFiltersInProducts`):
    /// phase schedule, F(4,3) with ± paired points, native engine. The plan then keeps the raw filters and the
    /// transforms carry their fractions in A (the same error growth as in G).
    let filterTransformingProduct: FilterTransformingProduct?
    /// Whether passes of the schedule's full size run the in-products transform as row products (`usesRowProducts`);
    /// only then is their scratch reserved.
    let rowProducts: Bool
    let buffers: Buffers
    let summary: PlanDescription

    /// Filter transforms up to this size (per group) are re-read per chunk by the fused schedule.
    static let fusedFilterBytes = 4 * 1024 * 1024
    /// X + M of one fused chunk: about an L2.
    static let fusedChunkBytes = 768 * 1024
    /// X + M of one pass of the phase schedule: well inside L3.
    static let passBytes = 8 * 1024 * 1024

    init(descriptor d: ConvolutionDescriptor, backend: WinogradBackend, options: PlanOptions) throws {
        descriptor = d
        threads = options.threads
        var (height, width) = try backend.transforms(for: d)
        let geometry = WinogradGeometry(descriptor: d, height: height, width: width)
        self.geometry = geometry
        let multiplier = options.matrixEngine.makeMultiplier()
        let (cp, kp, points) = (geometry.paddedChannels, geometry.paddedOutputChannels, geometry.points)
        let limit = options.limits.maxWorkspaceBytes
        var filterFloats = try CheckedArithmetic.product([d.groups, points, cp, kp],
                                                         what: "the Winograd filter transforms")
        try ResourceLimits.check("the Winograd filter transforms", bytes: filterFloats * 4, limit: limit)
        var filterTransformingProduct: FilterTransformingProduct?
        var rowProducts = false
        let what = "the Winograd workspace (\(geometry.tilesPerImage) tiles per image, \(points) points)"
        let bytesPerTileRow = try CheckedArithmetic.product([geometry.tileColumns, points, cp + kp, 4], what: what)
        let channelsInput = geometry.channelBlocks * geometry.blockedRowFloats
        var layout = WorkspaceLayout()
        let tasks: Int  // independent tasks of the GEMM stage
        let productRows: Int  // the most rows (tiles) of one GEMM call
        var fusedTileRows = min(geometry.tileRows, max(1, Self.fusedChunkBytes / bytesPerTileRow))
        // Enough chunks to keep every thread busy.
        while fusedTileRows > 1
                && d.batch * d.groups * ((geometry.tileRows + fusedTileRows - 1) / fusedTileRows) < 2 * threads {
            fusedTileRows = (fusedTileRows + 1) / 2
        }
        if backend.filterTransform != .inProducts, Self.fuses(filterBytes: points * cp * kp * MemoryLayout<Float>.stride,
                      chunkTiles: fusedTileRows * geometry.tileColumns,
                      totalTiles: d.batch * geometry.tilesPerImage) {
            let tileRows = fusedTileRows
            schedule = .fused(tileRows: tileRows)
            let rows = tileRows * geometry.tileColumns
            productRows = rows
            let chunks = d.batch * d.groups * ((geometry.tileRows + tileRows - 1) / tileRows)
            workers = Parallel.workers(threads: threads, tasks: chunks)
            tasks = chunks
            buffers = Buffers(
                blocked: try layout.reserve(Float.self, count: try CheckedArithmetic.product(
                    [geometry.blockedRows(tileRows: tileRows), channelsInput], what: what), workers: workers, what: what),
                transformed: try layout.reserve(
                    Float.self, count: points * WinogradGeometry.pointStride(rows: rows, width: cp), workers: workers,
                    what: what),
                products: try layout.reserve(
                    Float.self, count: points * WinogradGeometry.pointStride(rows: rows, width: kp), workers: workers,
                    what: what),
                gemmScratch: try layout.reserve(UInt8.self, count: multiplier.workspaceBytes(m: rows, n: kp, k: cp),
                                                workers: workers, what: what),
                outputRows: try layout.reserve(Float.self, count: geometry.outputRowFloats, workers: workers, what: what),
                transformScratch: try layout.reserve(Float.self, count: geometry.transformScratchFloats,
                                                     workers: workers, what: what),
                repacked: try layout.reserve(Float.self, count: 0),
                filterRows: try layout.reserve(Float.self, count: 0))
        } else {
            let tileRows = Self.passTileRows(all: d.batch * geometry.tileRows, bytesPerTileRow: d.groups * bytesPerTileRow,
                                             rereadPerPass: filterFloats * MemoryLayout<Float>.stride, limit: limit)
            schedule = .phases(tileRows: tileRows)
            let rows = tileRows * geometry.tileColumns
            let rowsPerTask = Self.rowsPerTask(rows: rows, independent: d.groups * points, threads: threads)
            productRows = min(rows, rowsPerTask)
            if options.matrixEngine == .native,
               WinogradBackend.transformsFiltersInProducts(backend.filterTransform, tableBytes: filterFloats * 4, tiles: rows),
               let inA = try? (height.withFractionsOutsideG(), width.withFractionsOutsideG()),
               let product = FilterTransformingProduct(height: inA.0, width: inA.1) {
                (height, width) = inA
                filterTransformingProduct = product
                rowProducts = FilterTransformingProduct.usesRowProducts(rows: rows)
                filterFloats = try CheckedArithmetic.product(
                    [d.groups, geometry.outputBlocks, d.channelsPerGroup, d.kernelHeight * d.kernelWidth, 16],
                    what: "the Winograd filters")
            }
            let gemmTasks = filterTransformingProduct == nil ? d.groups * points * ((rows + rowsPerTask - 1) / rowsPerTask)
                : d.groups * geometry.outputBlocks
            let transformTasks = d.groups * max(geometry.channelBlocks, geometry.outputBlocks) * tileRows
            workers = Parallel.workers(threads: threads, tasks: max(gemmTasks, transformTasks))
            tasks = gemmTasks
            buffers = Buffers(
                // One tile row's patches of one channel block, per worker: the input transform blocks and pads them
                // itself.
                blocked: try layout.reserve(Float.self, count: geometry.blockedRows(tileRows: 1) * geometry.blockedRowFloats,
                                            workers: workers, what: what),
                transformed: try layout.reserve(Float.self, count: try CheckedArithmetic.product(
                    [d.groups, points, WinogradGeometry.pointStride(rows: rows, width: cp)], what: what), what: what),
                products: try layout.reserve(Float.self, count: try CheckedArithmetic.product(
                    [d.groups, points, WinogradGeometry.pointStride(rows: rows, width: kp)], what: what), what: what),
                gemmScratch: try layout.reserve(UInt8.self, count: filterTransformingProduct == nil
                                                    ? multiplier.workspaceBytes(m: rowsPerTask, n: kp, k: cp) : 0,
                                                workers: workers, what: what),
                outputRows: try layout.reserve(Float.self, count: geometry.outputRowFloats, workers: workers, what: what),
                transformScratch: try layout.reserve(Float.self, count: geometry.transformScratchFloats,
                                                     workers: workers, what: what),
                repacked: try layout.reserve(Float.self, count: filterTransformingProduct == nil ? 0
                                                : try CheckedArithmetic.product(
                                                    [d.groups, FilterTransformingProduct.repackedFloats(
                                                        rows: rows, channels: d.channelsPerGroup,
                                                        rowProducts: rowProducts)], what: what)),
                filterRows: try layout.reserve(
                    Float.self, count: rowProducts ? FilterTransformingProduct.rowScratchFloats(rows: rows) : 0,
                    workers: workers, what: what))
        }
        self.height = height
        self.width = width
        self.filterFloats = filterFloats
        self.filterTransformingProduct = filterTransformingProduct
        self.rowProducts = rowProducts
        usesShortProducts = filterTransformingProduct == nil && options.matrixEngine == .native
            && (9...ShortProduct.maxRows).contains(productRows)
        try ResourceLimits.check(what, bytes: layout.byteCount, limit: limit)

        let tiles = Double(geometry.tilesPerImage * d.batch * d.groups)
        // Transform work per tile and 16-channel block, relative to F(4,3)'s 6×6 tile (n·n·(n_h + n_w) FMAs).
        let scale = Double(points * (geometry.tileHeight + geometry.tileWidth)) / (36 * 12)
        // The output transform maps n_h×n_w points to m_h×m_w outputs, columns then rows: m_h·n_w·(n_h + m_w) FMAs,
        // 240 for F(4,3). Priced at the input transform's n_h·n_w·(n_h + n_w) it cost F(2,3) 1.5× too much (its
        // 4×4 → 2×2 is 48 FMAs, not 71) and F(6,3) 0.85× too little.
        let outputScale = Double(geometry.outputHeight * geometry.tileWidth
                                 * (geometry.tileHeight + geometry.outputWidth)) / 240
        let chunk: String
        // Rows the blocking copies per image: the fused schedule re-copies the tile overlap (n − m rows) per chunk of
        // tile rows, the phase schedule per tile row (in cache, inside the input transform's tasks). Blocking is one
        // copy of the input, so its work is these pixels (in units of 16, which is F(4,3)'s cost per tile when chunks are one tile row) — not tiles × n/m, which priced
        // F(2,3)'s copy 4× too high and so pushed its fitted correction to 0.59–0.64 while GEMM-bound layers ran at
        // 0.97 of the physical estimate: F(2,3) was then chosen over F(4,3) on 14×14 layers where it is 1.1–1.4× slower.
        let copiedRows: Int
        // The phase schedule writes each pass's transformed tiles X and products M out and reads them back in the
        // next phase (the fused schedule keeps a chunk's in L2): unpriced, F(4,3) and F(6,3) on large layers ran
        // 1.15× their estimate while F(2,3), fused there, ran 0.77× it.
        var roundTrip: WorkEstimate.Stage?
        switch schedule {
        case .fused(let rows):
            chunk = "fused \(rows)-row chunks"
            let chunks = (geometry.tileRows + rows - 1) / rows
            copiedRows = geometry.tileRows * geometry.outputHeight + chunks * (geometry.tileHeight - geometry.outputHeight)
        case .phases(let rows):
            chunk = "\(rows)-row passes"
            copiedRows = geometry.tileRows * geometry.tileHeight
            let perTileRow = Double(d.groups * geometry.tileColumns * points * (cp + kp) * 4)
            roundTrip = .memory(bytes: 2 * perTileRow * Double(d.batch * geometry.tileRows),
                                footprint: perTileRow * Double(rows))
        }
        let blockedPixels = Double(d.batch * d.groups) * Double(copiedRows) * Double(geometry.blockedWidth)
        summary = PlanDescription(
            backend: backend.name,
            variant: "F(\(geometry.outputHeight)x\(geometry.outputWidth),\(d.kernelHeight)x\(d.kernelWidth)) "
                + "\(geometry.tilesPerImage) tiles \(chunk) \(multiplier.name)" + (usesShortProducts ? " 16-row kernel" : "")
                + (filterTransformingProduct != nil ? " filters transformed in the products" : "")
                + (rowProducts ? " (rows of U, 2 x 8 tiles)" : ""),
            errorBound: WinogradBackend.errorBound(descriptor: d, heightGrowth: height.errorGrowth,
                                                   widthGrowth: width.errorGrowth) * options.matrixEngine.errorGrowth,
            errorSource: WinogradBackend.errorSource(height: height, width: width, engine: options.matrixEngine),
            typicalError: WinogradBackend.typicalError(reduction: d.reductionLength,
                                                       growth: height.errorGrowth * width.errorGrowth,
                                                       engine: options.matrixEngine),
            workspaceBytes: layout.byteCount, persistentBytes: filterFloats * 4,
            work: WorkEstimate([
                .winogradBlocking(units: blockedPixels * Double(cp / 16) / 16, tasks: tasks),
                .winogradInputTransform(units: tiles * Double(cp / 16) * scale, tasks: tasks),
                // m: all tiles up to 112 rather than the rows of one call, which predicts measured times better on
                // the calibration sweep (90% within 1.31–1.43× against 1.43–1.55×): short calls run back to back on
                // the same filter panel, so they do not pay the full small-m penalty of a lone product.
                filterTransformingProduct == nil
                    ? .gemm(flops: 2 * Double(points) * tiles * Double(cp * kp), m: min(Int(tiles), 112), n: kp, k: cp,
                            tasks: tasks)
                    // Register tiles of 4 tiles × 16 channels over the whole channel sum, as direct convolution's
                    // (a pass's tiles rounded up to 4); the filter transform adds ~8 FMA-port operations per 24 FMAs.
                    // Row products: tiles rounded up to 8, the transform (paid per 96 FMAs) ~a quarter more.
                    : .directKernel(flops: 2 * Double(points * d.groups * d.channelsPerGroup * kp) * (rowProducts
                                        ? Double(FilterTransformingProduct.rowGroups(geometry.tilesPerImage * d.batch)
                                                 * FilterTransformingProduct.rowTiles) * 5 / 4
                                        : Double(FilterTransformingProduct.groups(geometry.tilesPerImage * d.batch)
                                                 * 4) * 32 / 24),
                                    reduction: d.channelsPerGroup, tasks: tasks),
                .winogradOutputTransform(units: tiles * Double(kp / 16) * outputScale, tasks: tasks),
            ] + (roundTrip.map { [$0] } ?? [])))
        try options.accuracy.admit(summary)
    }

    /// Whether a pass of `rows` tiles (the last may be shorter) runs the row products.
    func runsRowProducts(rows: Int) -> Bool {
        rowProducts && FilterTransformingProduct.usesRowProducts(rows: rows)
    }

    /// Whether the fused schedule pays: each chunk re-reads the whole filter transform, which is cheap while it fits
    /// in L2 or is spread over enough tiles. A filter beyond half of L2 re-read for chunks of fewer than
    /// `minimumFusedTiles` tiles (a small image split to feed the threads) costs more than the phase schedule's
    /// separate passes: ResNet-50's 256-channel 14×14 layer ran F(2,3) in 14-tile chunks of a 4 MiB filter 1.2–1.5×
    /// slower than in passes (AMD Zen 4 kind). A chunk's products do chunkTiles / 2 FLOPs per byte of filter re-read;
    /// on Zen 5 (2 threads, F(4,3) and F(6,3), phases against fused): 14 and 20 tiles (7 and 10 FLOP/B) were
    /// 1.3–1.4× slower fused, 28 tiles (14 FLOP/B) level on 64 channels at 56² and 1.6× faster on AlexNet's stem as
    /// 48 stride phases (0.49 → 0.31 ms: 48 → 96 channels, whose phase passes stream X and M through L3).
    static func fuses(filterBytes: Int, chunkTiles: Int, totalTiles: Int,
                      level2Bytes: Int = MachineCaches.current.level2Bytes) -> Bool {
        guard filterBytes <= fusedFilterBytes else { return false }
        return filterBytes <= level2Bytes / 2 || chunkTiles >= min(minimumFusedTiles, totalTiles)
    }

    /// Tile rows per pass of a phase schedule (forward or backward-weights): cache-sized passes (`passBytes` of
    /// transformed tiles), or one pass over all `all` rows when the bytes every further pass re-reads
    /// (`rereadPerPass`: the filter transforms forward, the products M read and written in backward-weights) exceed
    /// writing the whole batch's tiles to memory and reading them back — and that batch fits in half of `limit`.
    /// Wide layers on few tiles tip it: DeepLab's 2048-channel ASPP layer (as 36 dilation phases of 6×6) re-read a
    /// 33 MiB F(2,3) filter in six passes; once over 324 tiles it streams 47 MiB of tiles instead of 167 MiB more filter.
    static func passTileRows(all: Int, bytesPerTileRow: Int, rereadPerPass: Int, limit: Int) -> Int {
        let cacheSized = min(all, max(1, passBytes / bytesPerTileRow))
        let passes = (all + cacheSized - 1) / cacheSized
        guard let batchBytes = CheckedArithmetic.product([all, bytesPerTileRow]), batchBytes <= limit / 2,
              Double(passes - 1) * Double(rereadPerPass) > 2 * Double(batchBytes) else { return cacheSized }
        return all
    }

    /// Tiles per fused chunk below which a filter transform larger than L2 is not worth re-reading (the GEMM's m):
    /// 12 FLOPs per filter byte, between the measured losses at 10 and the gains at 14 (`fuses`).
    static let minimumFusedTiles = 24

    /// GEMM tasks split the tile rows only when the n²·groups GEMMs alone cannot keep the threads busy.
    static func rowsPerTask(rows: Int, independent: Int, threads: Int) -> Int {
        let chunks = max(1, (4 * threads + independent - 1) / independent)
        return max(16, (rows + chunks - 1) / chunks)
    }
}

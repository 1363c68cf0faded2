import ConvLabCore
import ConvLabMatMul
import Foundation

/// Winograd minimal-filtering convolution F(m×m, r×r) (Lavin & Gray 2016), with transforms generated from
/// interpolation points (`WinogradTransform`) and the element-wise stage run as n² GEMMs through the
/// matrix-multiply abstraction (so `--gemm native|blas|strassen` applies).
///
/// Layout, per group: the input is zero-padded into 16-channel blocks ([n][c/16][h][w][16]), so a tile's n×n
/// patch of 16 channels is n² aligned vector loads. The input transform Bᵀ d B writes X[ξν][tile][c]; the GEMMs are
/// M[ξν] (tiles × K) = X[ξν] (tiles × C) · W[ξν] (C × K) with W[ξν] = (G g Gᵀ)[ξν] from plan time; the output
/// transform Aᵀ M A reads 16 output channels as one vector and writes the m×m outputs. Partial tiles at the edges
/// read zero padding and store only their valid outputs.
///
/// An axis with a 1-tap kernel uses the identity (tile 1 along it), so 1×r and r×1 kernels (the factorised layers of
/// the design literature) run as 1-D Winograd. A dilated layer runs as the undilated problem over its polyphase
/// components (`DilationAsPhases`: N·dh·dw small images, one gather and one scatter); a strided one as the stride-1
/// layer over the phases of its input (`StrideAsPhases`: C·sh·sw channels, a ⌈R/sh⌉×⌈S/sw⌉ kernel, one gather).
public struct WinogradBackend: BackwardDataByForward {
    /// Output tile m; nil picks a default for the kernel (4 for 2- to 4-tap kernels, 2 otherwise).
    public var outputTile: Int?
    /// Kernel size r this variant is restricted to; nil accepts any r (the generic `winograd` backend).
    public var kernelSize: Int?
    /// Interpolation points (nil: `WinogradTransform.recommendedPoints`, a searched set where one beat the defaults)
    /// and where the fractions go.
    public var points: [Rational]?
    public var fractions: WinogradTransform.FractionPlacement
    /// Where the filter transform happens: a plan-time table, or inside the products (`FilterTransformingProduct`:
    /// F(4,3) on 3×3 kernels with ± paired points). `.automatic` transforms in the products when the table would not
    /// fit in the last-level cache and a pass has at most 8 tiles.
    public var filterTransform: FilterTransformPlacement

    public enum FilterTransformPlacement: Sendable {
        case automatic, table, inProducts
    }

    /// Whether the products transform the filters themselves (where `FilterTransformingProduct` applies): asked to,
    /// or, automatically, when the table would not fit in the last-level cache — it then streams from memory once
    /// per pass — and a pass has at most 8 tiles, which reuse each transformed value too few times to amortise
    /// reading it. Zen 5, 2 threads, F(4,3), 512 channels (38 MiB table): at 7² (4 tiles) 0.25 ms in the products
    /// against 0.51 from the table; with 16 tiles the table is faster since the short products prefetch it
    /// (`ShortProduct.prefetchAhead`): at 14² 0.82 against 1.00 ms, at 7² with batch 4 0.80 against 0.96 (without
    /// the prefetch the table had taken 1.38 and 1.43). Tables inside L3 stay faster: 256 channels at 14² (9 MiB)
    /// 0.19 against 0.28, 384 at 13² (21 MiB) 0.45 against 0.58 (0.40 with the prefetch).
    public static func transformsFiltersInProducts(_ placement: FilterTransformPlacement, tableBytes: Int, tiles: Int,
                                                   lastLevelBytes: Int = MachineCaches.current.lastLevelBytes) -> Bool {
        switch placement {
        case .table: return false
        case .inProducts: return true
        case .automatic: return tableBytes > lastLevelBytes && tiles <= 8
        }
    }

    public init(outputTile: Int? = nil, kernelSize: Int? = nil, points: [Rational]? = nil,
                fractions: WinogradTransform.FractionPlacement = .g,
                filterTransform: FilterTransformPlacement = .automatic) {
        self.outputTile = outputTile
        self.kernelSize = kernelSize
        self.points = points
        self.fractions = fractions
        self.filterTransform = filterTransform
    }

    /// The generic `winograd` is for experiments with tiles and points; the selector chooses among the fixed variants.
    public var isSelectable: Bool { kernelSize != nil && outputTile != nil }

    public var name: String {
        guard let outputTile, let kernelSize else { return "winograd" }
        return "winograd-f\(outputTile)x\(kernelSize)"
    }

    /// The r of a descriptor's kernel: R, S or both equal it and the other is 1 (or equal).
    static func kernelTaps(_ d: ConvolutionDescriptor) -> Int? {
        switch (d.kernelHeight, d.kernelWidth) {
        case (1, 1): return nil
        case let (r, 1), let (1, r): return r
        case let (r, s) where r == s: return r
        default: return nil
        }
    }

    /// The tile the generic backend uses for an r-tap kernel when none is given: 4 for r = 2, 3 and 4, else 2. The
    /// 2- and 4-tap kernels are mostly strided layers run on their phases (`StrideAsPhases`: 3×3/2 → 2×2, 7×7/2 →
    /// 4×4), where F(4, r) beat F(2, r) 1.3–1.6× (Zen 5, 2 threads: ResNet-50's 7×7/2 stem 0.67 → 0.42 ms, its
    /// 128-channel 3×3/2 layer 0.72 → 0.50).
    static func preferredTile(forKernel r: Int) -> Int { (2...4).contains(r) ? 4 : 2 }

    /// The longest reduction the default tile must serve within the default accuracy ceiling: 2²⁴ terms, beyond any
    /// layer of a real network (the bound grows only with its logarithm).
    static let defaultTileReduction = 1 << 24

    /// The preferred tile's 2-D and 1-D error growth (default points) for r = 2…15; computed once.
    static let preferredTileGrowth: [Int: Double] = {
        var growth: [Int: Double] = [:]
        for r in 2...15 {
            if let t = try? WinogradTransform(outputSize: preferredTile(forKernel: r), kernelSize: r) {
                growth[r] = t.errorGrowth
            }
        }
        return growth
    }()

    /// The default tile for an r-tap kernel along `axes` (1 or 2) axes, or nil with the reason when even the preferred
    /// tile's transforms would put the bound of a long reduction over the default accuracy ceiling: in float32,
    /// F(2, r) grows rounding error ~10⁴× in 2-D from r = 9 on (`convlab transforms`), so the default declines such
    /// kernels rather than run a plan whose check would be vacuous. An explicit tile still runs them when inaccurate
    /// plans are allowed.
    static func defaultTile(forKernel r: Int, axes: Int) -> (tile: Int?, reason: String) {
        let m = preferredTile(forKernel: r)
        guard let growth1D = preferredTileGrowth[r] else {
            return (nil, "no exact F(\(m),\(r)) transform in 64-bit rationals")
        }
        let growth = axes == 2 ? growth1D * growth1D : growth1D
        let bound = errorBound(reduction: defaultTileReduction, heightGrowth: growth, widthGrowth: 1)
        if bound <= AccuracyCeiling.defaultCeiling { return (m, "") }
        return (nil, "F(\(m),\(r)) transforms grow float32 rounding error up to \(String(format: "%.1e", growth))x in "
                + "\(axes)-D, too much for a meaningful bound (\(String(format: "%.1e", bound)) > "
                + "\(String(format: "%.0e", AccuracyCeiling.defaultCeiling))); set the tile explicitly and allow "
                + "inaccurate plans to run it anyway")
    }

    /// A layer run as the problem over its phases (stride or dilation, `what`) is supported where that problem is.
    private func support(phasesOf what: String,
                         _ split: () throws -> (inner: ConvolutionDescriptor, phases: Int)) -> SupportStatus {
        do {
            let (inner, phases) = try split()
            if case .unsupported(let reason) = support(for: inner) {
                return .unsupported("\(what) as \(phases) phases: \(reason)")
            }
            return .supported
        } catch {
            return .unsupported("\(what): \(error)")
        }
    }

    /// The output tile for `d`: the explicit one, else the default (nil when declined).
    func tile(for d: ConvolutionDescriptor, taps r: Int) -> (tile: Int?, reason: String) {
        if let outputTile { return (outputTile, "") }
        return Self.defaultTile(forKernel: r, axes: d.kernelHeight > 1 && d.kernelWidth > 1 ? 2 : 1)
    }

    public func support(for d: ConvolutionDescriptor) -> SupportStatus {
        if !d.isStrideOne {
            return support(phasesOf: "stride \(d.strideHeight)x\(d.strideWidth)") {
                let phases = try StrideAsPhases(d)
                return (phases.inner, phases.phases)
            }
        }
        if !d.isUndilated {
            return support(phasesOf: "dilation \(d.dilationHeight)x\(d.dilationWidth)") {
                let phases = try DilationAsPhases(d)
                return (phases.inner, phases.phases)
            }
        }
        guard let r = Self.kernelTaps(d) else {
            return .unsupported("kernel \(d.kernelHeight)x\(d.kernelWidth): needs r×r, 1×r or r×1 with r > 1")
        }
        if let kernelSize, r != kernelSize {
            return .unsupported("this variant is for \(kernelSize)-tap kernels, not \(d.kernelHeight)x\(d.kernelWidth)")
        }
        let m = outputTile ?? Self.preferredTile(forKernel: r)
        if m + r - 1 > 16 { return .unsupported("F(\(m),\(r)) needs a \(m + r - 1)-point tile; at most 16 supported") }
        let chosen = tile(for: d, taps: r)
        return chosen.tile == nil ? .unsupported(chosen.reason) : .supported
    }

    /// The 1-D transforms along height and width for `d` (identity along a 1-tap axis).
    func transforms(for d: ConvolutionDescriptor) throws -> (height: WinogradTransform, width: WinogradTransform) {
        guard let r = Self.kernelTaps(d) else {
            throw ConvLabError.unsupported(backend: name, reason: "kernel \(d.kernelHeight)x\(d.kernelWidth)")
        }
        guard let m = tile(for: d, taps: r).tile else {
            throw ConvLabError.unsupported(backend: name, reason: tile(for: d, taps: r).reason)
        }
        func axis(_ taps: Int) throws -> WinogradTransform {
            taps == 1 ? try WinogradTransform(outputSize: 1, kernelSize: 1)
                      : try WinogradTransform(outputSize: m, kernelSize: r, points: points, fractions: fractions)
        }
        return (try axis(d.kernelHeight), try axis(d.kernelWidth))
    }

    /// Error bound c·u·(γ_h·γ_w)·(4 + log₂((C/G)·R·S)) with c = 2, relative to the checker's scale.
    /// Why: the transforms multiply rounding errors by their error growth (`WinogradTransform.errorGrowth`, the
    /// product over both axes in 2-D), and the channel sums in the GEMMs add the usual accumulation term, which in
    /// blocked GEMMs grows like log₂ of the reduction rather than linearly; c = 2 covers the random-shape tests
    /// with margin (see `convlab accuracy` / notebooks-data for measured values).
    static func errorBound(descriptor d: ConvolutionDescriptor, heightGrowth: Double, widthGrowth: Double) -> Double {
        errorBound(reduction: d.reductionLength, heightGrowth: heightGrowth, widthGrowth: widthGrowth)
    }

    /// The same for a reduction of `reduction` terms (backward-weights sums N·Ho·Wo).
    static func errorBound(reduction: Int, heightGrowth: Double, widthGrowth: Double) -> Double {
        2 * float32UnitRoundoff * heightGrowth * widthGrowth * (4 + log2(Double(reduction)))
    }

    /// The mean error expected on random data: the transforms' (`TypicalError.winograd`, which dominates the GEMMs'
    /// channel sums), times the Strassen growth if any.
    static func typicalError(reduction n: Int, growth: Double, engine: MatrixEngine) -> Double {
        TypicalError.winograd(reduction: n, growth: growth) * engine.typicalErrorGrowth
    }

    /// What makes a Winograd bound large, for refusals: the 2-D transform growth (and Strassen's, if any).
    static func errorSource(height: WinogradTransform, width: WinogradTransform, engine: MatrixEngine) -> String {
        let tile = "F(\(height.outputSize)x\(width.outputSize),\(height.kernelSize)x\(width.kernelSize))"
        let growth = String(format: "%.1e", height.errorGrowth * width.errorGrowth)
        return ["\(tile) transforms grow rounding error up to \(growth)x", engine.errorSource]
            .filter { !$0.isEmpty }.joined(separator: "; ")
    }

    public func describe(_ d: ConvolutionDescriptor, options: PlanOptions) throws -> PlanDescription {
        try validate(d, options: options)
        if !d.isStrideOne {
            let phases = try StrideAsPhases(d)
            return try phases.summary(backend: name, pass: .forward, inner: describe(phases.inner, options: options),
                                      options: options).summary
        }
        if !d.isUndilated {
            let phases = try DilationAsPhases(d)
            return try phases.summary(backend: name, pass: .forward, inner: describe(phases.inner, options: options),
                                      options: options).summary
        }
        return try WinogradLayout(descriptor: d, backend: self, options: options).summary
    }

    public func makePlan(descriptor: ConvolutionDescriptor, weights: Tensor<Float>, options: PlanOptions) throws
        -> any ConvolutionPlan {
        try validate(descriptor, options: options)
        try validate(weights: weights, for: descriptor)
        if !descriptor.isStrideOne {
            let phases = try StrideAsPhases(descriptor)
            return try StridePhasedForwardPlan(phases: phases, inner: makePlan(descriptor: phases.inner,
                                                                               weights: phases.weights(weights),
                                                                               options: options),
                                               backend: name, options: options)
        }
        if !descriptor.isUndilated {
            let phases = try DilationAsPhases(descriptor)
            return try PhasedForwardPlan(phases: phases, inner: makePlan(descriptor: phases.inner, weights: weights,
                                                                         options: options),
                                         backend: name, options: options)
        }
        let plan = WinogradPlan(layout: try WinogradLayout(descriptor: descriptor, backend: self, options: options),
                                weights: weights, multiplier: options.matrixEngine.makeMultiplier())
        return descriptor.groups == 1 ? WinogradPlanWithBlockedEntry(plan: plan) : plan
    }
}

struct WinogradPlan: ConvolutionPlan {
    let layout: WinogradLayout
    let inputTransform: (height: TransformMatrix, width: TransformMatrix)
    let outputTransform: (height: TransformMatrix, width: TransformMatrix)
    let multiplier: any MatrixMultiplier
    /// W[group][ξν][c][k], C and K padded to multiples of 16 with zeros.
    let filters: AlignedStorage<Float>

    var descriptor: ConvolutionDescriptor { layout.descriptor }
    var summary: PlanDescription { layout.summary }
    private var geometry: WinogradGeometry { layout.geometry }
    private var threads: Int { layout.threads }

    init(layout: WinogradLayout, weights: Tensor<Float>, multiplier: any MatrixMultiplier) {
        self.layout = layout
        self.multiplier = multiplier
        let (height, width) = (layout.height, layout.width)
        inputTransform = (TransformMatrix(rows: height.tileSize, columns: height.tileSize, entries: height.floatBT),
                          TransformMatrix(rows: width.tileSize, columns: width.tileSize, entries: width.floatBT))
        outputTransform = (TransformMatrix(rows: height.outputSize, columns: height.tileSize, entries: height.floatAT),
                           TransformMatrix(rows: width.outputSize, columns: width.tileSize, entries: width.floatAT))
        filters = AlignedStorage(count: layout.filterFloats)
        if layout.filterTransformingProduct != nil {
            weights.scalars.withUnsafeBufferPointer {
                FilterTransformingProduct.arrange($0.baseAddress!, descriptor: layout.descriptor,
                                                  outputBlocks: layout.geometry.outputBlocks, into: filters.pointer)
            }
        } else {
            Self.transformFilters(weights, descriptor: layout.descriptor, geometry: layout.geometry, height: height,
                                  width: width, stripColumns: layout.filterStripColumns, into: filters)
        }
    }

    /// W[g][ξν][c][k] = Σ_{r,s} G_h[ξ][r]·w[k][c][r][s]·G_w[ν][s], in float64, rounded once; each point's C×K
    /// matrix stored as column strips (`stripOffset`).
    static func transformFilters(_ weights: Tensor<Float>, descriptor d: ConvolutionDescriptor,
                                 geometry: WinogradGeometry, height: WinogradTransform, width: WinogradTransform,
                                 stripColumns: Int, into filters: AlignedStorage<Float>) {
        let gh = height.G.map { $0.map(\.doubleValue) }, gw = width.G.map { $0.map(\.doubleValue) }
        let (nh, nw, cp, kp) = (height.tileSize, width.tileSize, geometry.paddedChannels, geometry.paddedOutputChannels)
        let (R, S, cg, kg) = (d.kernelHeight, d.kernelWidth, d.channelsPerGroup, d.outputChannelsPerGroup)
        let w = weights.scalars
        let out = filters.pointer
        var rowTransformed = [Double](repeating: 0, count: nh * S)
        for g in 0..<d.groups {
            for k in 0..<kg {
                for c in 0..<cg {
                    let filter = ((g * kg + k) * cg + c) * R * S
                    for xi in 0..<nh {
                        for s in 0..<S {
                            var sum = 0.0
                            for r in 0..<R { sum += gh[xi][r] * Double(w[filter + r * S + s]) }
                            rowTransformed[xi * S + s] = sum
                        }
                    }
                    for xi in 0..<nh {
                        for nu in 0..<nw {
                            var sum = 0.0
                            for s in 0..<S { sum += rowTransformed[xi * S + s] * gw[nu][s] }
                            out[(g * nh * nw + xi * nw + nu) * cp * kp
                                + stripOffset(c: c, k: k, cp: cp, kp: kp, stripColumns: stripColumns)] = Float(sum)
                        }
                    }
                }
            }
        }
    }

    /// Where W[c][k] of one point lives: strips of `stripColumns` columns (the last one narrower when K is not a
    /// multiple), each cp × width row-major and contiguous.
    static func stripOffset(c: Int, k: Int, cp: Int, kp: Int, stripColumns: Int) -> Int {
        let strip = k / stripColumns
        let width = min(stripColumns, kp - strip * stripColumns)
        return strip * stripColumns * cp + c * width + k % stripColumns
    }

    /// The buffers of one execution, shared with the workers, and the layout of x and y.
    private struct Pointers: @unchecked Sendable {
        let x: UnsafePointer<Float>
        let y: UnsafeMutablePointer<Float>
        let workspace: UnsafeMutableRawBufferPointer
        let filters: UnsafePointer<Float>
        let layout: TensorLayout
    }

    func execute(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
                 workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?) throws {
        try validateBuffers(input: input, output: output, workspace: workspace)
        run(input: input, output: output, workspace: workspace, layout: .nchw, profile: profile)
    }

    /// Both entry points, on checked buffers. nChw16c (one group only: `WinogradPlanWithBlockedEntry`) changes
    /// only the first and last copies: rows of x into the padded blocked buffer, rows of the output transform into y.
    func run(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
             workspace: UnsafeMutableRawBufferPointer, layout tensorLayout: TensorLayout, profile: ExecutionProfile?) {
        let p = Pointers(x: input.baseAddress!, y: output.baseAddress!, workspace: workspace,
                         filters: UnsafePointer(filters.pointer), layout: tensorLayout)
        switch layout.schedule {
        case .fused(let tileRows): executeFused(p, tileRowsPerChunk: tileRows, profile: profile)
        case .phases(let tileRows): executeInPhases(p, tileRowsPerPass: tileRows, profile: profile)
        }
    }

    /// Where the output transform writes block `block` of image n, group g.
    private func outputTarget(_ p: Pointers, n: Int, g: Int, block: Int) -> WinogradGeometry.OutputTarget {
        let d = descriptor
        let plane = d.outputHeight * d.outputWidth
        if p.layout == .nChw16c { return .blocked(p.y + (n * geometry.outputBlocks + block) * plane * 16) }
        return .planes(p.y + (n * d.outputChannels + g * d.outputChannelsPerGroup + block * 16) * plane)
    }

    /// One GEMM per transform point: M[ξν][rows] = X[ξν][rows] · W[g][ξν].
    private func multiply(point: Int, g: Int, x: UnsafePointer<Float>, m: UnsafeMutablePointer<Float>, rows: Int,
                          firstRow: Int, count: Int, filters: UnsafePointer<Float>,
                          scratch: UnsafeMutableRawBufferPointer) {
        let (cp, kp) = (geometry.paddedChannels, geometry.paddedOutputChannels)
        let w = filters + (g * geometry.points + point) * cp * kp
        let a = x + point * WinogradGeometry.pointStride(rows: rows, width: cp) + firstRow * cp
        let c = m + point * WinogradGeometry.pointStride(rows: rows, width: kp) + firstRow * kp
        if layout.usesShortProducts {
            ShortProduct.multiply(m: count, strips: kp / 16, k: cp, a: a, lda: cp, bStrips: w, c: c, ldc: kp,
                                  scratch: scratch.baseAddress!.bindMemory(to: Float.self,
                                                                           capacity: ShortProduct.scratchFloats(k: cp)))
            return
        }
        var first = 0
        while first < kp {
            let width = min(layout.filterStripColumns, kp - first)
            multiplier.multiply(m: count, n: width, k: cp, a: a, lda: cp, b: w + first * cp, ldb: width,
                                c: c + first, ldc: kp, accumulate: false,
                                workspace: scratch)
            first += layout.filterStripColumns
        }
    }

    /// All stages of `tileRowsPerChunk` tile rows of one image per task, in the worker's own buffers.
    private func executeFused(_ p: Pointers, tileRowsPerChunk: Int, profile: ExecutionProfile?) {
        let d = descriptor
        let geometry = geometry
        let chunks = (geometry.tileRows + tileRowsPerChunk - 1) / tileRowsPerChunk
        let b = layout.buffers
        let blockStride = geometry.blockedRows(tileRows: tileRowsPerChunk) * geometry.blockedRowFloats
        // Per-stage time summed over workers (CPU time), reported as phases when profiling.
        let stages = StageTimes(enabled: profile != nil)
        measurePhase("fused (wall)", in: profile) {
            Parallel.forEach(taskCount: d.batch * d.groups * chunks, threads: layout.workers) { worker, task in
                let chunk = task % chunks
                let g = (task / chunks) % d.groups
                let n = task / (chunks * d.groups)
                let firstTileRow = chunk * tileRowsPerChunk
                let tileRows = min(tileRowsPerChunk, geometry.tileRows - firstTileRow)
                let rows = tileRows * geometry.tileColumns
                let blocked = b.blocked.pointer(in: p.workspace, worker: worker)
                let x = b.transformed.pointer(in: p.workspace, worker: worker)
                let m = b.products.pointer(in: p.workspace, worker: worker)
                let scratch = b.gemmScratch.bytes(in: p.workspace, worker: worker)
                let rowBuffer = b.outputRows.pointer(in: p.workspace, worker: worker)
                let transformScratch = b.transformScratch.pointer(in: p.workspace, worker: worker)
                var t0 = stages.now(), blocking = 0
                for block in 0..<geometry.channelBlocks {
                    let tb = stages.now()
                    geometry.blockRows(p.x, layout: p.layout, n: n, g: g, block: block,
                                       firstRow: firstTileRow * geometry.outputHeight,
                                       rowCount: geometry.blockedRows(tileRows: tileRows),
                                       into: blocked + block * blockStride)
                    blocking += stages.now() - tb
                    for local in 0..<tileRows {
                        geometry.transformInput(
                            patches: blocked + block * blockStride + local * geometry.outputHeight * geometry.blockedRowFloats,
                            block: block, firstRow: local * geometry.tileColumns, x: x, rows: rows,
                            transform: inputTransform, scratch: transformScratch)
                    }
                }
                var t1 = stages.now()
                stages.add("block input (cpu)", nanoseconds: blocking)
                stages.add("input transform (cpu)", nanoseconds: t1 - t0 - blocking)
                for point in 0..<geometry.points {
                    multiply(point: point, g: g, x: x, m: m, rows: rows, firstRow: 0, count: rows, filters: p.filters,
                             scratch: scratch)
                }
                t0 = stages.now()
                stages.add("multiply (cpu)", nanoseconds: t0 - t1)
                for block in 0..<geometry.outputBlocks {
                    for local in 0..<tileRows {
                        geometry.transformOutput(m: m, rows: rows, firstRow: local * geometry.tileColumns, block: block,
                                                 tileRow: firstTileRow + local, transform: outputTransform,
                                                 scratch: transformScratch, rowBuffer: rowBuffer,
                                                 target: outputTarget(p, n: n, g: g, block: block))
                    }
                }
                t1 = stages.now()
                stages.add("output transform (cpu)", nanoseconds: t1 - t0)
            }
        }
        stages.report(into: profile)
    }

    /// Stage by stage, `tileRowsPerPass` tile rows of the batch per pass, every stage spread over the threads.
    private func executeInPhases(_ p: Pointers, tileRowsPerPass: Int, profile: ExecutionProfile?) {
        let d = descriptor
        let geometry = geometry
        let points = geometry.points
        let b = layout.buffers
        let (transformed, products) = (b.transformed.pointer(in: p.workspace), b.products.pointer(in: p.workspace))
        let totalTileRows = d.batch * geometry.tileRows
        var first = 0
        while first < totalTileRows {
            let passTileRows = min(tileRowsPerPass, totalTileRows - first)
            let rows = passTileRows * geometry.tileColumns
            let (cp, kp) = (geometry.paddedChannels, geometry.paddedOutputChannels)
            let (groupX, groupM) = (points * WinogradGeometry.pointStride(rows: rows, width: cp),
                                    points * WinogradGeometry.pointStride(rows: rows, width: kp))
            // Each task pads and blocks its tile row's patches (n_h rows of one channel block) into the worker's
            // buffer, in cache, and transforms them: a separate pass over the whole padded image wrote it out and
            // read it back (ResNet's 128-channel 28² 3×3 at batch 8: 7–11% of the layer, Zen 5).
            measurePhase("block and transform input", in: profile) {
                Parallel.forEach(taskCount: d.groups * geometry.channelBlocks * passTileRows, threads: layout.workers) { worker, task in
                    let local = task % passTileRows
                    let block = (task / passTileRows) % geometry.channelBlocks
                    let g = task / (passTileRows * geometry.channelBlocks)
                    let (n, tileRow) = ((first + local) / geometry.tileRows, (first + local) % geometry.tileRows)
                    let patches = b.blocked.pointer(in: p.workspace, worker: worker)
                    geometry.blockRows(p.x, layout: p.layout, n: n, g: g, block: block,
                                       firstRow: tileRow * geometry.outputHeight,
                                       rowCount: geometry.blockedRows(tileRows: 1), into: patches)
                    geometry.transformInput(patches: patches,
                                            block: block, firstRow: local * geometry.tileColumns,
                                            x: transformed + g * groupX, rows: rows,
                                            transform: inputTransform,
                                            scratch: b.transformScratch.pointer(in: p.workspace, worker: worker))
                }
            }
            if let product = layout.filterTransformingProduct {
                let (groups, channels) = (FilterTransformingProduct.groups(rows), d.channelsPerGroup)
                let repacked = b.repacked.pointer(in: p.workspace)
                let rowProducts = layout.runsRowProducts(rows: rows)
                let repackedGroup = FilterTransformingProduct.repackedFloats(rows: rows, channels: channels,
                                                                             rowProducts: rowProducts)
                let perChannel = FilterTransformingProduct.filterFloatsPerChannel
                let filterGroup = geometry.outputBlocks * channels * perChannel
                if rowProducts {
                    measurePhase("repack", in: profile) {
                        Parallel.forEach(taskCount: d.groups * points, threads: layout.workers) { _, task in
                            let g = task / points
                            FilterTransformingProduct.repackForRows(
                                x: transformed + g * groupX, xStride: groupX / points, cp: cp, rows: rows,
                                channels: channels, point: task % points, into: repacked + g * repackedGroup)
                        }
                    }
                    let pairs = (geometry.outputBlocks + 1) / 2
                    measurePhase("multiply (filters transformed in it)", in: profile) {
                        Parallel.forEach(taskCount: d.groups * pairs, threads: layout.workers) { worker, task in
                            let (g, block) = (task / pairs, task % pairs * 2)
                            product.multiplyRows(x: repacked + g * repackedGroup, channels: channels,
                                                 filters: p.filters + g * filterGroup + block * channels * perChannel,
                                                 blocks: min(2, geometry.outputBlocks - block),
                                                 m: products + g * groupM + block * 16, mStride: groupM / points,
                                                 ldm: kp, rows: rows,
                                                 scratch: b.filterRows.pointer(in: p.workspace, worker: worker))
                        }
                    }
                } else {
                    measurePhase("repack", in: profile) {
                        Parallel.forEach(taskCount: d.groups * 6 * groups, threads: layout.workers) { _, task in
                            let g = task / (6 * groups)
                            FilterTransformingProduct.repack(x: transformed + g * groupX, xStride: groupX / points,
                                                             cp: cp, rows: rows, channels: channels,
                                                             row: (task / groups) % 6, group: task % groups,
                                                             into: repacked + g * repackedGroup)
                        }
                    }
                    measurePhase("multiply (filters transformed in it)", in: profile) {
                        Parallel.forEach(taskCount: d.groups * geometry.outputBlocks, threads: layout.workers) { _, task in
                            let (g, block) = (task / geometry.outputBlocks, task % geometry.outputBlocks)
                            product.multiply(x: repacked + g * repackedGroup, channels: channels,
                                             filters: p.filters + g * filterGroup + block * channels * perChannel,
                                             m: products + g * groupM + block * 16, mStride: groupM / points, ldm: kp,
                                             rows: rows)
                        }
                    }
                }
            } else {
                let rowsPerTask = WinogradLayout.rowsPerTask(rows: rows, independent: d.groups * points, threads: threads)
                let parts = (rows + rowsPerTask - 1) / rowsPerTask
                measurePhase("multiply", in: profile) {
                    Parallel.forEach(taskCount: d.groups * points * parts, threads: layout.workers) { worker, task in
                        let part = task % parts
                        let point = (task / parts) % points
                        let g = task / (parts * points)
                        multiply(point: point, g: g, x: transformed + g * groupX, m: products + g * groupM, rows: rows,
                                 firstRow: part * rowsPerTask,
                                 count: min(rowsPerTask, rows - part * rowsPerTask), filters: p.filters,
                                 scratch: b.gemmScratch.bytes(in: p.workspace, worker: worker))
                    }
                }
            }
            measurePhase("output transform", in: profile) {
                Parallel.forEach(taskCount: d.groups * geometry.outputBlocks * passTileRows, threads: layout.workers) { worker, task in
                    let local = task % passTileRows
                    let block = (task / passTileRows) % geometry.outputBlocks
                    let g = task / (passTileRows * geometry.outputBlocks)
                    let (n, tileRow) = ((first + local) / geometry.tileRows, (first + local) % geometry.tileRows)
                    geometry.transformOutput(m: products + g * groupM, rows: rows,
                                             firstRow: local * geometry.tileColumns, block: block, tileRow: tileRow,
                                             transform: outputTransform,
                                             scratch: b.transformScratch.pointer(in: p.workspace, worker: worker),
                                             rowBuffer: b.outputRows.pointer(in: p.workspace, worker: worker),
                                             target: outputTarget(p, n: n, g: g, block: block))
                }
            }
            first += passTileRows
        }
    }
}

/// A one-group Winograd plan with its nChw16c entry point (`ChannelBlockedExecution`): the same schedule, the blocked
/// x copied row by row into the padded buffer and the output transform's rows stored as they are, where NCHW pays a
/// 16×16 transpose per 16 pixels of every channel block on the way in and out (10–20% of a 3×3 layer's time in
/// `compare --profile`). With groups, a group's channels need not start a block, so those plans stay NCHW-only.
struct WinogradPlanWithBlockedEntry: ChannelBlockedExecution {
    let plan: WinogradPlan

    var descriptor: ConvolutionDescriptor { plan.descriptor }
    var summary: PlanDescription { plan.summary }

    func execute(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
                 workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?) throws {
        try plan.execute(input: input, output: output, workspace: workspace, profile: profile)
    }

    func executeBlocked(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
                        workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?) throws {
        try validateBlockedBuffers(input: input, output: output, workspace: workspace)
        plan.run(input: input, output: output, workspace: workspace, layout: .nChw16c, profile: profile)
    }
}

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
/// the design literature) run as 1-D Winograd. Stride > 1 and dilation are not supported (reported, not crashed).
public struct WinogradBackend: Convolution {
    /// Output tile m; nil picks a default for the kernel (4 for 3-tap, 2 otherwise).
    public var outputTile: Int?
    /// Kernel size r this variant is restricted to; nil accepts any r (the generic `winograd` backend).
    public var kernelSize: Int?
    /// Interpolation points (nil: `WinogradTransform.defaultPoints`) and where the fractions go.
    public var points: [Rational]?
    public var fractions: WinogradTransform.FractionPlacement

    public init(outputTile: Int? = nil, kernelSize: Int? = nil, points: [Rational]? = nil,
                fractions: WinogradTransform.FractionPlacement = .g) {
        self.outputTile = outputTile
        self.kernelSize = kernelSize
        self.points = points
        self.fractions = fractions
    }

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

    static func defaultTile(forKernel r: Int) -> Int { r == 3 ? 4 : 2 }

    public func support(for d: ConvolutionDescriptor) -> SupportStatus {
        if !d.isStrideOne { return .unsupported("stride \(d.strideHeight)x\(d.strideWidth): Winograd tiles need stride 1") }
        if !d.isUndilated { return .unsupported("dilation: Winograd tiles need undilated kernels") }
        guard let r = Self.kernelTaps(d) else {
            return .unsupported("kernel \(d.kernelHeight)x\(d.kernelWidth): needs r×r, 1×r or r×1 with r > 1")
        }
        if let kernelSize, r != kernelSize {
            return .unsupported("this variant is for \(kernelSize)-tap kernels, not \(d.kernelHeight)x\(d.kernelWidth)")
        }
        let m = outputTile ?? Self.defaultTile(forKernel: r)
        if m + r - 1 > 16 { return .unsupported("F(\(m),\(r)) needs a \(m + r - 1)-point tile; at most 16 supported") }
        return .supported
    }

    /// The 1-D transforms along height and width for `d` (identity along a 1-tap axis).
    func transforms(for d: ConvolutionDescriptor) throws -> (height: WinogradTransform, width: WinogradTransform) {
        guard let r = Self.kernelTaps(d) else {
            throw ConvLabError.unsupported(backend: name, reason: "kernel \(d.kernelHeight)x\(d.kernelWidth)")
        }
        let m = outputTile ?? Self.defaultTile(forKernel: r)
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
    public func expectedErrorBound(for d: ConvolutionDescriptor) -> Double {
        guard let (h, w) = try? transforms(for: d) else { return 1 }
        return Self.errorBound(descriptor: d, heightGrowth: h.errorGrowth, widthGrowth: w.errorGrowth)
    }

    static func errorBound(descriptor d: ConvolutionDescriptor, heightGrowth: Double, widthGrowth: Double) -> Double {
        2 * float32UnitRoundoff * heightGrowth * widthGrowth * (4 + log2(Double(d.reductionLength)))
    }

    public func makePlan(descriptor: ConvolutionDescriptor, weights: Tensor<Float>, options: PlanOptions) throws
        -> any ConvolutionPlan {
        try validatePlanInputs(descriptor: descriptor, weights: weights, options: options)
        let (h, w) = try transforms(for: descriptor)
        return try WinogradPlan(descriptor: descriptor, weights: weights, options: options, backendName: name,
                                height: h, width: w)
    }
}

struct WinogradPlan: ConvolutionPlan {
    let descriptor: ConvolutionDescriptor
    let backendName: String
    let expectedErrorBound: Double
    let geometry: WinogradGeometry
    let inputTransform: (height: TransformMatrix, width: TransformMatrix)
    let outputTransform: (height: TransformMatrix, width: TransformMatrix)
    let multiplier: any MatrixMultiplier
    let threads: Int
    /// W[group][ξν][c][k], C and K padded to multiples of 16 with zeros.
    let filters: AlignedStorage<Float>
    let blockedInput: WorkspaceRegion<Float>
    let transformedInput: WorkspaceRegion<Float>
    let products: WorkspaceRegion<Float>
    let gemmScratch: WorkspaceRegion<UInt8>
    let gemmScratchPerWorker: Int
    let outputRows: WorkspaceRegion<Float>
    /// Tile rows (of all images) per chunk: input transform, GEMMs and output transform run chunk by chunk so that
    /// X and M of a chunk (≈ 8 MiB) stay in cache instead of round-tripping through DRAM.
    let tileRowsPerChunk: Int
    /// GEMM rows (tiles) per GEMM task within a chunk.
    let rowsPerTask: Int
    let workspaceBytes: Int

    var isDeterministic: Bool { true }
    var details: String {
        "F(\(geometry.outputHeight)x\(geometry.outputWidth),\(descriptor.kernelHeight)x\(descriptor.kernelWidth)) "
            + "\(geometry.tilesPerImage) tiles \(multiplier.name)"
    }

    init(descriptor d: ConvolutionDescriptor, weights: Tensor<Float>, options: PlanOptions, backendName: String,
         height: WinogradTransform, width: WinogradTransform) throws {
        descriptor = d
        self.backendName = backendName
        threads = options.threads
        expectedErrorBound = WinogradBackend.errorBound(descriptor: d, heightGrowth: height.errorGrowth,
                                                        widthGrowth: width.errorGrowth)
        let geometry = WinogradGeometry(descriptor: d, height: height, width: width)
        self.geometry = geometry
        inputTransform = (TransformMatrix(rows: height.tileSize, columns: height.tileSize, entries: height.floatBT),
                          TransformMatrix(rows: width.tileSize, columns: width.tileSize, entries: width.floatBT))
        outputTransform = (TransformMatrix(rows: height.outputSize, columns: height.tileSize, entries: height.floatAT),
                           TransformMatrix(rows: width.outputSize, columns: width.tileSize, entries: width.floatAT))
        multiplier = options.matrixEngine.makeMultiplier()

        let (cp, kp, points) = (geometry.paddedChannels, geometry.paddedOutputChannels, geometry.points)
        let filterFloats = d.groups * points * cp * kp
        try ResourceLimits.check("the Winograd filter transforms", bytes: filterFloats * 4,
                                 limit: options.limits.maxWorkspaceBytes)
        let bytesPerTileRow = d.groups * points * geometry.tileColumns * (cp + kp) * MemoryLayout<Float>.stride
        tileRowsPerChunk = min(d.batch * geometry.tileRows, max(1, Self.chunkBytes / bytesPerTileRow))
        let chunkRows = tileRowsPerChunk * geometry.tileColumns
        rowsPerTask = Self.rowsPerTask(rows: chunkRows, independent: d.groups * points, threads: threads)
        gemmScratchPerWorker = multiplier.workspaceBytes(m: rowsPerTask, n: kp, k: cp)
        var layout = WorkspaceLayout()
        blockedInput = layout.reserve(Float.self, count: geometry.blockedInputCount)
        transformedInput = layout.reserve(Float.self, count: d.groups * points * chunkRows * cp)
        products = layout.reserve(Float.self, count: d.groups * points * chunkRows * kp)
        gemmScratch = layout.reserve(UInt8.self, count: threads * gemmScratchPerWorker)
        outputRows = layout.reserve(Float.self, count: threads * geometry.outputRowFloats)
        workspaceBytes = layout.byteCount
        try ResourceLimits.check("the Winograd workspace (\(chunkRows) tiles per pass, \(points) transform points)",
                                 bytes: workspaceBytes, limit: options.limits.maxWorkspaceBytes)
        filters = AlignedStorage(count: filterFloats)
        Self.transformFilters(weights, descriptor: d, geometry: geometry, height: height, width: width, into: filters)
    }

    static let chunkBytes = 8 * 1024 * 1024

    /// GEMM tasks split the tile rows only when the n²·groups GEMMs alone cannot keep the threads busy.
    static func rowsPerTask(rows: Int, independent: Int, threads: Int) -> Int {
        let chunks = max(1, (4 * threads + independent - 1) / independent)
        return max(16, (rows + chunks - 1) / chunks)
    }

    /// W[g][ξν][c][k] = Σ_{r,s} G_h[ξ][r]·w[k][c][r][s]·G_w[ν][s], in float64, rounded once.
    static func transformFilters(_ weights: Tensor<Float>, descriptor d: ConvolutionDescriptor,
                                 geometry: WinogradGeometry, height: WinogradTransform, width: WinogradTransform,
                                 into filters: AlignedStorage<Float>) {
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
                            out[((g * nh * nw + xi * nw + nu) * cp + c) * kp + k] = Float(sum)
                        }
                    }
                }
            }
        }
    }

    func execute(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
                 workspace: Workspace?, profile: ExecutionProfile?) throws {
        try validateBuffers(input: input, output: output, workspace: workspace)
        guard let workspace else { return }  // unreachable: the workspace is never empty
        let d = descriptor
        let geometry = geometry
        let shared = UncheckedSendable((input.baseAddress!, output.baseAddress!, blockedInput.pointer(in: workspace),
                                        transformedInput.pointer(in: workspace), products.pointer(in: workspace),
                                        UnsafeMutableRawPointer(gemmScratch.pointer(in: workspace)),
                                        UnsafePointer(filters.pointer)))
        let rowBuffers = UncheckedSendable(outputRows.pointer(in: workspace))
        let channelBlocks = geometry.channelBlocks

        measurePhase("pad and block input", in: profile) {
            Parallel.forEach(taskCount: d.batch * d.groups * channelBlocks, threads: threads) { _, task in
                let (x, _, blocked, _, _, _, _) = shared.value
                geometry.blockInput(x, task: task, into: blocked)
            }
        }

        let totalTileRows = d.batch * geometry.tileRows
        var firstTileRow = 0
        while firstTileRow < totalTileRows {
            let chunk = WinogradGeometry.Chunk(firstTileRow: firstTileRow,
                                               tileRows: min(tileRowsPerChunk, totalTileRows - firstTileRow))
            executeChunk(chunk, shared: shared, rowBuffers: rowBuffers, profile: profile)
            firstTileRow += tileRowsPerChunk
        }
    }

    private func executeChunk(
        _ chunk: WinogradGeometry.Chunk,
        shared: UncheckedSendable<(UnsafePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>,
                                   UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutableRawPointer,
                                   UnsafePointer<Float>)>,
        rowBuffers: UncheckedSendable<UnsafeMutablePointer<Float>>, profile: ExecutionProfile?
    ) {
        let d = descriptor
        let geometry = geometry
        let (points, cp, kp) = (geometry.points, geometry.paddedChannels, geometry.paddedOutputChannels)
        let (inputTransform, outputTransform) = (inputTransform, outputTransform)
        let rows = chunk.tileRows * geometry.tileColumns
        let channelBlocks = cp / 16
        let outputBlocks = kp / 16

        measurePhase("input transform", in: profile) {
            Parallel.forEach(taskCount: d.groups * channelBlocks * chunk.tileRows, threads: threads) { _, task in
                let (_, _, blocked, transformed, _, _, _) = shared.value
                geometry.transformInputRow(task: task, chunk: chunk, blocked: blocked, transform: inputTransform,
                                           into: transformed)
            }
        }

        let chunks = (rows + rowsPerTask - 1) / rowsPerTask
        let (multiplier, rowsPerTask, scratchPerWorker) = (multiplier, rowsPerTask, gemmScratchPerWorker)
        measurePhase("multiply", in: profile) {
            Parallel.forEach(taskCount: d.groups * points * chunks, threads: threads) { worker, task in
                let (_, _, _, transformed, products, scratch, filters) = shared.value
                let part = task % chunks
                let point = (task / chunks) % points
                let g = task / (chunks * points)
                let first = part * rowsPerTask
                let count = min(rowsPerTask, rows - first)
                let matrix = g * points + point
                multiplier.multiply(m: count, n: kp, k: cp,
                                    a: transformed + (matrix * rows + first) * cp, lda: cp,
                                    b: filters + matrix * cp * kp, ldb: kp,
                                    c: products + (matrix * rows + first) * kp, ldc: kp,
                                    accumulate: false, workspace: scratch + worker * scratchPerWorker)
            }
        }

        measurePhase("output transform", in: profile) {
            Parallel.forEach(taskCount: d.groups * outputBlocks * chunk.tileRows, threads: threads) { worker, task in
                let (_, y, _, _, products, _, _) = shared.value
                geometry.transformOutputRow(task: task, chunk: chunk, products: products, transform: outputTransform,
                                            rowBuffer: rowBuffers.value + worker * geometry.outputRowFloats, into: y)
            }
        }
    }
}

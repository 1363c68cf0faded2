import ConvLabCore
import ConvLabMatMul

/// `im2col`'s plan for a convolution whose kernel covers its whole unpadded input (one output position): a fully
/// connected layer, such as a classifier run as a convolution. Its lowering is the input itself, and the batch's
/// inputs are the rows of one matrix, so the whole batch is one product Y[N × K] = X[N × C·R·S] · Wᵀ, with W (K ×
/// C·R·S, as stored) the transposed operand and Y already in NCHW order (each image's K outputs are one row).
/// Per-image products would read the weights once per image: at batch 16, MobileNetV2's 1280→1000 classifier read
/// 5 MB sixteen times for 41 MFLOP and ran at ~4 GFLOP/s. Tasks split K; each task's rows of W are read once for
/// every image. Up to `FullyConnectedGeometry.kernelImages` images on the native engine the product is
/// `FullyConnectedKernel` (dot products along rows, no packing); more images, or another engine the user chose, go
/// through the engine's A·Bᵀ.
struct FullyConnectedPlan: ConvolutionPlan {
    let geometry: FullyConnectedGeometry
    let weights: [Float]
    let multiplier: any MatrixMultiplier

    var descriptor: ConvolutionDescriptor { geometry.descriptor }
    var summary: PlanDescription { geometry.summary }

    init(geometry: FullyConnectedGeometry, weights: Tensor<Float>, multiplier: any MatrixMultiplier) {
        self.geometry = geometry
        self.weights = weights.scalars
        self.multiplier = multiplier
    }

    func execute(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
                 workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?) throws {
        try validateBuffers(input: input, output: output, workspace: workspace)
        let (d, g) = (descriptor, geometry)
        let (features, k) = (g.features, d.outputChannels)
        let shared = UncheckedSendable((input.baseAddress!, output.baseAddress!, workspace))
        measurePhase("multiply", in: profile) {
            weights.withUnsafeBufferPointer { w in
                let weights = UncheckedSendable(w.baseAddress!)
                Parallel.forEach(taskCount: g.blocks, threads: g.workers) { worker, block in
                    let (x, y, workspace) = shared.value
                    let k0 = block * g.blockColumns
                    if g.usesKernel {
                        FullyConnectedKernel.run(x: x, images: d.batch, w: weights.value,
                                                 rows: k0..<min(k, k0 + g.blockColumns), features: features, y: y,
                                                 ldy: k)
                        return
                    }
                    multiplier.multiplyTransposedB(
                        m: d.batch, n: min(g.blockColumns, k - k0), k: features, a: x, lda: features,
                        b: weights.value + k0 * features, ldb: features, c: y + k0, ldc: k, accumulate: false,
                        workspace: g.gemmScratch.bytes(in: workspace, worker: worker))
                }
            }
        }
    }
}

/// When a convolution is a fully connected layer, and its task split and workspace.
struct FullyConnectedGeometry: Sendable {
    let descriptor: ConvolutionDescriptor
    /// C·R·S: the length of each output's dot product, and the row length of X and W.
    let features: Int
    /// Dot products along rows (`FullyConnectedKernel`) instead of the engine's product.
    let usesKernel: Bool
    /// Output channels per task: whole 64-column strips for the engine, multiples of 4 for the kernel.
    let blockColumns: Int
    let blocks: Int
    let workers: Int
    let gemmScratch: WorkspaceRegion<UInt8>
    let summary: PlanDescription

    /// The kernel's 4×4 blocks use the FMA units about half as well as the GEMM's 6×64 tiles but skip its packing
    /// pass. Measured (Intel kind, 2 threads, ms kernel / GEMM): 1280→1000 at batch 16 0.34 / 0.96, 32 0.60 / 1.15,
    /// 128 2.06 / 2.60; 4096→4096 at 64 20.5 / 22.8; VGG's 25088→4096 at 32 76 / 105. Beyond 128 images, unmeasured,
    /// the GEMM's reuse should win.
    static let kernelImages = 128

    /// A window that is the whole input — no padding, kernel equal to the input, undilated — has one output position
    /// whatever the stride; one group. A 1×1 kernel on a 1×1 map is the common case.
    static func applies(to d: ConvolutionDescriptor) -> Bool {
        d.groups == 1 && d.padding.isZero && d.kernelHeight == d.inputHeight && d.kernelWidth == d.inputWidth
            && d.dilationHeight == 1 && d.dilationWidth == 1
    }

    init(descriptor d: ConvolutionDescriptor, options: PlanOptions) throws {
        descriptor = d
        let what = "the fully connected workspace"
        features = try CheckedArithmetic.product([d.inputChannels, d.kernelHeight, d.kernelWidth], what: what)
        usesKernel = options.matrixEngine == .native && d.batch <= Self.kernelImages
        // Enough blocks for 4 tasks per thread where K allows; each block of W is then read by one task only.
        let unit = usesKernel ? 4 : 64
        let units = (d.outputChannels + unit - 1) / unit
        let wanted = min(units, 4 * options.threads)
        blockColumns = (units + wanted - 1) / wanted * unit
        blocks = (d.outputChannels + blockColumns - 1) / blockColumns
        workers = Parallel.workers(threads: options.threads, tasks: blocks)
        let multiplier = options.matrixEngine.makeMultiplier()
        var layout = WorkspaceLayout()
        gemmScratch = try layout.reserve(UInt8.self, count: usesKernel ? 0 : multiplier.workspaceBytes(
                                             m: d.batch, n: blockColumns, k: features),
                                         workers: workers, what: what)
        try ResourceLimits.check(what, bytes: layout.byteCount, limit: options.limits.maxWorkspaceBytes)
        summary = PlanDescription(
            backend: "im2col", variant: usesKernel ? "fully connected" : "fully connected gemm",
            errorBound: usesKernel ? FullyConnectedKernel.errorBound(features: features)
                : options.matrixEngine.errorBound(depth: features),
            errorSource: options.matrixEngine.errorSource,
            typicalError: usesKernel ? FullyConnectedKernel.typicalError(features: features)
                : options.matrixEngine.typicalError(depth: features),
            workspaceBytes: layout.byteCount, persistentBytes: d.weightCount * 4,
            work: WorkEstimate([.memory(bytes: Double(d.weightCount + d.inputCount + d.outputCount) * 4),
                                usesKernel
                                    ? .loadBoundKernel(flops: Double(d.directFLOPs) / 2, taps: features, tasks: blocks)
                                    : .gemm(flops: Double(d.directFLOPs), m: d.batch, n: blockColumns, k: features,
                                            tasks: blocks)]))
        try options.accuracy.admit(summary)
    }
}

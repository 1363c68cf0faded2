import ConvLabCore

/// A strided layer as one stride-1 layer over the phases of its padded input (space-to-depth), so that algorithms
/// whose tiles need stride 1 — Winograd — serve strided stems and downsampling layers.
///
/// With x zero-padded (xp) and stride (sh, sw), y[oh][ow] = Σ_{c,r,s} xp[c][oh·sh + r][ow·sw + s]·w[c][r][s].
/// Writing r = sh·r′ + a and s = sw·s′ + b (a < sh, b < sw), the input row oh·sh + r is row oh + r′ of the phase
/// xp[c][a::sh][b::sw]. So y is the stride-1, unpadded correlation of the sh·sw·C phase planes
/// x′[c·sh·sw + a·sw + b][i][j] = xp[c][i·sh + a][j·sw + b] with the ⌈R/sh⌉×⌈S/sw⌉ kernels
/// w′[k][c·sh·sw + a·sw + b][r′][s′] = w[k][c][sh·r′ + a][sw·s′ + b] (zero past R or S) — the same outputs, in place:
/// no scatter. AlexNet's 11×11/4 stem on 3 channels becomes a 3×3 layer on 48 channels, which F(4,3) runs in a
/// quarter of the direct method's multiplications even after the kernel grows from 121 to 144 taps.
///
/// Channel c′ keeps its group (a group's phases are contiguous), and each output sums the same nonzero products
/// (the zero taps add nothing), so the inner plan's bound holds. The cost is one gather of the input.
struct StrideAsPhases: Sendable {
    let descriptor: ConvolutionDescriptor
    /// The stride-1 problem: C·sh·sw channels, ⌈R/sh⌉×⌈S/sw⌉ kernel, (Ho + R′ − 1)×(Wo + S′ − 1) input, no padding.
    let inner: ConvolutionDescriptor

    var phases: Int { descriptor.strideHeight * descriptor.strideWidth }

    /// Throws `.unsupported` for stride-1 or dilated layers, `.sizeOverflow` when the phases would not fit.
    init(_ d: ConvolutionDescriptor) throws {
        guard !d.isStrideOne else {
            throw ConvLabError.unsupported(backend: "stride as phases", reason: "the layer has stride 1")
        }
        guard d.isUndilated else {
            throw ConvLabError.unsupported(backend: "stride as phases", reason: "dilation \(d.dilationHeight)x"
                                           + "\(d.dilationWidth) with stride \(d.strideHeight)x\(d.strideWidth)")
        }
        descriptor = d
        let (rows, columns) = ((d.kernelHeight + d.strideHeight - 1) / d.strideHeight,
                               (d.kernelWidth + d.strideWidth - 1) / d.strideWidth)
        let channels = try CheckedArithmetic.product([d.inputChannels, d.strideHeight, d.strideWidth],
                                                     what: "the channels of the stride phases")
        inner = try ConvolutionDescriptor(
            batch: d.batch, inputChannels: channels, inputHeight: d.outputHeight + rows - 1,
            inputWidth: d.outputWidth + columns - 1, outputChannels: d.outputChannels, kernelHeight: rows,
            kernelWidth: columns, groups: d.groups)
    }

    /// "stride 4x4 as 16 phases" and the inner plan's variant.
    func variant(inner: String) -> String {
        let d = descriptor
        return "stride \(d.strideHeight)x\(d.strideWidth) as \(phases) phases" + (inner.isEmpty ? "" : ": \(inner)")
    }

    /// Each tap of w (K × C/G × R × S) with its place in w′ (K × C·sh·sw/G × R′ × S′): `body(index in w, index in
    /// w′)`. Every entry of w has exactly one, so w′ is w scattered and dw is dw′ gathered.
    private func forEachTap(_ body: (Int, Int) -> Void) {
        let (d, f) = (descriptor, inner)
        let (sh, sw, R, S) = (d.strideHeight, d.strideWidth, d.kernelHeight, d.kernelWidth)
        let (rows, columns, cg) = (f.kernelHeight, f.kernelWidth, d.channelsPerGroup)
        for k in 0..<d.outputChannels {
            for c in 0..<cg {
                for r in 0..<R {
                    for s in 0..<S {
                        let channel = (c * sh + r % sh) * sw + s % sw
                        body(((k * cg + c) * R + r) * S + s,
                             ((k * f.channelsPerGroup + channel) * rows + r / sh) * columns + s / sw)
                    }
                }
            }
        }
    }

    /// w′ from w, zero at the taps past R or S.
    func weights(_ weights: Tensor<Float>) throws -> Tensor<Float> {
        var phased = [Float](repeating: 0, count: inner.weightCount)
        weights.scalars.withUnsafeBufferPointer { w in forEachTap { phased[$1] = w[$0] } }
        return try Tensor(shape: inner.weightShape, scalars: phased)
    }

    /// dw from the inner problem's dw′.
    func weightGradient(from phased: UnsafePointer<Float>, into dw: UnsafeMutablePointer<Float>) {
        forEachTap { dw[$0] = phased[$1] }
    }

    /// The inner plan's description of `pass` with the phase buffers in the workspace and the gather in the work:
    /// the same bound, typical error and determinism. The first region holds x′, and for backward-weights dw′ after
    /// it; the second is the inner plan's workspace.
    func summary(backend: String, pass: ConvolutionPass, inner plan: PlanDescription, options: PlanOptions) throws
        -> (summary: PlanDescription, buffers: WorkspaceRegion<Float>, inner: WorkspaceRegion<UInt8>) {
        var layout = WorkspaceLayout()
        let buffers = try layout.reserve(Float.self, count: inner.inputCount
                                             + (pass == .backwardWeights ? inner.weightCount : 0),
                                         what: "the stride phases of the input")
        let innerBytes = try layout.reserve(UInt8.self, count: plan.workspaceBytes, what: "the inner plan's workspace")
        try ResourceLimits.check("the workspace of \(phases) stride phases", bytes: layout.byteCount,
                                 limit: options.limits.maxWorkspaceBytes)
        var work = plan.work
        work?.stages.append(.memory(bytes: Double(descriptor.inputCount + inner.inputCount) * 4))
        let summary = PlanDescription(
            backend: backend, pass: pass, variant: variant(inner: plan.variant), errorBound: plan.errorBound,
            errorSource: plan.errorSource, typicalError: plan.typicalError, workspaceBytes: layout.byteCount,
            persistentBytes: plan.persistentBytes, isDeterministic: plan.isDeterministic, work: work)
        return (summary, buffers, innerBytes)
    }

    /// x′ from x (N×C×H×W): every float of x′ written, the padding as zeros. One task per input plane, which writes
    /// its sh·sw phase planes (contiguous in x′) row by row through the strided row copy.
    func gatherInput(_ x: UnsafePointer<Float>, into target: UnsafeMutablePointer<Float>, threads: Int) {
        let (d, f) = (descriptor, inner)
        let (H, W, sh, sw) = (d.inputHeight, d.inputWidth, d.strideHeight, d.strideWidth)
        let (phaseHeight, phaseWidth) = (f.inputHeight, f.inputWidth)
        let (top, left) = (d.padding.top, d.padding.left)
        let shared = UncheckedSendable((x, target))
        Parallel.forEach(taskCount: d.batch * d.inputChannels, threads: threads) { _, plane in
            let (x, target) = shared.value
            let source = x + plane * H * W
            var out = target + plane * sh * sw * phaseHeight * phaseWidth
            for a in 0..<sh {
                for b in 0..<sw {
                    for i in 0..<phaseHeight {
                        let row = i * sh + a - top
                        copyPaddedRow(row >= 0 && row < H ? source + row * W : nil, width: W, stride: sw,
                                      offset: b - left, into: out, count: phaseWidth)
                        out += phaseWidth
                    }
                }
            }
        }
    }
}

/// A strided layer's forward pass through a stride-1 forward plan of its phases (`StrideAsPhases`).
struct StridePhasedForwardPlan: ConvolutionPlan {
    let phases: StrideAsPhases
    let inner: any ConvolutionPlan
    let summary: PlanDescription
    let input: WorkspaceRegion<Float>
    let innerWorkspace: WorkspaceRegion<UInt8>
    let threads: Int

    var descriptor: ConvolutionDescriptor { phases.descriptor }

    init(phases: StrideAsPhases, inner: any ConvolutionPlan, backend: String, options: PlanOptions) throws {
        self.phases = phases
        self.inner = inner
        threads = options.threads
        (summary, input, innerWorkspace) = try phases.summary(backend: backend, pass: .forward, inner: inner.summary,
                                                              options: options)
    }

    func execute(input x: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
                 workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?) throws {
        try validateBuffers(input: x, output: output, workspace: workspace)
        let phased = input.pointer(in: workspace)
        measurePhase("gather stride phases", in: profile) {
            phases.gatherInput(x.baseAddress!, into: phased, threads: threads)
        }
        try inner.execute(input: UnsafeBufferPointer(start: phased, count: phases.inner.inputCount), output: output,
                          workspace: innerWorkspace.bytes(in: workspace), profile: profile)
    }
}

/// A strided layer's backward-weights pass through the stride-1 one over its phases: dy is the inner problem's dy as
/// it is (the outputs are the same), x′ is gathered, and dw is read out of the inner dw′.
struct StridePhasedWeightGradientPlan: PassPlan {
    let phases: StrideAsPhases
    let inner: any PassPlan
    let summary: PlanDescription
    /// x′, then dw′.
    let buffers: WorkspaceRegion<Float>
    let innerWorkspace: WorkspaceRegion<UInt8>
    let threads: Int

    var descriptor: ConvolutionDescriptor { phases.descriptor }

    init(phases: StrideAsPhases, inner: any PassPlan, backend: String, options: PlanOptions) throws {
        self.phases = phases
        self.inner = inner
        threads = options.threads
        (summary, buffers, innerWorkspace) = try phases.summary(backend: backend, pass: .backwardWeights,
                                                                inner: inner.summary, options: options)
    }

    func execute(_ operands: PassOperands, workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?) throws {
        try validate(operands, workspace: workspace)
        let phased = buffers.pointer(in: workspace)
        let dwPhased = phased + phases.inner.inputCount
        measurePhase("gather stride phases", in: profile) {
            phases.gatherInput(operands.input.baseAddress!, into: phased, threads: threads)
        }
        try inner.execute(PassOperands(input: UnsafeBufferPointer(start: phased, count: phases.inner.inputCount),
                                       gradOutput: operands.gradOutput,
                                       output: UnsafeMutableBufferPointer(start: dwPhased,
                                                                          count: phases.inner.weightCount)),
                          workspace: innerWorkspace.bytes(in: workspace), profile: profile)
        measurePhase("read dw from the phases", in: profile) {
            phases.weightGradient(from: dwPhased, into: operands.output.baseAddress!)
        }
    }
}

import ConvLabCore

/// Backward-weights of a 1×1, unpadded layer with x and dy exchanged: input channels along the lanes.
///
/// dw[k][c] = Σ_n Σ_q dy[n][k][q] · x[n][c][q·s] is symmetric in dy and the positions of x the outputs read, so the
/// layer with K input and C output channels (x′ = dy, dy′ = x at those positions) has dw′ = dwᵀ. The channel-vector plan sums dw′ as its transpose,
/// [k][c], with C along the lanes: that is dw itself, summed straight into the output. Against the plan of the layer
/// as given (K along the lanes):
/// - no K×C transpose at the end (MobileNetV2's 960 → 160 at 7²: 600 KiB of dw, a quarter of the pass);
/// - the lanes fill the register tile's 4 vectors whenever C does (960 is 15 tiles; K = 160 left a 2-vector tile);
/// - a narrow K no longer halves the kernel's FMAs per broadcast (MobileNetV2's 32 → 16 at 112²: 16 lanes).
/// At stride 1 the NCHW entry transposes x instead of dy (and no dw), so it runs the exchanged plan only where that
/// moves fewer floats: N·HW·C against N·HW·K + K·C (ResNet-50's 64 → 256 at 56²: 0.37 → 0.26 ms; its 256 → 64, and
/// MobileNetV2's 32 → 16 at 112², 1.2–1.6× slower exchanged, keep the plan as given).
///
/// The nChw16c entry returns dw in Oihw16o, which is what the plan as given sums in place (K along the lanes), with x
/// and dy read in place: no transpose and no gather at all. It runs that plan on one image where K fills a 4-vector
/// block (K ≥ 64; Zen 5, 2 threads: ConvNeXt's 96 → 384 at 56² 0.68 → 0.47 ms, others within 4%). Narrower K (the
/// as-given kernels would multiply 1–3 vectors per broadcast) and batches keep the exchanged plan, both operands read
/// in place (a strided layer's x gathered first), and block its K×C result at the end: ResNet-50's 1024 → 256 at 14²,
/// batch 32, ran 1.6× slower as given (7.7 → 12.1 ms; not yet understood: the NCHW entry's plan as given takes 8.2).
struct PointwiseExchangedWeightGradientPlan: ChannelBlockedPassExecution {
    let descriptor: ConvolutionDescriptor
    /// The channel-vector plan of the exchanged layer, delivering its dwᵀ.
    let exchanged: ChannelVectorWeightGradientPlan
    /// The plan of the layer as given: the NCHW entry's where exchanging would transpose more (and at stride > 1),
    /// the blocked entry's on one image with K ≥ 64.
    let asGiven: ChannelVectorWeightGradientPlan
    let exchangesNCHW: Bool
    let blockedRunsAsGiven: Bool
    /// The blocked entry's exchanged plan (K < 64, or a batch): a strided layer's x at the positions its outputs
    /// read, nChw16c [n][C/16][Ho·Wo][16] (empty at stride 1), and dw K×C before it is blocked, after the exchanged
    /// plan's workspace.
    let gathered: WorkspaceRegion<Float>
    let exchangedResult: WorkspaceRegion<Float>
    /// The NCHW entry's plan, with the workspace of both entries.
    let summary: PlanDescription
    let blockedSummary: PlanDescription

    /// 1×1, no padding, one group, input channels in whole vectors (dw's rows are then the plan's lanes), and more
    /// than a stem's few output channels (the exchanged x′ = dy is read blocked in place); strided, only where the
    /// K×C transpose it saves outweighs gathering x, K ≥ N·Ho·Wo (Zen 5, 2 threads: ResNet-50's 1024 → 2048 at
    /// 14²/2 0.63 → 0.41 ms; 64 → 128 at 56²/2, 784 outputs, 7% slower exchanged).
    static func applies(to d: ConvolutionDescriptor) -> Bool {
        d.kernelHeight == 1 && d.kernelWidth == 1 && d.groups == 1
            && d.padding == Padding(top: 0, bottom: 0, left: 0, right: 0) && d.inputChannels % 16 == 0
            && d.outputChannels > FewChannelDirectGeometry.maximumChannels
            && (d.isStrideOne || d.outputChannels >= d.batch * d.outputHeight * d.outputWidth)
    }

    /// The layer with x and dy exchanged: K input channels, C output channels, the same positions.
    static func exchangedLayer(_ d: ConvolutionDescriptor) throws -> ConvolutionDescriptor {
        try ConvolutionDescriptor(batch: d.batch, inputChannels: d.outputChannels, inputHeight: d.outputHeight,
                                  inputWidth: d.outputWidth, outputChannels: d.inputChannels, kernelHeight: 1,
                                  kernelWidth: 1)
    }

    /// Whether the NCHW entry exchanges: at stride 1, where transposing x moves no more floats than transposing dy
    /// and then dw.
    static func exchangesNCHW(_ d: ConvolutionDescriptor) -> Bool {
        guard d.isStrideOne else { return false }
        let positions = Double(d.batch) * Double(d.outputHeight * d.outputWidth)
        return positions * Double(d.inputChannels)
            <= positions * Double(d.outputChannels) + Double(d.inputChannels) * Double(d.outputChannels)
    }

    init(descriptor d: ConvolutionDescriptor, options: PlanOptions) throws {
        descriptor = d
        exchanged = ChannelVectorWeightGradientPlan(geometry: try ChannelVectorWeightGradientGeometry(
            descriptor: try Self.exchangedLayer(d), options: options, resultIsTransposed: true))
        asGiven = ChannelVectorWeightGradientPlan(
            geometry: try ChannelVectorWeightGradientGeometry(descriptor: d, options: options))
        exchangesNCHW = Self.exchangesNCHW(d)
        blockedRunsAsGiven = d.outputChannels >= 64 && d.batch == 1
        var layout = WorkspaceLayout()
        let what = "the exchanged weight gradient's gathered input and result"
        _ = try layout.reserve(UInt8.self, count: exchanged.summary.workspaceBytes, what: what)
        gathered = try layout.reserve(Float.self, count: d.isStrideOne || blockedRunsAsGiven ? 0
                                      : try CheckedArithmetic.product(
                                          [d.batch, d.inputChannels, d.outputHeight, d.outputWidth], what: what),
                                      what: what)
        exchangedResult = try layout.reserve(Float.self, count: blockedRunsAsGiven ? 0 : d.weightCount, what: what)
        try ResourceLimits.check(what, bytes: layout.byteCount, limit: options.limits.maxWorkspaceBytes)
        var exchangedSummary = exchanged.summary
        exchangedSummary.workspaceBytes = layout.byteCount
        exchangedSummary.variant = "input-channel vectors (x and dy exchanged" + (d.isStrideOne ? "" : ", x gathered")
            + "), " + exchangedSummary.variant
        let nchw = exchangesNCHW ? exchangedSummary : asGiven.summary
        var blocked = exchangedSummary
        if blockedRunsAsGiven {
            blocked = asGiven.summary
            blocked.variant += ", dw summed in Oihw16o"
        } else {
            blocked.variant += ", dw blocked at the end"
        }
        (blockedSummary, summary) = (blocked.sharingWorkspace(with: nchw), nchw.sharingWorkspace(with: blocked))
    }

    func execute(_ operands: PassOperands, workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?) throws {
        try validate(operands, workspace: workspace)
        if exchangesNCHW {
            exchanged.run(Self.exchange(operands), workspace: workspace, blockedGradient: false, profile: profile)
        } else {
            asGiven.run(operands, workspace: workspace, blockedGradient: false, profile: profile)
        }
    }

    func executeBlocked(_ operands: PassOperands, workspace: UnsafeMutableRawBufferPointer,
                        profile: ExecutionProfile?) throws {
        try validateBlocked(operands, workspace: workspace)
        if blockedRunsAsGiven {
            asGiven.run(operands, workspace: workspace, blockedGradient: true, blockedResult: true, profile: profile)
            return
        }
        let d = descriptor
        let result = UnsafeMutableBufferPointer(start: exchangedResult.pointer(in: workspace), count: d.weightCount)
        if d.isStrideOne {
            exchanged.run(PassOperands(input: operands.gradOutput, gradOutput: operands.input, output: result),
                          workspace: workspace, blockedGradient: true, profile: profile)
        } else {
            let target = gathered.pointer(in: workspace)
            measurePhase("gather input", in: profile) {
                gatherOutputPositions(of: operands.input.baseAddress!, d, into: target,
                                      threads: exchanged.geometry.threads)
            }
            exchanged.run(PassOperands(input: operands.gradOutput,
                                       gradOutput: UnsafeBufferPointer(start: target, count: gathered.count),
                                       output: result),
                          workspace: workspace, blockedGradient: true, profile: profile)
        }
        measurePhase("block dw", in: profile) {
            ChannelBlocking.block(result.baseAddress!, batch: 1, channels: d.outputChannels, height: 1,
                                  width: d.inputChannels, into: operands.output.baseAddress!)
        }
    }

    private static func exchange(_ operands: PassOperands) -> PassOperands {
        PassOperands(input: operands.gradOutput, gradOutput: operands.input, output: operands.output)
    }
}

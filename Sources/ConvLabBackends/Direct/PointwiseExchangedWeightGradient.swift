import ConvLabCore

/// Backward-weights of a 1×1, stride-1, unpadded layer with x and dy exchanged: input channels along the lanes.
///
/// dw[k][c] = Σ_n Σ_q dy[n][k][q] · x[n][c][q] is symmetric in x and dy, so the layer with K input and C output
/// channels (x′ = dy, dy′ = x, same positions) has dw′ = dwᵀ. The channel-vector plan sums dw′ as its transpose,
/// [k][c], with C along the lanes: that is dw itself, summed straight into the output. Against the plan of the layer
/// as given (K along the lanes):
/// - no K×C transpose at the end (MobileNetV2's 960 → 160 at 7²: 600 KiB of dw, a quarter of the pass);
/// - the lanes fill the register tile's 4 vectors whenever C does (960 is 15 tiles; K = 160 left a 2-vector tile);
/// - a narrow K no longer halves the kernel's FMAs per broadcast (MobileNetV2's 32 → 16 at 112²: 16 lanes).
/// On nChw16c tensors both operands are read in place, and the exchanged plan always runs. The NCHW entry transposes
/// x instead of dy (and no dw), so it runs the exchanged plan only where that moves fewer floats: N·HW·C against
/// N·HW·K + K·C (ResNet-50's 64 → 256 at 56²: 0.37 → 0.26 ms; its 256 → 64, and MobileNetV2's 32 → 16 at 112²,
/// 1.2–1.6× slower exchanged, keep the plan as given).
struct PointwiseExchangedWeightGradientPlan: ChannelBlockedPassExecution {
    let descriptor: ConvolutionDescriptor
    /// The channel-vector plan of the exchanged layer, delivering its dwᵀ.
    let exchanged: ChannelVectorWeightGradientPlan
    /// The NCHW entry's plan of the layer as given, where exchanging would transpose more.
    let asGiven: ChannelVectorWeightGradientPlan?
    /// The NCHW entry's plan, with the workspace of both entries.
    let summary: PlanDescription
    let blockedSummary: PlanDescription

    /// 1×1, stride 1, no padding, one group, input channels in whole vectors (dw's rows are then the plan's lanes),
    /// and more than a stem's few output channels (the exchanged x′ = dy is read blocked in place).
    static func applies(to d: ConvolutionDescriptor) -> Bool {
        d.kernelHeight == 1 && d.kernelWidth == 1 && d.strideHeight == 1 && d.strideWidth == 1 && d.groups == 1
            && d.padding == Padding(top: 0, bottom: 0, left: 0, right: 0) && d.inputChannels % 16 == 0
            && d.outputChannels > FewChannelDirectGeometry.maximumChannels
    }

    /// The layer with x and dy exchanged: K input channels, C output channels, the same positions.
    static func exchangedLayer(_ d: ConvolutionDescriptor) throws -> ConvolutionDescriptor {
        try ConvolutionDescriptor(batch: d.batch, inputChannels: d.outputChannels, inputHeight: d.outputHeight,
                                  inputWidth: d.outputWidth, outputChannels: d.inputChannels, kernelHeight: 1,
                                  kernelWidth: 1)
    }

    /// Whether the NCHW entry exchanges: transposing x moves no more floats than transposing dy and then dw.
    static func exchangesNCHW(_ d: ConvolutionDescriptor) -> Bool {
        let positions = Double(d.batch) * Double(d.outputHeight * d.outputWidth)
        return positions * Double(d.inputChannels)
            <= positions * Double(d.outputChannels) + Double(d.inputChannels) * Double(d.outputChannels)
    }

    init(descriptor d: ConvolutionDescriptor, options: PlanOptions) throws {
        descriptor = d
        exchanged = ChannelVectorWeightGradientPlan(geometry: try ChannelVectorWeightGradientGeometry(
            descriptor: try Self.exchangedLayer(d), options: options, resultIsTransposed: true))
        asGiven = Self.exchangesNCHW(d) ? nil : ChannelVectorWeightGradientPlan(
            geometry: try ChannelVectorWeightGradientGeometry(descriptor: d, options: options))
        var blocked = exchanged.summary
        blocked.variant = "input-channel vectors (x and dy exchanged), " + blocked.variant
        let nchw = asGiven?.summary ?? blocked
        (blockedSummary, summary) = (blocked.sharingWorkspace(with: nchw), nchw.sharingWorkspace(with: blocked))
    }

    func execute(_ operands: PassOperands, workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?) throws {
        try validate(operands, workspace: workspace)
        if let asGiven {
            asGiven.run(operands, workspace: workspace, blockedGradient: false, profile: profile)
        } else {
            exchanged.run(Self.exchange(operands), workspace: workspace, blockedGradient: false, profile: profile)
        }
    }

    func executeBlocked(_ operands: PassOperands, workspace: UnsafeMutableRawBufferPointer,
                        profile: ExecutionProfile?) throws {
        try validateBlocked(operands, workspace: workspace)
        exchanged.run(Self.exchange(operands), workspace: workspace, blockedGradient: true, profile: profile)
    }

    private static func exchange(_ operands: PassOperands) -> PassOperands {
        PassOperands(input: operands.gradOutput, gradOutput: operands.input, output: operands.output)
    }
}

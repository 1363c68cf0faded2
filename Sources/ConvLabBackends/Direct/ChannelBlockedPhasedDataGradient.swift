import ConvLabCore

/// backward-data of a dense strided layer (one group, undilated) on nChw16c dy and dx, by the blocked direct tiles.
/// The phases of dx (`DataGradientAsPhases`) are stride-1 problems on windows of dy: dy is padded once, wide enough
/// for every phase's window, and each phase runs `ChannelBlockedDirectGeometry.runTask` on its window straight into
/// its rows and columns of dx (every s-th row and position: `BlockedDirectWindow.outputStep`). A phase without taps
/// is written as zeros. Through the phase plans' own blocked entries, every phase padded its part of dy again and
/// wrote a phase buffer scattered into dx afterwards: on ResNet-50's 128-channel 3×3 stride-2 layer (Zen 5,
/// 2 threads) pad and scatter were 16% of the pass.
struct ChannelBlockedPhasedDataGradientPlan: BlockedPassPlan {
    /// A phase with taps: the blocked direct geometry of its forward problem, its sub-kernel packed for the tiles, and
    /// where its window (the forward problem's padded row 0, column 0) starts in a padded dy plane.
    struct PhaseRun: Sendable {
        let geometry: ChannelBlockedDirectGeometry
        let weights: AlignedStorage<Float>
        let windowOffset: Int
    }

    let split: DataGradientAsPhases
    /// One per phase of `split`, nil for a zero phase.
    let runs: [PhaseRun?]
    /// dy padded: rows and columns added above and to the left (the largest padding of a phase window), the padded
    /// plane's size, the zeros after the last plane that a row's last tile reads.
    let top: Int
    let left: Int
    let paddedHeight: Int
    let paddedWidth: Int
    let paddedPlane: Int
    let tailFloats: Int
    let padded: WorkspaceRegion<Float>
    let workers: Int
    let blockedSummary: PlanDescription

    var descriptor: ConvolutionDescriptor { split.descriptor }

    /// Dense strided undilated layers that take the phases (`DataGradientAsPhases.applies`) in one group.
    static func applies(to d: ConvolutionDescriptor) -> Bool {
        DataGradientAsPhases.applies(to: d) && d.groups == 1
    }

    /// The plan's description without weights (the phases' packed sub-kernels are its only weights).
    static func describe(_ d: ConvolutionDescriptor, options: PlanOptions) throws -> PlanDescription {
        try ChannelBlockedPhasedDataGradientPlan(d, weights: nil, options: options).blockedSummary
    }

    init(_ d: ConvolutionDescriptor, weights: Tensor<Float>?, options: PlanOptions) throws {
        let split = try DataGradientAsPhases(d)
        self.split = split
        // A phase's window starts `before` rows above dy's first (its forward problem's padding, or minus its crop)
        // and spans the phase's rows plus its taps less one.
        func before(_ phase: DataGradientAsPhases.Phase, _ f: ConvolutionDescriptor) -> (rows: Int, columns: Int) {
            (f.padding.top - phase.crop.top, f.padding.left - phase.crop.left)
        }
        var (top, left, bottom, right) = (0, 0, 0, 0)
        for phase in split.phases {
            guard let f = phase.forward else { continue }
            let b = before(phase, f)
            top = max(top, b.rows)
            left = max(left, b.columns)
            bottom = max(bottom, phase.rows + f.kernelHeight - 1 - b.rows - d.outputHeight)
            right = max(right, phase.columns + f.kernelWidth - 1 - b.columns - d.outputWidth)
        }
        (self.top, self.left) = (top, left)
        let width = left + d.outputWidth + right
        (paddedHeight, paddedWidth) = (top + d.outputHeight + bottom, width)
        let what = "the phased backward-data's padded output gradient"
        paddedPlane = try CheckedArithmetic.product([paddedHeight, paddedWidth, 16], what: what)
        // A row's last tile reads up to 23 positions and the kernel's width past its start.
        tailFloats = (24 + d.kernelWidth) * 16
        let dyBlocks = (d.outputChannels + 15) / 16
        var layout = WorkspaceLayout()
        padded = try layout.reserve(Float.self, count: try CheckedArithmetic.sum(
            [try CheckedArithmetic.product([d.batch, dyBlocks, paddedPlane], what: what), tailFloats], what: what),
                                    what: what)
        try ResourceLimits.check(what, bytes: layout.byteCount, limit: options.limits.maxWorkspaceBytes)
        runs = try split.phases.map { phase in
            guard let f = phase.forward else { return nil }
            let b = before(phase, f)
            return PhaseRun(geometry: try ChannelBlockedDirectGeometry(descriptor: f, options: options,
                                                                       padsInput: false),
                            weights: try weights.map { blockedTileWeights(try split.weights($0, for: phase), f) }
                                ?? AlignedStorage(count: 0),
                            windowOffset: ((top - b.rows) * width + left - b.columns) * 16)
        }
        workers = Parallel.workers(threads: options.threads, tasks: d.batch * dyBlocks)
        let planned = runs.compactMap { $0 }
        let stages = [WorkEstimate.Stage.memory(bytes: Double(d.outputCount + d.batch * dyBlocks * paddedPlane
                                                              + d.inputCount) * 4)]
            + planned.flatMap { run in (run.geometry.summary.work?.stages ?? []).filter { $0.name != "memory" } }
        let forwards = planned.map(\.geometry.descriptor)
        let kernels = split.phases.map { "\($0.kernelRows)x\($0.kernelColumns)" }.joined(separator: ",")
        blockedSummary = PlanDescription(
            backend: "direct", pass: .backwardData,
            variant: "\(d.strideHeight)x\(d.strideWidth) phases (\(kernels)) channel-blocked, into dx",
            errorBound: forwards.map(DirectBackend.errorBound).max() ?? 0,
            typicalError: forwards.map(DirectBackend.typicalError).max() ?? 0, workspaceBytes: layout.byteCount,
            persistentBytes: planned.reduce(0) { $0 + $1.weights.count * 4 },
            work: WorkEstimate(stages))
        try options.accuracy.admit(blockedSummary)
    }

    /// dy (nChw16c) → dx (nChw16c), on checked operands (`PassPlanWithBlockedEntry`): pad dy, then each phase into its
    /// positions of dx.
    func executeBlocked(_ operands: PassOperands, workspace: UnsafeMutableRawBufferPointer,
                        profile: ExecutionProfile?) {
        let d = descriptor
        let (dyBlocks, dxBlocks) = ((d.outputChannels + 15) / 16, (d.inputChannels + 15) / 16)
        let (dxPlane, dxRow) = (d.inputHeight * d.inputWidth * 16, d.inputWidth * 16)
        // dx, and dy padded: what the workers' closures need.
        let shared = UncheckedSendable((operands.output.baseAddress!, padded.pointer(in: workspace)))
        measurePhase("pad", in: profile) {
            padBlockedPlanes(operands.input.baseAddress!, count: d.batch * dyBlocks, height: d.outputHeight,
                             width: d.outputWidth, top: top, left: left, into: shared.value.1,
                             paddedHeight: paddedHeight, paddedWidth: paddedWidth, tailFloats: tailFloats,
                             threads: workers)
        }
        for (phase, run) in zip(split.phases, runs) {
            /// dx at the phase's first row and column, image n.
            @inline(__always) func origin(_ dx: UnsafeMutablePointer<Float>, _ n: Int) -> UnsafeMutablePointer<Float> {
                dx + n * dxBlocks * dxPlane + phase.firstRow * dxRow + phase.firstColumn * 16
            }
            guard let run else {
                measurePhase("zero phases", in: profile) {
                    Parallel.forEach(taskCount: d.batch * dxBlocks, threads: workers) { _, plane in
                        let target = origin(shared.value.0, 0) + plane * dxPlane
                        for i in 0..<phase.rows {
                            for j in 0..<phase.columns {
                                storeVector(SIMD16(), target + i * d.strideHeight * dxRow + j * d.strideWidth * 16)
                            }
                        }
                    }
                }
                continue
            }
            let g = run.geometry
            forEachBlockedTileTask(g.tasks, workers: g.workers, weights: run.weights, input: operands.input,
                                   output: operands.output, workspace: workspace, profile: profile) {
                _, task, _, dx, _, weights in
                let (n, rows, groups) = g.task(task)
                let window = BlockedDirectWindow(
                    input: UnsafePointer(shared.value.1) + n * dyBlocks * paddedPlane + run.windowOffset,
                    inputRow: paddedWidth * 16, inputBlock: paddedPlane, output: origin(dx, n),
                    outputRow: d.strideHeight * dxRow, outputStep: d.strideWidth * 16, outputBlock: dxPlane)
                g.runTask(window, rows: rows, groups: groups, weights: weights)
            }
        }
    }
}

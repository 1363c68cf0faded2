import ConvLabCore

/// backward-data of a strided layer as sh·sw stride-1 forward problems, one per phase of dx, instead of one forward
/// problem on a zero-inserted dy (`DataGradientAsForward`), which multiplies the inserted zeros too: s² times the
/// work at stride s, and for a 1×1 stride-2 layer three quarters of dx are zero anyway.
///
/// With q = ih + pt = sh·i + a (a the row phase), dx row ih receives dy row oh = i − u from tap r = a + sh·u (u ≥ 0,
/// r < R): dx[phase a][i] = Σ_u dy[i − u]·w[a + sh·u]. That is a stride-1 correlation of dy with the sub-kernel of
/// taps a, a + sh, … reversed (Ra = ⌈(R − a)/sh⌉ of them), C↔K swapped within each group, padded by Ra − 1 − i₀ above
/// (i₀ the phase's first row index; a negative padding crops dy) — and the same along columns. Each phase is planned
/// by the same backend as an ordinary forward problem (so it gets that backend's kernels, tiles and transforms for a
/// 2×2, 2×1, … kernel), runs into a phase buffer, and is scattered into dx; a phase without taps (a ≥ R) is zero.
/// Every dx element belongs to exactly one phase and sums (K/G)·Ra·Sb ≤ (K/G)·R·S products, so the bound is the
/// largest of the phase plans' bounds. Dilated strided layers keep zero insertion.
struct DataGradientAsPhases: Sendable {
    let descriptor: ConvolutionDescriptor

    /// One phase (a, b) of dx: rows ih = firstRow + sh·i (i < rows), columns iw = firstColumn + sw·j (j < columns).
    struct Phase: Sendable {
        let rowPhase: Int
        let columnPhase: Int
        let rows: Int
        let columns: Int
        let firstRow: Int
        let firstColumn: Int
        /// Taps of the sub-kernel along each axis (0: the phase is zero).
        let kernelRows: Int
        let kernelColumns: Int
        /// dy rows and columns cut off before the forward problem's input (a negative padding), and after it.
        let crop: Padding
        /// The stride-1 forward problem computing the phase, nil for a zero phase.
        let forward: ConvolutionDescriptor?
        var cropsInput: Bool { crop.top + crop.bottom + crop.left + crop.right > 0 }
        var count: Int { rows * columns }
    }

    /// The phases that hold dx elements (a phase with no rows or columns is left out).
    let phases: [Phase]

    /// Whether a layer takes this path: stride > 1 along some axis, no dilation, and not depthwise. Measured on the
    /// Intel kind (direct, 2 threads): dense strided layers 2.7–3.7× faster than zero insertion (ResNet-50's stem
    /// 10.3 → 3.4 ms, its 1×1 stride-2 shortcut 3.3 → 1.2); strided depthwise layers 1.3–2.1× slower, since their
    /// few FLOPs leave them bound by the passes over dy and dx, which every phase repeats.
    static func applies(to d: ConvolutionDescriptor) -> Bool {
        !d.isStrideOne && d.isUndilated && !(d.channelsPerGroup == 1 && d.outputChannelsPerGroup == 1)
    }

    init(_ d: ConvolutionDescriptor) throws {
        descriptor = d
        let (sh, sw) = (d.strideHeight, d.strideWidth)
        /// Along one axis: (phase count, first index i₀, first dx index, taps, padding before, padding after).
        func axis(_ a: Int, stride s: Int, pad p: Int, size: Int, kernel: Int, outputs: Int)
            -> (count: Int, first: Int, taps: Int, before: Int, after: Int) {
            let firstIndex = (p - a + s - 1) / s    // ⌈(p − a)/s⌉: the first i with s·i + a − p ≥ 0 (p − a ≥ 1 − s)
            let lastIndex = (size - 1 + p - a) >= 0 ? (size - 1 + p - a) / s : -1
            let count = max(0, lastIndex - firstIndex + 1)
            let taps = a < kernel ? (kernel - a + s - 1) / s : 0
            let before = taps - 1 - firstIndex
            let after = firstIndex + count - outputs
            return (count, s * firstIndex + a - p, taps, before, after)
        }
        var phases: [Phase] = []
        for a in 0..<sh {
            let rows = axis(a, stride: sh, pad: d.padding.top, size: d.inputHeight, kernel: d.kernelHeight,
                            outputs: d.outputHeight)
            guard rows.count > 0 else { continue }
            for b in 0..<sw {
                let columns = axis(b, stride: sw, pad: d.padding.left, size: d.inputWidth, kernel: d.kernelWidth,
                                   outputs: d.outputWidth)
                guard columns.count > 0 else { continue }
                let crop = Padding(top: max(0, -rows.before), bottom: max(0, -rows.after),
                                   left: max(0, -columns.before), right: max(0, -columns.after))
                var forward: ConvolutionDescriptor?
                // No taps, or no dy row or column reaching the phase (padding beyond it): a zero phase.
                if rows.taps > 0 && columns.taps > 0 && crop.top + crop.bottom < d.outputHeight
                    && crop.left + crop.right < d.outputWidth {
                    forward = try ConvolutionDescriptor(
                        batch: d.batch, inputChannels: d.outputChannels,
                        inputHeight: d.outputHeight - crop.top - crop.bottom,
                        inputWidth: d.outputWidth - crop.left - crop.right,
                        outputChannels: d.inputChannels, kernelHeight: rows.taps, kernelWidth: columns.taps,
                        padding: .explicit(Padding(top: max(0, rows.before), bottom: max(0, rows.after),
                                                   left: max(0, columns.before), right: max(0, columns.after))),
                        groups: d.groups)
                }
                phases.append(Phase(rowPhase: a, columnPhase: b, rows: rows.count, columns: columns.count,
                                    firstRow: rows.first, firstColumn: columns.first, kernelRows: rows.taps,
                                    kernelColumns: columns.taps, crop: crop, forward: forward))
            }
        }
        self.phases = phases
    }

    /// Whether `backend` runs every phase's forward problem.
    static func support(_ d: ConvolutionDescriptor, on backend: any Convolution) -> SupportStatus {
        guard applies(to: d), let split = try? DataGradientAsPhases(d) else {
            return .unsupported("not a strided undilated layer")
        }
        for case let forward? in split.phases.map(\.forward) {
            if case .unsupported(let reason) = backend.support(for: forward) { return .unsupported(reason) }
        }
        return .supported
    }

    /// w'[g·C/G + c][k][u][v] = w[g·K/G + k][c][a + sh·(Ra − 1 − u)][b + sw·(Sb − 1 − v)]: the phase's sub-kernel,
    /// reversed, C↔K swapped within each group.
    func weights(_ weights: Tensor<Float>, for phase: Phase) throws -> Tensor<Float> {
        let d = descriptor
        guard let forward = phase.forward else { return try Tensor(shape: [0]) }
        let (R, S, Cg, Kg) = (d.kernelHeight, d.kernelWidth, d.channelsPerGroup, d.outputChannelsPerGroup)
        let (Ra, Sb) = (phase.kernelRows, phase.kernelColumns)
        let w = weights.scalars
        var sub = [Float](repeating: 0, count: forward.weightCount)
        for g in 0..<d.groups {
            for k in 0..<Kg {
                for c in 0..<Cg {
                    for u in 0..<Ra {
                        for v in 0..<Sb {
                            let (r, s) = (phase.rowPhase + d.strideHeight * (Ra - 1 - u),
                                          phase.columnPhase + d.strideWidth * (Sb - 1 - v))
                            sub[(((g * Cg + c) * Kg + k) * Ra + u) * Sb + v] = w[(((g * Kg + k) * Cg + c) * R + r) * S + s]
                        }
                    }
                }
            }
        }
        return try Tensor(shape: forward.weightShape, scalars: sub)
    }

    /// The backward-data plan of `backend` on this split (`support` says whether every phase can be planned).
    static func makePlan(_ d: ConvolutionDescriptor, on backend: any Convolution, weights: Tensor<Float>,
                         options: PlanOptions) throws -> any PassPlan {
        let split = try DataGradientAsPhases(d)
        let plans = try split.phases.map { phase in
            try phase.forward.map { forward in
                try backend.makePlan(descriptor: forward, weights: try split.weights(weights, for: phase),
                                     options: options)
            }
        }
        return try PhasedDataGradientPlan(split: split, plans: plans, backend: backend.name, options: options)
    }

    /// `describe` without weights: the phase plans' descriptions.
    static func describe(_ d: ConvolutionDescriptor, on backend: any Convolution, options: PlanOptions) throws
        -> PlanDescription {
        let split = try DataGradientAsPhases(d)
        let descriptions = try split.phases.map { phase in
            try phase.forward.map { try backend.describe($0, options: options) }
        }
        return try split.layout(descriptions, backend: backend.name, options: options).summary
    }

    /// The workspace (one phase buffer, one cropped dy, the largest phase plan's workspace: phases run in turn) and
    /// the description of the whole pass.
    func layout(_ descriptions: [PlanDescription?], backend: String, options: PlanOptions) throws
        -> (summary: PlanDescription, buffer: WorkspaceRegion<Float>, cropped: WorkspaceRegion<Float>,
            inner: WorkspaceRegion<UInt8>) {
        let d = descriptor
        let what = "the phased backward-data workspace"
        var layout = WorkspaceLayout()
        let largest = phases.map(\.count).max() ?? 0
        let buffer = try layout.reserve(Float.self, count: try CheckedArithmetic.product(
            [d.batch, d.inputChannels, largest], what: what), what: what)
        let cropped = try layout.reserve(Float.self, count: phases.compactMap { $0.cropsInput ? $0.forward?.inputCount : nil }
                                            .max() ?? 0, what: what)
        let inner = try layout.reserve(UInt8.self, count: descriptions.compactMap { $0?.workspaceBytes }.max() ?? 0,
                                       what: what)
        try ResourceLimits.check(what, bytes: layout.byteCount, limit: options.limits.maxWorkspaceBytes)
        let planned = descriptions.compactMap { $0 }
        var stages: [WorkEstimate.Stage] = [.memory(bytes: Double(2 * d.inputCount) * 4)]
        var estimated = true
        for description in planned {
            if let work = description.work { stages += work.stages } else { estimated = false }
        }
        let kernels = phases.map { "\($0.kernelRows)x\($0.kernelColumns)" }.joined(separator: ",")
        // Every phase zero (no tap reaches any dx element: a 1×1 stride-2 layer padded past its only row) writes zeros,
        // exactly.
        let planVariant = planned.first.map { $0.variant.isEmpty ? "" : ": \($0.variant)" } ?? ": every phase zero"
        let summary = PlanDescription(
            backend: backend, pass: .backwardData,
            variant: "\(d.strideHeight)x\(d.strideWidth) phases (\(kernels)) as forward" + planVariant,
            errorBound: planned.map(\.errorBound).max() ?? 0, errorSource: planned.first?.errorSource ?? "",
            typicalError: planned.map(\.typicalError).max() ?? 0, workspaceBytes: layout.byteCount,
            persistentBytes: planned.reduce(0) { $0 + $1.persistentBytes },
            isDeterministic: planned.allSatisfy(\.isDeterministic),
            work: estimated ? WorkEstimate(stages, depthwiseKernels: !planned.isEmpty
                                            && planned.allSatisfy { $0.work?.depthwiseKernels == true }) : nil)
        try options.accuracy.admit(summary)
        return (summary, buffer, cropped, inner)
    }
}

/// Runs the phase plans in turn, each into the phase buffer, and scatters it into dx (zero phases are zero-filled).
struct PhasedDataGradientPlan: PassPlan {
    let split: DataGradientAsPhases
    let plans: [(any ConvolutionPlan)?]
    let summary: PlanDescription
    let buffer: WorkspaceRegion<Float>
    let cropped: WorkspaceRegion<Float>
    let inner: WorkspaceRegion<UInt8>
    let threads: Int

    var descriptor: ConvolutionDescriptor { split.descriptor }

    init(split: DataGradientAsPhases, plans: [(any ConvolutionPlan)?], backend: String, options: PlanOptions) throws {
        self.split = split
        self.plans = plans
        threads = options.threads
        (summary, buffer, cropped, inner) = try split.layout(plans.map { $0?.summary }, backend: backend,
                                                             options: options)
    }

    func execute(_ operands: PassOperands, workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?) throws {
        try validate(operands, workspace: workspace)
        let d = descriptor
        let (phaseOutput, croppedInput) = (buffer.pointer(in: workspace), cropped.pointer(in: workspace))
        let shared = UncheckedSendable((operands.input.baseAddress!, operands.output.baseAddress!, phaseOutput,
                                        croppedInput))
        for (phase, plan) in zip(split.phases, plans) {
            if let plan, let forward = phase.forward {
                var input = operands.input
                if phase.cropsInput {
                    measurePhase("crop output gradient", in: profile) {
                        Parallel.forEach(taskCount: d.batch * d.outputChannels, threads: threads) { _, plane in
                            let (dy, _, _, target) = shared.value
                            let source = dy + plane * d.outputHeight * d.outputWidth
                                + phase.crop.top * d.outputWidth + phase.crop.left
                            for row in 0..<forward.inputHeight {
                                (target + (plane * forward.inputHeight + row) * forward.inputWidth)
                                    .update(from: source + row * d.outputWidth, count: forward.inputWidth)
                            }
                        }
                    }
                    input = UnsafeBufferPointer(start: croppedInput, count: forward.inputCount)
                }
                try plan.execute(input: input,
                                 output: UnsafeMutableBufferPointer(start: phaseOutput, count: forward.outputCount),
                                 workspace: inner.bytes(in: workspace), profile: profile)
            }
            measurePhase("scatter phases", in: profile) {
                Parallel.forEach(taskCount: d.batch * d.inputChannels, threads: threads) { _, plane in
                    let (_, dx, output, _) = shared.value
                    let target = dx + plane * d.inputHeight * d.inputWidth + phase.firstRow * d.inputWidth
                        + phase.firstColumn
                    let source = output + plane * phase.count
                    let isZero = plan == nil
                    for i in 0..<phase.rows {
                        let row = target + i * d.strideHeight * d.inputWidth
                        for j in 0..<phase.columns {
                            row[j * d.strideWidth] = isZero ? 0 : source[i * phase.columns + j]
                        }
                    }
                }
            }
        }
    }
}

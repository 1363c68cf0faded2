import ConvLabCore

/// backward-data as a forward convolution, so a backend's forward plan — its kernels, tiles and transforms — also
/// serves the data gradient (what neon's Winograd bprop and cuDNN's transposed-convolution kernels do).
///
/// dx[n,c,ih,iw] = Σ dy[n,k,oh,ow]·w[k,c,r,s] over oh·s − p + r·d = ih is the correlation of dy, with s − 1 zeros
/// inserted between its samples, with w rotated 180° and its C and K swapped within each group, padded by
/// d·(R − 1) − p before (and whatever makes the output H×W after): one stride-1 forward problem of K → C channels on a
/// ((Ho − 1)·s + 1)-row input. A padding beyond d·(R − 1) makes that padding negative: the input is cropped instead.
/// The rotated weights are formed at plan time. Stride s > 1 costs s² times the work of the zero-free problem (the
/// inserted zeros are multiplied too), which the work estimate states, so the selector weighs it. Strided layers
/// without dilation take the phase split instead (`DataGradientAsPhases`) wherever the backend plans every phase.
struct DataGradientAsForward: Sendable {
    let descriptor: ConvolutionDescriptor
    /// The forward problem that computes dx.
    let forward: ConvolutionDescriptor
    /// Rows and columns of the zero-inserted dy cut off before the forward problem's input starts.
    let cropTop: Int
    let cropLeft: Int
    /// Whether dy must be copied (zero-inserted, cropped) before the forward plan reads it.
    var preparesInput: Bool {
        !descriptor.isStrideOne || forward.inputHeight != descriptor.outputHeight
            || forward.inputWidth != descriptor.outputWidth
    }

    init(_ d: ConvolutionDescriptor) throws {
        descriptor = d
        let (eh, ew) = (d.kernelExtentHeight, d.kernelExtentWidth)
        let (uh, uw) = ((d.outputHeight - 1) * d.strideHeight + 1, (d.outputWidth - 1) * d.strideWidth + 1)
        let top = eh - 1 - d.padding.top, left = ew - 1 - d.padding.left
        let bottom = d.inputHeight - uh - top + eh - 1, right = d.inputWidth - uw - left + ew - 1
        cropTop = max(0, -top)
        cropLeft = max(0, -left)
        let (height, width) = (uh - cropTop - max(0, -bottom), uw - cropLeft - max(0, -right))
        guard height >= 1, width >= 1 else {
            throw ConvLabError.unsupported(backend: "backward-data as forward",
                                           reason: "the padding crops away every output gradient")
        }
        forward = try ConvolutionDescriptor(
            batch: d.batch, inputChannels: d.outputChannels, inputHeight: height, inputWidth: width,
            outputChannels: d.inputChannels, kernelHeight: d.kernelHeight, kernelWidth: d.kernelWidth,
            padding: .explicit(Padding(top: max(0, top), bottom: max(0, bottom), left: max(0, left),
                                       right: max(0, right))),
            dilationHeight: d.dilationHeight, dilationWidth: d.dilationWidth, groups: d.groups)
    }

    /// Strided undilated layers run as phases (`DataGradientAsPhases`) when `backend` plans every phase's problem.
    static func usesPhases(_ d: ConvolutionDescriptor, on backend: any Convolution) -> Bool {
        guard DataGradientAsPhases.applies(to: d), case .supported = DataGradientAsPhases.support(d, on: backend) else {
            return false
        }
        return true
    }

    /// Whether `backend` can run the equivalent forward problem (or the phases), and if not, why.
    static func support(_ d: ConvolutionDescriptor, on backend: any Convolution) -> SupportStatus {
        if usesPhases(d, on: backend) { return .supported }
        do {
            let equivalent = try DataGradientAsForward(d)
            switch backend.support(for: equivalent.forward) {
            case .supported: return .supported
            case .unsupported(let reason): return .unsupported("backward-data runs as a forward problem, and: \(reason)")
            }
        } catch let error as ConvLabError {
            if case .unsupported(_, let reason) = error { return .unsupported(reason) }
            return .unsupported(error.description)
        } catch {
            return .unsupported("\(error)")
        }
    }

    /// w'[g·C/G + c][k][R−1−r][S−1−s] = w[g·K/G + k][c][r][s]: the C×(K/G)×R×S weights of the forward problem.
    func rotatedWeights(_ weights: Tensor<Float>) throws -> Tensor<Float> {
        let d = descriptor
        let (R, S, Cg, Kg) = (d.kernelHeight, d.kernelWidth, d.channelsPerGroup, d.outputChannelsPerGroup)
        let w = weights.scalars
        var rotated = [Float](repeating: 0, count: w.count)
        for g in 0..<d.groups {
            for k in 0..<Kg {
                for c in 0..<Cg {
                    for r in 0..<R {
                        for s in 0..<S {
                            rotated[((((g * Cg + c) * Kg + k) * R + (R - 1 - r)) * S) + (S - 1 - s)] =
                                w[(((g * Kg + k) * Cg + c) * R + r) * S + s]
                        }
                    }
                }
            }
        }
        return try Tensor(shape: forward.weightShape, scalars: rotated)
    }

    /// The description of the pass from the forward problem's: same variant, bound (the forward problem sums
    /// (K/G)·R·S products per output, as backward-data does) and work, plus the zero-inserted copy of dy.
    func summary(backend: String, forward plan: PlanDescription, options: PlanOptions) throws
        -> (summary: PlanDescription, upsampled: WorkspaceRegion<Float>, inner: WorkspaceRegion<UInt8>) {
        var layout = WorkspaceLayout()
        let upsampled = try layout.reserve(Float.self, count: preparesInput ? forward.inputCount : 0,
                                           what: "the zero-inserted gradient")
        let inner = try layout.reserve(UInt8.self, count: plan.workspaceBytes, what: "the backward-data workspace")
        try ResourceLimits.check("the backward-data workspace", bytes: layout.byteCount,
                                 limit: options.limits.maxWorkspaceBytes)
        var work = plan.work
        if preparesInput { work?.stages.append(.memory(bytes: Double(forward.inputCount + descriptor.outputCount) * 4)) }
        let summary = PlanDescription(
            backend: backend, pass: .backwardData,
            variant: (descriptor.isStrideOne ? "" : "zero-inserted \(descriptor.strideHeight)x\(descriptor.strideWidth), ")
                + "as forward" + (plan.variant.isEmpty ? "" : ": \(plan.variant)"),
            errorBound: plan.errorBound, errorSource: plan.errorSource, typicalError: plan.typicalError,
            workspaceBytes: layout.byteCount, persistentBytes: plan.persistentBytes,
            isDeterministic: plan.isDeterministic, work: work)
        return (summary, upsampled, inner)
    }

    /// `describe` for backward-data of a backend whose forward plan does the work.
    static func describe(_ d: ConvolutionDescriptor, on backend: any Convolution, options: PlanOptions) throws
        -> PlanDescription {
        if usesPhases(d, on: backend) { return try DataGradientAsPhases.describe(d, on: backend, options: options) }
        let equivalent = try DataGradientAsForward(d)
        return try equivalent.summary(backend: backend.name,
                                      forward: try backend.describe(equivalent.forward, options: options),
                                      options: options).summary
    }

    /// The backward-data plan of a backend whose forward plan does the work.
    static func makePlan(_ d: ConvolutionDescriptor, on backend: any Convolution, weights: Tensor<Float>,
                         options: PlanOptions) throws -> any PassPlan {
        if usesPhases(d, on: backend) {
            return try DataGradientAsPhases.makePlan(d, on: backend, weights: weights, options: options)
        }
        let equivalent = try DataGradientAsForward(d)
        let forward = try backend.makePlan(descriptor: equivalent.forward,
                                           weights: try equivalent.rotatedWeights(weights), options: options)
        let (summary, upsampled, inner) = try equivalent.summary(backend: backend.name, forward: forward.summary,
                                                                  options: options)
        let plan = DataGradientPlan(geometry: equivalent, forward: forward, summary: summary, upsampled: upsampled,
                                    inner: inner, threads: options.threads)
        if !equivalent.preparesInput, let blocked = forward as? any ChannelBlockedExecution {
            return DataGradientPlanWithBlockedEntry(plan: plan, forward: blocked)
        }
        return plan
    }
}

/// A backward-data plan whose forward problem reads dy as it is (stride 1, nothing cropped) and has a channel-blocked
/// entry point: blocked dy and dx are that problem's blocked input and output, so the pass runs on nChw16c tensors
/// too (the depthwise layers' channel-blocked bands, without their transpositions).
struct DataGradientPlanWithBlockedEntry: ChannelBlockedPassExecution {
    let plan: DataGradientPlan
    let forward: any ChannelBlockedExecution

    var descriptor: ConvolutionDescriptor { plan.descriptor }
    var summary: PlanDescription { plan.summary }
    var blockedSummary: PlanDescription {
        var summary = plan.summary
        let variant = forward.blockedSummary.variant
        summary.variant = "as forward" + (variant.isEmpty ? "" : ": \(variant)")
        return summary
    }
    var blockedInputLayout: TensorLayout { forward.blockedInputLayout }

    func execute(_ operands: PassOperands, workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?) throws {
        try plan.execute(operands, workspace: workspace, profile: profile)
    }

    func executeBlocked(_ operands: PassOperands, workspace: UnsafeMutableRawBufferPointer,
                        profile: ExecutionProfile?) throws {
        try validateBlocked(operands, workspace: workspace)
        try forward.executeBlocked(input: operands.input, output: operands.output,
                                   workspace: plan.inner.bytes(in: workspace), profile: profile)
    }
}

struct DataGradientPlan: PassPlan {
    let geometry: DataGradientAsForward
    let forward: any ConvolutionPlan
    let summary: PlanDescription
    let upsampled: WorkspaceRegion<Float>
    let inner: WorkspaceRegion<UInt8>
    let threads: Int

    var descriptor: ConvolutionDescriptor { geometry.descriptor }

    func execute(_ operands: PassOperands, workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?) throws {
        try validate(operands, workspace: workspace)
        let innerWorkspace = inner.bytes(in: workspace)
        guard geometry.preparesInput else {
            try forward.execute(input: operands.input, output: operands.output, workspace: innerWorkspace,
                                profile: profile)
            return
        }
        let (d, f) = (descriptor, geometry.forward)
        let target = upsampled.pointer(in: workspace)
        let shared = UncheckedSendable((operands.input.baseAddress!, target))
        let (top, left) = (geometry.cropTop, geometry.cropLeft)
        measurePhase("insert zeros", in: profile) {
            Parallel.forEach(taskCount: d.batch * d.outputChannels, threads: threads) { _, plane in
                let (dy, up) = shared.value
                let (source, destination) = (dy + plane * d.outputHeight * d.outputWidth,
                                             up + plane * f.inputHeight * f.inputWidth)
                destination.update(repeating: 0, count: f.inputHeight * f.inputWidth)
                for oh in 0..<d.outputHeight {
                    let row = oh * d.strideHeight - top
                    guard row >= 0 && row < f.inputHeight else { continue }
                    for ow in 0..<d.outputWidth {
                        let column = ow * d.strideWidth - left
                        if column >= 0 && column < f.inputWidth {
                            destination[row * f.inputWidth + column] = source[oh * d.outputWidth + ow]
                        }
                    }
                }
            }
        }
        try forward.execute(input: UnsafeBufferPointer(start: target, count: f.inputCount), output: operands.output,
                            workspace: innerWorkspace, profile: profile)
    }
}

/// A backend whose backward-data pass is its own forward plan on the transposed problem (`DataGradientAsForward`):
/// conforming is all it takes to add that pass. A backward-weights pass is added by the three `weightGradient`
/// members (by default there is none, and the pass is refused with that reason). direct, fft, fft-tiled and the
/// Winograd variants conform and give both; an experiment's backend can too. The pass entry points of
/// `Convolution` — support, describe, plan — are written once, here.
public protocol BackwardDataByForward: Convolution {
    /// A backward-data plan of the backend's own for layers the forward plan on the transposed problem serves poorly
    /// (described without weights); nil, the default: the transposed problem.
    func describeOwnDataGradient(_ descriptor: ConvolutionDescriptor, options: PlanOptions) throws -> PlanDescription?
    func makeOwnDataGradientPlan(_ descriptor: ConvolutionDescriptor, weights: Tensor<Float>, options: PlanOptions)
        throws -> (any PassPlan)?
    /// Whether backward-weights runs on `descriptor`, and if not, why.
    func weightGradientSupport(for descriptor: ConvolutionDescriptor) -> SupportStatus
    /// The backward-weights plan's description (`describe` = plan, as for forward).
    func describeWeightGradient(_ descriptor: ConvolutionDescriptor, options: PlanOptions) throws -> PlanDescription
    func makeWeightGradientPlan(_ descriptor: ConvolutionDescriptor, options: PlanOptions) throws -> any PassPlan
}

extension BackwardDataByForward {
    public func describeOwnDataGradient(_ descriptor: ConvolutionDescriptor, options: PlanOptions) throws
        -> PlanDescription? { nil }

    public func makeOwnDataGradientPlan(_ descriptor: ConvolutionDescriptor, weights: Tensor<Float>,
                                        options: PlanOptions) throws -> (any PassPlan)? { nil }

    public func weightGradientSupport(for descriptor: ConvolutionDescriptor) -> SupportStatus {
        .unsupported("\(name) has no backward-weights pass")
    }

    public func describeWeightGradient(_ descriptor: ConvolutionDescriptor, options: PlanOptions) throws
        -> PlanDescription {
        throw ConvLabError.unsupported(backend: name, reason: "no backward-weights pass")
    }

    public func makeWeightGradientPlan(_ descriptor: ConvolutionDescriptor, options: PlanOptions) throws
        -> any PassPlan {
        throw ConvLabError.unsupported(backend: name, reason: "no backward-weights pass")
    }

    public func support(for descriptor: ConvolutionDescriptor, pass: ConvolutionPass) -> SupportStatus {
        switch pass {
        case .forward: return support(for: descriptor)
        case .backwardData: return DataGradientAsForward.support(descriptor, on: self)
        case .backwardWeights: return weightGradientSupport(for: descriptor)
        }
    }

    public func describe(_ descriptor: ConvolutionDescriptor, pass: ConvolutionPass, options: PlanOptions) throws
        -> PlanDescription {
        try validate(descriptor, pass: pass, options: options)
        switch pass {
        case .forward: return try describe(descriptor, options: options)
        case .backwardData:
            return try describeOwnDataGradient(descriptor, options: options)
                ?? DataGradientAsForward.describe(descriptor, on: self, options: options)
        case .backwardWeights: return try describeWeightGradient(descriptor, options: options)
        }
    }

    public func makePlan(pass: ConvolutionPass, descriptor: ConvolutionDescriptor, weights: Tensor<Float>?,
                         options: PlanOptions) throws -> any PassPlan {
        try validate(descriptor, pass: pass, options: options)
        if pass == .backwardWeights { return try makeWeightGradientPlan(descriptor, options: options) }
        let w = try requiredWeights(weights, pass: pass)
        try validate(weights: w, for: descriptor)
        if pass == .forward { return try makePlan(descriptor: descriptor, weights: w, options: options) }
        return try makeOwnDataGradientPlan(descriptor, weights: w, options: options)
            ?? DataGradientAsForward.makePlan(descriptor, on: self, weights: w, options: options)
    }
}

import ConvLabCore

/// `direct`: SIMD direct convolution with no lowered matrix (cf. Zhang, Franchetti & Low, "High Performance
/// Zero-Memory Overhead Direct Convolutions", 2018). The only scratch is a zero-padded, stride-split copy of the
/// input (`PolyphaseGeometry`), about the size of the input itself, versus (R·S)× for im2col.
///
/// Work is split into tiles of (image, group, block of 6 output channels, 64 output positions); each tile runs the
/// whole (C/G)·R·S reduction in registers and stores its valid outputs once. Supports every stride, dilation,
/// padding, group count and batch size. Depthwise and groups with fewer than 4 output channels use a 1-channel
/// kernel so no lanes are spent on padding channels; depthwise layers have their own plans, row bands padded in
/// cache (`DepthwisePlan`) and 16 channels per vector (`ChannelBlockedDepthwisePlan`): `DirectPlanChoice` picks.
public struct DirectBackend: BackwardDataByForward {
    public init() {}

    public var name: String { "direct" }

    public func support(for descriptor: ConvolutionDescriptor) -> SupportStatus { .supported }

    public func describe(_ d: ConvolutionDescriptor, options: PlanOptions) throws -> PlanDescription {
        try validate(d, options: options)
        return try DirectPlanChoice(d, options: options).summary
    }

    public func makePlan(descriptor: ConvolutionDescriptor, weights: Tensor<Float>, options: PlanOptions) throws
        -> any ConvolutionPlan {
        try validate(descriptor, options: options)
        try validate(weights: weights, for: descriptor)
        return try DirectPlanChoice(descriptor, options: options).plan(weights: weights)
    }

    /// Every direct method sums (C/G)·R·S products per output.
    static func errorBound(_ d: ConvolutionDescriptor) -> Double { dotProductErrorBound(terms: d.reductionLength) }
    /// Each output sums its taps in one chain.
    static func typicalError(_ d: ConvolutionDescriptor) -> Double {
        TypicalError.sequentialDotProduct(terms: d.reductionLength)
    }
}

/// Which plan `direct` runs on a descriptor, decided once for `describe` and `makePlan`: depthwise layers of 16+
/// channels at stride > 1 or on rows under 48 outputs vectorise across channels; other stride-1 depthwise rows of
/// 24+ outputs use row bands; everything else uses the general polyphase plan. The last two take NCHW tensors and
/// have a channel-blocked plan as their nChw16c entry point where one can run (`BlockedEntryGeometry`).
enum DirectPlanChoice {
    case channelBlockedDepthwise(ChannelBlockedDepthwiseGeometry)
    case depthwiseRows(DepthwiseGeometry, blocked: BlockedEntryGeometry?)
    case general(DirectGeometry, blocked: BlockedEntryGeometry?)

    init(_ d: ConvolutionDescriptor, options: PlanOptions) throws {
        if ChannelBlockedDepthwiseGeometry.applies(to: d) {
            self = .channelBlockedDepthwise(try ChannelBlockedDepthwiseGeometry(descriptor: d, options: options))
        } else if DepthwiseGeometry.applies(to: d) {
            self = .depthwiseRows(try DepthwiseGeometry(descriptor: d, options: options),
                                  blocked: BlockedEntryGeometry(d, options: options))
        } else {
            self = .general(try DirectGeometry(descriptor: d, options: options),
                            blocked: BlockedEntryGeometry(d, options: options))
        }
    }

    var summary: PlanDescription {
        switch self {
        case .channelBlockedDepthwise(let geometry): return geometry.summary
        case .depthwiseRows(let rows, let blocked):
            return blocked.map { rows.summary.sharingWorkspace(with: $0.summary) } ?? rows.summary
        case .general(let geometry, let blocked):
            return blocked.map { geometry.summary.sharingWorkspace(with: $0.summary) } ?? geometry.summary
        }
    }

    func plan(weights: Tensor<Float>) -> any ConvolutionPlan {
        switch self {
        case .channelBlockedDepthwise(let geometry): return ChannelBlockedDepthwisePlan(geometry: geometry, weights: weights)
        case .depthwiseRows(let rows, let blocked):
            let plan = DepthwisePlan(geometry: rows, weights: weights)
            guard let blocked else { return plan }
            return PlanWithBlockedEntry(nchw: plan, blocked: blocked.plan(weights: weights))
        case .general(let geometry, let blocked):
            let plan = DirectPlan(geometry: geometry, weights: weights)
            guard let blocked else { return plan }
            return PlanWithBlockedEntry(nchw: plan, blocked: blocked.plan(weights: weights))
        }
    }
}

/// The channel-blocked plan an NCHW direct plan gets as its nChw16c entry point: depthwise layers of 16+ channels the
/// 16-channel bands; one-group layers on at most 4 input channels (RGB stems) the few-channel plan, other 1×1 layers
/// the 1×1 plan and the rest the tap-by-tap one; none where no such plan runs or it would not fit the limits (the NCHW
/// plan alone then).
enum BlockedEntryGeometry: Sendable {
    case depthwise(ChannelBlockedDepthwiseGeometry)
    case fewChannels(FewChannelDirectGeometry)
    case pointwise(ChannelBlockedPointwiseGeometry)
    case dense(ChannelBlockedDirectGeometry)

    init?(_ d: ConvolutionDescriptor, options: PlanOptions) {
        do {
            if ChannelBlockedDepthwiseGeometry.supports(d) {
                self = .depthwise(try ChannelBlockedDepthwiseGeometry(descriptor: d, options: options))
            } else if FewChannelDirectGeometry.applies(to: d) {
                self = .fewChannels(try FewChannelDirectGeometry(descriptor: d, options: options))
            } else if ChannelBlockedPointwiseGeometry.applies(to: d) {
                self = .pointwise(try ChannelBlockedPointwiseGeometry(descriptor: d, options: options))
            } else if ChannelBlockedDirectGeometry.applies(to: d) {
                self = .dense(try ChannelBlockedDirectGeometry(descriptor: d, options: options))
            } else {
                return nil
            }
        } catch {
            return nil
        }
    }

    var summary: PlanDescription {
        switch self {
        case .depthwise(let geometry): return geometry.summary
        case .fewChannels(let geometry): return geometry.summary
        case .pointwise(let geometry): return geometry.summary
        case .dense(let geometry): return geometry.summary
        }
    }

    func plan(weights: Tensor<Float>) -> any BlockedOnlyPlan {
        switch self {
        case .depthwise(let geometry): return ChannelBlockedDepthwisePlan(geometry: geometry, weights: weights)
        case .fewChannels(let geometry): return FewChannelDirectPlan(geometry: geometry, weights: weights)
        case .pointwise(let geometry): return ChannelBlockedPointwisePlan(geometry: geometry, weights: weights)
        case .dense(let geometry): return ChannelBlockedDirectPlan(geometry: geometry, weights: weights)
        }
    }
}

/// The general direct plan's geometry: the polyphase input layout, the register blocking and the task split, from
/// which both the plan and `describe` (the selector's view) are built.
struct DirectGeometry: Sendable {
    let descriptor: ConvolutionDescriptor
    let polyphase: PolyphaseGeometry
    /// Output channels per register block: 6, or 1 for narrow groups.
    let blockChannels: Int
    let blocksPerGroup: Int
    /// Tiles computed by one task (see `chunkSize`).
    let tilesPerChunk: Int
    let threads: Int
    let packedInput: WorkspaceRegion<Float>
    let summary: PlanDescription

    static let tileWidth = 64

    init(descriptor d: ConvolutionDescriptor, options: PlanOptions) throws {
        descriptor = d
        threads = options.threads
        let kg = d.outputChannelsPerGroup
        blockChannels = kg >= 4 ? 6 : 1
        blocksPerGroup = (kg + blockChannels - 1) / blockChannels
        let packedWeightFloats = try CheckedArithmetic.product([d.groups, blocksPerGroup, d.reductionLength, blockChannels],
                                                               what: "the direct backend's packed weights")
        // The tap offsets (one Int per term of the reduction) and packed weights live as long as the plan.
        let persistent = (packedWeightFloats + d.reductionLength) * 8
        try ResourceLimits.check("the direct backend's packed weights", bytes: persistent,
                                 limit: options.limits.maxWorkspaceBytes)
        polyphase = try PolyphaseGeometry(descriptor: d, tileWidth: Self.tileWidth)
        var layout = WorkspaceLayout()
        packedInput = try layout.reserve(Float.self, count: polyphase.packedCount, what: "the direct backend's padded input")
        try ResourceLimits.check("the direct backend's padded input", bytes: layout.byteCount,
                                 limit: options.limits.maxWorkspaceBytes)
        tilesPerChunk = Self.chunkSize(geometry: polyphase, blocksPerGroup: blocksPerGroup, threads: threads)

        let chunks = (polyphase.tileCount + tilesPerChunk - 1) / tilesPerChunk
        let tasks = d.batch * d.groups * chunks * blocksPerGroup
        // Computed FLOPs: every 64-position tile of the plane grid, every channel of a register block.
        let flops = 2 * Double(d.batch * d.groups) * Double(blocksPerGroup * blockChannels)
            * Double(polyphase.tileCount * Self.tileWidth) * Double(d.reductionLength)
        let kernel: WorkEstimate.Stage = blockChannels == 6
            ? .directKernel(flops: flops, reduction: d.reductionLength, tasks: tasks)
            // Taps of one input plane: what the load-bound kernel's per-row work is spread over. A dense layer with
            // under 4 output channels sums C/G planes one after another, not one long L1-resident sum (taps = C·R·S
            // priced SRCNN's 64→1 9×9 backward-data 2.7× too fast, and direct was chosen at 2× im2col's time).
            : .loadBoundKernel(flops: flops, taps: d.kernelHeight * d.kernelWidth, tasks: tasks)
        let bytes = Double(d.inputCount + polyphase.packedCount * 2 + d.outputCount) * 4
        summary = PlanDescription(backend: "direct", errorBound: DirectBackend.errorBound(d),
                                  typicalError: DirectBackend.typicalError(d),
                                  workspaceBytes: layout.byteCount, persistentBytes: persistent,
                                  work: WorkEstimate([.memory(bytes: bytes), kernel]))
        try options.accuracy.admit(summary)
    }

    /// Tiles per task. A chunk's input (C/G channels × its positions plus the kernel's reach) should fit in a quarter
    /// of L2 so that all weight blocks reuse it from cache; and there should be ≥ 8 tasks per thread so that the
    /// atomic hand-out stays cheap relative to the work and the threads balance.
    static func chunkSize(geometry: PolyphaseGeometry, blocksPerGroup: Int, threads: Int) -> Int {
        let d = geometry.descriptor
        let budgetFloats = 256 * 1024 / MemoryLayout<Float>.stride
        let fitting = max((budgetFloats / d.channelsPerGroup - geometry.reach) / tileWidth, 1)
        let independent = d.batch * d.groups * blocksPerGroup
        let chunksWanted = (8 * threads + independent - 1) / independent
        let balanced = max((geometry.tileCount + chunksWanted - 1) / chunksWanted, 1)
        return min(fitting, balanced)
    }
}

struct DirectPlan: ConvolutionPlan {
    let geometry: DirectGeometry
    /// Weights as [group][block][j][blockChannels], zero-filled past K/G.
    let packedWeights: AlignedStorage<Float>

    var descriptor: ConvolutionDescriptor { geometry.descriptor }
    var summary: PlanDescription { geometry.summary }

    init(geometry: DirectGeometry, weights: Tensor<Float>) {
        self.geometry = geometry
        let d = geometry.descriptor
        let kg = d.outputChannelsPerGroup
        let (J, bc, blocks) = (d.reductionLength, geometry.blockChannels, geometry.blocksPerGroup)
        let packed = AlignedStorage<Float>(count: d.groups * blocks * J * bc)
        weights.withUnsafeBufferPointer { w in
            for g in 0..<d.groups {
                for k in 0..<kg {
                    let (block, lane) = (k / bc, k % bc)
                    let source = (g * kg + k) * J
                    let target = (g * blocks + block) * J * bc + lane
                    for j in 0..<J { packed.pointer[target + j * bc] = w[source + j] }
                }
            }
        }
        packedWeights = packed
    }

    func execute(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
                 workspace: UnsafeMutableRawBufferPointer, profile: ExecutionProfile?) throws {
        try validateBuffers(input: input, output: output, workspace: workspace)
        let d = descriptor
        let (geometry, threads) = (geometry.polyphase, self.geometry.threads)
        let packed = self.geometry.packedInput.pointer(in: workspace)
        let shared = UncheckedSendable((input.baseAddress!, output.baseAddress!, packed))

        measurePhase("pad input", in: profile) {
            let slots = geometry.usedPhases.count
            Parallel.forEach(taskCount: d.batch * d.inputChannels * slots, threads: threads) { _, task in
                let (x, _, packed) = shared.value
                let plane = task / slots
                geometry.pack(x, n: plane / d.inputChannels, channel: plane % d.inputChannels, slot: task % slots,
                              into: packed)
            }
        }

        let (J, bc, blocks, tiles) = (d.reductionLength, self.geometry.blockChannels, self.geometry.blocksPerGroup,
                                      geometry.tileCount)
        let (kg, chunkTiles) = (d.outputChannelsPerGroup, self.geometry.tilesPerChunk)
        let chunks = (tiles + chunkTiles - 1) / chunkTiles
        let planeSize = d.outputHeight * d.outputWidth
        let tileWidth = DirectGeometry.tileWidth
        measurePhase("convolve", in: profile) {
            packedWeights.withUnsafeBufferPointer { weights in
                geometry.tapOffsets.withUnsafeBufferPointer { offsets in
                    let constants = UncheckedSendable((weights.baseAddress!, offsets.baseAddress!))
                    Parallel.forEach(taskCount: d.batch * d.groups * chunks * blocks, threads: threads) { _, task in
                        let (_, y, packed) = shared.value
                        let (weights, offsets) = constants.value
                        // Blocks vary fastest: consecutive tasks reuse one chunk of input from L2.
                        let block = task % blocks
                        let chunk = (task / blocks) % chunks
                        let g = (task / (blocks * chunks)) % d.groups
                        let n = task / (blocks * chunks * d.groups)
                        let groupInput = packed + (n * d.inputChannels + g * d.channelsPerGroup) * geometry.channelStride
                        let blockWeights = weights + (g * blocks + block) * J * bc
                        let firstChannel = block * bc
                        let channels = min(bc, kg - firstChannel)
                        let outputPlanes = y + (n * d.outputChannels + g * kg + firstChannel) * planeSize
                        withUnsafeTemporaryAllocation(of: Float.self, capacity: 6 * 64) { tileBuffer in
                            let tileOut = tileBuffer.baseAddress!
                            for tile in (chunk * chunkTiles)..<min((chunk + 1) * chunkTiles, tiles) {
                                let position = tile * tileWidth
                                // A tile of 6 whole channels inside one output row's valid columns stores straight
                                // into the planes; others go through the buffer, which drops the positions past Wo.
                                let (row, column) = (position / geometry.planeWidth, position % geometry.planeWidth)
                                if bc == 6 && channels == 6 && column + tileWidth <= d.outputWidth
                                    && row < d.outputHeight {
                                    DirectKernels.accumulate6x64(input: groupInput + position, tapOffsets: offsets,
                                                                 count: J, weights: blockWeights,
                                                                 tile: outputPlanes + row * d.outputWidth + column,
                                                                 tileStride: planeSize)
                                    continue
                                }
                                if bc == 6 {
                                    DirectKernels.accumulate6x64(input: groupInput + position, tapOffsets: offsets,
                                                                 count: J, weights: blockWeights, tile: tileOut,
                                                                 tileStride: 64)
                                } else {
                                    DirectKernels.accumulate1x64(input: groupInput + position, tapOffsets: offsets,
                                                                 count: J, weights: blockWeights, tile: tileOut,
                                                                 tileStride: 64)
                                }
                                geometry.storeTile(tileOut, tileStride: 64, channels: channels,
                                                   firstPosition: position, outputPlanes: outputPlanes)
                            }
                        }
                    }
                }
            }
        }
    }
}

import ConvLabCore

/// `direct`: SIMD direct convolution with no lowered matrix (cf. Zhang, Franchetti & Low, "High Performance
/// Zero-Memory Overhead Direct Convolutions", 2018). The only scratch is a zero-padded, stride-split copy of the
/// input (`PolyphaseGeometry`), about the size of the input itself, versus (R·S)× for im2col.
///
/// Work is split into tiles of (image, group, block of 6 output channels, 64 output positions); each tile runs the
/// whole (C/G)·R·S reduction in registers and stores its valid outputs once. Supports every stride, dilation,
/// padding, group count and batch size. Depthwise and groups with fewer than 4 output channels use a 1-channel
/// kernel so no lanes are spent on padding channels; depthwise layers at stride 1 have their own plan
/// (`DepthwisePlan`) that pads rows in cache instead of copying the whole input.
public struct DirectBackend: Convolution {
    public init() {}

    public var name: String { "direct" }

    public func support(for descriptor: ConvolutionDescriptor) -> SupportStatus { .supported }

    public func expectedErrorBound(for descriptor: ConvolutionDescriptor) -> Double {
        dotProductErrorBound(terms: descriptor.reductionLength)
    }

    public func makePlan(descriptor: ConvolutionDescriptor, weights: Tensor<Float>, options: PlanOptions) throws
        -> any ConvolutionPlan {
        try validatePlanInputs(descriptor: descriptor, weights: weights, options: options)
        if DepthwisePlan.applies(to: descriptor) {
            return try DepthwisePlan(descriptor: descriptor, weights: weights, options: options,
                                     expectedErrorBound: expectedErrorBound(for: descriptor))
        }
        return try DirectPlan(descriptor: descriptor, weights: weights, options: options,
                              expectedErrorBound: expectedErrorBound(for: descriptor))
    }
}

struct DirectPlan: ConvolutionPlan {
    let descriptor: ConvolutionDescriptor
    let expectedErrorBound: Double
    let geometry: PolyphaseGeometry
    /// Output channels per register block: 6, or 1 for narrow groups.
    let blockChannels: Int
    let blocksPerGroup: Int
    /// Weights as [group][block][j][blockChannels], zero-filled past K/G.
    let packedWeights: [Float]
    let packedInput: WorkspaceRegion<Float>
    let workspaceBytes: Int
    let threads: Int
    /// Tiles computed by one task (see `chunkSize`).
    let tilesPerChunk: Int

    var backendName: String { "direct" }
    var isDeterministic: Bool { true }

    static let tileWidth = 64

    init(descriptor d: ConvolutionDescriptor, weights: Tensor<Float>, options: PlanOptions,
         expectedErrorBound: Double) throws {
        descriptor = d
        self.expectedErrorBound = expectedErrorBound
        threads = options.threads
        geometry = PolyphaseGeometry(descriptor: d, tileWidth: Self.tileWidth)
        var layout = WorkspaceLayout()
        packedInput = layout.reserve(Float.self, count: geometry.packedCount)
        workspaceBytes = layout.byteCount
        try ResourceLimits.check("the direct backend's padded input", bytes: workspaceBytes,
                                 limit: options.limits.maxWorkspaceBytes)

        let kg = d.outputChannelsPerGroup
        blockChannels = kg >= 4 ? 6 : 1
        blocksPerGroup = (kg + blockChannels - 1) / blockChannels
        let (J, bc, blocks) = (d.reductionLength, blockChannels, blocksPerGroup)
        var packed = [Float](repeating: 0, count: d.groups * blocks * J * bc)
        weights.withUnsafeBufferPointer { w in
            for g in 0..<d.groups {
                for k in 0..<kg {
                    let (block, lane) = (k / bc, k % bc)
                    let source = (g * kg + k) * J
                    let target = (g * blocks + block) * J * bc + lane
                    for j in 0..<J { packed[target + j * bc] = w[source + j] }
                }
            }
        }
        packedWeights = packed
        tilesPerChunk = Self.chunkSize(geometry: geometry, blocksPerGroup: blocks, threads: threads)
    }

    /// Tiles per task. A chunk's input (C/G channels × its positions plus the kernel's reach) should fit in a quarter
    /// of L2 so that all weight blocks reuse it from cache; and there should be ≥ 8 tasks per thread so that the
    /// atomic hand-out stays cheap relative to the work and the threads balance.
    static func chunkSize(geometry: PolyphaseGeometry, blocksPerGroup: Int, threads: Int) -> Int {
        let d = geometry.descriptor
        let budgetFloats = 256 * 1024 / MemoryLayout<Float>.stride
        let reach = geometry.tapOffsets.last.map { $0 - (d.channelsPerGroup - 1) * geometry.channelStride } ?? 0
        let fitting = max((budgetFloats / d.channelsPerGroup - reach) / tileWidth, 1)
        let independent = d.batch * d.groups * blocksPerGroup
        let chunksWanted = (8 * threads + independent - 1) / independent
        let balanced = max((geometry.tileCount + chunksWanted - 1) / chunksWanted, 1)
        return min(fitting, balanced)
    }

    func execute(input: UnsafeBufferPointer<Float>, output: UnsafeMutableBufferPointer<Float>,
                 workspace: Workspace?, profile: ExecutionProfile?) throws {
        try validateBuffers(input: input, output: output, workspace: workspace)
        guard let workspace else { return }  // unreachable: the workspace is never empty
        let d = descriptor
        let geometry = geometry
        let packed = packedInput.pointer(in: workspace)
        let shared = UncheckedSendable((input.baseAddress!, output.baseAddress!, packed))

        measurePhase("pad input", in: profile) {
            Parallel.forEach(taskCount: d.batch * d.inputChannels, threads: threads) { _, task in
                let (x, _, packed) = shared.value
                geometry.pack(x, n: task / d.inputChannels, channel: task % d.inputChannels, into: packed)
            }
        }

        let (J, bc, blocks, tiles) = (d.reductionLength, blockChannels, blocksPerGroup, geometry.tileCount)
        let (kg, chunkTiles) = (d.outputChannelsPerGroup, tilesPerChunk)
        let chunks = (tiles + chunkTiles - 1) / chunkTiles
        let planeSize = d.outputHeight * d.outputWidth
        let tileWidth = Self.tileWidth
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

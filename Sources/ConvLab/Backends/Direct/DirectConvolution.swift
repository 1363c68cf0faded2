/// `direct`: SIMD direct convolution with no lowered matrix (cf. Zhang, Franchetti & Low, "High Performance
/// Zero-Memory Overhead Direct Convolutions", 2018). The only scratch is a zero-padded, stride-split copy of the
/// input (`PolyphaseGeometry`), about the size of the input itself, versus (R·S)× for im2col.
///
/// Work is split into tiles of (image, group, block of 6 output channels, 64 output positions); each tile runs the
/// whole (C/G)·R·S reduction in registers and stores its valid outputs once. Supports every stride, dilation,
/// padding, group count and batch size. Depthwise and groups with fewer than 4 output channels use a 1-channel
/// kernel so no lanes are spent on padding channels.
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
        let kg = d.outputChannelsPerGroup
        let planeSize = d.outputHeight * d.outputWidth
        let tileWidth = Self.tileWidth
        measurePhase("convolve", in: profile) {
            packedWeights.withUnsafeBufferPointer { weights in
                geometry.tapOffsets.withUnsafeBufferPointer { offsets in
                    let constants = UncheckedSendable((weights.baseAddress!, offsets.baseAddress!))
                    Parallel.forEach(taskCount: d.batch * d.groups * blocks * tiles, threads: threads) { _, task in
                        let (_, y, packed) = shared.value
                        let (weights, offsets) = constants.value
                        // Tiles vary fastest, so consecutive tasks reuse one weight block from cache.
                        let tile = task % tiles
                        let block = (task / tiles) % blocks
                        let g = (task / (tiles * blocks)) % d.groups
                        let n = task / (tiles * blocks * d.groups)
                        let position = tile * tileWidth
                        let source = packed + (n * d.inputChannels + g * d.channelsPerGroup) * geometry.channelStride
                            + position
                        let blockWeights = weights + (g * blocks + block) * J * bc
                        withUnsafeTemporaryAllocation(of: Float.self, capacity: 6 * 64) { tileBuffer in
                            let tileOut = tileBuffer.baseAddress!
                            if bc == 6 {
                                DirectKernels.accumulate6x64(input: source, tapOffsets: offsets, count: J,
                                                             weights: blockWeights, tile: tileOut, tileStride: 64)
                            } else {
                                DirectKernels.accumulate1x64(input: source, tapOffsets: offsets, count: J,
                                                             weights: blockWeights, tile: tileOut, tileStride: 64)
                            }
                            let firstChannel = block * bc
                            let channels = min(bc, kg - firstChannel)
                            geometry.storeTile(tileOut, tileStride: 64, channels: channels, firstPosition: position,
                                               outputPlanes: y + (n * d.outputChannels + g * kg + firstChannel)
                                                   * planeSize)
                        }
                    }
                }
            }
        }
    }
}

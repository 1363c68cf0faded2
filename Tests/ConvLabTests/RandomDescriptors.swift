import ConvLab

/// Seeded random convolution problems covering the features every backend must handle: batch > 1, groups and
/// depthwise, non-square and 1×1 kernels, 1×1 images, stride, dilation and asymmetric padding.
enum RandomDescriptors {
    /// `kernelSizes`, when given, draws each kernel side from that list instead of 1...5; `outputsPerGroup`, when
    /// given, draws K/G from that range for every kind of grouping (for plans that need wide groups).
    static func make(count: Int, seed: UInt64, maxStride: Int = 3, maxDilation: Int = 3, kernelSizes: [Int]? = nil,
                     outputsPerGroup: ClosedRange<Int>? = nil,
                     accept: (ConvolutionDescriptor) -> Bool = { _ in true }) -> [ConvolutionDescriptor] {
        var generator = SeededGenerator(seed: seed)
        func pick(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &generator) }
        var result: [ConvolutionDescriptor] = []
        while result.count < count {
            let groupsKind = pick(0...5)  // 0-2 dense, 3 two/three groups, 4 depthwise, 5 depthwise multiplier
            let channelsPerGroup = groupsKind >= 4 ? 1 : pick(1...9)
            let groups: Int
            switch groupsKind {
            case 3: groups = pick(2...3)
            case 4, 5: groups = pick(2...8)
            default: groups = 1
            }
            let outputPerGroup = outputsPerGroup.map(pick)
                ?? (groupsKind == 4 ? 1 : (groupsKind == 5 ? pick(2...3) : pick(1...14)))
            let side = { kernelSizes.map { $0[Int.random(in: 0..<$0.count, using: &generator)] } ?? pick(1...5) }
            let kernelHeight = pick(0...4) == 0 ? 1 : side()
            let kernelWidth = pick(0...2) == 0 ? kernelHeight : side()
            let tiny = pick(0...9) == 0
            let padding = Padding(top: pick(0...3), bottom: pick(0...3), left: pick(0...3), right: pick(0...3))
            let descriptor = try? ConvolutionDescriptor(
                batch: pick(0...3) == 0 ? pick(2...3) : 1,
                inputChannels: channelsPerGroup * groups,
                inputHeight: tiny ? 1 : pick(1...23),
                inputWidth: tiny ? 1 : pick(1...23),
                outputChannels: outputPerGroup * groups,
                kernelHeight: kernelHeight, kernelWidth: kernelWidth,
                strideHeight: pick(0...2) == 0 ? pick(1...maxStride) : 1,
                strideWidth: pick(0...2) == 0 ? pick(1...maxStride) : 1,
                padding: .explicit(padding),
                dilationHeight: pick(0...3) == 0 ? pick(1...maxDilation) : 1,
                dilationWidth: pick(0...3) == 0 ? pick(1...maxDilation) : 1,
                groups: groups)
            if let descriptor, accept(descriptor) { result.append(descriptor) }
        }
        return result
    }
}

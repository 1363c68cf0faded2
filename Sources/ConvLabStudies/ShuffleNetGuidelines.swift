import ConvLabBackends
import ConvLabBenchmark
import ConvLabCore
import ConvLabSelection

/// The four controlled experiments of ShuffleNet V2 (Ma et al., 2018), measured on this machine, and beside G3 the
/// wider-convolutions trade (a trunk of n thin layers against ⌈n/2⌉ layers √2 wider). Each row holds the
/// counted FLOPs and memory access cost (MAC) beside the measured time, because FLOPs alone do not predict speed.
public enum ShuffleNetGuidelines {
    public struct Row: Sendable {
        public var experiment: String
        public var setting: String
        public var cost: LayerCost
        public var seconds: Double
    }

    /// Runs G1–G4 for h×w feature maps with `channels` as the base width (defaults follow the paper's scale down to
    /// this machine: 56×56, 128 channels).
    public static func run(height: Int = 56, width: Int = 56, channels: Int = 128, batch: Int = 1,
                           options: PlanOptions = PlanOptions(), timing: TimingPolicy = TimingPolicy()) throws -> [Row] {
        var rows: [Row] = []
        func measure(_ experiment: String, _ setting: String, _ design: LayerDesign) throws {
            let runner = try LayerRunner(design: design, options: options)
            let input = try Tensor<Float>.random(shape: design.inputShape, seed: 7)
            rows.append(Row(experiment: experiment, setting: setting, cost: design.cost,
                            seconds: try runner.time(input, policy: timing).median))
        }
        func pointwise(_ label: String, c1: Int, c2: Int, groups: Int = 1) throws -> LayerDesign {
            let spec = LayerSpec(batch: batch, inputChannels: c1, outputChannels: c2, kernel: 1, height: height,
                                 width: width, padding: 0)
            let stage = try LayerDesigns.conv(label, input: [batch, c1, height, width], output: c2, kernelHeight: 1,
                                              kernelWidth: 1, padding: .zero, groups: groups, seed: 1)
            return LayerDesigns.design(label, spec, [.convolution(stage, uniqueWeights: nil)])
        }

        // G1: equal channel widths minimise MAC. c1·c2 fixed (= channels²), ratio c1:c2 varied.
        let product = Double(channels * channels)
        for ratio in [1.0, 2.0, 6.0, 12.0] {
            let c1 = max(1, Int((product / ratio).squareRoot().rounded()))
            let c2 = max(1, Int((product / Double(c1)).rounded()))
            try measure("G1 equal widths", "1:\(Int(ratio)) (c1 \(c1), c2 \(c2))", try pointwise("1x1", c1: c1, c2: c2))
        }
        // G2: more groups raise MAC at fixed FLOPs (widths grow by √g to keep h·w·c²/g constant).
        for groups in [1, 2, 4, 8] {
            let c = max(groups, Int((Double(channels) * Double(groups).squareRoot() / Double(groups)).rounded()) * groups)
            try measure("G2 group count", "g = \(groups) (c = \(c))", try pointwise("1x1 grouped", c1: c, c2: c, groups: groups))
        }
        // G3: fragmentation. The same FLOPs as 1, 2 or 4 convolutions in series (widths shrink by √n).
        for fragments in [1, 2, 4] {
            let c = max(1, Int((Double(channels) / Double(fragments).squareRoot()).rounded()))
            let spec = LayerSpec(batch: batch, inputChannels: c, outputChannels: c, kernel: 1, height: height,
                                 width: width, padding: 0)
            var steps: [LayerDesign.Step] = []
            for i in 0..<fragments {
                steps.append(.convolution(try LayerDesigns.conv("1x1", input: [batch, c, height, width], output: c,
                                                                kernelHeight: 1, kernelWidth: 1, padding: .zero,
                                                                seed: UInt64(i)), uniqueWeights: nil))
            }
            try measure("G3 fragmentation", "\(fragments) in series (c = \(c))", LayerDesigns.design("fragments", spec, steps))
        }
        // G4: element-wise operations are not free: a bottleneck block with and without ReLU + residual add.
        for elementwise in [false, true] {
            let inner = max(channels / 4, 1)
            let spec = LayerSpec(batch: batch, inputChannels: channels, outputChannels: channels, kernel: 3,
                                 height: height, width: width)
            let shape = [batch, channels, height, width], innerShape = [batch, inner, height, width]
            var steps: [LayerDesign.Step] = [
                .convolution(try LayerDesigns.conv("1x1", input: shape, output: inner, kernelHeight: 1, kernelWidth: 1,
                                                   padding: .zero, seed: 1), uniqueWeights: nil),
            ]
            if elementwise { steps.append(.relu) }
            steps.append(.convolution(try LayerDesigns.conv("3x3", input: innerShape, output: inner, kernelHeight: 3,
                                                            kernelWidth: 3, padding: Padding(1), seed: 2),
                                      uniqueWeights: nil))
            if elementwise { steps.append(.relu) }
            steps.append(.convolution(try LayerDesigns.conv("1x1", input: innerShape, output: channels, kernelHeight: 1,
                                                            kernelWidth: 1, padding: .zero, seed: 3), uniqueWeights: nil))
            if elementwise { steps += [.residualAdd, .relu] }
            try measure("G4 element-wise ops", elementwise ? "with ReLU + residual add" : "convolutions only",
                        LayerDesigns.design("bottleneck block", spec, steps))
        }
        // Wider convolutions beside G3: a trunk of n thin 3×3 layers at width w against ⌈n/2⌉ layers √2 wider, the
        // same multiplications (n·w² = ⌈n/2⌉·2w²): fewer, fatter layers.
        for layers in [2, 4, 8] {
            for wide in [false, true] {
                let count = wide ? (layers + 1) / 2 : layers
                let c = wide ? Int((Double(channels) * 2.0.squareRoot()).rounded()) : channels
                let spec = LayerSpec(batch: batch, inputChannels: c, outputChannels: c, kernel: 3, height: height,
                                     width: width)
                var steps: [LayerDesign.Step] = []
                for i in 0..<count {
                    steps.append(.convolution(try LayerDesigns.conv("3x3", input: [batch, c, height, width], output: c,
                                                                    kernelHeight: 3, kernelWidth: 3,
                                                                    padding: Padding(1), seed: UInt64(i)),
                                              uniqueWeights: nil))
                    steps.append(.relu)
                }
                try measure("G3b depth vs width", "\(count) x 3x3 at c = \(c)" + (wide ? " (wide)" : " (thin)"),
                            LayerDesigns.design("trunk", spec, steps))
            }
        }
        return rows
    }
}

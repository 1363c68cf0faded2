extension NetworkArchitecture {
    /// ResNet-50 as torchvision defines it (He et al. 2016, "v1.5": the stride sits on the 3×3 of each bottleneck):
    /// a 7×7/2 stem, 3×3/2 max pooling, then 3, 4, 6, 3 bottlenecks (1×1 reduce, 3×3, 1×1 expand ×4) with a 1×1
    /// projection on the first block of every stage. 53 convolutions, 4.09 G multiply-adds at 224².
    public static let resnet50 = NetworkArchitecture(
        name: "resnet50", summary: "ResNet-50 v1.5 (torchvision): bottlenecks 3-4-6-3, stride on the 3x3"
    ) { b in
        try b.conv("conv1", 64, kernel: 7, stride: 2, pad: 3)
        try b.pool(kernel: 3, stride: 2, pad: 1, name: "maxpool")
        for (stage, (blocks, width)) in zip([3, 4, 6, 3], [64, 128, 256, 512]).enumerated() {
            for block in 0..<blocks {
                let prefix = "layer\(stage + 1).\(block)"
                let stride = block == 0 && stage > 0 ? 2 : 1
                let input = b.shape
                try b.conv("\(prefix).conv1", width, kernel: 1)
                try b.conv("\(prefix).conv2", width, kernel: 3, stride: stride)
                let output = try b.conv("\(prefix).conv3", width * 4, kernel: 1)
                if block == 0 {
                    try b.conv("\(prefix).downsample.0", width * 4, kernel: 1, stride: stride, from: input)
                }
                b.resume(output)
            }
        }
    }
}

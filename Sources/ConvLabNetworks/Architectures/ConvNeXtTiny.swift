extension NetworkArchitecture {
    /// ConvNeXt-T (Liu et al. 2022), the large-kernel modern network: a 4×4/4 "patchify" stem, stages of 3, 3, 9, 3
    /// blocks at 96–768 channels joined by 2×2/2 downsampling; each block is a depthwise 7×7 and an inverted
    /// bottleneck of two 1×1 convolutions (×4). 58 convolutions, about 4.5 G multiply-adds at 224².
    public static let convNeXtTiny = NetworkArchitecture(
        name: "convnext-t", summary: "ConvNeXt-T: depthwise 7x7 blocks 3-3-9-3 at 96-768 channels"
    ) { b in
        try b.conv("stem.0", 96, kernel: 4, stride: 4, pad: 0)
        for (stage, (blocks, channels)) in zip([3, 3, 9, 3], [96, 192, 384, 768]).enumerated() {
            if stage > 0 { try b.conv("downsample.\(stage)", channels, kernel: 2, stride: 2, pad: 0) }
            for block in 0..<blocks {
                let prefix = "stages.\(stage).\(block)"
                try b.depthwise("\(prefix).dwconv", kernel: 7)
                try b.conv("\(prefix).pwconv1", channels * 4, kernel: 1)
                try b.conv("\(prefix).pwconv2", channels, kernel: 1)
            }
        }
    }
}

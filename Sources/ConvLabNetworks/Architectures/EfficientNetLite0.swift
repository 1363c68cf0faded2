extension NetworkArchitecture {
    /// EfficientNet-Lite0 (Tan & Le 2019, the "Lite" variant for CPUs: no squeeze-excitation, ReLU6, stem and head
    /// kept at 32 and 1280 channels): 16 MBConv blocks with depthwise 3×3 and 5×5. 49 convolutions, 9 of them
    /// depthwise 5×5 (up to 1152 channels).
    public static let efficientNetLite0 = NetworkArchitecture(
        name: "efficientnet-lite0", summary: "EfficientNet-Lite0: 16 MBConv blocks, depthwise 3x3 and 5x5, no SE"
    ) { b in
        try b.conv("stem", 32, kernel: 3, stride: 2)
        // (expansion, kernel, first stride, output channels, repeats), EfficientNet-B0's stages.
        for (stage, (t, k, s, c, n)) in [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
                                         (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)].enumerated() {
            for index in 0..<n {
                let prefix = "blocks.\(stage).\(index)"
                if t != 1 { try b.conv("\(prefix).conv_pw", b.shape.channels * t, kernel: 1) }
                try b.depthwise("\(prefix).conv_dw", kernel: k, stride: index == 0 ? s : 1)
                try b.conv("\(prefix).conv_pwl", c, kernel: 1)
            }
        }
        try b.conv("conv_head", 1280, kernel: 1)
    }
}

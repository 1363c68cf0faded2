extension NetworkArchitecture {
    /// MobileNetV2 as torchvision defines it (Sandler et al. 2018): a 3×3/2 stem, 17 inverted residuals (1×1 expand
    /// by t, depthwise 3×3, 1×1 linear projection; no expansion in the first), a 1×1 to 1280 channels. Names follow
    /// torchvision's state dict. 52 convolutions, about 0.30 G multiply-adds at 224².
    public static let mobilenetV2 = NetworkArchitecture(
        name: "mobilenetv2", summary: "MobileNetV2 1.0 (torchvision): 17 inverted residuals, depthwise 3x3"
    ) { b in
        try b.conv("features.0.0", 32, kernel: 3, stride: 2)
        var feature = 1
        // (expansion t, output channels c, repeats n, first stride s), the paper's Table 2.
        for (t, c, n, s) in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                             (6, 160, 3, 2), (6, 320, 1, 1)] {
            for index in 0..<n {
                let prefix = "features.\(feature).conv"
                let hidden = b.shape.channels * t
                if t == 1 {
                    try b.depthwise("\(prefix).0.0", kernel: 3, stride: index == 0 ? s : 1)
                    try b.conv("\(prefix).1", c, kernel: 1)
                } else {
                    try b.conv("\(prefix).0.0", hidden, kernel: 1)
                    try b.depthwise("\(prefix).1.0", kernel: 3, stride: index == 0 ? s : 1)
                    try b.conv("\(prefix).2", c, kernel: 1)
                }
                feature += 1
            }
        }
        try b.conv("features.18.0", 1280, kernel: 1)
    }
}

extension NetworkArchitecture {
    /// VGG-16 (Simonyan & Zisserman 2015, configuration D): thirteen 3×3 convolutions in five blocks of 64–512
    /// channels, each block closed by 2×2/2 max pooling. 15.35 G multiply-adds in the convolutions at 224².
    public static let vgg16 = NetworkArchitecture(
        name: "vgg16", summary: "VGG-16 (configuration D): 13 3x3 convolutions, 64-512 channels"
    ) { b in
        for (block, (count, channels)) in zip([2, 2, 3, 3, 3], [64, 128, 256, 512, 512]).enumerated() {
            for layer in 0..<count {
                try b.conv("conv\(block + 1)_\(layer + 1)", channels, kernel: 3)
            }
            try b.pool(kernel: 2, stride: 2, name: "pool\(block + 1)")
        }
    }
}

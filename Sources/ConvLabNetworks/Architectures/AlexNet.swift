extension NetworkArchitecture {
    /// AlexNet as torchvision defines it (Krizhevsky et al. 2012, single-tower "one weird trick" widths): an 11×11/4
    /// stem, a 5×5 and three 3×3 convolutions, 3×3/2 max pooling after the first, second and fifth.
    public static let alexNet = NetworkArchitecture(
        name: "alexnet", summary: "AlexNet (torchvision): 11x11/4 stem, 5x5, three 3x3"
    ) { b in
        try b.conv("features.0", 64, kernel: 11, stride: 4, pad: 2)
        try b.pool(kernel: 3, stride: 2, name: "features.2")
        try b.conv("features.3", 192, kernel: 5)
        try b.pool(kernel: 3, stride: 2, name: "features.5")
        try b.conv("features.6", 384, kernel: 3)
        try b.conv("features.8", 256, kernel: 3)
        try b.conv("features.10", 256, kernel: 3)
    }
}

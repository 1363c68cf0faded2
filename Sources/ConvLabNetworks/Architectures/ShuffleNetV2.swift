extension NetworkArchitecture {
    /// ShuffleNet V2 1.0× as torchvision defines it (Ma et al. 2018): a 3×3/2 stem and max pooling, three stages of
    /// 4, 8, 4 units at 116, 232, 464 channels, a 1×1 to 1024. A stride-2 unit runs two branches on the whole input
    /// (depthwise 3×3/2 + 1×1; 1×1 + depthwise 3×3/2 + 1×1); a stride-1 unit runs the second branch on half the
    /// channels. 56 convolutions, about 0.15 G multiply-adds at 224².
    public static let shuffleNetV2 = NetworkArchitecture(
        name: "shufflenetv2", summary: "ShuffleNet V2 1.0x (torchvision): units 4-8-4 at 116/232/464 channels"
    ) { b in
        try b.conv("conv1.0", 24, kernel: 3, stride: 2)
        try b.pool(kernel: 3, stride: 2, pad: 1, name: "maxpool")
        for (stage, (units, channels)) in zip([4, 8, 4], [116, 232, 464]).enumerated() {
            let half = channels / 2
            for unit in 0..<units {
                let prefix = "stage\(stage + 2).\(unit)"
                let input = b.shape
                if unit == 0 {
                    try b.depthwise("\(prefix).branch1.0", kernel: 3, stride: 2, from: input)
                    try b.conv("\(prefix).branch1.2", half, kernel: 1)
                    try b.conv("\(prefix).branch2.0", half, kernel: 1, from: input)
                } else {
                    var split = input
                    split.channels = half
                    try b.conv("\(prefix).branch2.0", half, kernel: 1, from: split)
                }
                try b.depthwise("\(prefix).branch2.3", kernel: 3, stride: unit == 0 ? 2 : 1)
                try b.conv("\(prefix).branch2.5", half, kernel: 1)
                b.concatenated(channels: channels)
            }
        }
        try b.conv("conv5.0", 1024, kernel: 1)
    }
}

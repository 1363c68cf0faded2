import ConvLabCore

/// A network written down from its architecture's definition: how to lay out every convolution for a batch and an
/// input size. The layers are built on demand, so one architecture serves `--batch 32 --size 320` as well as the
/// published 1×3×224×224.
public struct NetworkArchitecture: Sendable {
    public let name: String
    /// One line: what the network is and where its definition comes from.
    public let summary: String
    let build: @Sendable (inout ArchitectureBuilder) throws -> Void

    public init(name: String, summary: String, build: @escaping @Sendable (inout ArchitectureBuilder) throws -> Void) {
        self.name = name
        self.summary = summary
        self.build = build
    }

    /// Every convolution, in execution order, for an N×3×H×W input. Throws `.invalidArgument` naming the first layer
    /// whose descriptor is invalid (e.g. an input too small for the network's downsampling).
    public func layers(batch: Int = 1, height: Int = 224, width: Int = 224,
                       limits: ResourceLimits = .default) throws -> [NetworkLayer] {
        for (field, value) in [("batch", batch), ("height", height), ("width", width)] where value < 1 {
            throw ConvLabError.invalidArgument(name: field, reason: "must be at least 1 (got \(value))")
        }
        var builder = ArchitectureBuilder(batch: batch, height: height, width: width, limits: limits)
        try build(&builder)
        return builder.layers
    }
}

/// The architectures `convlab network` knows, by name.
public enum NetworkCatalog {
    public static let all: [NetworkArchitecture] = [
        .resnet50, .vgg16, .mobilenetV2, .efficientNetLite0, .shuffleNetV2, .alexNet, .convNeXtTiny,
    ]

    public static var names: [String] { all.map(\.name) }

    public static func named(_ name: String) throws -> NetworkArchitecture {
        guard let architecture = all.first(where: { $0.name == name.lowercased() }) else {
            throw ConvLabError.invalidArgument(
                name: "network", reason: "unknown network '\(name)'; known: \(names.joined(separator: ", "))")
        }
        return architecture
    }
}

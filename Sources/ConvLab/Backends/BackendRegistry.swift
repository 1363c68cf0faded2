/// Per-family settings of the backends (tile sizes, product forms, planning effort), so the CLI and experiments can
/// configure every backend the registry builds in one place.
public struct BackendSettings: Hashable, Sendable {
    /// Tile size of `fft-tiled`; nil lets the cost model choose.
    public var fftTile: Int?
    public var fftProduct: ComplexProduct
    public var fftEffort: FFTPlanningEffort

    public init(fftTile: Int? = nil, fftProduct: ComplexProduct = .fourMultiplication,
                fftEffort: FFTPlanningEffort = .estimate) {
        self.fftTile = fftTile
        self.fftProduct = fftProduct
        self.fftEffort = fftEffort
    }
}

/// The backends convlab knows, in the order `compare` lists them. A list, not an if-chain: adding a backend is
/// adding one line here.
public enum BackendRegistry {
    public static func all(_ settings: BackendSettings = BackendSettings()) -> [any Convolution] {
        [
            ReferenceBackend(),
            Im2colBackend(),
            DirectBackend(),
            FFTBackend(tiling: .wholeImage, product: settings.fftProduct, effort: settings.fftEffort),
            FFTBackend(tiling: .tiled(size: settings.fftTile), product: settings.fftProduct,
                       effort: settings.fftEffort),
        ]
    }

    public static var all: [any Convolution] { all() }

    public static var names: [String] { all.map(\.name) }

    /// The backend called `name`, or `.unknownName` listing the known ones.
    public static func backend(named name: String, settings: BackendSettings = BackendSettings()) throws
        -> any Convolution {
        guard let backend = all(settings).first(where: { $0.name == name }) else {
            throw ConvLabError.unknownName(kind: "backend", name: name, known: names)
        }
        return backend
    }
}

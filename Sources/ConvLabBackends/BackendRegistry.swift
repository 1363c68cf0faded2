import ConvLabCore

/// Per-family settings of the backends (tile sizes, product forms, planning effort), so the CLI and experiments can
/// configure every backend the registry builds in one place.
public struct BackendSettings: Hashable, Sendable {
    /// Tile size of `fft-tiled`; nil lets the cost model choose.
    public var fftTile: Int?
    public var fftProduct: ComplexProduct
    public var fftEffort: FFTPlanningEffort
    /// Output tile m of the generic `winograd` backend; nil: 4 for 3-tap kernels, 2 otherwise.
    public var winogradTile: Int?
    /// Interpolation points of the generic `winograd` backend; nil: the defaults.
    public var winogradPoints: [Rational]?
    public var winogradFractions: WinogradTransform.FractionPlacement

    public init(fftTile: Int? = nil, fftProduct: ComplexProduct = .fourMultiplication,
                fftEffort: FFTPlanningEffort = .estimate, winogradTile: Int? = nil, winogradPoints: [Rational]? = nil,
                winogradFractions: WinogradTransform.FractionPlacement = .g) {
        self.fftTile = fftTile
        self.fftProduct = fftProduct
        self.fftEffort = fftEffort
        self.winogradTile = winogradTile
        self.winogradPoints = winogradPoints
        self.winogradFractions = winogradFractions
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
            WinogradBackend(outputTile: settings.winogradTile, points: settings.winogradPoints,
                            fractions: settings.winogradFractions),
        ] + Self.winogradVariants.map { WinogradBackend(outputTile: $0.m, kernelSize: $0.r) }
    }

    /// The fixed Winograd variants listed as their own rows (F(m×m, r×r) and the 1-D forms for 1×r / r×1).
    public static let winogradVariants: [(m: Int, r: Int)] = [(2, 3), (4, 3), (6, 3), (2, 5), (4, 5)]

    /// Every backend except `reference` that supports `descriptor`: what `compare` runs by default.
    public static func supporting(_ descriptor: ConvolutionDescriptor, settings: BackendSettings = BackendSettings())
        -> [any Convolution] {
        all(settings).filter { $0.name != "reference" && $0.support(for: descriptor).isSupported }
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

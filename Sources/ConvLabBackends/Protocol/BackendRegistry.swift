import ConvLabCore
import ConvLabMatMul

/// Per-family settings of the backends (tile sizes, product forms, planning effort), so the CLI and experiments can
/// configure every backend the registry builds in one place.
public struct BackendSettings: Hashable, Sendable {
    /// Tile size of `fft-tiled`; nil lets its tile model choose.
    public var fftTile: Int?
    public var fftProduct: ComplexProduct
    public var fftEffort: FFTPlanningEffort
    /// Output tile m of the generic `winograd` backend; nil: `WinogradBackend.defaultTile(forKernel:axes:)`.
    public var winogradTile: Int?
    /// Interpolation points of the generic `winograd` backend; nil: `WinogradTransform.defaultPoints(outputSize:kernelSize:)`.
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

/// The backends convlab knows, in the order `compare` lists them. A list, not an if-chain: adding a backend is adding
/// one line to `standard`; an experiment can `register` its own and the selector, `compare` and `bench` see it.
public struct BackendRegistry: Sendable {
    public private(set) var backends: [any Convolution]

    public init(_ backends: [any Convolution]) {
        self.backends = backends
    }

    /// Every backend convlab ships.
    public static func standard(_ settings: BackendSettings = BackendSettings()) -> BackendRegistry {
        BackendRegistry([
            ReferenceBackend(),
            Im2colBackend(),
            DirectBackend(),
            FFTBackend(tiling: .wholeImage, product: settings.fftProduct, effort: settings.fftEffort),
            FFTBackend(tiling: .tiled(size: settings.fftTile), product: settings.fftProduct, effort: settings.fftEffort),
            WinogradBackend(outputTile: settings.winogradTile, points: settings.winogradPoints,
                            fractions: settings.winogradFractions),
        ] + winogradVariants.map { WinogradBackend(outputTile: $0.m, kernelSize: $0.r) })
    }

    /// The fixed Winograd variants listed as their own rows (F(m×m, r×r) and the 1-D forms for 1×r / r×1).
    public static let winogradVariants: [(m: Int, r: Int)] = [(2, 3), (4, 3), (6, 3), (2, 5), (4, 5)]

    /// Adds a backend (after the others); a backend of the same name replaces the old one.
    public mutating func register(_ backend: any Convolution) {
        if let index = backends.firstIndex(where: { $0.name == backend.name }) {
            backends[index] = backend
        } else {
            backends.append(backend)
        }
    }

    public var names: [String] { backends.map(\.name) }

    /// The backends the selector chooses among (`isSelectable`).
    public var selectable: [any Convolution] { backends.filter(\.isSelectable) }

    /// Every backend except `reference` that supports `descriptor`: what `compare` runs by default.
    public func supporting(_ descriptor: ConvolutionDescriptor) -> [any Convolution] {
        backends.filter { $0.name != ReferenceBackend.backendName && $0.support(for: descriptor).isSupported }
    }

    /// The backend called `name`, or `.unknownName` listing the known ones.
    public func backend(named name: String) throws -> any Convolution {
        guard let backend = backends.first(where: { $0.name == name }) else {
            throw ConvLabError.unknownName(kind: "backend", name: name, known: names)
        }
        return backend
    }

    // MARK: The standard registry, for call sites that need no other

    public static func all(_ settings: BackendSettings = BackendSettings()) -> [any Convolution] {
        standard(settings).backends
    }

    public static var all: [any Convolution] { all() }

    public static var names: [String] { standard().names }

    public static func supporting(_ descriptor: ConvolutionDescriptor, settings: BackendSettings = BackendSettings())
        -> [any Convolution] {
        standard(settings).supporting(descriptor)
    }

    public static func backend(named name: String, settings: BackendSettings = BackendSettings()) throws
        -> any Convolution {
        try standard(settings).backend(named: name)
    }
}

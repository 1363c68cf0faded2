/// The backends convlab knows, in the order `compare` lists them. A list, not an if-chain: adding a backend is
/// adding one line here.
public enum BackendRegistry {
    public static var all: [any Convolution] {
        [ReferenceBackend(), Im2colBackend(), DirectBackend()]
    }

    public static var names: [String] { all.map(\.name) }

    /// The backend called `name`, or `.unknownName` listing the known ones.
    public static func backend(named name: String) throws -> any Convolution {
        guard let backend = all.first(where: { $0.name == name }) else {
            throw ConvLabError.unknownName(kind: "backend", name: name, known: names)
        }
        return backend
    }
}

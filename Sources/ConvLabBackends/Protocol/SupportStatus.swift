/// Whether a backend can run a descriptor, and if not, why (a sentence the CLI prints as is).
public enum SupportStatus: Hashable, Sendable {
    case supported
    case unsupported(String)

    public var isSupported: Bool { self == .supported }
}

import Foundation

/// Every error convlab raises for bad input. Each case names the offending field or resource and says why,
/// so a command-line tool can print `String(describing: error)` as one line and a library user can switch on it.
public enum ConvLabError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A descriptor field is out of range or inconsistent with the others (e.g. `groups` does not divide `C`).
    case invalidDescriptor(field: String, reason: String)
    /// A buffer or tensor does not have the shape or element count the operation needs.
    case shapeMismatch(what: String, expected: String, actual: String)
    /// A backend cannot run this descriptor; `reason` says which feature is missing.
    case unsupported(backend: String, reason: String)
    /// Running would need more memory than the configured limit allows; refused before allocating.
    case memoryLimitExceeded(what: String, requiredBytes: Int, limitBytes: Int)
    /// A name (backend, engine, format...) that convlab does not know.
    case unknownName(kind: String, name: String, known: [String])
    /// A file could not be read or parsed; `reason` says what was wrong with it.
    case invalidFile(path: String, reason: String)
    /// A command-line or API argument that is malformed or out of range.
    case invalidArgument(name: String, reason: String)
    /// A size computed from the input (elements, bytes, a transform) does not fit in a 64-bit integer; refused
    /// before allocating, where a wrapped product would have become a small buffer and a heap overflow.
    case sizeOverflow(what: String)
    /// A plan's declared error bound is above the accuracy ceiling: its answer would carry no meaningful promise
    /// (`source` says what makes the bound that large, e.g. a Winograd tile's transform growth).
    case tooInaccurate(backend: String, variant: String, bound: Double, ceiling: Double, source: String)

    public var description: String {
        switch self {
        case let .invalidDescriptor(field, reason):
            return "invalid descriptor: \(field): \(reason)"
        case let .shapeMismatch(what, expected, actual):
            return "shape mismatch: \(what): expected \(expected), got \(actual)"
        case let .unsupported(backend, reason):
            return "backend '\(backend)' does not support this convolution: \(reason)"
        case let .memoryLimitExceeded(what, required, limit):
            return "\(what) would need \(formatBytes(required)), more than the limit of \(formatBytes(limit))"
        case let .unknownName(kind, name, known):
            return "unknown \(kind) '\(name)' (known: \(known.joined(separator: ", ")))"
        case let .invalidFile(path, reason):
            return "\(path): \(reason)"
        case let .invalidArgument(name, reason):
            return "invalid \(name): \(reason)"
        case let .sizeOverflow(what):
            return "\(what): the size overflows a 64-bit integer"
        case let .tooInaccurate(backend, variant, bound, ceiling, source):
            return "backend '\(backend)'" + (variant.isEmpty ? "" : " (\(variant))") + " is refused: "
                + (source.isEmpty ? "" : "\(source); ")
                + "its error bound \(String(format: "%.2e", bound)) exceeds the accuracy ceiling "
                + "\(String(format: "%.2e", ceiling)) (allow it explicitly to run it; its check is then 'unbounded')"
        }
    }
}

/// Human-readable byte count (binary units), used in error messages and reports.
public func formatBytes(_ bytes: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
    var value = Double(bytes)
    var unit = 0
    while abs(value) >= 1024, unit < units.count - 1 {
        value /= 1024
        unit += 1
    }
    return unit == 0 ? "\(bytes) B" : String(format: "%.1f", value) + " " + units[unit]
}

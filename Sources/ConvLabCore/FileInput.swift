import Foundation

/// Reading a user's file: its size is checked before a byte is read, so a wrong path to a 50 GB file fails with a
/// message instead of exhausting memory, and text files must be UTF-8 (binary garbage is named as such).
public enum FileInput {
    /// Largest text file convlab reads (suites, CSVs, wisdom): far above any real one.
    public static let maximumTextBytes = 256 << 20

    /// The file's bytes, refused with `.invalidFile` when it cannot be read and `.memoryLimitExceeded` when it is
    /// larger than `limit`.
    public static func data(at path: String, limit: Int, what: String) throws -> Data {
        let attributes: [FileAttributeKey: Any]
        do {
            attributes = try FileManager.default.attributesOfItem(atPath: path)
        } catch {
            throw ConvLabError.invalidFile(path: path, reason: "cannot read \(what): \(error.localizedDescription)")
        }
        if let type = attributes[.type] as? FileAttributeType, type == .typeDirectory {
            throw ConvLabError.invalidFile(path: path, reason: "is a directory, not \(what)")
        }
        if let size = (attributes[.size] as? NSNumber)?.intValue, size > limit {
            throw ConvLabError.memoryLimitExceeded(what: "\(path) (\(what))", requiredBytes: size, limitBytes: limit)
        }
        do {
            return try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw ConvLabError.invalidFile(path: path, reason: "cannot read \(what): \(error.localizedDescription)")
        }
    }

    /// The file as UTF-8 text (at most `maximumTextBytes`).
    public static func text(at path: String, what: String) throws -> String {
        let data = try data(at: path, limit: maximumTextBytes, what: what)
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConvLabError.invalidFile(path: path, reason: "\(what) is not UTF-8 text (a binary file?)")
        }
        if text.contains("\u{0}") {
            throw ConvLabError.invalidFile(path: path, reason: "\(what) contains NUL bytes (a binary file?)")
        }
        return text
    }
}

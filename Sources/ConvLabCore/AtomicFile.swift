import Foundation

/// Writes a file so that readers see the old contents or the new, never half of either: a temporary file in the same
/// directory, then a rename over the target. Wisdom and machine profiles are rewritten this way, so an interrupted
/// `tune` or `calibrate` never leaves a broken file.
public enum AtomicFile {
    /// Writes `data` to `path` (creating its directory); `what` names the file in errors.
    public static func write(_ data: Data, to path: String, what: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        let temporary = path + ".tmp-\(ProcessInfo.processInfo.processIdentifier)"
        do {
            if !directory.isEmpty {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            }
            try data.write(to: URL(fileURLWithPath: temporary))
        } catch {
            throw ConvLabError.invalidFile(path: path, reason: "cannot write \(what): \(error.localizedDescription)")
        }
        if rename(temporary, path) != 0 {
            try? FileManager.default.removeItem(atPath: temporary)
            throw ConvLabError.invalidFile(path: path, reason: "cannot move the new \(what) into place")
        }
    }

    /// Pretty-printed, key-sorted JSON of `value`, written atomically.
    public static func writeJSON<T: Encodable>(_ value: T, to path: String, what: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data: Data
        do { data = try encoder.encode(value) } catch {
            throw ConvLabError.invalidFile(path: path, reason: "cannot encode \(what): \(error)")
        }
        try write(data, to: path, what: what)
    }
}

import Foundation

/// Cache sizes of this machine, read once from Linux's sysfs (`/sys/devices/system/cpu/cpu0/cache/index*/`), so that
/// blocking follows the machine convlab runs on rather than the one it was written on. Where sysfs says nothing
/// (another OS, a container hiding it) the values fall back to a modest x86 core's: 48 KiB L1d, 1 MiB L2, 16 MiB
/// last level.
public struct MachineCaches: Sendable, Hashable, Codable {
    public var level1DataBytes: Int
    public var level2Bytes: Int
    /// The largest cache (L3 where there is one): beyond it, data streams from memory.
    public var lastLevelBytes: Int

    public static let fallback = MachineCaches(level1DataBytes: 48 << 10, level2Bytes: 1 << 20, lastLevelBytes: 16 << 20)

    public static let current: MachineCaches = read(from: "/sys/devices/system/cpu/cpu0/cache")

    /// Parses sysfs's `level`, `type` and `size` ("48K", "2048K", "300M") files under `directory`.
    static func read(from directory: String) -> MachineCaches {
        var caches = fallback
        var found = (l1: false, l2: false, last: 0)
        for index in 0..<8 {
            let base = "\(directory)/index\(index)/"
            guard let level = text(base + "level").flatMap(Int.init), let type = text(base + "type"),
                  let size = text(base + "size").flatMap(parseSize), size > 0 else { continue }
            if level == 1 && type != "Instruction" { caches.level1DataBytes = size; found.l1 = true }
            if level == 2 { caches.level2Bytes = size; found.l2 = true }
            if level >= 2 && size > found.last { found.last = size }
        }
        if found.last > 0 { caches.lastLevelBytes = found.last }
        return caches
    }

    private static func text(_ path: String) -> String? {
        (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// "48K" → 49152, "2M" → 2097152, "512" → 512.
    static func parseSize(_ text: String) -> Int? {
        let units: [Character: Int] = ["K": 10, "M": 20, "G": 30]
        guard let last = text.last else { return nil }
        if let shift = units[last] { return Int(text.dropLast()).map { $0 << shift } }
        return Int(text)
    }
}

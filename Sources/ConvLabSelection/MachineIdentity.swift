import ConvLabCore
import Foundation

/// What a cost-model profile is matched on: the CPU's vendor, family and model (the micro-architecture — a VM's model
/// name string is often generic, "Intel(R) Xeon(R) Processor"), its core count, L2 per core and vector ISA. Read from
/// /proc/cpuinfo and sysfs; fields Linux does not report stay empty or zero, and then only match each other.
public struct MachineIdentity: Sendable, Codable, Hashable, CustomStringConvertible {
    public var vendor: String
    public var family: Int
    public var model: Int
    public var cores: Int
    public var level2Bytes: Int
    public var hasAVX512: Bool

    public init(vendor: String, family: Int, model: Int, cores: Int, level2Bytes: Int, hasAVX512: Bool) {
        (self.vendor, self.family, self.model, self.cores, self.level2Bytes, self.hasAVX512)
            = (vendor, family, model, cores, level2Bytes, hasAVX512)
    }

    public static let current: MachineIdentity = parse(
        cpuinfo: (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? "",
        cores: ProcessInfo.processInfo.activeProcessorCount, level2Bytes: MachineCaches.current.level2Bytes)

    /// The first processor's fields of a /proc/cpuinfo text.
    public static func parse(cpuinfo: String, cores: Int, level2Bytes: Int) -> MachineIdentity {
        var fields: [String: String] = [:]
        for line in cpuinfo.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2 else { continue }
            if fields[parts[0]] != nil { continue }
            fields[parts[0]] = parts[1]
        }
        let flags = Set((fields["flags"] ?? "").split(separator: " ").map(String.init))
        return MachineIdentity(vendor: fields["vendor_id"] ?? "", family: fields["cpu family"].flatMap { Int($0) } ?? 0,
                               model: fields["model"].flatMap { Int($0) } ?? 0, cores: cores,
                               level2Bytes: level2Bytes, hasAVX512: flags.contains("avx512f"))
    }

    /// The same micro-architecture: vendor, family and model agree.
    public func isSameKind(as other: MachineIdentity) -> Bool {
        vendor == other.vendor && family == other.family && model == other.model
    }

    /// How unlike `other` this machine is, for picking the closest profile when none is of the same kind: a different
    /// vector ISA or vendor outweighs everything else, then L2 size (it sets the blocking) and core count, in ratios.
    public func distance(to other: MachineIdentity) -> Double {
        func ratio(_ a: Int, _ b: Int) -> Double { abs(log(Double(max(a, 1)) / Double(max(b, 1)))) }
        return (hasAVX512 == other.hasAVX512 ? 0 : 100) + (vendor == other.vendor ? 0 : 10)
            + (family == other.family ? 0 : 1) + ratio(level2Bytes, other.level2Bytes) + ratio(cores, other.cores)
    }

    public var description: String {
        "\(vendor.isEmpty ? "unknown vendor" : vendor) family \(family) model \(model), \(cores) cores, "
            + "L2 \(formatBytes(level2Bytes))\(hasAVX512 ? ", AVX-512" : "")"
    }
}

import Foundation

/// Where and when a measurement was made, written into every CSV row so that committed data can be traced.
public struct RunMetadata: Sendable, Codable, Hashable {
    public var version: String
    public var gitCommit: String
    public var cpu: String
    public var cores: Int
    public var date: String

    public static let convlabVersion = "0.1.0"

    /// This machine, now. The commit comes from `CONVLAB_GIT_COMMIT` or `git rev-parse` in the working directory.
    public static let current = RunMetadata(
        version: convlabVersion, gitCommit: gitCommit(), cpu: MachineSignature.current.cpu,
        cores: MachineSignature.current.cores, date: ISO8601DateFormatter().string(from: Date()))

    static func gitCommit() -> String {
        if let commit = ProcessInfo.processInfo.environment["CONVLAB_GIT_COMMIT"], !commit.isEmpty { return commit }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["git", "rev-parse", "--short", "HEAD"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
            process.waitUntilExit()
            let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            return process.terminationStatus == 0 && !text.isEmpty ? text : "unknown"
        } catch {
            return "unknown"
        }
    }
}

/// What makes tuning results transferable: the CPU model and the number of cores. Wisdom recorded on another
/// signature is ignored.
public struct MachineSignature: Sendable, Codable, Hashable, CustomStringConvertible {
    public var cpu: String
    public var cores: Int

    public init(cpu: String, cores: Int) {
        self.cpu = cpu
        self.cores = cores
    }

    public static let current: MachineSignature = {
        let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model = info.split(separator: "\n").first { $0.hasPrefix("model name") }
            .flatMap { $0.split(separator: ":", maxSplits: 1).last }
            .map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown CPU"
        return MachineSignature(cpu: model, cores: ProcessInfo.processInfo.activeProcessorCount)
    }()

    public var description: String { "\(cpu), \(cores) cores" }
}

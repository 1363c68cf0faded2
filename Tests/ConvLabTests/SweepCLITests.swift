import ConvLab
import Foundation
import Testing

/// `convlab sweep` under the conditions a long run meets: shapes too big for the memory limit, invalid grid points,
/// Ctrl-C, a partial last line, and `--resume`.
@Suite struct SweepCLITests {
    static let quick = ["--backends", "direct,im2col", "--threads", "1", "--repeat", "1", "--min-time", "0",
                        "--max-time", "0.01", "--no-check"]

    static func rows(_ path: String) throws -> (header: [String], rows: [[String]]) {
        let records = CSVReader.records(try String(contentsOfFile: path, encoding: .utf8))
        return (records.first ?? [], Array(records.dropFirst()))
    }

    @Test func shapesOverTheMemoryLimitAndInvalidGridPointsAreSkippedWithAReason() throws {
        let path = CLITests.temporary("skip.csv")
        defer { try? FileManager.default.removeItem(atPath: path) }
        // 4 channels: groups 3 is invalid for C = 4 but fine for C = 6; size 96 needs ~300 KB of tensors.
        let result = try CLITests.run(["sweep", "--kernels", "3", "--channels", "4,6", "--sizes", "8,96", "--groups", "1",
                                       "--max-memory", "200K", "--output", path] + Self.quick)
        #expect(result.status == 0, "\(result.stderr)")
        let (header, rows) = try Self.rows(path)
        let status = header.firstIndex(of: "status")!, message = header.firstIndex(of: "message")!
        let name = header.firstIndex(of: "name")!
        #expect(rows.count == 8)
        for row in rows {
            if row[name].contains("s96") {
                #expect(row[status] == "skipped" && row[message].contains("more than the limit"), "\(row)")
            } else {
                #expect(row[status] == "ok", "\(row)")
            }
        }
        #expect(result.stderr.contains("sweep: skipping k3c4s96b1"))

        let grouped = try CLITests.run(["sweep", "--kernels", "3", "--channels", "4,6", "--sizes", "8", "--groups", "3",
                                        "--output", path] + Self.quick)
        #expect(grouped.status == 0)
        #expect(grouped.stderr.contains("sweep: skipping k3c4s8b1: invalid descriptor: groups"), "\(grouped.stderr)")
        #expect(try Self.rows(path).rows.count == 2, "only C = 6 is a valid grouped problem")
    }

    @Test func ctrlCLeavesCompleteRowsAndResumeFinishesTheGrid() throws {
        let path = CLITests.temporary("interrupt.csv")
        defer { try? FileManager.default.removeItem(atPath: path) }
        // Shapes big enough that each backend's timing runs into --max-time, so the sweep takes seconds.
        let grid = ["sweep", "--kernels", "1,3", "--channels", "32", "--sizes", "48,52,56,60,64,68,72,76",
                    "--backends", "direct,im2col", "--threads", "1", "--no-check"]
        let slow = ["--repeat", "1000", "--min-time", "0.15", "--max-time", "0.2"]
        let fast = ["--repeat", "1", "--min-time", "0", "--max-time", "0.001"]
        let process = Process()
        process.executableURL = CLITests.executable
        process.arguments = grid + slow + ["--output", path]
        process.standardError = FileHandle.nullDevice
        try CLITests.launch.withLock { try process.run() }
        // Wait for the first shape's rows, then press Ctrl-C.
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, ((try? Self.rows(path).rows.count) ?? 0) < 2 { Thread.sleep(forTimeInterval: 0.05) }
        process.interrupt()
        process.waitUntilExit()
        #expect(process.terminationReason == .exit && process.terminationStatus == 130)

        let (header, interrupted) = try Self.rows(path)
        #expect(!interrupted.isEmpty && interrupted.count < 32, "stopped early: \(interrupted.count) rows")
        #expect(interrupted.allSatisfy { $0.count == header.count }, "complete rows only")
        #expect(try String(contentsOfFile: path, encoding: .utf8).hasSuffix("\n"))

        // A hard kill mid-write would leave a partial line; --resume drops it and measures that shape again.
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        handle.write(Data("k3c32s76b1,direct,,ok,1,32".utf8))
        handle.closeFile()

        let resumed = try CLITests.run(grid + fast + ["--resume", path])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("dropped an incomplete last row"))
        let (_, all) = try Self.rows(path)
        let keys = all.map { $0.prefix(2).joined(separator: "|") }
        #expect(all.count == 2 * 8 * 2 && Set(keys).count == all.count, "every (shape, backend) exactly once")
        #expect(all.allSatisfy { $0.count == header.count })
    }
}

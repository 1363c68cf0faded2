import ConvLab
import Foundation
import Testing

@Suite struct SelectorTests {
    static func layer(_ c: Int, _ size: Int, kernel: Int, batch: Int = 1, groups: Int = 1) throws -> ConvolutionDescriptor {
        try ConvolutionDescriptor(batch: batch, inputChannels: c, inputHeight: size, inputWidth: size, outputChannels: c,
                                  kernelHeight: kernel, kernelWidth: kernel, padding: .same, groups: groups)
    }

    @Test func choicesAreDeterministicAndFollowTheLiterature() throws {
        let selector = Selector()
        let cases: [(ConvolutionDescriptor, (String) -> Bool)] = [
            (try Self.layer(256, 56, kernel: 3), { $0.hasPrefix("winograd") }),      // 3×3, many channels
            (try Self.layer(1, 512, kernel: 31), { $0.hasPrefix("fft") }),           // huge kernel, one channel
            (try Self.layer(64, 64, kernel: 11), { $0.hasPrefix("fft") }),           // large kernel
            (try Self.layer(32, 112, kernel: 3, groups: 32), { $0 == "direct" }),    // depthwise
        ]
        for (d, expected) in cases {
            let first = selector.select(for: d, threads: 2).choice?.backend.name ?? "none"
            let second = selector.select(for: d, threads: 2).choice?.backend.name ?? "none"
            #expect(first == second)
            #expect(expected(first), "\(d): chose \(first)")
        }
    }

    @Test func toleranceExcludesInaccurateCandidates() throws {
        let d = try Self.layer(64, 32, kernel: 3)
        let strict = Selector(tolerance: 1e-5).select(for: d, threads: 2)
        for candidate in strict.all {
            if case .eligible = candidate.status { #expect(candidate.errorBound <= 1e-5) }
        }
        #expect(strict.all.contains { if case .tooInaccurate = $0.status { return true } else { return false } })
        #expect((strict.choice?.errorBound ?? 1) <= 1e-5)
        let loose = Selector(tolerance: 1).select(for: d, threads: 2)
        #expect(loose.ranked.count > strict.ranked.count)
        // A tolerance nothing meets is an error, not a silent fallback.
        #expect(throws: ConvLabError.self) {
            try ConvLab.convolution(for: d, weights: try Tensor(shape: d.weightShape), tolerance: 1e-12)
        }
    }

    @Test func defaultToleranceKeepsMidSizeWinogradButNotF8() throws {
        let d = try Self.layer(64, 32, kernel: 3)
        let tolerance = Selector.defaultTolerance(for: d)
        #expect(WinogradBackend(outputTile: 4, kernelSize: 3).expectedErrorBound(for: d) <= tolerance)
        #expect(WinogradBackend(outputTile: 6, kernelSize: 3).expectedErrorBound(for: d) <= tolerance)
        #expect(WinogradBackend(outputTile: 8, kernelSize: 3).expectedErrorBound(for: d) > tolerance)
    }

    @Test func convolutionForGivesACorrectPlanAndHonoursTheWorkspaceCap() throws {
        let d = try Self.layer(64, 32, kernel: 3, batch: 2)
        let w = try Tensor<Float>.random(shape: d.weightShape, seed: 1)
        let x = try Tensor<Float>.random(shape: d.inputShape, seed: 2)
        let options = PlanOptions(threads: 2)
        let plan = try ConvLab.convolution(for: d, weights: w, options: options)
        let reference = try ReferenceConvolution.compute(descriptor: d, input: x, weights: w)
        #expect(try AccuracyChecker.check(plan: plan, input: x, reference: reference).report.passed)
        // The eligible candidates' real workspaces decide what each cap must give.
        let workspaces = try Selector().select(for: d, threads: 2).ranked.map {
            try $0.backend.makePlan(descriptor: d, weights: w, options: options).workspaceBytes
        }
        let smallest = try #require(workspaces.min())
        if plan.workspaceBytes > smallest {
            let capped = try ConvLab.convolution(for: d, weights: w, maxWorkspaceBytes: plan.workspaceBytes - 1,
                                                 options: options)
            #expect(capped.workspaceBytes < plan.workspaceBytes)
        }
        let tightest = try ConvLab.convolution(for: d, weights: w, maxWorkspaceBytes: smallest, options: options)
        #expect(tightest.workspaceBytes == smallest)
        #expect(throws: ConvLabError.self) {
            try ConvLab.convolution(for: d, weights: w, maxWorkspaceBytes: smallest - 1, options: options)
        }
    }

    static func temporaryPath(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("convlab-\(UUID())/\(name)").path
    }

    @Test func wisdomRoundTripsAndDrivesTheChoice() throws {
        let path = Self.temporaryPath("wisdom.json")
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        let d = try Self.layer(16, 12, kernel: 3)
        let entry = try Autotuner.tune(descriptor: d, options: PlanOptions(threads: 2),
                                       timing: TimingPolicy(minRepeats: 2, maxSeconds: 0.05))
        #expect(entry.candidates.count >= 4)
        #expect(entry.candidates.allSatisfy { $0.status == "ok" && $0.seconds != nil && $0.maxRelativeError != nil })
        let store = WisdomStore(path: path)
        #expect(store.warning == nil && store.entries.isEmpty)
        store.insert(entry)
        try store.save()
        let directory = (path as NSString).deletingLastPathComponent
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["wisdom.json"])  // no temp left

        let reloaded = WisdomStore(path: path)
        #expect(reloaded.warning == nil)
        let loaded = try #require(reloaded.entry(for: d, threads: 2))
        #expect(loaded.candidates.map(\.backend) == entry.candidates.map(\.backend))
        #expect(reloaded.entry(for: d, threads: 1) == nil)  // keyed by thread count

        // With wisdom the selector picks the fastest measured eligible candidate.
        let selection = Selector(wisdom: reloaded).select(for: d, threads: 2)
        #expect(selection.source == .wisdom)
        let tolerance = Selector.defaultTolerance(for: d)
        let expected = loaded.best(tolerance: tolerance)?.backend
        #expect(selection.choice?.backend.name == expected)
    }

    @Test func corruptAndForeignWisdomIsReportedAndIgnored() throws {
        let path = Self.temporaryPath("wisdom.json")
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        try "{ not json".write(toFile: path, atomically: true, encoding: .utf8)
        let corrupt = WisdomStore(path: path)
        #expect(corrupt.warning?.contains("corrupt") == true)
        #expect(corrupt.entries.isEmpty)

        let d = try Self.layer(16, 12, kernel: 3)
        let foreignStore = WisdomStore(path: path, machine: MachineSignature(cpu: "Other CPU", cores: 64))
        foreignStore.insert(WisdomEntry(key: d.key, threads: 2, descriptor: d, candidates: [], measuredAt: "x"))
        try foreignStore.save(machine: MachineSignature(cpu: "Other CPU", cores: 64))
        let foreign = WisdomStore(path: path)
        #expect(foreign.warning?.contains("another machine") == true)
        #expect(foreign.entries.isEmpty)
        // And the selector falls back to the cost model.
        #expect(Selector(wisdom: foreign).select(for: d, threads: 2).source == .heuristic)
    }

    @Test func savingIntoAnImpossibleLocationIsACleanError() {
        let store = WisdomStore(path: "/proc/convlab-cannot-write-here/wisdom.json")
        #expect(throws: ConvLabError.self) { try store.save() }
    }
}

@Suite struct SweepTests {
    @Test func shardsPartitionTheShapesExactly() throws {
        let plan = SweepPlan(kernels: [1, 3, 5], channels: [8, 16], sizes: [7, 9, 12], batches: [1, 2])
        let all = plan.descriptors()
        #expect(all.count == 3 * 2 * 3 * 2)
        for count in [1, 2, 3, 5, 7] {
            let shards = try (1...count).map { try SweepPlan.shard(all, index: $0, count: count) }
            #expect(shards.map(\.count).reduce(0, +) == all.count)
            #expect(Set(shards.flatMap { $0 }) == Set(all))
        }
        #expect(throws: ConvLabError.self) { try SweepPlan.shard(all, index: 0, count: 2) }
        #expect(throws: ConvLabError.self) { try SweepPlan.shard(all, index: 3, count: 2) }
    }

    @Test func resumeSkipsDoneRowsAndTheCSVParsesBack() throws {
        let path = SelectorTests.temporaryPath("sweep.csv")
        let directory = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let common = ["sweep", "--kernels", "3,5", "--channels", "8", "--sizes", "9", "--backends", "direct,im2col",
                      "--repeat", "1", "--max-time", "0.01", "--resume", path]
        let first = try CLITests.run(common + ["--shard", "1/2"])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(CSVReader.rows(try String(contentsOfFile: path, encoding: .utf8)).count == 2)
        let second = try CLITests.run(common)
        #expect(second.status == 0, "\(second.stderr)")
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let rows = CSVReader.rows(text)
        #expect(rows.count == 4)  // 2 shapes × 2 backends, the first shard's rows not measured again
        #expect(Set(rows.map { MeasurementRecord.resumeKey(csvRow: $0) }).count == 4)
        let header = CSVReader.records(text).first ?? []
        #expect(header == MeasurementRecord.csvColumns)
        for column in ["convlab_version", "git_commit", "cpu", "date", "threads", "gflops_effective"] {
            #expect(rows.allSatisfy { !($0[column] ?? "").isEmpty }, "\(column)")
        }
    }
}

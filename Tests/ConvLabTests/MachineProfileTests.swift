import ConvLab
import Foundation
import Testing

/// Cost-model profiles per machine kind: identity, resolution (calibrated, built in, closest), the store on disk, the
/// correction fit, and `convlab calibrate` end to end.
@Suite struct MachineProfileTests {
    static let intel = MachineIdentity(vendor: "GenuineIntel", family: 6, model: 207, cores: 2, level2Bytes: 2 << 20,
                                       hasAVX512: true)

    static func temporaryPath(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("convlab-profiles-\(UUID())-\(name)").path
    }

    @Test func identityIsReadFromCPUInfo() {
        let text = """
        processor\t: 0
        vendor_id\t: AuthenticAMD
        cpu family\t: 26
        model\t\t: 17
        model name\t: AMD EPYC 9B45
        flags\t\t: fpu sse2 avx2 avx512f avx512bw
        processor\t: 1
        vendor_id\t: GenuineIntel
        """
        let identity = MachineIdentity.parse(cpuinfo: text, cores: 4, level2Bytes: 1 << 20)
        #expect(identity == MachineIdentity(vendor: "AuthenticAMD", family: 26, model: 17, cores: 4,
                                            level2Bytes: 1 << 20, hasAVX512: true))
        #expect(!MachineIdentity.parse(cpuinfo: "flags : sse2 avx2", cores: 1, level2Bytes: 0).hasAVX512)
    }

    @Test func resolutionPrefersCalibratedThenSameKindThenClosest() throws {
        let path = Self.temporaryPath("store.json")
        defer { try? FileManager.default.removeItem(atPath: path) }
        // No store: the built-in profile of this kind.
        let builtIn = MachineProfiles.resolve(identity: Self.intel, store: MachineProfileStore(path: path))
        #expect(builtIn.profile.name == "intel-emerald-rapids" && builtIn.reason.contains("built-in"))
        // A calibrated profile of the same kind wins, and survives a save/load round trip.
        var calibrated = builtIn.profile
        calibrated.name = "calibrated"
        calibrated.model.coreFLOPs = 123e9
        let store = MachineProfileStore(path: path)
        store.insert(calibrated)
        try store.save()
        let reloaded = MachineProfileStore(path: path)
        #expect(reloaded.warning == nil && reloaded.profiles == [calibrated])
        let own = MachineProfiles.resolve(identity: Self.intel, store: reloaded)
        #expect(own.profile.model.coreFLOPs == 123e9 && own.reason.contains("calibrated"))
        // Another Zen 5 model, and a machine unlike both: the closest built-in, and the reason says so.
        let zen = MachineIdentity(vendor: "AuthenticAMD", family: 26, model: 68, cores: 8, level2Bytes: 1 << 20,
                                  hasAVX512: true)
        let closestToZen = MachineProfiles.resolve(identity: zen, store: reloaded)
        #expect(closestToZen.profile.name == "amd-zen5" && closestToZen.reason.contains("closest"))
        let sapphire = MachineIdentity(vendor: "GenuineIntel", family: 6, model: 143, cores: 2,
                                       level2Bytes: 2 << 20, hasAVX512: true)
        #expect(MachineProfiles.resolve(identity: sapphire, store: reloaded).profile.name == "intel-emerald-rapids")
        // Zen 4 (family 25) has its own built-in profile; another Zen 4 model is closer to it than to Zen 5.
        let genoa = MachineIdentity(vendor: "AuthenticAMD", family: 25, model: 17, cores: 2, level2Bytes: 1 << 20,
                                    hasAVX512: true)
        let zen4 = MachineProfiles.resolve(identity: genoa, store: nil)
        #expect(zen4.profile.name == "amd-zen4" && zen4.reason.contains("built-in"))
        let raphael = MachineIdentity(vendor: "AuthenticAMD", family: 25, model: 97, cores: 16, level2Bytes: 1 << 20,
                                      hasAVX512: true)
        #expect(MachineProfiles.resolve(identity: raphael, store: nil).profile.name == "amd-zen4")
        #expect(MachineProfiles.builtIn.allSatisfy { $0.model.isUsable })
    }

    @Test func badProfileFilesAreReportedAndIgnored() throws {
        let path = Self.temporaryPath("bad.json")
        defer { try? FileManager.default.removeItem(atPath: path) }
        for text in ["{not json", #"{"format":"other","version":1,"profiles":[]}"#] {
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            let store = MachineProfileStore(path: path)
            #expect(store.warning != nil && store.profiles.isEmpty, "\(text)")
            #expect(MachineProfiles.resolve(identity: Self.intel, store: store).profile.name == "intel-emerald-rapids")
        }
        // A profile with a negative rate would predict negative times: refused as a whole.
        var broken = MachineProfiles.builtIn[0]
        broken.model.bandwidth = -1
        let good = MachineProfileStore(path: path)
        good.insert(broken)
        try good.save()
        let reread = MachineProfileStore(path: path)
        #expect(reread.warning?.contains("non-positive") == true && reread.profiles.isEmpty)
    }

    @Test func fitRecoversAKnownCorrection() {
        var generator = SeededGenerator(seed: 5)
        let rows = (0..<40).map { _ -> Calibration.Row in
            let physical = pow(10, Double.random(in: -5 ... -2, using: &generator))
            let noise = exp(Double.random(in: -0.05...0.05, using: &generator))
            return Calibration.Row(key: "x", measured: (1.7 * physical + 2e-5) * noise, physical: physical)
        }
        let fits = Calibration.fit(rows + [Calibration.Row(key: "too-few", measured: 1, physical: 1)])
        #expect(fits.count == 1)
        let fit = fits[0]
        #expect(abs(fit.correction.scale / 1.7 - 1) < 0.05, "\(fit.correction)")
        #expect(abs(fit.correction.overhead / 2e-5 - 1) < 0.35, "\(fit.correction)")
        #expect(fit.spread < 1.1 && fit.rows == 40)
    }

    @Test func ratesAreMeasured() {
        let peak = Calibration.peakFLOPs(iterations: 200_000)
        // Between a scalar core's and four times the fastest AVX-512 core seen (270 GFLOP/s): a folded loop reads
        // as petaFLOP/s, a broken one as near zero.
        #expect(peak > 5e9 && peak < 1.1e12, "\(peak)")
        let bandwidth = Calibration.bandwidth(floats: 1 << 20)
        #expect(bandwidth > 1e9 && bandwidth < 1e12, "\(bandwidth)")
        let curve = Calibration.bandwidthCurve(largest: 1 << 20, minimumBytes: 8 << 20)
        let footprints: [Double] = [262_144, 524_288, 1_048_576]
        #expect(curve.map(\.bytes) == footprints)
        #expect(curve.allSatisfy { $0.bytesPerSecond > 1e9 && $0.bytesPerSecond < 1e13 }, "\(curve)")
    }

    @Test func calibrateCommandSavesAProfileThatSelectUses() throws {
        let store = Self.temporaryPath("store.json"), single = Self.temporaryPath("profile.json")
        defer { for p in [store, single] { try? FileManager.default.removeItem(atPath: p) } }
        let run = try CLITests.run(["calibrate", "--shapes", "4", "--max-time", "0.02", "--profiles", store,
                                    "--output", single])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("sweep 4/4") && run.stdout.contains("saved the profile"), "\(run.stdout)")
        let saved = MachineProfileStore(path: store)
        #expect(saved.warning == nil && saved.profiles.count == 1 && saved.profiles[0].model.isUsable)
        let explained = try CLITests.run(["select", "--kernel", "3", "--channels", "8", "--size", "12", "--no-wisdom",
                                          "--explain", "--profile", store])
        #expect(explained.status == 0 && explained.stdout.contains("from \(store)"), "\(explained.stdout)")
        let unknown = try CLITests.run(["select", "--kernel", "3", "--profile", "nonsense"])
        #expect(unknown.status != 0 && unknown.stderr.contains("cost-model profile"))
    }

    /// `--measurements` keeps the sweep's timings; `--refit` fits a profile from them without timing any layer again
    /// (how a change to the physical estimates is judged on the same timings), and the refit of unchanged timings
    /// under an unchanged model gives the same corrections.
    @Test func calibrateRefitsFromSavedTimings() throws {
        let timings = Self.temporaryPath("timings.csv"), first = Self.temporaryPath("first.json"),
            second = Self.temporaryPath("second.json"), bad = Self.temporaryPath("bad.csv")
        defer { for p in [timings, first, second, bad] { try? FileManager.default.removeItem(atPath: p) } }
        let run = try CLITests.run(["calibrate", "--shapes", "4", "--max-time", "0.02", "--pass", "forward",
                                    "--no-save", "--output", first, "--measurements", timings])
        #expect(run.status == 0, "\(run.stderr)")
        let records = try MeasurementRecord.records(csv: try String(contentsOfFile: timings, encoding: .utf8))
        #expect(records.count >= 8 && records.allSatisfy { $0.pass == "forward" && $0.msMedian != nil })
        #expect(Set(records.compactMap(\.name)).count == 4, "one name per calibration layer")
        let refit = try CLITests.run(["calibrate", "--refit", timings, "--no-save", "--output", second])
        #expect(refit.status == 0 && !refit.stderr.contains("sweep 1/"), "\(refit.stderr)")
        let decode = { (path: String) in
            try JSONDecoder().decode(MachineProfile.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        }
        let (a, b) = (try decode(first), try decode(second))
        // The same timings feed the fit: the same count of measurements (the rates, measured again, move the scales).
        func measurements(_ profile: MachineProfile) -> Substring? {
            profile.provenance.split(separator: ",").first { $0.hasSuffix("measurements") }
        }
        #expect(measurements(a) != nil && measurements(a) == measurements(b), "\(a.provenance) | \(b.provenance)")
        #expect(b.provenance.contains("a saved sweep") && b.model.isUsable && b.model.bandwidthCurve != nil)
        // Started from another kind's profile, as on a kind no profile has seen.
        let foreign = try CLITests.run(["calibrate", "--refit", timings, "--base", "amd-zen4", "--no-save",
                                        "--output", second])
        let foreignProfile = try decode(second)
        #expect(foreign.status == 0 && foreignProfile.provenance.contains("from 'amd-zen4'"), "\(foreign.stderr)")
        let unknownBase = try CLITests.run(["calibrate", "--refit", timings, "--base", "pentium", "--no-save"])
        #expect(unknownBase.status != 0 && unknownBase.stderr.contains("built-in profile"), "\(unknownBase.stderr)")
        // A file with no usable row, and one whose shape is not a problem, are errors, not a profile fitted to nothing.
        try (MeasurementRecord.csvHeader + "\n").write(toFile: bad, atomically: true, encoding: .utf8)
        let empty = try CLITests.run(["calibrate", "--refit", bad, "--no-save"])
        #expect(empty.status != 0 && empty.stderr.contains("refit"), "\(empty.stderr)")
        var zeroBatch = records[0]
        zeroBatch.N = 0
        try ([MeasurementRecord.csvHeader, zeroBatch.csvRow].joined(separator: "\n") + "\n")
            .write(toFile: bad, atomically: true, encoding: .utf8)
        let invalid = try CLITests.run(["calibrate", "--refit", bad, "--no-save"])
        #expect(invalid.status != 0 && invalid.stderr.lowercased().contains("batch"), "\(invalid.stderr)")
        try "name,backend,pass\nx,direct,forward\n".write(toFile: bad, atomically: true, encoding: .utf8)
        let broken = try CLITests.run(["calibrate", "--refit", bad, "--no-save"])
        #expect(broken.status != 0 && broken.stderr.contains("line 2") && broken.stderr.contains("'N'"),
                "\(broken.stderr)")
    }

    /// Passes that run the forward plan on the transposed problem share its corrections; passes with kernels of their
    /// own have their own key — what `calibrate` fits and the model looks up are the same names.
    @Test func correctionKeysFollowThePlansKernels() throws {
        let d = try ConvolutionDescriptor(batch: 2, inputChannels: 16, inputHeight: 12, inputWidth: 12,
                                          outputChannels: 16, kernelHeight: 3, kernelWidth: 3, padding: .same)
        let options = PlanOptions(threads: 1)
        let directData = try DirectBackend().describe(d, pass: .backwardData, options: options)
        #expect(CostModel.correctionBackend(directData) == "direct")
        let im2colData = try Im2colBackend().describe(d, pass: .backwardData, options: options)
        #expect(CostModel.correctionBackend(im2colData) == "im2col-backward-data")
        let directWeights = try DirectBackend().describe(d, pass: .backwardWeights, options: options)
        #expect(CostModel.correctionBackend(directWeights) == "direct-backward-weights")
        let single = try ConvolutionDescriptor(inputChannels: 1, inputHeight: 40, inputWidth: 40, outputChannels: 64,
                                               kernelHeight: 9, kernelWidth: 9, padding: .same)
        #expect(CostModel.correctionKeys(backend: "direct", single) == ["direct-narrow", "direct"])
        // Its weight gradient runs register tiles with the 64 output channels along the lanes: not narrow.
        let singleWeights = try DirectBackend().describe(single, pass: .backwardWeights, options: options)
        #expect(CostModel.correctionKey(singleWeights, single) == "direct-backward-weights")
        let pointwise = try ConvolutionDescriptor(inputChannels: 64, inputHeight: 14, inputWidth: 14,
                                                  outputChannels: 64, kernelHeight: 1, kernelWidth: 1)
        #expect(CostModel.correctionKeys(backend: "im2col", pointwise) == ["im2col-pointwise", "im2col"])
        let depthwise = try ConvolutionDescriptor(inputChannels: 32, inputHeight: 14, inputWidth: 14, outputChannels: 32,
                                                  kernelHeight: 3, kernelWidth: 3, padding: .same, groups: 32)
        let plan = try DirectBackend().describe(depthwise, options: PlanOptions(threads: 1))
        #expect(CostModel.correctionKey(plan, depthwise) == "direct-depthwise")
        // A single-channel image: the direct backend runs its depthwise kernels on it, im2col its GEMMs.
        let directSingle = try DirectBackend().describe(single, options: options)
        #expect(directSingle.work?.depthwiseKernels == true)
        #expect(CostModel.correctionKey(directSingle, single) == "direct-depthwise")
        let loweredSingle = try Im2colBackend().describe(single, options: options)
        #expect(CostModel.correctionKey(loweredSingle, single) == "im2col-narrow")
        #expect(CostModel.correctionKeys(backend: "direct", depthwise, work: plan.work)
                == ["direct-depthwise", "direct-narrow", "direct"])
        // SRCNN's 64→1 layer runs dense kernels with one-channel blocks: narrow, not depthwise.
        let fewOutputs = try ConvolutionDescriptor(inputChannels: 64, inputHeight: 40, inputWidth: 40, outputChannels: 1,
                                                   kernelHeight: 9, kernelWidth: 9, padding: .same)
        let dense = try DirectBackend().describe(fewOutputs, options: PlanOptions(threads: 1))
        #expect(CostModel.correctionKey(dense, fewOutputs) == "direct-narrow")
        // A profile without the depthwise class prices depthwise kernels with its narrow correction.
        var model = MachineModel.amdZen5
        model.corrections["direct-depthwise"] = nil
        let raw = try #require(CostModel(machine: model).physicalSeconds(plan, threads: 1))
        let narrow = try #require(model.corrections["direct-narrow"])
        #expect(CostModel(machine: model).predictedSeconds(plan, descriptor: depthwise, threads: 1)
                == narrow.scale * raw + narrow.overhead)
    }

    /// A depthwise kernel's time per FLOP falls with the length of its sums while the rows it reads stay in L1: the
    /// estimate of a 31×31 depthwise layer on a 56-px map is far below 961/9 times a 3×3's, and the model ranks
    /// direct first there (it had chosen FFT, measured 2.3× slower on the Intel kind). On 1,024-px rows (31 rows do not
    /// fit L1) the kernel's per-FLOP estimate stays a 3×3's.
    @Test func depthwiseEstimatesFollowSumLengthWhileRowsFitL1() throws {
        let model = CostModel(machine: .intelEmeraldRapids)
        func perFLOP(_ d: ConvolutionDescriptor) throws -> Double {
            let plan = try DirectBackend().describe(d, options: PlanOptions(threads: 2))
            return try #require(model.physicalSeconds(plan, threads: 2)) / Double(d.directFLOPs)
        }
        func depthwise(_ k: Int, size: Int, channels: Int, padding: PaddingRule = .same) throws -> ConvolutionDescriptor {
            try ConvolutionDescriptor(inputChannels: channels, inputHeight: size, inputWidth: size,
                                      outputChannels: channels, kernelHeight: k, kernelWidth: k, padding: padding,
                                      groups: channels)
        }
        // Both on the row plan (a size-keeping 3×3 would slide, on the channel-blocked plan), so the ratio is the
        // kernel's own gain from long sums.
        let large = try depthwise(31, size: 56, channels: 128)
        let small = try depthwise(3, size: 56, channels: 128, padding: .valid)
        #expect(try DirectBackend().describe(small, options: PlanOptions(threads: 2)).variant
                    == DirectBackend().describe(large, options: PlanOptions(threads: 2)).variant)
        let (largeRate, smallRate) = (try perFLOP(large), try perFLOP(small))
        #expect(largeRate < smallRate / 2)
        let wideLarge = try depthwise(31, size: 1024, channels: 1), wideSmall = try depthwise(3, size: 1024, channels: 1)
        let (wideLargeRate, wideSmallRate) = (try perFLOP(wideLarge), try perFLOP(wideSmall))
        // Memory traffic weighs on the 3×3 either way; the kernel's own gain from long sums only where rows fit L1.
        #expect(largeRate / smallRate < 0.5 * (wideLargeRate / wideSmallRate),
                "\(largeRate / smallRate) vs \(wideLargeRate / wideSmallRate)")
        let choice = Selector(costModel: model).select(for: large, threads: 2).choice?.backend.name
        #expect(choice == "direct", "\(choice ?? "none")")
        // The weight gradient's rows plan follows the same rule.
        func weightsPerFLOP(_ d: ConvolutionDescriptor) throws -> Double {
            let plan = try DirectBackend().describe(d, pass: .backwardWeights, options: PlanOptions(threads: 2))
            #expect(plan.variant == "depthwise rows")
            return try #require(model.physicalSeconds(plan, threads: 2)) / Double(d.directFLOPs)
        }
        let narrowRows = try depthwise(15, size: 64, channels: 1), wideRows = try depthwise(15, size: 1024, channels: 1)
        #expect(try weightsPerFLOP(narrowRows) < 0.5 * weightsPerFLOP(wideRows))
    }
}

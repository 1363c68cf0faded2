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
}

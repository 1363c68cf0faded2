import ConvLabCore
import Foundation

/// A cost model for one kind of machine: its rates and per-backend corrections (`MachineModel`), the identity it was
/// measured on, and where the numbers come from. Built in for the kinds the project has run on; `convlab calibrate`
/// measures one for any other machine and saves it beside the wisdom.
public struct MachineProfile: Sendable, Codable, Hashable {
    public var name: String
    public var identity: MachineIdentity
    public var model: MachineModel
    /// How it was obtained (script and data, or `convlab calibrate` with its date and sweep).
    public var provenance: String

    public init(name: String, identity: MachineIdentity, model: MachineModel, provenance: String) {
        (self.name, self.identity, self.model, self.provenance) = (name, identity, model, provenance)
    }
}

/// Which profile the selector uses: the one calibrated on this machine (a store entry of the same kind), else a
/// built-in profile of the same kind, else the built-in profile closest to this machine (`MachineIdentity.distance`);
/// `reason` says which, for `select --explain`.
public enum MachineProfiles {
    public struct Resolution: Sendable {
        public var profile: MachineProfile
        public var reason: String
        /// Why a profile file was ignored, if it was.
        public var warning: String?

        public init(profile: MachineProfile, reason: String, warning: String? = nil) {
            (self.profile, self.reason, self.warning) = (profile, reason, warning)
        }
    }

    public static let builtIn: [MachineProfile] = [
        MachineProfile(name: "amd-zen5",
                       identity: MachineIdentity(vendor: "AuthenticAMD", family: 26, model: 2, cores: 2,
                                                 level2Bytes: 1 << 20, hasAVX512: true),
                       model: .amdZen5,
                       provenance: "built in: convlab calibrate on AMD EPYC Zen 5 (2 threads), "
                           + "notebooks-data/amd-zen5/machine-profile.json"),
        MachineProfile(name: "intel-emerald-rapids",
                       identity: MachineIdentity(vendor: "GenuineIntel", family: 6, model: 207, cores: 2,
                                                 level2Bytes: 2 << 20, hasAVX512: true),
                       model: .intelEmeraldRapids,
                       provenance: "built in: convlab calibrate on Intel Xeon Emerald Rapids (2 threads), "
                           + "notebooks-data/intel/machine-profile.json"),
        MachineProfile(name: "amd-zen4",
                       identity: MachineIdentity(vendor: "AuthenticAMD", family: 25, model: 17, cores: 2,
                                                 level2Bytes: 1 << 20, hasAVX512: true),
                       model: .amdZen4,
                       provenance: "built in: convlab calibrate on AMD EPYC Zen 4 (2 threads), "
                           + "notebooks-data/amd-zen4/machine-profile.json"),
    ]

    /// The built-in profile called `name` (`--profile NAME`, `calibrate --base NAME`).
    public static func builtIn(named name: String) -> MachineProfile? { builtIn.first { $0.name == name } }

    /// The resolution for this machine and the default store, computed once per process.
    public static let current: Resolution = resolve(identity: .current, store: MachineProfileStore())

    public static func resolve(identity: MachineIdentity, store: MachineProfileStore?) -> Resolution {
        let warning = store?.warning
        if let store, let own = store.profiles.first(where: { $0.identity.isSameKind(as: identity) }) {
            return Resolution(profile: own, reason: "profile '\(own.name)' calibrated on this kind of machine "
                              + "(\(store.path))", warning: warning)
        }
        if let same = builtIn.first(where: { $0.identity.isSameKind(as: identity) }) {
            return Resolution(profile: same, reason: "built-in profile '\(same.name)' (this machine's kind: "
                              + "\(identity)); `convlab calibrate` measures this machine itself", warning: warning)
        }
        let closest = builtIn.min { $0.identity.distance(to: identity) < $1.identity.distance(to: identity) }!
        return Resolution(profile: closest, reason: "no profile for \(identity): the closest built-in profile, "
                          + "'\(closest.name)' (\(closest.identity)); run `convlab calibrate` to measure this machine",
                          warning: warning)
    }
}

/// Calibrated profiles on disk (JSON, `$XDG_CACHE_HOME/convlab/machine-profiles.json` beside the wisdom), one per
/// machine kind. A corrupt or foreign file is reported (`warning`) and ignored, never fatal; saving is atomic.
public final class MachineProfileStore: @unchecked Sendable {
    public static let formatName = "convlab-machine-profiles"
    public static let currentVersion = 1

    struct File: Codable {
        var format: String
        var version: Int
        var profiles: [MachineProfile]
    }

    public let path: String
    public private(set) var profiles: [MachineProfile] = []
    public private(set) var warning: String?

    public static var defaultPath: String {
        (WisdomStore.defaultPath as NSString).deletingLastPathComponent + "/machine-profiles.json"
    }

    public init(path: String = MachineProfileStore.defaultPath) {
        self.path = path
        guard FileManager.default.fileExists(atPath: path) else { return }
        do {
            let data = try FileInput.data(at: path, limit: FileInput.maximumTextBytes, what: "machine profiles")
            // A single profile (`convlab calibrate --output`) reads as a store of one.
            let file = try (try? JSONDecoder().decode(MachineProfile.self, from: data)).map {
                File(format: Self.formatName, version: Self.currentVersion, profiles: [$0])
            } ?? JSONDecoder().decode(File.self, from: data)
            guard file.format == Self.formatName, file.version == Self.currentVersion else {
                warning = "\(path): not convlab machine profiles version \(Self.currentVersion) (found \(file.format) "
                    + "\(file.version)); ignored"
                return
            }
            guard file.profiles.allSatisfy({ $0.model.isUsable }) else {
                warning = "\(path): a profile has non-positive or non-finite rates; ignored"
                return
            }
            profiles = file.profiles
        } catch let error as ConvLabError {
            warning = "\(error); ignored"
        } catch {
            warning = "\(path): corrupt machine profiles (\(error.localizedDescription)); ignored"
        }
    }

    /// Replaces the profile of `profile`'s machine kind (or adds it).
    public func insert(_ profile: MachineProfile) {
        profiles.removeAll { $0.identity.isSameKind(as: profile.identity) }
        profiles.append(profile)
    }

    /// Writes the store atomically (temporary file in the same directory, then rename).
    public func save() throws {
        try AtomicFile.writeJSON(File(format: Self.formatName, version: Self.currentVersion, profiles: profiles),
                                 to: path, what: "machine profiles")
    }
}

extension MachineModel {
    /// Every rate positive and finite, every correction's scale positive and overhead non-negative: a profile read
    /// from a file must be, or predictions would be negative, infinite or NaN.
    public var isUsable: Bool {
        let rates = [coreFLOPs, bandwidth, directEfficiency, narrowDirectEfficiency, gemmEfficiency,
                     winogradInputSeconds, winogradBlockingSeconds, winogradOutputSeconds, fftSecondsPerPoint,
                     complexProductRate]
        let curve = bandwidthCurve ?? []
        return rates.allSatisfy { $0 > 0 && $0.isFinite }
            && curve.allSatisfy { $0.bytes > 0 && $0.bytes.isFinite && $0.bytesPerSecond > 0 && $0.bytesPerSecond.isFinite }
            && zip(curve, curve.dropFirst()).allSatisfy { $0.bytes < $1.bytes }
            && corrections.values.allSatisfy { $0.scale > 0 && $0.scale.isFinite && $0.overhead >= 0 && $0.overhead.isFinite }
    }
}

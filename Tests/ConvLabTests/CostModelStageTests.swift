import ConvLab
import Foundation
import Testing

/// The cost model's physical estimates where they were found wrong against measurements: streaming rates per cache
/// level, and the Winograd stages (blocking is one copy of the input, the output transform has its own FMA count,
/// the phase schedule's buffers round-trip through memory). Each check compares two estimates the old model got
/// the wrong way round or several times off.
@Suite struct CostModelStageTests {
    static let curve = [
        MachineModel.BandwidthPoint(bytes: Double(1 << 20), bytesPerSecond: 90e9),
        MachineModel.BandwidthPoint(bytes: Double(4 << 20), bytesPerSecond: 30e9),
        MachineModel.BandwidthPoint(bytes: Double(64 << 20), bytesPerSecond: 15e9),
    ]

    @Test func streamRateFollowsTheMeasuredCurve() {
        var model = MachineModel.amdZen5
        model.bandwidthCurve = nil
        #expect(model.streamRate(footprint: 1e3) == model.bandwidth && model.streamRate(footprint: 1e12) == model.bandwidth)
        model.bandwidthCurve = Self.curve
        #expect(model.streamRate(footprint: 1e3) == 90e9, "below the first point: the first rate")
        #expect(model.streamRate(footprint: 1e12) == 15e9, "beyond the last point: the last rate")
        #expect(model.streamRate(footprint: Double(4 << 20)) == 30e9)
        // Halfway in log(footprint) between 1 and 4 MiB (2 MiB) is halfway between the rates.
        #expect(abs(model.streamRate(footprint: Double(2 << 20)) - 60e9) < 1e3)
        let rates = stride(from: 15.0, through: 27.0, by: 0.5).map { model.streamRate(footprint: pow(2, $0)) }
        #expect(zip(rates, rates.dropFirst()).allSatisfy { $0 >= $1 }, "larger footprints never stream faster")
        // A memory stage that fits the first level costs a sixth of the same bytes at memory speed.
        let cost = CostModel(machine: model)
        let cached = cost.seconds(.memory(bytes: 1e6), threads: 1)
        let streamed = cost.seconds(.memory(bytes: 1e6, footprint: 1e9), threads: 1)
        #expect(abs(streamed / cached - 6) < 1e-9, "\(streamed / cached)")
    }

    @Test func profilesWithABrokenCurveAreUnusable() {
        var model = MachineModel.intelEmeraldRapids
        #expect(model.isUsable && model.bandwidthCurve?.isEmpty == false)
        model.bandwidthCurve = [Self.curve[1], Self.curve[0]]
        #expect(!model.isUsable, "not ascending in footprint")
        model.bandwidthCurve = [MachineModel.BandwidthPoint(bytes: Double(1 << 20), bytesPerSecond: 0)]
        #expect(!model.isUsable, "a zero rate")
        model.bandwidthCurve = nil
        #expect(model.isUsable, "no curve: every byte at `bandwidth`, as profiles fitted before it")
    }

    static func stages(_ backend: WinogradBackend, _ d: ConvolutionDescriptor) throws -> [String: Double] {
        let plan = try backend.describe(d, options: PlanOptions(threads: 2))
        var units: [String: Double] = [:]
        for stage in plan.work?.stages ?? [] {
            switch stage {
            case let .winogradBlocking(u, _): units["blocking", default: 0] += u
            case let .winogradInputTransform(u, _): units["input", default: 0] += u
            case let .winogradOutputTransform(u, _): units["output", default: 0] += u
            case let .memory(bytes, footprint):
                units["memory", default: 0] += bytes
                units["footprint", default: 0] += footprint ?? bytes
            default: break
            }
        }
        return units
    }

    /// Every tile size copies the same input into 16-channel blocks, so the blocking estimates agree within the
    /// chunks' re-copied overlap (the old tiles × n/m units put F(2,3) at 5.3× F(4,3)); output transforms scale as
    /// m_h·n_w·(n_h + m_w) FMAs per tile (F(2,3) 48, F(4,3) 240, F(6,3) 672).
    @Test(arguments: [(64, 56, 1), (256, 14, 1), (128, 28, 4), (32, 100, 2)])
    func winogradStagesFollowTheirWork(channels: Int, size: Int, batch: Int) throws {
        let d = try ConvolutionDescriptor(batch: batch, inputChannels: channels, inputHeight: size, inputWidth: size,
                                          outputChannels: channels, kernelHeight: 3, kernelWidth: 3, padding: .same)
        let f2 = try Self.stages(WinogradBackend(outputTile: 2), d)
        let f4 = try Self.stages(WinogradBackend(outputTile: 4), d)
        let f6 = try Self.stages(WinogradBackend(outputTile: 6), d)
        for (name, other) in [("F(2,3)", f2), ("F(6,3)", f6)] {
            let ratio = (other["blocking"] ?? 0) / (f4["blocking"] ?? 1)
            #expect(ratio > 0.6 && ratio < 1.6, "\(name) blocking / F(4,3)'s: \(ratio)")
        }
        // Output units per tile (units are per 16 channels, the same for all three): 48, 240 and 672 FMAs.
        func perTile(_ stages: [String: Double], _ m: Int) -> Double {
            let side = (size + m - 1) / m
            let output: Double = stages["output"] ?? 0
            return output / Double(side * side * batch)
        }
        let (small, large) = (perTile(f2, 2) / perTile(f4, 4), perTile(f6, 6) / perTile(f4, 4))
        #expect(abs(small - 48.0 / 240) < 1e-9, "\(small)")
        #expect(abs(large - 672.0 / 240) < 1e-9, "\(large)")
    }

    /// The phase schedule streams each pass's transformed tiles and products out and back: a memory stage whose
    /// footprint is one pass (so it streams at the cache level a pass fits), not the whole batch.
    @Test func phaseScheduleRoundTripsThroughMemory() throws {
        let d = try ConvolutionDescriptor(batch: 2, inputChannels: 256, inputHeight: 100, inputWidth: 100,
                                          outputChannels: 128, kernelHeight: 3, kernelWidth: 3, padding: .same)
        let plan = try WinogradBackend(outputTile: 4).describe(d, options: PlanOptions(threads: 2))
        #expect(plan.variant.contains("passes"), "\(plan.variant)")
        let stages = try Self.stages(WinogradBackend(outputTile: 4), d)
        // X and M of every tile: 625 tiles × 2 images × 36 points × (256 + 128) channels × 4 bytes, written and read.
        let roundTrip: Double = 2 * 1250 * 36 * 384 * 4
        let (bytes, footprint) = (stages["memory"] ?? 0, stages["footprint"] ?? 0)
        #expect(bytes == roundTrip, "\(stages)")
        #expect(footprint < bytes / 4, "\(stages)")
        // A small layer runs fused, from L2: no such stage.
        let small = try ConvolutionDescriptor(inputChannels: 16, inputHeight: 10, inputWidth: 10, outputChannels: 96,
                                              kernelHeight: 3, kernelWidth: 3, padding: .same)
        #expect(try Self.stages(WinogradBackend(outputTile: 4), small)["memory"] == nil)
    }
}

import ConvLab
import Dispatch
import Foundation
import Testing

/// Plans are created and executed from many threads at once. FFTW's planner is not thread-safe, so convlab
/// serialises it; these tests give that lock work (sizes no other test plans) and compare with serial results.
/// `scripts/check-sanitizers.sh` runs this suite under ThreadSanitizer and AddressSanitizer.
@Suite struct ConcurrencyTests {
    /// Eight problems whose FFT sizes no other test uses, so planning really happens concurrently.
    static let problems: [ConvolutionDescriptor] = (0..<8).map { i in
        try! ConvolutionDescriptor(batch: 1 + i % 2, inputChannels: 3 + i, inputHeight: 37 + 2 * i, inputWidth: 29 + 3 * i,
                                   outputChannels: 5, kernelHeight: 3 + 2 * (i % 3), kernelWidth: 3 + 2 * (i % 3),
                                   padding: .same)
    }

    static func run(_ backend: String, _ i: Int, effort: FFTPlanningEffort = .estimate) throws -> Tensor<Float> {
        let d = problems[i]
        let settings = BackendSettings(fftEffort: effort)
        let plan = try BackendRegistry.backend(named: backend, settings: settings).makePlan(
            descriptor: d, weights: try Tensor.random(shape: d.weightShape, seed: UInt64(i)),
            options: PlanOptions(threads: 1))
        return try plan(try Tensor.random(shape: d.inputShape, seed: UInt64(100 + i)))
    }

    /// 8 threads create FFT, Winograd and direct plans for 8 shapes at once (FFTW planning, wisdom export and the
    /// tile cost model's measurement race for the same locks), then the same plans are made serially: same bits.
    @Test(arguments: ["fft", "fft-tiled", "winograd", "direct", "im2col"])
    func concurrentPlanningMatchesSerial(backend: String) throws {
        let results = Locked<[Int: Tensor<Float>]>([:])
        let failures = Locked<[String]>([])
        let wisdom = FileManager.default.temporaryDirectory.appendingPathComponent("convlab-wisdom-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: wisdom) }
        DispatchQueue.concurrentPerform(iterations: 16) { task in
            let i = task % 8
            do {
                let y = try Self.run(backend, i)
                if task >= 8 { results.withLock { $0[i] = y } }
                if task % 5 == 0 { try FFTWisdom.save(to: wisdom + "\(task)") }
            } catch {
                failures.withLock { $0.append("\(backend) #\(i): \(error)") }
            }
        }
        for task in stride(from: 0, to: 16, by: 5) { try? FileManager.default.removeItem(atPath: wisdom + "\(task)") }
        #expect(failures.withLock { $0 }.isEmpty, "\(failures.withLock { $0 })")
        for i in 0..<8 {
            let serial = try Self.run(backend, i)
            #expect(results.withLock { $0[i] } == serial, "\(backend) #\(i)")
        }
    }

    /// The selector's one-call entry point from many threads at once (its cost model and plan caches are shared).
    @Test func selectorIsSafeToCallConcurrently() throws {
        let failures = Locked<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 8) { i in
            do {
                let d = Self.problems[i]
                let w = try Tensor<Float>.random(shape: d.weightShape, seed: 7)
                let x = try Tensor<Float>.random(shape: d.inputShape, seed: 8)
                let plan = try ConvLab.convolution(for: d, weights: w, options: PlanOptions(threads: 1))
                let reference = try ReferenceConvolution.compute(descriptor: d, input: x, weights: w)
                let (_, report) = try AccuracyChecker.check(plan: plan, input: x, reference: reference)
                if !report.passed { failures.withLock { $0 += 1 } }
            } catch {
                failures.withLock { $0 += 1 }
            }
        }
        #expect(failures.withLock { $0 } == 0)
    }
}

import ConvLab
import Testing

/// Strided layers through Winograd as the stride-1 layer over the phases of their input (`StrideAsPhases`): random
/// strides 2–4 per axis, kernels from 2×2 to 11×11 (square and not), odd sizes, asymmetric padding, batch and groups,
/// against the float64 reference within the plan's bound; the plan names the phases and its inner kernel; dilated
/// strided layers and inner kernels Winograd cannot run are refused with a reason.
@Suite struct StrideAsPhasesTests {
    static let cases: [(WinogradBackend, ConvolutionDescriptor)] = {
        var generator = SeededGenerator(seed: 0x57A1)
        func pick(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &generator) }
        var result: [(WinogradBackend, ConvolutionDescriptor)] = []
        var attempts = 0
        while result.count < 24 && attempts < 10_000 {
            attempts += 1
            let (sh, sw) = (pick(1...4), pick(2...4))
            let (kh, kw) = (pick(2...11), pick(2...11))
            let groups = pick(0...3) == 0 ? 2 : 1
            let backend = pick(0...1) == 0 ? WinogradBackend()
                : WinogradBackend(outputTile: [2, 4, 6][pick(0...2)], kernelSize: 3)
            guard let d = try? ConvolutionDescriptor(
                batch: pick(1...2), inputChannels: groups * pick(1...12), inputHeight: pick(kh...40),
                inputWidth: pick(kw...40), outputChannels: groups * pick(1...20), kernelHeight: kh, kernelWidth: kw,
                strideHeight: sh, strideWidth: sw,
                padding: pick(0...2) == 0 ? .valid
                    : .explicit(Padding(top: pick(0...2), bottom: pick(0...2), left: pick(0...3), right: pick(0...2))),
                groups: groups),
                  case .supported = backend.support(for: d) else { continue }
            result.append((backend, d))
        }
        return result
    }()

    @Test func stridedLayersAgreeWithTheReference() throws {
        #expect(Self.cases.count == 24)
        var innerKernels = Set<Int>()
        for (index, (backend, d)) in Self.cases.enumerated() {
            let (x, w, _) = try BlockedEntryChecks.operands(d, seed: UInt64(index) + 900)
            let plan = try backend.makePlan(descriptor: d, weights: w, options: PlanOptions(threads: 1 + index % 3))
            #expect(plan.summary.variant.hasPrefix("stride \(d.strideHeight)x\(d.strideWidth) as "
                                                   + "\(d.strideHeight * d.strideWidth) phases"), "\(plan.summary.variant)")
            innerKernels.insert((d.kernelHeight + d.strideHeight - 1) / d.strideHeight)
            let output = try plan.run(x)
            let reference = try ReferenceConvolution.compute(descriptor: d, input: x, weights: w, threads: 2)
            let report = try AccuracyChecker.compare(output: output, reference: reference,
                                                     errorBound: plan.summary.errorBound)
            #expect(report.passed && report.comparedCount == output.count, "\(backend.name) \(d): \(report)")
        }
        #expect(innerKernels.count >= 3, "inner kernel heights \(innerKernels)")
    }

    /// Backward-weights: x′ gathered, dy as it is, dw read out of the inner dw′.
    @Test func stridedWeightGradientsAgreeWithTheReference() throws {
        var checked = 0
        for (index, (backend, d)) in Self.cases.enumerated() {
            guard case .supported = backend.support(for: d, pass: .backwardWeights) else { continue }
            let (x, _, dy) = try BlockedEntryChecks.operands(d, seed: UInt64(index) + 950)
            let plan = try backend.makePlan(pass: .backwardWeights, descriptor: d, weights: nil,
                                            options: PlanOptions(threads: 1 + index % 3))
            #expect(plan.summary.variant.hasPrefix("stride \(d.strideHeight)x\(d.strideWidth) as"), "\(plan.summary.variant)")
            let dw = try plan.run(x, gradOutput: dy)
            let reference = try ReferenceConvolution.compute(.backwardWeights, descriptor: d, input: x, weights: nil,
                                                             gradOutput: dy, threads: 2)
            let report = try AccuracyChecker.compare(output: dw, reference: reference, errorBound: plan.summary.errorBound)
            #expect(report.passed && report.comparedCount == dw.count, "\(backend.name) \(d): \(report)")
            checked += 1
        }
        #expect(checked >= 12, "\(checked) strided weight gradients")
    }

    /// AlexNet's stem: 11×11/4 on 3 channels is a 3×3 layer on 48, which the F(m,3) variants take.
    @Test func alexNetsStemRunsAsA3x3LayerOn48Channels() throws {
        let d = try ConvolutionDescriptor(inputChannels: 3, inputHeight: 227, inputWidth: 227, outputChannels: 8,
                                          kernelHeight: 11, kernelWidth: 11, strideHeight: 4, strideWidth: 4)
        let plan = try WinogradBackend(outputTile: 4, kernelSize: 3).describe(d, options: PlanOptions(threads: 2))
        #expect(plan.variant.hasPrefix("stride 4x4 as 16 phases: F(4x4,3x3)"), "\(plan.variant)")
    }

    @Test func dilatedStridedAndUnservableInnerKernelsAreRefused() throws {
        let dilated = try ConvolutionDescriptor(inputChannels: 4, inputHeight: 20, inputWidth: 20, outputChannels: 4,
                                                kernelHeight: 3, kernelWidth: 3, strideHeight: 2, strideWidth: 2,
                                                dilationHeight: 2, dilationWidth: 2)
        guard case .unsupported(let reason) = WinogradBackend().support(for: dilated) else {
            Issue.record("a dilated strided layer was accepted")
            return
        }
        #expect(reason.contains("dilation"), "\(reason)")
        // 3×3 at stride 2 is a 2×2 inner kernel: not for the 3-tap variants.
        let downsampling = try ConvolutionDescriptor(inputChannels: 8, inputHeight: 16, inputWidth: 16,
                                                     outputChannels: 8, kernelHeight: 3, kernelWidth: 3,
                                                     strideHeight: 2, strideWidth: 2, padding: .same)
        guard case .unsupported(let inner) = WinogradBackend(outputTile: 4, kernelSize: 3).support(for: downsampling) else {
            Issue.record("F(4,3) accepted a 2×2 inner kernel")
            return
        }
        #expect(inner.contains("as 4 phases"), "\(inner)")
    }
}

import ConvLab
import Testing

/// Shared checks of the nChw16c entry points (`ChannelBlockedPassExecution`) of every pass.
enum BlockedEntryChecks {
    /// Seeded x, w and dy of `d`, uniform in [-1, 1].
    static func operands(_ d: ConvolutionDescriptor, seed: UInt64) throws
        -> (x: Tensor<Float>, w: Tensor<Float>, dy: Tensor<Float>) {
        (try Tensor<Float>.random(shape: d.inputShape, distribution: .uniform(low: -1, high: 1), seed: seed),
         try Tensor<Float>.random(shape: d.weightShape, distribution: .uniform(low: -1, high: 1), seed: seed + 1),
         try Tensor<Float>.random(shape: d.outputShape, distribution: .uniform(low: -1, high: 1), seed: seed + 2))
    }

    /// Runs a plan's nChw16c entry on blocked copies of `input` (and `gradOutput`) into a NaN-filled output, with a
    /// NaN-filled workspace; returns it unblocked (dw from Oihw16o), and whether the lanes past the last channel (the
    /// last output channel, for dw) came out zero.
    static func runBlocked(_ plan: any ChannelBlockedPassExecution, input: Tensor<Float>,
                           gradOutput: Tensor<Float>?) throws -> (output: Tensor<Float>, zeroLanes: Bool) {
        let shape = plan.descriptor.shapes(for: plan.pass).output
        let blocksOutput = plan.pass != .backwardWeights
        let x = try plan.blockedInput(input)
        let g = try gradOutput.map(ChannelBlocking.blocked) ?? Tensor<Float>(shape: [0])
        var output = try Tensor<Float>(shape: plan.blockedOutputShape)
        output.withUnsafeMutableBufferPointer { $0.update(repeating: .nan) }
        let workspace = try Workspace(byteCount: plan.summary.workspaceBytes)
        for i in 0..<workspace.byteCount { workspace.buffer[i] = 0xFF }  // NaN floats: a padding cell left unwritten shows
        try x.withUnsafeBufferPointer { a in
            try g.withUnsafeBufferPointer { b in
                try output.withUnsafeMutableBufferPointer { y in
                    try plan.executeBlocked(PassOperands(input: a, gradOutput: gradOutput == nil
                                                            ? UnsafeBufferPointer(start: nil, count: 0) : b, output: y),
                                            workspace: workspace.buffer, profile: nil)
                }
            }
        }
        // y and dx: [N][⌈C/16⌉][H·W][16]; dw (Oihw16o): [⌈K/16⌉][C/G·R·S][16].
        let (channels, inner) = blocksOutput ? (shape[1], shape[2] * shape[3]) : (shape[0], shape[1] * shape[2] * shape[3])
        let zeroLanes = output.scalars.enumerated().allSatisfy { index, value in
            let channel = (index / (16 * inner)) % ((channels + 15) / 16) * 16 + index % 16
            return channel < channels || value == 0
        }
        return (try plan.unblockedOutput(output), zeroLanes)
    }

    /// Runs `plan`'s blocked entry on the pass's operands (x; dy; x and dy) and expects the float64 reference within
    /// the plan's bound on every element, and zero lanes past the last channel.
    static func expectAgreesWithReference(_ plan: any ChannelBlockedPassExecution, x: Tensor<Float>,
                                          weights w: Tensor<Float>, gradOutput dy: Tensor<Float>) throws {
        let (d, pass) = (plan.descriptor, plan.pass)
        let input = pass == .backwardData ? dy : x
        let (output, zeroLanes) = try runBlocked(plan, input: input, gradOutput: pass == .backwardWeights ? dy : nil)
        let reference = try ReferenceConvolution.compute(pass, descriptor: d, input: input, weights: w, gradOutput: dy,
                                                         threads: 2)
        let report = try AccuracyChecker.compare(output: output, reference: reference, errorBound: plan.summary.errorBound)
        #expect(report.passed && report.comparedCount == output.count, "\(pass) \(d): \(report)")
        #expect(zeroLanes, "\(pass) \(d): lanes past the last channel are not zero")
    }

    /// `expectBlockedWeightGradientMatchesNCHW` for the direct backend's backward-weights plan of each shape, at 1, 2
    /// and 3 threads in turn, operands seeded from `seed` on; returns which schedules ran (split reduction or not).
    @discardableResult
    static func expectDirectWeightGradientsMatchNCHW(_ shapes: [ConvolutionDescriptor], seed: UInt64,
                                                     inputLayout: TensorLayout) throws -> Set<Bool> {
        var schedules = Set<Bool>()
        for (index, d) in shapes.enumerated() {
            let (x, _, dy) = try operands(d, seed: UInt64(index) + seed)
            let plan = try DirectBackend().makePlan(pass: .backwardWeights, descriptor: d, weights: nil,
                                                    options: PlanOptions(threads: 1 + index % 3))
            schedules.insert(try expectBlockedWeightGradientMatchesNCHW(plan, x: x, gradOutput: dy,
                                                                        inputLayout: inputLayout))
        }
        return schedules
    }

    /// A backward-weights plan's blocked entry on `d`: it exists and reads x in `inputLayout`, agrees with the
    /// reference, and gives the NCHW entry's dw bit for bit (the arithmetic is shared; only how x and dy are read
    /// differs). Returns whether the plan splits the reduction (its schedule).
    @discardableResult
    static func expectBlockedWeightGradientMatchesNCHW(_ plan: any PassPlan, x: Tensor<Float>, gradOutput dy: Tensor<Float>,
                                                       inputLayout: TensorLayout) throws -> Bool {
        let d = plan.descriptor
        let blocked = try #require(plan as? any ChannelBlockedPassExecution, "\(d): no nChw16c entry")
        #expect(blocked.blockedInputLayout == inputLayout, "\(d)")
        try expectAgreesWithReference(blocked, x: x, weights: try Tensor<Float>(shape: d.weightShape), gradOutput: dy)
        let nchw = try plan.run(x, gradOutput: dy)
        let fromBlocked = try blocked.unblockedOutput(try blocked.runBlocked(try blocked.blockedInput(x),
                                                                             gradOutput: try ChannelBlocking.blocked(dy)))
        #expect(nchw.scalars.map(\.bitPattern) == fromBlocked.scalars.map(\.bitPattern), "\(d)")
        return plan.summary.variant.contains("slices")
    }
}

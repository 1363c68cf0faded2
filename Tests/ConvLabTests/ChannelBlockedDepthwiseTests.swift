import ConvLab
import Testing

/// The direct backend's channel-blocked depthwise plan (16 channels per vector): partial channel blocks, strides,
/// dilation, asymmetric and oversized padding, non-square kernels, kernels wider than the image, batch, row bands
/// split across tasks and a row's partial block of 8 positions, each against the float64 reference — and the plan is
/// really the one `direct` picks for them.
@Suite struct ChannelBlockedDepthwiseTests {
    static func depthwise(_ n: Int, _ c: Int, _ h: Int, _ w: Int, _ r: Int, _ s: Int, stride: (Int, Int) = (1, 1),
                          padding: PaddingRule = .same, dilation: (Int, Int) = (1, 1)) -> ConvolutionDescriptor {
        try! ConvolutionDescriptor(batch: n, inputChannels: c, inputHeight: h, inputWidth: w, outputChannels: c,
                                   kernelHeight: r, kernelWidth: s, strideHeight: stride.0, strideWidth: stride.1,
                                   padding: padding, dilationHeight: dilation.0, dilationWidth: dilation.1, groups: c)
    }

    static let shapes: [ConvolutionDescriptor] = [
        depthwise(1, 16, 7, 7, 3, 3),                                   // one whole block, a 7-wide row
        depthwise(1, 960, 7, 7, 3, 3),                                  // MobileNetV2's last depthwise layer
        depthwise(2, 20, 14, 13, 5, 5, stride: (2, 2)),                 // a partial block, stride 2, odd width
        depthwise(1, 33, 9, 11, 3, 5, padding: .explicit(Padding(top: 2, bottom: 0, left: 1, right: 3)),
                  dilation: (2, 1)),
        depthwise(3, 48, 17, 19, 7, 7, stride: (2, 1)),
        depthwise(1, 17, 40, 30, 3, 3),                                 // bands of rows at 3 threads
        depthwise(1, 24, 12, 12, 1, 1, padding: .valid),
        depthwise(1, 32, 7, 7, 13, 13),                                 // a kernel wider than the image (RepLKNet)
        depthwise(1, 16, 6, 9, 3, 3, padding: .explicit(Padding(top: 4, bottom: 3, left: 5, right: 2))),
        depthwise(2, 40, 23, 23, 3, 3, stride: (3, 3), padding: .valid, dilation: (2, 3)),
        depthwise(1, 64, 112, 112, 3, 3, stride: (2, 2)),               // a 56-wide strided output
    ] + spanning + sliding

    /// 3×3, 5×5 and 7×7 padded to keep their size, summed by sliding along the input columns: images narrower than
    /// the padding, rows cut into blocks of 5 + 4, 7 + 6 and 6 × 5 columns, images shorter than the kernel, batch and
    /// partial channel blocks.
    static let sliding: [ConvolutionDescriptor] = [
        depthwise(2, 20, 1, 1, 3, 3), depthwise(1, 33, 2, 9, 3, 3), depthwise(3, 16, 13, 13, 3, 3),
        depthwise(1, 40, 5, 30, 3, 3), depthwise(1, 16, 28, 2, 3, 3), depthwise(2, 20, 9, 13, 5, 5),
        depthwise(1, 16, 2, 2, 5, 5), depthwise(2, 16, 7, 7, 7, 7), depthwise(1, 33, 3, 17, 7, 7),
    ]

    /// The sliding rows run on every 3×3, 5×5 and 7×7 stride-1 layer padded to keep its size, and on no other.
    @Test func slidingRowsRunOnSizeKeepingOddKernels() throws {
        for d in Self.sliding + [Self.depthwise(1, 960, 7, 7, 3, 3), Self.depthwise(1, 1152, 7, 7, 5, 5)] {
            #expect(try DirectBackend().describe(d, options: PlanOptions()).variant
                        == "depthwise channel-blocked, sliding \(d.kernelHeight)x\(d.kernelWidth)", "\(d)")
        }
        for d in [Self.depthwise(1, 64, 14, 14, 3, 3, padding: .valid), Self.depthwise(1, 64, 14, 14, 3, 3,
                      padding: .explicit(Padding(top: 1, bottom: 1, left: 1, right: 0))),
                  Self.depthwise(1, 64, 14, 14, 3, 3, stride: (2, 2)), Self.depthwise(1, 64, 14, 14, 3, 3, dilation: (2, 2)),
                  Self.depthwise(1, 64, 14, 14, 5, 3), Self.depthwise(1, 64, 14, 14, 9, 9)] {
            #expect(try DirectBackend().describe(d, options: PlanOptions()).variant == "depthwise channel-blocked", "\(d)")
        }
    }

    /// Kernels that span the image's width (every input column reaches every output column), summed input position by
    /// input position: 1 to 8 output columns, rows clipped at both edges, output rows that read only padding, batch,
    /// a partial channel block, non-square kernels and asymmetric padding.
    static let spanning: [ConvolutionDescriptor] = [
        depthwise(2, 20, 5, 3, 7, 9, padding: .explicit(Padding(top: 3, bottom: 2, left: 5, right: 4))),  // 4 columns
        depthwise(1, 16, 8, 8, 15, 15),                                                                // 8 columns
        depthwise(1, 17, 1, 1, 3, 5, padding: .explicit(Padding(top: 1, bottom: 1, left: 2, right: 2))), // 1 column
        depthwise(3, 40, 4, 2, 3, 5, padding: .explicit(Padding(top: 4, bottom: 0, left: 3, right: 1))), // zero rows
        depthwise(1, 48, 6, 5, 11, 11),                                                               // 5 columns
    ]

    /// The spanning rows run exactly where every (input column, output column) pair is a tap, and nowhere else.
    @Test func spanningRowsRunWhereTheKernelSpansTheWidth() throws {
        for d in Self.spanning + [Self.depthwise(1, 1024, 7, 7, 13, 13)] {
            #expect(try DirectBackend().describe(d, options: PlanOptions()).variant
                        == "depthwise channel-blocked, width-spanning", "\(d)")
        }
        for d in [Self.depthwise(1, 64, 7, 7, 5, 3), Self.depthwise(1, 64, 7, 7, 13, 13, padding: .explicit(
                      Padding(top: 6, bottom: 6, left: 5, right: 7))), Self.depthwise(1, 64, 9, 9, 13, 13)] {
            #expect(try DirectBackend().describe(d, options: PlanOptions()).variant == "depthwise channel-blocked", "\(d)")
        }
    }

    /// Backward-data of a stride-1 depthwise layer is the forward plan on the rotated kernel: RepLKNet's 13×13 on 7×7
    /// maps spans there too, and size-keeping 3×3 and 7×7 slide.
    @Test(arguments: [(depthwise(2, 32, 7, 7, 13, 13), "width-spanning"), (depthwise(1, 20, 5, 3, 7, 9, padding: .explicit(
        Padding(top: 3, bottom: 2, left: 5, right: 4))), "width-spanning"), (depthwise(2, 40, 14, 13, 3, 3), "sliding 3x3"),
        (depthwise(1, 24, 9, 11, 7, 7), "sliding 7x7")])
    func implicitPaddingBackwardDataAgreesWithTheReference(d: ConvolutionDescriptor, kernel: String) throws {
        #expect(try DirectBackend().describe(d, pass: .backwardData, options: PlanOptions()).variant
                    .contains(kernel), "\(d)")
        for threads in [1, 3] {
            let report = try AccuracyChecker.check(backend: DirectBackend(), pass: .backwardData, descriptor: d,
                                                   seed: 17, options: PlanOptions(threads: threads))
            #expect(report.passed && report.comparedCount == d.inputCount, "\(d), \(threads) threads: \(report)")
        }
    }

    @Test(arguments: shapes)
    func agreesWithTheReference(d: ConvolutionDescriptor) throws {
        #expect(try DirectBackend().describe(d, options: PlanOptions()).variant.hasPrefix("depthwise channel-blocked"),
                "\(d)")
        for threads in [1, 3] {
            let report = try AccuracyChecker.check(backend: DirectBackend(), descriptor: d, seed: 11,
                                                   options: PlanOptions(threads: threads))
            #expect(report.passed && report.comparedCount == d.outputCount, "\(d), \(threads) threads: \(report)")
        }
    }

    /// The row plan keeps what it is faster at (rows of ≥ 48 outputs at stride 1 that do not slide) and layers of few
    /// channels; wide rows that slide take the channel-blocked plan.
    @Test func rowPlanKeepsWideRowsAndFewChannels() throws {
        for d in [Self.depthwise(1, 32, 112, 112, 3, 3, dilation: (2, 2)), Self.depthwise(1, 32, 60, 70, 3, 5),
                  Self.depthwise(1, 8, 28, 28, 3, 3)] {
            #expect(!(try DirectBackend().describe(d, options: PlanOptions()).variant.hasPrefix("depthwise channel-blocked")),
                    "\(d)")
        }
        #expect(try DirectBackend().describe(Self.depthwise(1, 32, 112, 112, 3, 3), options: PlanOptions()).variant
                    == "depthwise channel-blocked, sliding 3x3")
    }
}

/// nChw16c: blocking round-trips, zero lanes past C, and the depthwise plan's blocked entry point gives the float64
/// reference's answer (checked after unblocking) and zero in the output's padding lanes.
@Suite struct ChannelBlockedLayoutTests {
    @Test(arguments: [(1, 16, 7, 7), (2, 20, 5, 3), (1, 33, 1, 17), (3, 1, 4, 4), (2, 35, 1, 1), (1, 18, 2, 3)])
    func blockingRoundTrips(shape: (Int, Int, Int, Int)) throws {
        let (n, c, h, w) = shape
        let x = try Tensor<Float>.random(shape: [n, c, h, w], distribution: .uniform(low: -1, high: 1), seed: 3)
        let blocked = try ChannelBlocking.blocked(x)
        #expect(blocked.count == (try TensorLayout.nChw16c.count(batch: n, channels: c, height: h, width: w)))
        let b = blocked.scalars, source = x.scalars
        for ni in 0..<n {
            for ci in 0..<((c + 15) / 16 * 16) {
                for p in 0..<(h * w) {
                    let value = b[((ni * ((c + 15) / 16) + ci / 16) * h * w + p) * 16 + ci % 16]
                    #expect(value == (ci < c ? source[(ni * c + ci) * h * w + p] : 0))
                }
            }
        }
        #expect(try ChannelBlocking.unblocked(blocked, channels: c).scalars == source)
        #expect(throws: ConvLabError.self) { try ChannelBlocking.unblocked(blocked, channels: c + 16) }
    }

    /// Wide rows on nChw16c: the first two slide (3×3 and 5×5, as on NCHW); the others run the row plan on NCHW, and
    /// on nChw16c read x in place region by region (31×31 at 56², and the last three: padding past the kernel's reach
    /// leaves zero outputs, asymmetric padding, stride, dilation, 1×7 rows), as do the strided shapes above whose
    /// interior holds 85% of the outputs or more.
    static let wideRows = [ChannelBlockedDepthwiseTests.depthwise(1, 32, 60, 70, 3, 3),
                           ChannelBlockedDepthwiseTests.depthwise(2, 20, 20, 50, 5, 5),
                           ChannelBlockedDepthwiseTests.depthwise(1, 16, 56, 56, 31, 31),
                           ChannelBlockedDepthwiseTests.depthwise(1, 20, 100, 60, 3, 3, padding: .explicit(
                               Padding(top: 4, bottom: 1, left: 5, right: 0))),
                           ChannelBlockedDepthwiseTests.depthwise(2, 36, 64, 50, 3, 5, stride: (2, 3), padding: .explicit(
                               Padding(top: 0, bottom: 2, left: 3, right: 1)), dilation: (2, 1)),
                           ChannelBlockedDepthwiseTests.depthwise(1, 16, 33, 90, 1, 7)]

    @Test(arguments: ChannelBlockedDepthwiseTests.shapes + wideRows)
    func blockedExecutionAgreesWithTheReference(d: ConvolutionDescriptor) throws {
        let x = try Tensor<Float>.random(shape: d.inputShape, distribution: .uniform(low: -1, high: 1), seed: 5)
        let w = try Tensor<Float>.random(shape: d.weightShape, distribution: .uniform(low: -1, high: 1), seed: 6)
        let reference = try ReferenceConvolution.compute(.forward, descriptor: d, input: x, weights: w, gradOutput: nil,
                                                         threads: 2)
        for threads in [1, 3] {
            let plan = try #require(try DirectBackend().makePlan(descriptor: d, weights: w,
                                                                 options: PlanOptions(threads: threads))
                                        as? any ChannelBlockedExecution)
            #expect(plan.blockedSummary.variant.hasPrefix("depthwise channel-blocked"), "\(d)")
            let input = try ChannelBlocking.blocked(x)
            var output = try Tensor<Float>(shape: [d.batch, (d.outputChannels + 15) / 16, d.outputHeight,
                                                   d.outputWidth, 16])
            output.withUnsafeMutableBufferPointer { $0.update(repeating: .nan) }
            let workspace = try Workspace(byteCount: plan.summary.workspaceBytes)
            try input.withUnsafeBufferPointer { i in
                try output.withUnsafeMutableBufferPointer { o in
                    try plan.executeBlocked(input: i, output: o, workspace: workspace.buffer, profile: nil)
                }
            }
            let report = try AccuracyChecker.compare(output: try ChannelBlocking.unblocked(output, channels: d.outputChannels),
                                                     reference: reference, errorBound: plan.summary.errorBound)
            #expect(report.passed && report.comparedCount == d.outputCount, "\(d), \(threads) threads: \(report)")
            let lanes = output.scalars.enumerated().filter { $0.offset % 16 >= d.outputChannels - (d.outputChannels - 1) / 16 * 16
                && ($0.offset / (16 * d.outputHeight * d.outputWidth)) % ((d.outputChannels + 15) / 16)
                    == (d.outputChannels - 1) / 16 }
            #expect(lanes.allSatisfy { $0.element == 0 }, "\(d): padding lanes of the output are not zero")
        }
    }

    /// Wrong-sized blocked buffers are typed errors, not out-of-bounds accesses.
    @Test func wrongBlockedSizesThrow() throws {
        let d = ChannelBlockedDepthwiseTests.depthwise(1, 20, 7, 7, 3, 3)
        let w = try Tensor<Float>.random(shape: d.weightShape, distribution: .uniform(low: -1, high: 1), seed: 1)
        let plan = try #require(try DirectBackend().makePlan(descriptor: d, weights: w, options: PlanOptions())
                                    as? any ChannelBlockedExecution)
        let workspace = try Workspace(byteCount: plan.summary.workspaceBytes)
        let input = [Float](repeating: 0, count: d.inputCount)
        var output = [Float](repeating: 0, count: 32 * 49)
        #expect(throws: ConvLabError.self) {
            try input.withUnsafeBufferPointer { i in
                try output.withUnsafeMutableBufferPointer { o in
                    try plan.executeBlocked(input: i, output: o, workspace: workspace.buffer, profile: nil)
                }
            }
        }
    }
}

import ConvLab
import Testing

/// The reference is checked against hand-computed results and against identities that follow from the definition
/// by a different route (shifts, counts, block structure, subsampling, zero-inserted kernels).
@Suite struct ReferenceTests {
    func reference(_ d: ConvolutionDescriptor, _ x: Tensor<Float>, _ w: Tensor<Float>) throws -> [Double] {
        try ReferenceConvolution.compute(descriptor: d, input: x, weights: w, threads: 2).output.scalars
    }

    @Test func handComputedValidCorrelation() throws {
        // x = [[1,2,3],[4,5,6],[7,8,9]], w = [[1,0],[0,-1]]: y = x[i,j] - x[i+1,j+1] = -4 everywhere.
        let d = try ConvolutionDescriptor(inputChannels: 1, inputHeight: 3, inputWidth: 3, outputChannels: 1,
                                          kernelHeight: 2, kernelWidth: 2)
        let x = try Tensor<Float>(shape: [1, 1, 3, 3], scalars: [1, 2, 3, 4, 5, 6, 7, 8, 9])
        let w = try Tensor<Float>(shape: [1, 1, 2, 2], scalars: [1, 0, 0, -1])
        #expect(try reference(d, x, w) == [-4, -4, -4, -4])
    }

    @Test func handComputedPaddedStridedTwoChannels() throws {
        // Two channels, pad 1, stride 2, 3x3 kernel of ones on channel 0 and a centre tap of 10 on channel 1.
        // Output (oh, ow) covers padded rows 2·oh..2·oh+2: channel 0 contributes the sum of the window,
        // channel 1 contributes 10·x1 at the window centre (2·oh, 2·ow) in input coordinates.
        let d = try ConvolutionDescriptor(inputChannels: 2, inputHeight: 3, inputWidth: 3, outputChannels: 1,
                                          kernelHeight: 3, kernelWidth: 3, strideHeight: 2, strideWidth: 2,
                                          padding: .explicit(Padding(1)))
        let x = try Tensor<Float>(shape: [1, 2, 3, 3], scalars: [1, 2, 3, 4, 5, 6, 7, 8, 9,
                                                                1, 1, 1, 1, 2, 1, 1, 1, 3])
        let w = try Tensor<Float>(shape: [1, 2, 3, 3], scalars: [1, 1, 1, 1, 1, 1, 1, 1, 1,
                                                                0, 0, 0, 0, 10, 0, 0, 0, 0])
        // Windows: (0,0): 1+2+4+5=12 (+10·1); (0,1): 2+3+5+6=16 (+10·1); (1,0): 4+5+7+8=24 (+10·1);
        // (1,1): 5+6+8+9=28 (+10·3).
        #expect(d.outputHeight == 2 && d.outputWidth == 2)
        #expect(try reference(d, x, w) == [22, 26, 34, 58])
    }

    @Test func deltaKernelShiftsTheInput() throws {
        for (r0, s0) in [(0, 0), (1, 2), (2, 1)] {
            let d = try ConvolutionDescriptor(inputChannels: 1, inputHeight: 6, inputWidth: 7, outputChannels: 1,
                                              kernelHeight: 3, kernelWidth: 3,
                                              padding: .explicit(Padding(top: 1, bottom: 0, left: 2, right: 1)))
            let x = try Tensor<Float>.random(shape: d.inputShape, seed: 3)
            var weights = [Float](repeating: 0, count: 9)
            weights[r0 * 3 + s0] = 1
            let y = try reference(d, x, try Tensor(shape: d.weightShape, scalars: weights))
            let xs = x.scalars
            for oh in 0..<d.outputHeight {
                for ow in 0..<d.outputWidth {
                    let (ih, iw) = (oh + r0 - 1, ow + s0 - 2)
                    let expected = (0..<6).contains(ih) && (0..<7).contains(iw) ? Double(xs[ih * 7 + iw]) : 0
                    #expect(y[oh * d.outputWidth + ow] == expected)
                }
            }
        }
    }

    @Test func onesCountInBoundsTaps() throws {
        for d in RandomDescriptors.make(count: 40, seed: 11) {
            let x = try Tensor<Float>(shape: d.inputShape, scalars: .init(repeating: 1, count: d.inputCount))
            let w = try Tensor<Float>(shape: d.weightShape, scalars: .init(repeating: 1, count: d.weightCount))
            let y = try reference(d, x, w)
            func taps(_ o: Int, stride: Int, dilation: Int, kernel: Int, pad: Int, size: Int) -> Int {
                (0..<kernel).filter { (0..<size).contains(o * stride + $0 * dilation - pad) }.count
            }
            for (i, value) in y.enumerated() {
                let ow = i % d.outputWidth
                let oh = (i / d.outputWidth) % d.outputHeight
                let rows = taps(oh, stride: d.strideHeight, dilation: d.dilationHeight, kernel: d.kernelHeight,
                                pad: d.padding.top, size: d.inputHeight)
                let columns = taps(ow, stride: d.strideWidth, dilation: d.dilationWidth, kernel: d.kernelWidth,
                                   pad: d.padding.left, size: d.inputWidth)
                #expect(value == Double(d.channelsPerGroup * rows * columns))
            }
        }
    }

    @Test func groupedEqualsSeparateDenseConvolutionsPerGroup() throws {
        let g = 3
        let d = try ConvolutionDescriptor(batch: 2, inputChannels: 6, inputHeight: 7, inputWidth: 5,
                                          outputChannels: 9, kernelHeight: 3, kernelWidth: 2,
                                          padding: .explicit(Padding(1)), groups: g)
        let x = try Tensor<Float>.random(shape: d.inputShape, seed: 5)
        let w = try Tensor<Float>.random(shape: d.weightShape, seed: 6)
        let y = try reference(d, x, w)
        let dense = try ConvolutionDescriptor(batch: 1, inputChannels: 2, inputHeight: 7, inputWidth: 5,
                                              outputChannels: 3, kernelHeight: 3, kernelWidth: 2,
                                              padding: .explicit(Padding(1)))
        let (xs, ws) = (x.scalars, w.scalars)
        let plane = 7 * 5
        let outPlane = dense.outputHeight * dense.outputWidth
        for n in 0..<2 {
            for group in 0..<g {
                let groupInput = Array(xs[((n * 6 + group * 2) * plane)..<((n * 6 + group * 2 + 2) * plane)])
                let groupWeights = Array(ws[(group * 3 * 2 * 6)..<((group + 1) * 3 * 2 * 6)])
                let part = try reference(dense, try Tensor(shape: dense.inputShape, scalars: groupInput),
                                         try Tensor(shape: dense.weightShape, scalars: groupWeights))
                let start = (n * 9 + group * 3) * outPlane
                #expect(Array(y[start..<(start + 3 * outPlane)]) == part)
            }
        }
    }

    @Test func strideSubsamplesTheStrideOneOutput() throws {
        let x = try Tensor<Float>.random(shape: [1, 3, 11, 9], seed: 8)
        let w = try Tensor<Float>.random(shape: [2, 3, 3, 4], seed: 9)
        let pad = PaddingRule.explicit(Padding(top: 2, bottom: 1, left: 0, right: 3))
        let full = try ConvolutionDescriptor(inputChannels: 3, inputHeight: 11, inputWidth: 9, outputChannels: 2,
                                             kernelHeight: 3, kernelWidth: 4, padding: pad)
        let strided = try ConvolutionDescriptor(inputChannels: 3, inputHeight: 11, inputWidth: 9, outputChannels: 2,
                                                kernelHeight: 3, kernelWidth: 4, strideHeight: 3, strideWidth: 2,
                                                padding: pad)
        let y1 = try reference(full, x, w)
        let y2 = try reference(strided, x, w)
        for k in 0..<2 {
            for oh in 0..<strided.outputHeight {
                for ow in 0..<strided.outputWidth {
                    let sub = y1[(k * full.outputHeight + 3 * oh) * full.outputWidth + 2 * ow]
                    #expect(y2[(k * strided.outputHeight + oh) * strided.outputWidth + ow] == sub)
                }
            }
        }
    }

    @Test func dilationEqualsAZeroInsertedKernel() throws {
        let x = try Tensor<Float>.random(shape: [1, 2, 12, 10], seed: 12)
        let w = try Tensor<Float>.random(shape: [3, 2, 3, 2], seed: 13)
        let dilated = try ConvolutionDescriptor(inputChannels: 2, inputHeight: 12, inputWidth: 10, outputChannels: 3,
                                                kernelHeight: 3, kernelWidth: 2, padding: .explicit(Padding(2)),
                                                dilationHeight: 2, dilationWidth: 3)
        // The equivalent undilated kernel is 5x4 with taps at rows 0,2,4 and columns 0,3.
        var wide = [Float](repeating: 0, count: 3 * 2 * 5 * 4)
        let ws = w.scalars
        for k in 0..<3 { for c in 0..<2 { for r in 0..<3 { for s in 0..<2 {
            wide[((k * 2 + c) * 5 + 2 * r) * 4 + 3 * s] = ws[((k * 2 + c) * 3 + r) * 2 + s]
        } } } }
        let undilated = try ConvolutionDescriptor(inputChannels: 2, inputHeight: 12, inputWidth: 10,
                                                  outputChannels: 3, kernelHeight: 5, kernelWidth: 4,
                                                  padding: .explicit(Padding(2)))
        #expect(try reference(dilated, x, w) == reference(undilated, x, try Tensor(shape: [3, 2, 5, 4], scalars: wide)))
    }

    @Test func magnitudeIsTheConvolutionOfAbsoluteValues() throws {
        let d = RandomDescriptors.make(count: 1, seed: 21)[0]
        let x = try Tensor<Float>.random(shape: d.inputShape, seed: 1)
        let w = try Tensor<Float>.random(shape: d.weightShape, seed: 2)
        let result = try ReferenceConvolution.compute(descriptor: d, input: x, weights: w)
        let absX = try Tensor<Float>(shape: d.inputShape, scalars: x.scalars.map { abs($0) })
        let absW = try Tensor<Float>(shape: d.weightShape, scalars: w.scalars.map { abs($0) })
        #expect(result.magnitude.scalars == (try reference(d, absX, absW)))
    }

    @Test func rejectsMismatchedShapes() throws {
        let d = try ConvolutionDescriptor(inputChannels: 2, inputHeight: 4, inputWidth: 4, outputChannels: 2,
                                          kernelHeight: 3, kernelWidth: 3)
        let x = try Tensor<Float>(shape: [1, 2, 4, 5])
        let w = try Tensor<Float>(shape: d.weightShape)
        #expect(throws: ConvLabError.self) { try ReferenceConvolution.compute(descriptor: d, input: x, weights: w) }
    }
}

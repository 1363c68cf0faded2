import ConvLab
import Foundation
import Testing

@Suite struct DescriptorTests {
    /// Output size by counting window positions, independently of the closed-form formula.
    static func countedOutputSize(input: Int, before: Int, after: Int, kernel: Int, stride: Int, dilation: Int) -> Int {
        let extent = (kernel - 1) * dilation + 1
        var count = 0
        var start = 0
        while start + extent <= input + before + after {
            count += 1
            start += stride
        }
        return count
    }

    @Test func outputSizeMatchesCountedWindows() throws {
        for d in RandomDescriptors.make(count: 300, seed: 7) {
            #expect(d.outputHeight == Self.countedOutputSize(
                input: d.inputHeight, before: d.padding.top, after: d.padding.bottom, kernel: d.kernelHeight,
                stride: d.strideHeight, dilation: d.dilationHeight))
            #expect(d.outputWidth == Self.countedOutputSize(
                input: d.inputWidth, before: d.padding.left, after: d.padding.right, kernel: d.kernelWidth,
                stride: d.strideWidth, dilation: d.dilationWidth))
        }
    }

    @Test(arguments: [(1, 3, 1), (2, 3, 1), (3, 5, 1), (2, 7, 2), (1, 4, 1), (4, 1, 1), (3, 3, 3)])
    func samePaddingGivesCeilOfInputOverStride(stride: Int, kernel: Int, dilation: Int) throws {
        for size in 1...20 {
            let d = try ConvolutionDescriptor(inputChannels: 1, inputHeight: size, inputWidth: size + 1,
                                              outputChannels: 1, kernelHeight: kernel, kernelWidth: kernel,
                                              strideHeight: stride, strideWidth: stride, padding: .same,
                                              dilationHeight: dilation, dilationWidth: dilation)
            #expect(d.outputHeight == (size + stride - 1) / stride)
            #expect(d.outputWidth == (size + 1 + stride - 1) / stride)
            #expect(d.padding.bottom - d.padding.top == 0 || d.padding.bottom - d.padding.top == 1)
        }
    }

    @Test func samePaddingForOddKernelIsHalfTheKernel() throws {
        let d = try ConvolutionDescriptor(inputChannels: 3, inputHeight: 32, inputWidth: 32, outputChannels: 8,
                                          kernelHeight: 7, kernelWidth: 3, padding: .same)
        #expect(d.padding == Padding(top: 3, bottom: 3, left: 1, right: 1))
        #expect(d.outputHeight == 32 && d.outputWidth == 32)
    }

    @Test func costCountsOfAResNetLayer() throws {
        let d = try ConvolutionDescriptor(inputChannels: 64, inputHeight: 56, inputWidth: 56, outputChannels: 64,
                                          kernelHeight: 3, kernelWidth: 3, padding: .explicit(Padding(1)))
        #expect(d.directFLOPs == 2 * 64 * 64 * 9 * 56 * 56)
        #expect(d.parameterCount == 64 * 64 * 9)
        #expect(d.naiveBytesMoved == 4 * (64 * 56 * 56 + 64 * 64 * 9 + 64 * 56 * 56))
        let grouped = try ConvolutionDescriptor(batch: 2, inputChannels: 32, inputHeight: 10, inputWidth: 10,
                                                outputChannels: 64, kernelHeight: 3, kernelWidth: 3, groups: 4)
        #expect(grouped.directFLOPs == 2 * 2 * 64 * 8 * 9 * 8 * 8)
        #expect(grouped.weightShape == [64, 8, 3, 3])
    }

    /// Every validation rule, each with the field it must name.
    @Test func invalidDescriptorsNameTheField() {
        func field(_ make: () throws -> ConvolutionDescriptor) -> String? {
            do {
                _ = try make()
                return nil
            } catch ConvLabError.invalidDescriptor(let field, _) {
                return field
            } catch {
                return "other: \(error)"
            }
        }
        func make(batch: Int = 1, c: Int = 4, h: Int = 8, w: Int = 8, k: Int = 4, r: Int = 3, s: Int = 3,
                  sh: Int = 1, sw: Int = 1, pad: PaddingRule = .valid, dh: Int = 1, dw: Int = 1, g: Int = 1) throws
            -> ConvolutionDescriptor {
            try ConvolutionDescriptor(batch: batch, inputChannels: c, inputHeight: h, inputWidth: w, outputChannels: k,
                                      kernelHeight: r, kernelWidth: s, strideHeight: sh, strideWidth: sw,
                                      padding: pad, dilationHeight: dh, dilationWidth: dw, groups: g)
        }
        #expect(field { try make(batch: 0) } == "batch")
        #expect(field { try make(c: -3) } == "inputChannels")
        #expect(field { try make(h: 0) } == "inputHeight")
        #expect(field { try make(w: -1) } == "inputWidth")
        #expect(field { try make(k: 0) } == "outputChannels")
        #expect(field { try make(r: 0) } == "kernelHeight")
        #expect(field { try make(s: -2) } == "kernelWidth")
        #expect(field { try make(sh: 0) } == "strideHeight")
        #expect(field { try make(sw: 0) } == "strideWidth")
        #expect(field { try make(dh: 0) } == "dilationHeight")
        #expect(field { try make(dw: -1) } == "dilationWidth")
        #expect(field { try make(g: 0) } == "groups")
        #expect(field { try make(c: 6, k: 4, g: 4) } == "groups")
        #expect(field { try make(c: 4, k: 6, g: 4) } == "groups")
        #expect(field { try make(pad: .explicit(Padding(top: -1, bottom: 0, left: 0, right: 0))) } == "padding.top")
        #expect(field { try make(pad: .explicit(Padding(top: 0, bottom: 0, left: 0, right: -2))) } == "padding.right")
        #expect(field { try make(h: 2, r: 3) } == "kernelHeight")
        #expect(field { try make(w: 2, s: 3) } == "kernelWidth")
        #expect(field { try make(h: 5, r: 3, dh: 3) } == "kernelHeight")  // extent 7 > 5
        #expect(field { try make(h: 5, r: 3, pad: .explicit(Padding(1)), dh: 3) } == nil)  // extent 7 = padded 7
        #expect(field { try make(c: 1 << 32) } == "inputChannels")
        #expect(field { try make(batch: 1 << 30, c: 1 << 30, h: 1 << 30, w: 1 << 30) } == "sizes")
    }

    @Test func hugeImageIsRefusedAtOnceWithTheBytesItNeeds() {
        #expect {
            try ConvolutionDescriptor(inputChannels: 1, inputHeight: 100_000, inputWidth: 100_000, outputChannels: 1,
                                      kernelHeight: 3, kernelWidth: 3)
        } throws: { error in
            guard case ConvLabError.memoryLimitExceeded(_, let required, let limit) = error else { return false }
            return required > 70_000_000_000 && limit == ResourceLimits.default.maxTensorBytes
        }
    }

    @Test func customMemoryLimitApplies() {
        let small = ResourceLimits(maxTensorBytes: 1000, maxWorkspaceBytes: 1000)
        #expect(throws: ConvLabError.self) {
            try ConvolutionDescriptor(inputChannels: 4, inputHeight: 16, inputWidth: 16, outputChannels: 4,
                                      kernelHeight: 3, kernelWidth: 3, limits: small)
        }
    }

    @Test func codableRoundTripAndValidationOnDecode() throws {
        let d = try ConvolutionDescriptor(batch: 2, inputChannels: 6, inputHeight: 9, inputWidth: 11,
                                          outputChannels: 4, kernelHeight: 3, kernelWidth: 2, strideHeight: 2,
                                          padding: .explicit(Padding(top: 1, bottom: 0, left: 2, right: 1)),
                                          dilationWidth: 2, groups: 2)
        let data = try JSONEncoder().encode(d)
        #expect(try JSONDecoder().decode(ConvolutionDescriptor.self, from: data) == d)
        let corrupted = String(decoding: data, as: UTF8.self).replacingOccurrences(of: "\"groups\":2",
                                                                                  with: "\"groups\":5")
        #expect(throws: ConvLabError.self) {
            try JSONDecoder().decode(ConvolutionDescriptor.self, from: Data(corrupted.utf8))
        }
    }

    @Test func keyIdentifiesEveryField() throws {
        let a = try ConvolutionDescriptor(inputChannels: 4, inputHeight: 8, inputWidth: 8, outputChannels: 4,
                                          kernelHeight: 3, kernelWidth: 3)
        let b = try ConvolutionDescriptor(inputChannels: 4, inputHeight: 8, inputWidth: 8, outputChannels: 4,
                                          kernelHeight: 3, kernelWidth: 3, dilationWidth: 2)
        #expect(a.key != b.key)
        #expect(a.key == "n1c4h8w8k4r3s3sh1sw1p0,0,0,0dh1dw1g1")
    }
}

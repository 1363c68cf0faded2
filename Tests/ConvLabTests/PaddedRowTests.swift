import ConvLab
import Testing

/// `copyPaddedRow`, behind every padded copy (direct planes, im2col rows, FFT tiles), against its definition
/// target[t] = source[t·stride + offset] inside the row and 0 outside — for the vectorised strides 2 and 4 as for
/// the scalar ones, across row widths, offsets either side of the row and counts past its end.
@Suite struct PaddedRowTests {
    @Test(arguments: [1, 2, 3, 4])
    func matchesTheDefinition(stride: Int) {
        var generator = SeededGenerator(seed: UInt64(stride))
        for width in [1, 7, 15, 16, 31, 32, 33, 63, 64, 65, 100, 224, 227] {
            let source = (0..<width).map { _ in Float.random(in: -1...1, using: &generator) }
            for offset in [-5, -3, -1, 0, 1, 2, 3, 17] {
                for count in [1, 5, 16, 17, 40, (width + 7) / stride, width / stride + 3] where count > 0 {
                    let sentinel: Float = 99
                    var target = [Float](repeating: sentinel, count: count + 1)
                    source.withUnsafeBufferPointer { s in
                        target.withUnsafeMutableBufferPointer { t in
                            copyPaddedRow(s.baseAddress!, width: width, stride: stride, offset: offset,
                                          into: t.baseAddress!, count: count)
                        }
                    }
                    let expected = (0..<count).map { t -> Float in
                        let i = t * stride + offset
                        return (0..<width).contains(i) ? source[i] : 0
                    }
                    #expect(Array(target[0..<count]) == expected, "width \(width) offset \(offset) count \(count)")
                    #expect(target[count] == sentinel, "wrote past count: width \(width) offset \(offset)")
                }
            }
        }
    }
}

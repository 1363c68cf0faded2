import ConvLab
import Testing

/// The register-level primitives every channel-blocked plan rests on (16×16 transposes, even/odd lane shuffles, lane
/// sums), against scalar definitions: they were rewritten for speed, and a wrong lane would corrupt every plan that
/// transposes (Winograd blocking, depthwise bands, pointwise outputs) in ways only some shapes reveal.
@Suite struct VectorPrimitivesTests {
    @Test func transposeMatchesTheScalarDefinitionWithStrides() {
        for (sourceStride, targetStride) in [(16, 16), (19, 33), (64, 784)] {
            let source = (0..<(16 * sourceStride)).map { Float($0) * 0.5 - 7 }
            var target = [Float](repeating: .nan, count: 16 * targetStride)
            source.withUnsafeBufferPointer { s in
                target.withUnsafeMutableBufferPointer { t in
                    Transpose16.transpose(s.baseAddress!, stride: sourceStride, into: t.baseAddress!, stride: targetStride)
                }
            }
            for r in 0..<16 {
                for c in 0..<16 { #expect(target[c * targetStride + r] == source[r * sourceStride + c], "\(r),\(c)") }
            }
            // Nothing beyond the 16 columns of each target row is written.
            if targetStride > 16 { #expect(target[16].isNaN && target[15 * targetStride + 16].isNaN) }
        }
    }

    @Test func evenAndOddLanesInterleaveTwoVectors() {
        let a = SIMD16<Float>((0..<16).map { Float($0) }), b = SIMD16<Float>((16..<32).map { Float($0) })
        let (even, odd) = (evenLanes(a, b), oddLanes(a, b))
        for i in 0..<16 {
            #expect(even[i] == Float(2 * i))
            #expect(odd[i] == Float(2 * i + 1))
        }
    }

    @Test func horizontalSumIsTheLaneSum() {
        var generator = SeededGenerator(seed: 5)
        for _ in 0..<20 {
            let v = SIMD16<Float>((0..<16).map { _ in Float.random(in: -1...1, using: &generator) })
            let exact = (0..<16).reduce(0.0) { $0 + Double(v[$1]) }
            #expect(abs(Double(horizontalSum(v)) - exact) <= 16 * 0x1p-24 * (0..<16).reduce(0.0) { $0 + Double(abs(v[$1])) })
        }
        #expect(horizontalSum(SIMD16<Float>(repeating: 1)) == 16)
    }
}

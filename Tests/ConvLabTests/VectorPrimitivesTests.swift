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

    /// NCHW planes ↔ [position][16 lanes] for whole and partial blocks of channels and positions (the tile path),
    /// from an offset, into rows wider than 16: every valid element lands where the definition says, padding lanes
    /// are zero, and nothing outside the destination's valid part is written.
    @Test func channelBlockingRoundTripsPartialBlocks() {
        for (channels, first, count, positionStride) in [(16, 0, 48, 16), (16, 5, 37, 40), (4, 3, 29, 16),
                                                          (11, 0, 7, 64), (1, 2, 16, 16), (16, 1, 1, 32)] {
            let planeStride = first + count + 3
            let planes = (0..<(16 * planeStride)).map { Float($0) * 0.25 - 9 }
            var blocked = [Float](repeating: .nan, count: count * positionStride)
            planes.withUnsafeBufferPointer { p in
                blocked.withUnsafeMutableBufferPointer { b in
                    ChannelBlocking.toBlocked(p.baseAddress!, planeStride: planeStride, from: first, count: count,
                                              channels: channels, into: b.baseAddress!, positionStride: positionStride)
                }
            }
            for q in 0..<count {
                for lane in 0..<16 {
                    let expected = lane < channels ? planes[lane * planeStride + first + q] : 0
                    #expect(blocked[q * positionStride + lane] == expected, "\(channels) \(count): \(q),\(lane)")
                }
                for lane in 16..<positionStride { #expect(blocked[q * positionStride + lane].isNaN) }
            }
            guard positionStride == 16 else { continue }
            var back = [Float](repeating: .nan, count: 16 * planeStride)
            blocked.withUnsafeBufferPointer { b in
                back.withUnsafeMutableBufferPointer { p in
                    ChannelBlocking.fromBlocked(b.baseAddress!, count: count, channels: channels,
                                                into: p.baseAddress! + first, planeStride: planeStride)
                }
            }
            for lane in 0..<16 {
                for i in 0..<planeStride {
                    let inside = lane < channels && i >= first && i < first + count
                    if inside { #expect(back[lane * planeStride + i] == planes[lane * planeStride + i]) }
                    else { #expect(back[lane * planeStride + i].isNaN, "\(channels) \(count): wrote \(lane),\(i)") }
                }
            }
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

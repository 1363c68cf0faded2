/// The output indices o for which the input index o·stride + offset lies inside [0, inputSize):
/// the part of a row (or column) where a kernel tap reads real input rather than zero padding.
/// Shared by the lowering stages so that padding is handled by ranges, not by a branch per element.
@inlinable
package func validOutputRange(outputSize: Int, stride: Int, offset: Int, inputSize: Int) -> Range<Int> {
    // o·stride + offset ≥ 0  ⇔  o ≥ ceil(−offset / stride)
    let lower = offset >= 0 ? 0 : (-offset + stride - 1) / stride
    // o·stride + offset ≤ inputSize − 1  ⇔  o ≤ floor((inputSize − 1 − offset) / stride)
    let last = inputSize - 1 - offset
    let upper = last < 0 ? 0 : last / stride + 1
    let start = min(lower, outputSize)
    return start..<max(start, min(upper, outputSize))
}

/// One row of a zero-padded, optionally subsampled copy: target[t] = source[t·stride + offset] for t < count where
/// that index lies in [0, width), and 0 elsewhere; a nil `source` (a row in the padding) gives zeros. The one
/// implementation of "copy a row with its padding" behind the direct backend's packed planes, im2col's lowered rows
/// and the FFT's tiles. (The depthwise plans' band buffers keep their padding columns zero across bands and copy
/// only row interiors, inline: `copyFloats` in Direct/.)
@inlinable
package func copyPaddedRow(_ source: UnsafePointer<Float>?, width: Int, stride: Int = 1, offset: Int,
                           into target: UnsafeMutablePointer<Float>, count: Int) {
    guard let source else {
        target.update(repeating: 0, count: count)
        return
    }
    let valid = validOutputRange(outputSize: count, stride: stride, offset: offset, inputSize: width)
    target.update(repeating: 0, count: valid.lowerBound)
    if stride == 1 {
        (target + valid.lowerBound).update(from: source + valid.lowerBound + offset, count: valid.count)
    } else {
        // Strides 2 and 4 (stems, downsampling layers) take 16 outputs per step from 32 or 64 loaded floats through
        // even-half shuffles while the loads stay inside the row; the scalar loop cost more than the convolution's
        // own arithmetic on 3-channel stems (the padded copy of MobileNetV2's 224² stem was 42% of its time).
        var t = valid.lowerBound
        if stride == 2 {
            while t + 16 <= valid.upperBound && 2 * t + offset + 32 <= width {
                let p = source + 2 * t + offset
                storeVector(evenLanes(loadVector(p), loadVector(p + 16)), target + t)
                t += 16
            }
        } else if stride == 4 {
            while t + 16 <= valid.upperBound && 4 * t + offset + 64 <= width {
                let p = source + 4 * t + offset
                let low = evenLanes(loadVector(p), loadVector(p + 16))
                let high = evenLanes(loadVector(p + 32), loadVector(p + 48))
                storeVector(evenLanes(low, high), target + t)
                t += 16
            }
        }
        while t < valid.upperBound {
            target[t] = source[t * stride + offset]
            t += 1
        }
    }
    (target + valid.upperBound).update(repeating: 0, count: count - valid.upperBound)
}

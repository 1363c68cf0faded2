import ConvLabCore

// Copies and clears of short rows (tens to hundreds of floats) inside the depthwise plans' band buffers, inline:
// at these lengths libc's memmove/memset calls cost more than the data they move. And the vector sum that adds the
// slices of a split reduction.

/// A short copy without a libc call: whole vectors, then the last vector overlapping (or scalars below 16).
@inline(__always)
func copyFloats(_ source: UnsafePointer<Float>, to target: UnsafeMutablePointer<Float>, count: Int) {
    guard count >= 16 else {
        for i in 0..<count { target[i] = source[i] }
        return
    }
    var i = 0
    while i + 16 <= count {
        storeVector(loadVector(source + i), target + i)
        i += 16
    }
    if i < count { storeVector(loadVector(source + count - 16), target + count - 16) }
}

/// target[i] += source[i] for a `count` that is a multiple of 16, whole vectors: the slices' partial sums added into
/// slice 0's (Winograd's and the channel-vector weight gradients, the 1×1 plan's channel slices).
@inline(__always)
func addFloats(_ source: UnsafePointer<Float>, into target: UnsafeMutablePointer<Float>, count: Int) {
    var i = 0
    while i < count {
        storeVector(loadVector(target + i) + loadVector(source + i), target + i)
        i += 16
    }
}

@inline(__always)
func zeroFloats(_ target: UnsafeMutablePointer<Float>, count: Int) {
    var i = 0
    while i + 16 <= count {
        storeVector(SIMD16<Float>(), target + i)
        i += 16
    }
    while i < count {
        target[i] = 0
        i += 1
    }
}

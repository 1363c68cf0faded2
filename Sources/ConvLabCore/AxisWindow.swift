/// The output indices o for which the input index o·stride + offset lies inside [0, inputSize):
/// the part of a row (or column) where a kernel tap reads real input rather than zero padding.
/// Shared by the lowering stages so that padding is handled by ranges, not by a branch per element.
package func validOutputRange(outputSize: Int, stride: Int, offset: Int, inputSize: Int) -> Range<Int> {
    // o·stride + offset ≥ 0  ⇔  o ≥ ceil(−offset / stride)
    let lower = offset >= 0 ? 0 : (-offset + stride - 1) / stride
    // o·stride + offset ≤ inputSize − 1  ⇔  o ≤ floor((inputSize − 1 − offset) / stride)
    let last = inputSize - 1 - offset
    let upper = last < 0 ? 0 : last / stride + 1
    let start = min(lower, outputSize)
    return start..<max(start, min(upper, outputSize))
}

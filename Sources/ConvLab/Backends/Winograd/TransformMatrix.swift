/// A small transform matrix (Aᵀ or Bᵀ, rows × columns ≤ 16×16) applied to columns of 16-float vectors (16 channels at
/// once). Entries are float32, rounded once from the exact rationals, and kept as broadcast vectors.
///
/// Dense on purpose: the contraction length is a compile-time parameter (`applyFixed<let C: Int>`), so the inner loop
/// unrolls into straight-line FMAs. A sparse version that skipped zeros (F(4,3)'s Bᵀ has 20 nonzeros of 36) spent
/// about six instructions of index bookkeeping per FMA and ran 3× slower. Multiplying by a zero coefficient means an
/// Inf or NaN in a tile reaches every output of that tile, like any Winograd transform.
struct TransformMatrix: Sendable {
    typealias Vector = SIMD16<Float>

    let rows: Int
    let columns: Int
    private let coefficients: AlignedStorage<Vector>

    init(rows: Int, columns: Int, entries: [Float]) {
        self.rows = rows
        self.columns = columns
        coefficients = AlignedStorage(count: rows * columns)
        for (index, value) in entries.enumerated() { coefficients.pointer[index] = Vector(repeating: value) }
    }

    private struct Length<let N: Int> {}

    /// output[r · outputStride] = Σ_c M[r][c] · input[c · inputStride] for every row r (strides in floats).
    @inline(__always)
    func apply(input: UnsafePointer<Float>, inputStride: Int, output: UnsafeMutablePointer<Float>, outputStride: Int) {
        let m = UnsafePointer(coefficients.pointer)
        switch columns {
        case 1: applyFixed(Length<1>(), m, input, inputStride, output, outputStride)
        case 2: applyFixed(Length<2>(), m, input, inputStride, output, outputStride)
        case 3: applyFixed(Length<3>(), m, input, inputStride, output, outputStride)
        case 4: applyFixed(Length<4>(), m, input, inputStride, output, outputStride)
        case 5: applyFixed(Length<5>(), m, input, inputStride, output, outputStride)
        case 6: applyFixed(Length<6>(), m, input, inputStride, output, outputStride)
        case 7: applyFixed(Length<7>(), m, input, inputStride, output, outputStride)
        case 8: applyFixed(Length<8>(), m, input, inputStride, output, outputStride)
        case 9: applyFixed(Length<9>(), m, input, inputStride, output, outputStride)
        case 10: applyFixed(Length<10>(), m, input, inputStride, output, outputStride)
        case 11: applyFixed(Length<11>(), m, input, inputStride, output, outputStride)
        case 12: applyFixed(Length<12>(), m, input, inputStride, output, outputStride)
        case 13: applyFixed(Length<13>(), m, input, inputStride, output, outputStride)
        case 14: applyFixed(Length<14>(), m, input, inputStride, output, outputStride)
        case 15: applyFixed(Length<15>(), m, input, inputStride, output, outputStride)
        default: applyFixed(Length<16>(), m, input, inputStride, output, outputStride)
        }
    }

    @inline(__always)
    private func applyFixed<let C: Int>(_: Length<C>, _ m: UnsafePointer<Vector>, _ input: UnsafePointer<Float>,
                                        _ inputStride: Int, _ output: UnsafeMutablePointer<Float>, _ outputStride: Int) {
        for r in 0..<rows {
            var sum = Vector()
            for c in 0..<C {
                sum.addProduct(m[r * C + c], UnsafeRawPointer(input + c * inputStride).loadUnaligned(as: Vector.self))
            }
            UnsafeMutableRawPointer(output + r * outputStride).storeBytes(of: sum, as: Vector.self)
        }
    }
}

import ConvLabCore

/// A small transform matrix (Aᵀ or Bᵀ, rows × columns ≤ 16×16) applied to many independent blocks of 16-float vectors
/// (16 channels at once). Entries are float32, rounded once from the exact rationals, kept as broadcast vectors.
///
/// `apply` computes out[r][b] = Σ_c M[r][c]·in[c][b] for every row r and block b: three rows' coefficients are loaded
/// once into registers and swept over all blocks (a whole tile row's columns, or all tiles of a row), each input
/// vector feeding three FMAs, and the contraction length is a compile-time parameter (`applyBlocks<let C: Int>`) so
/// the sums unroll into straight-line FMAs. Measured here: one row a sweep ran ~1 vector FMA per cycle (a load per
/// FMA), 2.5× a per-column version that reloaded coefficients for every FMA and 3× a sparse version whose index
/// bookkeeping cost more than the zeros it skipped; three rows a sweep made F(6,3)'s output transform 1.2× faster
/// again. Dense means an Inf or NaN in a tile reaches every output of that tile, like any Winograd transform.
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

    /// out[r·outputRowStride + b·outputBlockStride] = Σ_c M[r][c] · in[c·contractionStride + b·blockStride]
    /// for r < rows, b < blocks (strides in floats; every element a 16-float vector).
    func apply(input: UnsafePointer<Float>, contractionStride: Int, blockStride: Int, blocks: Int,
               output: UnsafeMutablePointer<Float>, outputRowStride: Int, outputBlockStride: Int) {
        let m = UnsafePointer(coefficients.pointer)
        let strides = Strides(contraction: contractionStride, block: blockStride, blocks: blocks,
                              outputRow: outputRowStride, outputBlock: outputBlockStride)
        switch columns {
        case 1: applyBlocks(Length<1>(), m, input, output, strides)
        case 2: applyBlocks(Length<2>(), m, input, output, strides)
        case 3: applyBlocks(Length<3>(), m, input, output, strides)
        case 4: applyBlocks(Length<4>(), m, input, output, strides)
        case 5: applyBlocks(Length<5>(), m, input, output, strides)
        case 6: applyBlocks(Length<6>(), m, input, output, strides)
        case 7: applyBlocks(Length<7>(), m, input, output, strides)
        case 8: applyBlocks(Length<8>(), m, input, output, strides)
        case 9: applyBlocks(Length<9>(), m, input, output, strides)
        case 10: applyBlocks(Length<10>(), m, input, output, strides)
        case 11: applyBlocks(Length<11>(), m, input, output, strides)
        case 12: applyBlocks(Length<12>(), m, input, output, strides)
        case 13: applyBlocks(Length<13>(), m, input, output, strides)
        case 14: applyBlocks(Length<14>(), m, input, output, strides)
        case 15: applyBlocks(Length<15>(), m, input, output, strides)
        default: applyBlocks(Length<16>(), m, input, output, strides)
        }
    }

    private struct Strides {
        let contraction: Int
        let block: Int
        let blocks: Int
        let outputRow: Int
        let outputBlock: Int
    }

    private func applyBlocks<let C: Int>(_: Length<C>, _ m: UnsafePointer<Vector>, _ input: UnsafePointer<Float>,
                                         _ output: UnsafeMutablePointer<Float>, _ s: Strides) {
        var r = 0
        // Three rows per sweep: each input vector loaded once feeds three FMAs, so the sweep is bound by the FMAs
        // rather than by one load per FMA (24 coefficient registers for an 8-point tile).
        while r + 3 <= rows {
            var first = InlineArray<C, Vector>(repeating: Vector())
            var second = InlineArray<C, Vector>(repeating: Vector())
            var third = InlineArray<C, Vector>(repeating: Vector())
            for c in 0..<C {
                first[c] = m[r * C + c]
                second[c] = m[(r + 1) * C + c]
                third[c] = m[(r + 2) * C + c]
            }
            let row = output + r * s.outputRow
            for b in 0..<s.blocks {
                let source = input + b * s.block
                var (sum0, sum1, sum2) = (Vector(), Vector(), Vector())
                for c in 0..<C {
                    let x = UnsafeRawPointer(source + c * s.contraction).loadUnaligned(as: Vector.self)
                    sum0.addProduct(first[c], x)
                    sum1.addProduct(second[c], x)
                    sum2.addProduct(third[c], x)
                }
                let target = row + b * s.outputBlock
                UnsafeMutableRawPointer(target).storeBytes(of: sum0, as: Vector.self)
                UnsafeMutableRawPointer(target + s.outputRow).storeBytes(of: sum1, as: Vector.self)
                UnsafeMutableRawPointer(target + 2 * s.outputRow).storeBytes(of: sum2, as: Vector.self)
            }
            r += 3
        }
        while r < rows {
            var coefficient = InlineArray<C, Vector>(repeating: Vector())
            for c in 0..<C { coefficient[c] = m[r * C + c] }
            let row = output + r * s.outputRow
            for b in 0..<s.blocks {
                let source = input + b * s.block
                var sum = Vector()
                for c in 0..<C {
                    sum.addProduct(coefficient[c],
                                   UnsafeRawPointer(source + c * s.contraction).loadUnaligned(as: Vector.self))
                }
                UnsafeMutableRawPointer(row + b * s.outputBlock).storeBytes(of: sum, as: Vector.self)
            }
            r += 1
        }
    }
}

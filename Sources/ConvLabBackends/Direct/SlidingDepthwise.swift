import ConvLabCore

/// Depthwise 3×3, 5×5 and 7×7 at stride 1 padded to keep the size ((S − 1)/2 rows and columns on every side) —
/// MobileNet's, EfficientNet's, ShuffleNet's and ConvNeXt's depthwise layers, and their backward-data, which is the
/// same layer on the rotated kernel — on unpadded channel-blocked rows ([row][column][16 channels]), for the
/// channel-blocked depthwise plan.
///
/// The padded band it replaces copied every input row into a zero-bordered buffer and then loaded each input vector
/// once per tap (9 loads per 8 FMAs); on 7×7 and 14×14 maps the copy cost as much as the sums. Here a block of up to 8
/// outputs of a row keeps its accumulators and one kernel row's S weight vectors in registers (3×3: all nine, for the
/// whole band) and slides along the input columns: each input vector is loaded once per kernel row and feeds every
/// output of the block that reads it, with the weight of its tap. Padding is implied: kernel rows above or below the
/// image and columns left and right of it are skipped, not multiplied by zero. Each output still sums its taps in
/// (r, s) order, the padded band's order without its zero products.
enum SlidingDepthwise {
    typealias Vector = SIMD16<Float>

    /// Square 3×3, 5×5 or 7×7 kernels, stride 1, no dilation, (S − 1)/2 padding on every side.
    static func applies(to d: ConvolutionDescriptor) -> Bool {
        let p = (d.kernelWidth - 1) / 2
        return [3, 5, 7].contains(d.kernelWidth) && d.kernelHeight == d.kernelWidth && d.isStrideOne && d.isUndilated
            && d.padding == Padding(top: p, bottom: p, left: p, right: p)
    }

    /// Output rows `band` of one channel block. `rows`: input rows from `firstRow` on, [row][column][16], `width`
    /// columns (= output columns); `height`: the image's rows; `weights`: [r][s][16] of a `kernel` × `kernel` kernel;
    /// `target`: the band's first output row, rows `width` positions apart. A row is cut into blocks of at most 8
    /// columns, as even as the width allows (7 + 7 on 14 columns, 8 × 7 on 56), the remainder in a last, narrower block.
    static func run(kernel: Int, band: Range<Int>, rows: UnsafePointer<Float>, firstRow: Int, height: Int, width: Int,
                    weights: UnsafePointer<Float>, target: UnsafeMutablePointer<Float>) {
        let blocks = (width + 7) / 8
        let columns = (width + blocks - 1) / blocks
        let whole = width / columns * columns
        let rows = Rows(first: rows, firstRow: firstRow, height: height, width: width)
        slide(kernel, columns, band: band, columns: 0..<whole, rows, weights, target)
        if whole < width { slide(kernel, width - whole, band: band, columns: whole..<width, rows, weights, target) }
    }

    /// The input rows a band reads, and the image's size.
    struct Rows {
        let first: UnsafePointer<Float>
        let firstRow: Int
        let height: Int
        let width: Int
    }

    private static func slide(_ kernel: Int, _ count: Int, band: Range<Int>, columns: Range<Int>, _ rows: Rows,
                              _ weights: UnsafePointer<Float>, _ target: UnsafeMutablePointer<Float>) {
        switch kernel {
        case 3: slide(Compiled<3>(), count, band: band, columns: columns, rows, weights, target)
        case 5: slide(Compiled<5>(), count, band: band, columns: columns, rows, weights, target)
        default: slide(Compiled<7>(), count, band: band, columns: columns, rows, weights, target)
        }
    }

    private static func slide<let K: Int>(_ kernel: Compiled<K>, _ count: Int, band: Range<Int>, columns: Range<Int>,
                                          _ rows: Rows, _ weights: UnsafePointer<Float>,
                                          _ target: UnsafeMutablePointer<Float>) {
        switch count {
        case 1: slide(kernel, Compiled<1>(), band: band, columns: columns, rows, weights, target)
        case 2: slide(kernel, Compiled<2>(), band: band, columns: columns, rows, weights, target)
        case 3: slide(kernel, Compiled<3>(), band: band, columns: columns, rows, weights, target)
        case 4: slide(kernel, Compiled<4>(), band: band, columns: columns, rows, weights, target)
        case 5: slide(kernel, Compiled<5>(), band: band, columns: columns, rows, weights, target)
        case 6: slide(kernel, Compiled<6>(), band: band, columns: columns, rows, weights, target)
        case 7: slide(kernel, Compiled<7>(), band: band, columns: columns, rows, weights, target)
        default: slide(kernel, Compiled<8>(), band: band, columns: columns, rows, weights, target)
        }
    }

    /// Blocks of N output columns over `columns` (a multiple of N) of every row of the band, kernel K × K.
    @inline(never)
    private static func slide<let K: Int, let N: Int>(_: Compiled<K>, _: Compiled<N>, band: Range<Int>,
                                                      columns: Range<Int>, _ rows: Rows,
                                                      _ weights: UnsafePointer<Float>,
                                                      _ target: UnsafeMutablePointer<Float>) {
        let (taps, count, pad) = (K, N, (K - 1) / 2)
        let rowFloats = rows.width &* 16
        // 3×3 keeps all nine weights in registers for the whole band (9 + 8 accumulators); larger kernels load a
        // kernel row's weights per block and row (reloading the nine cost 3×3 5–7%).
        let nine = taps == 3 ? (loadVector(weights), loadVector(weights + 16), loadVector(weights + 32),
                                loadVector(weights + 48), loadVector(weights + 64), loadVector(weights + 80),
                                loadVector(weights + 96), loadVector(weights + 112), loadVector(weights + 128))
            : (Vector(), Vector(), Vector(), Vector(), Vector(), Vector(), Vector(), Vector(), Vector())
        @inline(__always) func kernelRowWeights(_ r: Int) -> (Vector, Vector, Vector, Vector, Vector, Vector, Vector) {
            if taps == 3 {
                let zero = Vector()
                switch r {
                case 0: return (nine.0, nine.1, nine.2, zero, zero, zero, zero)
                case 1: return (nine.3, nine.4, nine.5, zero, zero, zero, zero)
                default: return (nine.6, nine.7, nine.8, zero, zero, zero, zero)
                }
            }
            let wr = weights + r &* taps &* 16
            return (loadVector(wr), loadVector(wr + 16), loadVector(wr + 32),
                    taps > 3 ? loadVector(wr + 48) : Vector(), taps > 3 ? loadVector(wr + 64) : Vector(),
                    taps > 5 ? loadVector(wr + 80) : Vector(), taps > 5 ? loadVector(wr + 96) : Vector())
        }
        for oy in band {
            let output = target + (oy &- band.lowerBound) &* rowFloats
            var c0 = columns.lowerBound
            while c0 < columns.upperBound {
                var a0 = Vector(), a1 = Vector(), a2 = Vector(), a3 = Vector()
                var a4 = Vector(), a5 = Vector(), a6 = Vector(), a7 = Vector()
                @inline(__always) func add(_ i: Int, _ v: Vector, _ weight: Vector) {
                    guard i >= 0 && i < count else { return }
                    switch i {
                    case 0: a0.addProduct(v, weight)
                    case 1: a1.addProduct(v, weight)
                    case 2: a2.addProduct(v, weight)
                    case 3: a3.addProduct(v, weight)
                    case 4: a4.addProduct(v, weight)
                    case 5: a5.addProduct(v, weight)
                    case 6: a6.addProduct(v, weight)
                    default: a7.addProduct(v, weight)
                    }
                }
                // Kernel row r reads input row oy − pad + r; rows outside the image are padding.
                for r in 0..<taps {
                    let ih = oy &- pad &+ r
                    guard ih >= 0 && ih < rows.height else { continue }
                    let x = rows.first + (ih &- rows.firstRow) &* rowFloats + c0 &* 16
                    let w = kernelRowWeights(r)
                    // Input column c0 + j feeds output j + pad − s with tap s (the outputs of this block only).
                    @inline(__always) func column(_ j: Int) {
                        guard j >= -pad && j < count + pad else { return }
                        if j < 0 && c0 &+ j < 0 { return }
                        if j >= count && c0 &+ j >= rows.width { return }
                        let v = loadVector(x + j &* 16)
                        add(j + pad, v, w.0); add(j + pad - 1, v, w.1); add(j + pad - 2, v, w.2)
                        if taps > 3 { add(j + pad - 3, v, w.3); add(j + pad - 4, v, w.4) }
                        if taps > 5 { add(j + pad - 5, v, w.5); add(j + pad - 6, v, w.6) }
                    }
                    column(-3); column(-2); column(-1); column(0); column(1); column(2); column(3); column(4)
                    column(5); column(6); column(7); column(8); column(9); column(10)
                }
                storeAccumulators(count, (a0, a1, a2, a3, a4, a5, a6, a7), to: output + c0 &* 16)
                c0 &+= count
            }
        }
    }
}

import ConvLabCore

/// Depthwise 3×3 at stride 1 with one row and column of padding on every side — MobileNet's, EfficientNet's and
/// ShuffleNet's depthwise layers, and their backward-data, which is the same layer on the rotated kernel — on
/// unpadded channel-blocked rows ([row][column][16 channels]), for the channel-blocked depthwise plan.
///
/// The padded band it replaces copied every input row into a zero-bordered buffer and then loaded each input vector
/// once per tap (9 loads and a weight load per 8 FMAs); on 7×7 and 14×14 maps the copy cost as much as the sums.
/// Here a block of up to 8 outputs of a row keeps the 9 weight vectors and its 8 accumulators in registers and slides
/// along the input columns: each input vector is loaded once per kernel row and feeds the (up to) three outputs that
/// read it, with the weights of taps s = 0, 1, 2. Padding is implied: kernel rows above or below the image and the
/// columns left and right of it are skipped, not multiplied by zero. Each output still sums its taps in (r, s) order,
/// the padded band's order without its zero products.
enum Sliding3x3Depthwise {
    typealias Vector = SIMD16<Float>

    /// 3×3, stride 1, no dilation, padding 1 on every side (so the output is the input's size).
    static func applies(to d: ConvolutionDescriptor) -> Bool {
        d.kernelHeight == 3 && d.kernelWidth == 3 && d.isStrideOne && d.isUndilated
            && d.padding == Padding(top: 1, bottom: 1, left: 1, right: 1)
    }

    /// Output rows `band` of one channel block. `rows`: input rows from `firstRow` on, [row][column][16], `width`
    /// columns (= output columns); `height`: the image's rows; `weights`: [r][s][16]; `target`: the band's first
    /// output row, rows `width` positions apart. A row is cut into blocks of at most 8 columns, as even as the width
    /// allows (7 + 7 on 14 columns, 8 × 7 on 56), the remainder in a last, narrower block.
    static func run(band: Range<Int>, rows: UnsafePointer<Float>, firstRow: Int, height: Int, width: Int,
                    weights: UnsafePointer<Float>, target: UnsafeMutablePointer<Float>) {
        let blocks = (width + 7) / 8
        let columns = (width + blocks - 1) / blocks
        let whole = width / columns * columns
        let rows = Rows(first: rows, firstRow: firstRow, height: height, width: width)
        slide(columns, band: band, columns: 0..<whole, rows, weights, target)
        if whole < width { slide(width - whole, band: band, columns: whole..<width, rows, weights, target) }
    }

    /// The input rows a band reads, and the image's size.
    struct Rows {
        let first: UnsafePointer<Float>
        let firstRow: Int
        let height: Int
        let width: Int
    }

    /// A block width known at compile time: `slide(Compiled<N>(), …)` is its own copy, N accumulators.
    struct Compiled<let N: Int> {}

    private static func slide(_ count: Int, band: Range<Int>, columns: Range<Int>, _ rows: Rows,
                              _ weights: UnsafePointer<Float>, _ target: UnsafeMutablePointer<Float>) {
        switch count {
        case 1: slide(Compiled<1>(), band: band, columns: columns, rows, weights, target)
        case 2: slide(Compiled<2>(), band: band, columns: columns, rows, weights, target)
        case 3: slide(Compiled<3>(), band: band, columns: columns, rows, weights, target)
        case 4: slide(Compiled<4>(), band: band, columns: columns, rows, weights, target)
        case 5: slide(Compiled<5>(), band: band, columns: columns, rows, weights, target)
        case 6: slide(Compiled<6>(), band: band, columns: columns, rows, weights, target)
        case 7: slide(Compiled<7>(), band: band, columns: columns, rows, weights, target)
        default: slide(Compiled<8>(), band: band, columns: columns, rows, weights, target)
        }
    }

    /// Blocks of N output columns over `columns` (a multiple of N) of every row of the band.
    @inline(never)
    private static func slide<let N: Int>(_: Compiled<N>, band: Range<Int>, columns: Range<Int>, _ rows: Rows,
                                          _ weights: UnsafePointer<Float>, _ target: UnsafeMutablePointer<Float>) {
        let count = N
        let rowFloats = rows.width &* 16
        let w = (loadVector(weights), loadVector(weights + 16), loadVector(weights + 32),
                 loadVector(weights + 48), loadVector(weights + 64), loadVector(weights + 80),
                 loadVector(weights + 96), loadVector(weights + 112), loadVector(weights + 128))
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
                let (hasLeft, hasRight) = (c0 > 0, c0 &+ count < rows.width)
                // Kernel row r reads input row oy − 1 + r; rows outside the image are padding.
                @inline(__always) func kernelRow(_ ih: Int, _ left: Vector, _ middle: Vector, _ right: Vector) {
                    guard ih >= 0 && ih < rows.height else { return }
                    let x = rows.first + (ih &- rows.firstRow) &* rowFloats + c0 &* 16
                    // Input column c0 + j feeds output j + 1 with tap 0, output j with tap 1, output j − 1 with tap 2.
                    @inline(__always) func column(_ j: Int) {
                        let v = loadVector(x + j &* 16)
                        add(j + 1, v, left); add(j, v, middle); add(j - 1, v, right)
                    }
                    if hasLeft { column(-1) }
                    column(0)
                    if count > 1 { column(1) }
                    if count > 2 { column(2) }
                    if count > 3 { column(3) }
                    if count > 4 { column(4) }
                    if count > 5 { column(5) }
                    if count > 6 { column(6) }
                    if count > 7 { column(7) }
                    if hasRight { column(count) }
                }
                kernelRow(oy &- 1, w.0, w.1, w.2)
                kernelRow(oy, w.3, w.4, w.5)
                kernelRow(oy &+ 1, w.6, w.7, w.8)
                let t = output + c0 &* 16
                storeVector(a0, t)
                if count > 1 { storeVector(a1, t + 16) }
                if count > 2 { storeVector(a2, t + 32) }
                if count > 3 { storeVector(a3, t + 48) }
                if count > 4 { storeVector(a4, t + 64) }
                if count > 5 { storeVector(a5, t + 80) }
                if count > 6 { storeVector(a6, t + 96) }
                if count > 7 { storeVector(a7, t + 112) }
                c0 &+= count
            }
        }
    }
}

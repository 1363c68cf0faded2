import ConvLabCore

/// Depthwise layers whose kernel spans the image's width — RepLKNet's 13×13 on 7×7 maps, padded by 6 — on unpadded
/// channel-blocked rows ([row][column][16 channels]), for the channel-blocked depthwise plan.
///
/// There every input column reaches every output column, so a row of outputs is summed input position by input
/// position: one load of x, then one FMA per output column with the weight of tap s = ix + pl − ox. Only products with
/// real input are computed: 49 of the 169 taps per output on RepLKNet's layer, where the padded band computed all 169
/// (8 positions × 13 taps per kernel row, most of them on padding). Kernel rows that read padding rows are skipped too.
/// Each output still sums its taps in (r, s) order.
enum SpanningDepthwise {
    typealias Vector = SIMD16<Float>

    /// Stride and dilation 1, at most 8 output columns, pl ≥ Wo − 1 and W + pl ≤ S: for every input column ix and output
    /// column ox, s = ix + pl − ox is a tap of the kernel.
    static func applies(to d: ConvolutionDescriptor) -> Bool {
        d.isStrideOne && d.isUndilated && d.outputWidth <= 8 && d.padding.left >= d.outputWidth - 1
            && d.inputWidth + d.padding.left <= d.kernelWidth
    }

    /// Output rows `band` of one channel block of `d`. `rows`: input rows from `firstRow` on, [row][column][16];
    /// `weights`: [r][s][16]; `target`: the band's first output row.
    static func run(_ d: ConvolutionDescriptor, band: Range<Int>, rows source: UnsafePointer<Float>, firstRow lo: Int,
                    weights: UnsafePointer<Float>, target: UnsafeMutablePointer<Float>) {
        let (W, Wo, S) = (d.inputWidth, d.outputWidth, d.kernelWidth)
        let (top, left) = (d.padding.top, d.padding.left)
        for oy in band {
            let row = target + (oy - band.lowerBound) * Wo * 16
            let taps = d.kernelRowsInside(outputRow: oy)
            guard !taps.isEmpty && W > 0 else {
                zeroFloats(row, count: Wo * 16)
                continue
            }
            let rows = source + (oy - top + taps.lowerBound - lo) * W * 16
            // Weight (r, s) for input column ix and output ox: s = ix + pl − ox, so row r's weights from pl on.
            let w = weights + (taps.lowerBound * S + left) * 16
            switch Wo {
            case 1: spanRow(Compiled<1>(), rows, w, row, inputRows: taps.count, width: W, kernelWidth: S)
            case 2: spanRow(Compiled<2>(), rows, w, row, inputRows: taps.count, width: W, kernelWidth: S)
            case 3: spanRow(Compiled<3>(), rows, w, row, inputRows: taps.count, width: W, kernelWidth: S)
            case 4: spanRow(Compiled<4>(), rows, w, row, inputRows: taps.count, width: W, kernelWidth: S)
            case 5: spanRow(Compiled<5>(), rows, w, row, inputRows: taps.count, width: W, kernelWidth: S)
            case 6: spanRow(Compiled<6>(), rows, w, row, inputRows: taps.count, width: W, kernelWidth: S)
            case 7: spanRow(Compiled<7>(), rows, w, row, inputRows: taps.count, width: W, kernelWidth: S)
            default: spanRow(Compiled<8>(), rows, w, row, inputRows: taps.count, width: W, kernelWidth: S)
            }
        }
    }

    /// One output row of N ≤ 8 columns: for each input row and column, one x load and N FMAs, output ox with the
    /// weight at `weights + ix·16 − ox·16` (`weights` starts at s = pl of the first kernel row read, rows
    /// `kernelWidth` taps apart). N independent chains.
    @inline(never)
    private static func spanRow<let N: Int>(_: Compiled<N>, _ rows: UnsafePointer<Float>,
                                            _ weights: UnsafePointer<Float>, _ target: UnsafeMutablePointer<Float>,
                                            inputRows: Int, width: Int, kernelWidth: Int) {
        let count = N
        var a0 = Vector(), a1 = Vector(), a2 = Vector(), a3 = Vector()
        var a4 = Vector(), a5 = Vector(), a6 = Vector(), a7 = Vector()
        for i in 0..<inputRows {
            let (x, w) = (rows + i * width * 16, weights + i * kernelWidth * 16)
            for ix in 0..<width {
                let v = loadVector(x + ix * 16)
                let p = w + ix * 16
                a0.addProduct(v, loadVector(p))
                if count > 1 { a1.addProduct(v, loadVector(p - 16)) }
                if count > 2 { a2.addProduct(v, loadVector(p - 32)) }
                if count > 3 { a3.addProduct(v, loadVector(p - 48)) }
                if count > 4 { a4.addProduct(v, loadVector(p - 64)) }
                if count > 5 { a5.addProduct(v, loadVector(p - 80)) }
                if count > 6 { a6.addProduct(v, loadVector(p - 96)) }
                if count > 7 { a7.addProduct(v, loadVector(p - 112)) }
            }
        }
        storeAccumulators(count, (a0, a1, a2, a3, a4, a5, a6, a7), to: target)
    }
}

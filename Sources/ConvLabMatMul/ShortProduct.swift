import CCacheHints
import ConvLabCore

/// C[m×n] = A[m×k]·B for products of few rows (Winograd takes it for 9–16) whose B is read from L3 once per call — a
/// Winograd point's filter transform on a small image (ResNet-50's 512-channel 7×7 layer: 16 tiles × 512 × 512 per
/// point, a 1 MiB B per 8 MFLOP). The 6×64 kernel reads such a B in three 6-row passes, the first from L3 and the
/// other two from cache, so the stream from L3 stops and starts; measured there at 86 µs per point on one Intel core
/// against 55 µs with B hot. Here every row is in one register tile (16 rows × 16 columns, one accumulator per row):
/// each B vector is loaded once and used by all rows, and B, stored as 16-column strips (k×16 floats each,
/// contiguous), arrives as one sequential stream, which the kernel prefetches into L2 well ahead (`prefetchAhead`).
///
/// Part of the native engine: the summation order is its own (`NativeMultiplier.kSum` blocks, each summed from zero
/// in k order and then added to C), so the bits match the 6×64 kernel's.
package enum ShortProduct {
    typealias Vector = SIMD16<Float>

    /// The most rows a short product takes.
    package static let maxRows = 16
    private static let kSum = NativeMultiplier.kSum

    /// Floats of `scratch` a short product of depth k needs: A packed as k×16 (row t of step p at 16·p + t).
    package static func scratchFloats(k: Int) -> Int { k * maxRows }

    /// C[m × 16·strips] = A·B, B as `strips` strips of k×16 floats (strip j holds columns 16j..<16j+16), C's rows
    /// `ldc` apart; overwrites C. Rows go through the kernel 16 at a time (Winograd passes 9–16: one pass over B).
    package static func multiply(m: Int, strips: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                                 bStrips: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>, ldc: Int,
                                 scratch: UnsafeMutablePointer<Float>) {
        var first = 0
        while first < m {
            let rows = min(maxRows, m - first)
            let target = c + first * ldc
            guard k > 0 else {
                for i in 0..<rows { (target + i * ldc).update(repeating: 0, count: strips * 16) }
                first += rows
                continue
            }
            packShortA(a + first * lda, lda: lda, rows: rows, depth: k, into: scratch)
            let packed = UnsafePointer(scratch)
            for strip in 0..<strips {
                let b = bStrips + strip * 16 * k
                var p0 = 0
                while p0 < k {
                    shortKernel(depth: min(kSum, k - p0), a: packed + p0 * maxRows, b: b + p0 * 16,
                                c: target + strip * 16, ldc: ldc, rows: rows, accumulate: p0 > 0)
                    p0 += kSum
                }
            }
            first += rows
        }
    }

    /// A[rows×depth] → depth×16, zero rows past `rows`: 16×16 register transposes when all 16 rows are there.
    static func packShortA(_ a: UnsafePointer<Float>, lda: Int, rows: Int, depth: Int,
                           into packed: UnsafeMutablePointer<Float>) {
        var p = 0
        if rows == maxRows {
            while p + 16 <= depth {
                Transpose16.transpose(a + p, stride: lda, into: packed + p * maxRows, stride: maxRows)
                p += 16
            }
        }
        for step in p..<depth {
            let target = packed + step * maxRows
            for t in 0..<rows { target[t] = a[t * lda + step] }
            for t in rows..<maxRows { target[t] = 0 }
        }
    }

    /// C[rows×16] (+)= A·B over `depth` steps: A packed (16 per step), B one strip's rows (16 per step). One
    /// accumulator per row, each an independent FMA chain; specialised for 4, 8, 12 and 16 rows, so F(4,3)'s 4-tile
    /// products on 7×7 images do not pay for 16.
    static func shortKernel(depth: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                            c: UnsafeMutablePointer<Float>, ldc: Int, rows: Int, accumulate: Bool) {
        switch rows {
        case ...4: shortKernel(Compiled<4>(), depth: depth, a: a, b: b, c: c, ldc: ldc, rows: rows, accumulate: accumulate)
        case ...8: shortKernel(Compiled<8>(), depth: depth, a: a, b: b, c: c, ldc: ldc, rows: rows, accumulate: accumulate)
        case ...12:
            shortKernel(Compiled<12>(), depth: depth, a: a, b: b, c: c, ldc: ldc, rows: rows, accumulate: accumulate)
        default:
            shortKernel(Compiled<16>(), depth: depth, a: a, b: b, c: c, ldc: ldc, rows: rows, accumulate: accumulate)
        }
    }

    /// Floats of B the kernel asks L2 for ahead of the row it loads: 128 rows (8 KiB). B is one sequential stream, yet
    /// the hardware prefetcher alone left a Winograd point's 1 MiB B arriving from memory at about 31 GB/s (Zen 5, 2
    /// threads, VGG-16's 512-channel 3×3 at 14² with its 38 MiB filter table: 1.38 ms). A prefetch 48 rows ahead
    /// took it to 0.97 ms, 128 rows to 0.82 ms, 256 rows 0.85 ms. A prefetch never faults, so the last rows' reach
    /// past B is harmless.
    static let prefetchAhead = 128 * 16

    /// The kernel for up to N rows (a multiple of 4).
    @inline(never)
    static func shortKernel<let N: Int>(_: Compiled<N>, depth: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                                        c: UnsafeMutablePointer<Float>, ldc: Int, rows: Int, accumulate: Bool) {
        let compiled = N
        var c0 = Vector(), c1 = Vector(), c2 = Vector(), c3 = Vector(), c4 = Vector(), c5 = Vector()
        var c6 = Vector(), c7 = Vector(), c8 = Vector(), c9 = Vector(), c10 = Vector(), c11 = Vector()
        var c12 = Vector(), c13 = Vector(), c14 = Vector(), c15 = Vector()
        var (ap, bp) = (a, b)
        for _ in 0..<depth {
            convlab_prefetch_to_l2(bp + prefetchAhead)
            let v = loadVector(bp)
            c0.addProduct(Vector(repeating: ap[0]), v); c1.addProduct(Vector(repeating: ap[1]), v)
            c2.addProduct(Vector(repeating: ap[2]), v); c3.addProduct(Vector(repeating: ap[3]), v)
            if compiled > 4 {
                c4.addProduct(Vector(repeating: ap[4]), v); c5.addProduct(Vector(repeating: ap[5]), v)
                c6.addProduct(Vector(repeating: ap[6]), v); c7.addProduct(Vector(repeating: ap[7]), v)
            }
            if compiled > 8 {
                c8.addProduct(Vector(repeating: ap[8]), v); c9.addProduct(Vector(repeating: ap[9]), v)
                c10.addProduct(Vector(repeating: ap[10]), v); c11.addProduct(Vector(repeating: ap[11]), v)
            }
            if compiled > 12 {
                c12.addProduct(Vector(repeating: ap[12]), v); c13.addProduct(Vector(repeating: ap[13]), v)
                c14.addProduct(Vector(repeating: ap[14]), v); c15.addProduct(Vector(repeating: ap[15]), v)
            }
            ap += maxRows
            bp += 16
        }
        @inline(__always) func put(_ row: Int, _ v: Vector) {
            guard row < rows else { return }
            let p = c + row * ldc
            storeVector(accumulate ? loadVector(p) + v : v, p)
        }
        put(0, c0); put(1, c1); put(2, c2); put(3, c3); put(4, c4); put(5, c5); put(6, c6); put(7, c7)
        put(8, c8); put(9, c9); put(10, c10); put(11, c11); put(12, c12); put(13, c13); put(14, c14); put(15, c15)
    }
}

/// Strassen–Winograd fast matrix multiplication (7 half-size products and 15 additions per level instead of 8
/// products) over any base engine, to a given recursion depth.
///
/// Per level, with A, B, C split into quadrants:
///     S1 = A21 + A22   S2 = S1 − A11   S3 = A11 − A21   S4 = A12 − S2
///     T1 = B12 − B11   T2 = B22 − T1   T3 = B22 − B12   T4' = B21 − T2   (= −T4)
///     M1 = A11·B11  M2 = A12·B21  M3 = S4·B22  M4' = A22·T4'  M5 = S1·T1  M6 = S2·T2  M7 = S3·T3
///     C11 = M1 + M2   U2 = M1 + M6   U3 = U2 + M7   C21 = U3 + M4'   C22 = U3 + M5   C12 = U2 + M5 + M3
/// Products that only add into C use the base engine's accumulate mode, so the only temporaries are S1–S4, T1–T3,
/// T4' and two half-size products. Odd dimensions are peeled: the even part recurses, the leftover row, column or
/// rank-1 slice goes to the base engine. Each level saves 1/8 of the multiplications (at most 1.14× per level) and
/// roughly doubles the rounding error: `convlab matmul --engine strassen --depth d` shows both.
struct StrassenMultiplier: MatrixMultiplier {
    let base: any MatrixMultiplier
    let depth: Int
    /// No recursion once a dimension would drop below this: small products gain nothing.
    let cutoff: Int

    var name: String { "strassen(\(depth), \(base.name))" }

    private func recurses(m: Int, n: Int, k: Int) -> Bool {
        depth > 0 && min(m, n, k) / 2 >= cutoff  // not 2·cutoff: a huge cutoff must not overflow
    }

    private var child: StrassenMultiplier { StrassenMultiplier(base: base, depth: depth - 1, cutoff: cutoff) }

    /// An accumulating call forms A·B in an m×n temporary and then needs a full non-accumulating level.
    func workspaceBytes(m: Int, n: Int, k: Int) -> Int {
        guard recurses(m: m, n: n, k: k) else { return base.workspaceBytes(m: m, n: n, k: k) }
        return m * n * MemoryLayout<Float>.stride + 64 + levelBytes(m: m, n: n, k: k)
    }

    /// One non-accumulating level: S1–S4, T1–T4', P, Q (each 64-byte aligned), then the children's or the peeling
    /// base products' scratch.
    private func levelBytes(m: Int, n: Int, k: Int) -> Int {
        let (mh, nh, kh) = (m / 2, n / 2, k / 2)
        let temporaries = 4 * mh * kh + 4 * kh * nh + 2 * mh * nh
        let children = max(child.workspaceBytes(m: mh, n: nh, k: kh), base.workspaceBytes(m: m, n: n, k: k))
        return temporaries * MemoryLayout<Float>.stride + 64 * 12 + children
    }

    func multiply(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                  c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool, workspace: UnsafeMutableRawBufferPointer) {
        guard recurses(m: m, n: n, k: k) else {
            base.multiply(m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc, accumulate: accumulate,
                          workspace: workspace)
            return
        }
        let bytes = workspaceBytes(m: m, n: n, k: k)
        withScratch(workspace, bytes: bytes) { start in
            var scratch = Scratch(start: start, usableBytes: bytes - 64)
            multiplyLevel(m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc, accumulate: accumulate,
                          scratch: &scratch)
        }
    }

    /// One recursion level in `scratch` (see the type's note for the schedule).
    private func multiplyLevel(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>,
                               ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool,
                               scratch: inout Scratch) {
        if accumulate {
            // C += A·B: form A·B in a temporary, then add.
            let product = scratch.take(m * n)
            multiplyLevel(m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: product, ldc: n, accumulate: false,
                          scratch: &scratch)
            Self.combine(c, ldc, UnsafePointer(c), ldc, UnsafePointer(product), n, rows: m, columns: n, subtract: false)
            return
        }

        let (mh, nh, kh) = (m / 2, n / 2, k / 2)
        let (a11, a12, a21, a22) = (a, a + kh, a + mh * lda, a + mh * lda + kh)
        let (b11, b12, b21, b22) = (b, b + nh, b + kh * ldb, b + kh * ldb + nh)
        let (c11, c12, c21, c22) = (c, c + nh, c + mh * ldc, c + mh * ldc + nh)
        let s1 = scratch.take(mh * kh), s2 = scratch.take(mh * kh), s3 = scratch.take(mh * kh), s4 = scratch.take(mh * kh)
        let t1 = scratch.take(kh * nh), t2 = scratch.take(kh * nh), t3 = scratch.take(kh * nh), t4 = scratch.take(kh * nh)
        let p = scratch.take(mh * nh), q = scratch.take(mh * nh)
        let rest = scratch.rest

        // The 8 pre-additions.
        Self.combine(s1, kh, a21, lda, a22, lda, rows: mh, columns: kh, subtract: false)
        Self.combine(s2, kh, UnsafePointer(s1), kh, a11, lda, rows: mh, columns: kh, subtract: true)
        Self.combine(s3, kh, a11, lda, a21, lda, rows: mh, columns: kh, subtract: true)
        Self.combine(s4, kh, a12, lda, UnsafePointer(s2), kh, rows: mh, columns: kh, subtract: true)
        Self.combine(t1, nh, b12, ldb, b11, ldb, rows: kh, columns: nh, subtract: true)
        Self.combine(t2, nh, b22, ldb, UnsafePointer(t1), nh, rows: kh, columns: nh, subtract: true)
        Self.combine(t3, nh, b22, ldb, b12, ldb, rows: kh, columns: nh, subtract: true)
        Self.combine(t4, nh, b21, ldb, UnsafePointer(t2), nh, rows: kh, columns: nh, subtract: true)

        let half = child
        func product(_ x: UnsafePointer<Float>, _ ldx: Int, _ y: UnsafePointer<Float>, _ ldy: Int,
                     into z: UnsafeMutablePointer<Float>, _ ldz: Int, accumulate: Bool) {
            half.multiply(m: mh, n: nh, k: kh, a: x, lda: ldx, b: y, ldb: ldy, c: z, ldc: ldz, accumulate: accumulate,
                          workspace: rest)
        }
        product(a11, lda, b11, ldb, into: p, nh, accumulate: false)                               // P = M1
        Self.copy(c11, ldc, UnsafePointer(p), nh, rows: mh, columns: nh)
        product(a12, lda, b21, ldb, into: c11, ldc, accumulate: true)                             // C11 = M1 + M2
        product(UnsafePointer(s2), kh, UnsafePointer(t2), nh, into: p, nh, accumulate: true)      // P = U2 = M1 + M6
        Self.copy(c22, ldc, UnsafePointer(p), nh, rows: mh, columns: nh)
        product(UnsafePointer(s3), kh, UnsafePointer(t3), nh, into: c22, ldc, accumulate: true)   // C22 = U3
        Self.copy(c21, ldc, UnsafePointer(c22), ldc, rows: mh, columns: nh)
        product(a22, lda, UnsafePointer(t4), nh, into: c21, ldc, accumulate: true)                // C21 = U3 − M4
        product(UnsafePointer(s1), kh, UnsafePointer(t1), nh, into: q, nh, accumulate: false)     // Q = M5
        Self.combine(p, nh, UnsafePointer(p), nh, UnsafePointer(q), nh, rows: mh, columns: nh, subtract: false)  // U4
        Self.combine(c22, ldc, UnsafePointer(c22), ldc, UnsafePointer(q), nh, rows: mh, columns: nh, subtract: false)
        Self.copy(c12, ldc, UnsafePointer(p), nh, rows: mh, columns: nh)
        product(UnsafePointer(s4), kh, b22, ldb, into: c12, ldc, accumulate: true)                // C12 = U4 + M3

        // Peel what the even split left over.
        let (me, ne, ke) = (2 * mh, 2 * nh, 2 * kh)
        if ke < k {  // rank-1: the last column of A times the last row of B
            base.multiply(m: me, n: ne, k: k - ke, a: a + ke, lda: lda, b: b + ke * ldb, ldb: ldb, c: c, ldc: ldc,
                          accumulate: true, workspace: rest)
        }
        if ne < n {
            base.multiply(m: me, n: n - ne, k: k, a: a, lda: lda, b: b + ne, ldb: ldb, c: c + ne, ldc: ldc,
                          accumulate: false, workspace: rest)
        }
        if me < m {
            base.multiply(m: m - me, n: n, k: k, a: a + me * lda, lda: lda, b: b, ldb: ldb, c: c + me * ldc, ldc: ldc,
                          accumulate: false, workspace: rest)
        }
    }

    /// Aᵀ·B runs on the base engine: the quadrant recursion is written for untransposed operands, and the products
    /// that need Aᵀ (Winograd's backward-weights) have a short m and n and a long k, where Strassen saves little.
    func multiplyTransposedA(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>,
                             ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool,
                             workspace: UnsafeMutableRawBufferPointer) {
        base.multiplyTransposedA(m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc,
                                 accumulate: accumulate, workspace: workspace)
    }

    /// A·Bᵀ on the base engine, for the same reason.
    func multiplyTransposedB(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>,
                             ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool,
                             workspace: UnsafeMutableRawBufferPointer) {
        base.multiplyTransposedB(m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc,
                                 accumulate: accumulate, workspace: workspace)
    }

    /// Bump allocator over the workspace (64-byte aligned pieces); `rest` is what is left for the children.
    private struct Scratch {
        var next: UnsafeMutableRawPointer
        let end: UnsafeMutableRawPointer

        init(start: UnsafeMutableRawPointer, usableBytes: Int) {
            next = start
            end = start + usableBytes
        }

        mutating func take(_ count: Int) -> UnsafeMutablePointer<Float> {
            let pointer = next.bindMemory(to: Float.self, capacity: count)
            next += (count * MemoryLayout<Float>.stride + 63) / 64 * 64
            return pointer
        }

        var rest: UnsafeMutableRawBufferPointer {
            UnsafeMutableRawBufferPointer(start: next, count: max(end - next, 0))
        }
    }

    /// z = x ± y element-wise over rows × columns strided views (z may alias x).
    static func combine(_ z: UnsafeMutablePointer<Float>, _ ldz: Int, _ x: UnsafePointer<Float>, _ ldx: Int,
                        _ y: UnsafePointer<Float>, _ ldy: Int, rows: Int, columns: Int, subtract: Bool) {
        for row in 0..<rows {
            let (zr, xr, yr) = (z + row * ldz, x + row * ldx, y + row * ldy)
            if subtract {
                for j in 0..<columns { zr[j] = xr[j] - yr[j] }
            } else {
                for j in 0..<columns { zr[j] = xr[j] + yr[j] }
            }
        }
    }

    static func copy(_ z: UnsafeMutablePointer<Float>, _ ldz: Int, _ x: UnsafePointer<Float>, _ ldx: Int,
                     rows: Int, columns: Int) {
        for row in 0..<rows { (z + row * ldz).update(from: x + row * ldx, count: columns) }
    }
}

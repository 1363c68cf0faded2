import ConvLabCore

/// SGEMM written in Swift: Goto/BLIS blocking with packed panels and a 6×64 register-blocked micro-kernel.
///
/// Loops, outermost first: column blocks of B (nc), depth blocks (kc; B's kc×nc block is packed into 64-column
/// panels), row blocks of A (mc; packed into 6-row panels), then micro-tiles. A micro-kernel call keeps a 6×64 tile of
/// C in 24 vector registers and, per step along k, loads 4 vectors of B and broadcasts 6 values of A: 24 FMAs per 10
/// loads. The kc×64 B panel (32 KiB at kc = 128) stays in L1 while every A panel of the row block streams past it from
/// L2; the packed kc×nc block of B (512 KiB at nc = 1024) fits the 1 MiB L2 (nc = 2048 overflowed it: 173 versus 236
/// GFLOP/s at n = 2048 on one core). See `blocking(m:)` for large products. Built with `-target-cpu native` the kernel is AVX-512 (`vfmadd231ps zmm`); without it, it still compiles and
/// runs on plain x86-64 (slowly: see TOOLCHAIN.md).
struct NativeMultiplier: MatrixMultiplier {
    var name: String { "native" }

    static let mr = 6
    static let nr = 64
    /// Summation block along k: each element of C is the sum, in k order, of partial sums over k ∈ [128·j, 128·j + 128),
    /// each accumulated from zero in registers and then added to C. Fixing these boundaries in absolute k (rather than
    /// letting them follow kc or the packed/unpacked choice) makes every element's rounding independent of how a caller
    /// or its threads split m and n, so results do not change with the thread count; blocked summation also keeps the
    /// error near that of 128 + k/128 additions instead of k.
    static let kSum = 128
    static let mc = 120

    /// Depth and column block sizes. Each depth block re-reads the m×nc block of C; when that block no longer fits
    /// comfortably in L3 (m = 4096: 16 MiB) it comes from DRAM, so large products use a deeper kc (fewer passes over C)
    /// with a narrower nc (the packed B block kc×nc must still fit L2). Measured on one core: kc 128 / nc 1024 gives
    /// 251 and 236 GFLOP/s at n = 1024 and 2048 but 170 at 4096; kc 384 / nc 512 gives 202 at 4096.
    static func blocking(m: Int) -> (kc: Int, nc: Int) {
        usesLargeBlocking(m: m) ? (384, 512) : (128, 1024)
    }

    static func usesLargeBlocking(m: Int) -> Bool { m * 1024 * MemoryLayout<Float>.stride > 12 * 1024 * 1024 }

    typealias Vector = SIMD16<Float>

    /// Products this small skip packing: the micro-kernel reads A's rows and B's 64-column strips in place (a kc×64
    /// strip of B stays in L2 across all row panels), which saves the two packing passes that otherwise cost a
    /// large share of a Winograd-sized product (tiles × K × C, e.g. 196 × 256 × 256).
    static func usesUnpacked(m: Int, n: Int, k: Int) -> Bool {
        n <= 512 && k <= unpackedMaxDepth && m <= 4096
    }

    static let unpackedMaxDepth = 1152

    /// Scratch for every path a product no larger than m×n×k can take: one ragged B strip and a zero row (unpacked),
    /// and the packed A and B blocks at the blocking its m selects. Each path's own size is not monotone (a 449-wide
    /// product takes the unpacked path and needs more than a 576-wide packed one), but callers size one workspace
    /// for a product and run narrower pieces of it inside (the ragged last block of `multiplyParallel`), so the
    /// declared size covers them all: it never decreases when m, n or k grows.
    func workspaceBytes(m: Int, n: Int, k: Int) -> Int {
        let unpacked = min(k, Self.unpackedMaxDepth) * (Self.nr + 1)
        func packed(_ blocking: (kc: Int, nc: Int)) -> Int {
            let kb = min(blocking.kc, k)
            let mb = (min(Self.mc, m) + Self.mr - 1) / Self.mr * Self.mr
            let nb = (min(blocking.nc, n) + Self.nr - 1) / Self.nr * Self.nr
            return mb * kb + kb * nb
        }
        let small = packed(Self.blocking(m: 1)), large = Self.usesLargeBlocking(m: m) ? packed(Self.blocking(m: m)) : 0
        return max(unpacked, small, large) * MemoryLayout<Float>.stride + 128
    }

    func multiply(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                  c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool, workspace: UnsafeMutableRawBufferPointer) {
        multiply(m: m, n: n, k: k, a: a, lda: lda, transposedA: false, b: b, ldb: ldb, transposedB: false, c: c,
                 ldc: ldc, accumulate: accumulate, workspace: workspace)
    }

    /// C = Aᵀ·B with A stored k × m: the packed path packs A's columns instead of its rows, the unpacked path reads
    /// them in place (6 neighbouring floats per step), so the transpose costs nothing.
    func multiplyTransposedA(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>,
                             ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool,
                             workspace: UnsafeMutableRawBufferPointer) {
        multiply(m: m, n: n, k: k, a: a, lda: lda, transposedA: true, b: b, ldb: ldb, transposedB: false, c: c,
                 ldc: ldc, accumulate: accumulate, workspace: workspace)
    }

    /// C = A·Bᵀ with B stored n × k: always the packed path, whose B packing reads B's rows (contiguous in k) into
    /// the same 64-column panels, so the transpose is folded into a copy the product makes anyway.
    func multiplyTransposedB(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>,
                             ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool,
                             workspace: UnsafeMutableRawBufferPointer) {
        multiply(m: m, n: n, k: k, a: a, lda: lda, transposedA: false, b: b, ldb: ldb, transposedB: true, c: c,
                 ldc: ldc, accumulate: accumulate, workspace: workspace)
    }

    private func multiply(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, transposedA: Bool,
                          b: UnsafePointer<Float>, ldb: Int, transposedB: Bool, c: UnsafeMutablePointer<Float>,
                          ldc: Int, accumulate: Bool, workspace: UnsafeMutableRawBufferPointer) {
        guard m > 0 && n > 0 else { return }
        if k == 0 {
            if !accumulate { for row in 0..<m { (c + row * ldc).update(repeating: 0, count: n) } }
            return
        }
        let bytes = workspaceBytes(m: m, n: n, k: k)
        withScratch(workspace, bytes: bytes) { aligned in
            if Self.usesUnpacked(m: m, n: n, k: k) && !transposedB {
                multiplyUnpacked(m: m, n: n, k: k, a: a, lda: lda, transposedA: transposedA, b: b, ldb: ldb, c: c,
                                 ldc: ldc, accumulate: accumulate,
                                 scratch: aligned.bindMemory(to: Float.self, capacity: k * Self.nr + k))
            } else {
                multiplyPacked(m: m, n: n, k: k, a: a, lda: lda, transposedA: transposedA, b: b, ldb: ldb,
                               transposedB: transposedB, c: c, ldc: ldc, accumulate: accumulate,
                               scratch: aligned.bindMemory(to: Float.self, capacity: (bytes - 128) / 4))
            }
        }
    }

    /// The packed path: Goto/BLIS loops over packed A and B blocks in `scratch`.
    private func multiplyPacked(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, transposedA: Bool,
                                b: UnsafePointer<Float>, ldb: Int, transposedB: Bool, c: UnsafeMutablePointer<Float>,
                                ldc: Int, accumulate: Bool, scratch: UnsafeMutablePointer<Float>) {
        let (kc, nc) = Self.blocking(m: m)
        let kb0 = min(kc, k)
        let packedA = scratch
        let packedB = packedA + (min(Self.mc, m) + Self.mr - 1) / Self.mr * Self.mr * kb0

        var jc = 0
        while jc < n {
            let nb = min(nc, n - jc)
            var pc = 0
            while pc < k {
                let kb = min(kc, k - pc)
                if transposedB {
                    Self.packTransposedB(b + jc * ldb + pc, ldb: ldb, depth: kb, columns: nb, into: packedB)
                } else {
                    Self.packB(b + pc * ldb + jc, ldb: ldb, depth: kb, columns: nb, into: packedB)
                }
                var ic = 0
                while ic < m {
                    let mb = min(Self.mc, m - ic)
                    if transposedA {
                        Self.packTransposedA(a + pc * lda + ic, lda: lda, rows: mb, depth: kb, into: packedA)
                    } else {
                        Self.packA(a + ic * lda + pc, lda: lda, rows: mb, depth: kb, into: packedA)
                    }
                    let add = accumulate || pc > 0
                    var jr = 0
                    while jr < nb {
                        let columns = min(Self.nr, nb - jr)
                        var ir = 0
                        while ir < mb {
                            let rows = min(Self.mr, mb - ir)
                            let target = c + (ic + ir) * ldc + jc + jr
                            let panelA = packedA + ir * kb
                            let panelB = packedB + jr * kb
                            // kc is a multiple of kSum, so sub-blocks start at multiples of kSum in absolute k.
                            var sub = 0
                            while sub < kb {
                                let depth = min(Self.kSum, kb - sub)
                                // A packed panel holds its 6 rows interleaved: row i at pa + i, step mr.
                                let pa = UnsafePointer(panelA + sub * Self.mr)
                                Self.tile(depth: depth, a: (pa, pa + 1, pa + 2, pa + 3, pa + 4, pa + 5),
                                          aStep: Self.mr, b: panelB + sub * Self.nr, bStep: Self.nr, c: target,
                                          ldc: ldc, accumulate: add || sub > 0, rows: rows, columns: columns)
                                sub += Self.kSum
                            }
                            ir += Self.mr
                        }
                        jr += Self.nr
                    }
                    ic += Self.mc
                }
                pc += kc
            }
            jc += nc
        }
    }

    /// The unpacked path: 64-column strips of B in place (a ragged last strip is copied, zero-padded), 6 rows of A
    /// read in place (missing rows of a ragged last panel point at a zero row).
    private func multiplyUnpacked(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, transposedA: Bool,
                                  b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int,
                                  accumulate: Bool, scratch: UnsafeMutablePointer<Float>) {
        let strip = scratch
        let zeroRow = scratch + k * Self.nr
        zeroRow.update(repeating: 0, count: k)
        var jr = 0
        while jr < n {
            let columns = min(Self.nr, n - jr)
            var (panel, panelStride) = (b + jr, ldb)
            if columns < Self.nr {
                // Only the vectors the ragged strip's kernel reads (`tile` runs ⌈columns/16⌉ of them).
                let padded = (columns + 15) / 16 * 16
                for p in 0..<k {
                    (strip + p * Self.nr).update(from: b + p * ldb + jr, count: columns)
                    (strip + p * Self.nr + columns).update(repeating: 0, count: padded - columns)
                }
                (panel, panelStride) = (UnsafePointer(strip), Self.nr)
            }
            // k outermost within a strip: its 128×64 block (32 KiB) is read from memory once and from L1 by every
            // row panel (with the panels outermost the whole k×64 strip, 64 KiB at k = 256, came from L2 for each of
            // them). Each element still sums its kSum blocks in k order, so the bits are those of the packed path.
            let aStep = transposedA ? lda : 1
            var p0 = 0
            while p0 < k {
                let depth = min(Self.kSum, k - p0)
                let at = p0 * aStep
                var ir = 0
                while ir < m {
                    let rows = min(Self.mr, m - ir)
                    // Row i of A at `row(i)`, element p at `row(i)[p · aStep]`. A transposed A's rows are its columns;
                    // the missing rows of a ragged last panel reread row ir (their results are dropped by `tile`).
                    let row = { (i: Int) -> UnsafePointer<Float> in
                        transposedA ? a + ir + (i < rows ? i : 0)
                            : (i < rows ? a + (ir + i) * lda : UnsafePointer(zeroRow))
                    }
                    let rowsAt = (row(0) + at, row(1) + at, row(2) + at, row(3) + at, row(4) + at, row(5) + at)
                    Self.tile(depth: depth, a: rowsAt, aStep: aStep, b: panel + p0 * panelStride, bStep: panelStride,
                              c: c + ir * ldc + jr, ldc: ldc, accumulate: accumulate || p0 > 0, rows: rows,
                              columns: columns)
                    ir += Self.mr
                }
                p0 += Self.kSum
            }
            jr += Self.nr
        }
    }

    /// A[rows×depth] → panels of 6 rows, each depth×6 (k-major), zero rows past `rows`.
    static func packA(_ a: UnsafePointer<Float>, lda: Int, rows: Int, depth: Int, into packed: UnsafeMutablePointer<Float>) {
        var panel = 0
        while panel < rows {
            let target = packed + panel * depth
            let valid = min(mr, rows - panel)
            if valid == mr {
                // Step by step through the target (6 sequential stores per step) rather than row by row (stores 6
                // floats apart, six passes over the panel).
                let (s0, s1, s2) = (a + panel * lda, a + (panel + 1) * lda, a + (panel + 2) * lda)
                let (s3, s4, s5) = (a + (panel + 3) * lda, a + (panel + 4) * lda, a + (panel + 5) * lda)
                for p in 0..<depth {
                    let t = target + p * mr
                    t[0] = s0[p]; t[1] = s1[p]; t[2] = s2[p]; t[3] = s3[p]; t[4] = s4[p]; t[5] = s5[p]
                }
            } else {
                for i in 0..<mr {
                    if i < valid {
                        let source = a + (panel + i) * lda
                        for p in 0..<depth { target[p * mr + i] = source[p] }
                    } else {
                        for p in 0..<depth { target[p * mr + i] = 0 }
                    }
                }
            }
            panel += mr
        }
    }

    /// Aᵀ[rows×depth] → the same panels, from A stored depth × rows: panel row i, step p is a[p·lda + panel + i].
    static func packTransposedA(_ a: UnsafePointer<Float>, lda: Int, rows: Int, depth: Int,
                                into packed: UnsafeMutablePointer<Float>) {
        var panel = 0
        while panel < rows {
            let target = packed + panel * depth
            let valid = min(mr, rows - panel)
            for p in 0..<depth {
                let source = a + p * lda + panel
                for i in 0..<mr { target[p * mr + i] = i < valid ? source[i] : 0 }
            }
            panel += mr
        }
    }

    /// B[depth×columns] → panels of 64 columns, each depth×64 (row-major), zero columns past `columns`.
    static func packB(_ b: UnsafePointer<Float>, ldb: Int, depth: Int, columns: Int, into packed: UnsafeMutablePointer<Float>) {
        var panel = 0
        while panel < columns {
            let target = packed + panel * depth
            let valid = min(nr, columns - panel)
            for p in 0..<depth {
                let row = target + p * nr
                row.update(from: b + p * ldb + panel, count: valid)
                if valid < nr { (row + valid).update(repeating: 0, count: nr - valid) }
            }
            panel += nr
        }
    }

    /// Bᵀ[depth×columns] → the same panels, from B stored columns × depth: panel column j, step p is
    /// b[(panel + j)·ldb + p]. Each row of the stored B is read once, contiguously; the panel (depth×64, in L1) takes
    /// the scattered writes.
    static func packTransposedB(_ b: UnsafePointer<Float>, ldb: Int, depth: Int, columns: Int,
                                into packed: UnsafeMutablePointer<Float>) {
        var panel = 0
        while panel < columns {
            let target = packed + panel * depth
            let valid = min(nr, columns - panel)
            // Whole 16×16 blocks through the register transpose (a scalar element-by-element copy stored with a
            // stride of 64 floats and cost more than the multiply on 1×1 backward-weights); the rest element-wise.
            let (blockColumns, blockDepth) = (valid / 16 * 16, depth / 16 * 16)
            var j = 0
            while j < blockColumns {
                var p = 0
                while p < blockDepth {
                    Transpose16.transpose(b + (panel + j) * ldb + p, stride: ldb, into: target + p * nr + j, stride: nr)
                    p += 16
                }
                let source = b + (panel + j) * ldb
                for p in blockDepth..<depth {
                    for jj in 0..<16 { target[p * nr + j + jj] = source[jj * ldb + p] }
                }
                j += 16
            }
            for j in blockColumns..<valid {
                let source = b + (panel + j) * ldb
                for p in 0..<depth { target[p * nr + j] = source[p] }
            }
            if valid < nr {
                for p in 0..<depth { (target + p * nr + valid).update(repeating: 0, count: nr - valid) }
            }
            panel += nr
        }
    }

    /// Six rows of A: row i's element p is at `rows.i[p · aStep]`.
    typealias Rows = (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>,
                      UnsafePointer<Float>, UnsafePointer<Float>)

    /// C[rows×columns] (+)= A · B for one micro-tile: the full 6×64 kernel straight into C, or, for a partial
    /// tile, into a stack tile whose valid part is then copied (added when accumulating) into C.
    @inline(__always)
    static func tile(depth: Int, a: Rows, aStep: Int, b: UnsafePointer<Float>, bStep: Int,
                     c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool, rows: Int, columns: Int) {
        if rows == mr && columns == nr {
            kernel(depth: depth, a: a, aStep: aStep, b: b, bStep: bStep, c: c, ldc: ldc, accumulate: accumulate)
            return
        }
        // A stack tile: withUnsafeTemporaryAllocation of these 1.5 KiB went to malloc and free on every partial tile
        // (9% of a 16-output-channel 1×1 layer's time).
        var stackTile = MicroTile()
        stackTile.withFloats { t in
            // A ragged strip of up to 48 columns runs only its vectors: the 4 columns of a 196-position (14²) image's
            // last strip cost a whole 64-wide tile (1×1, 1024→256 at 14², batch 8: 222 → 239 GFLOP/s on two Intel
            // cores). The same k order per element, so the same bits.
            switch (columns + 15) / 16 {
            case 1: narrowKernel1(depth: depth, a: a, aStep: aStep, b: b, bStep: bStep, c: t)
            case 2: narrowKernel2(depth: depth, a: a, aStep: aStep, b: b, bStep: bStep, c: t)
            case 3: narrowKernel3(depth: depth, a: a, aStep: aStep, b: b, bStep: bStep, c: t)
            default: kernel(depth: depth, a: a, aStep: aStep, b: b, bStep: bStep, c: t, ldc: nr, accumulate: false)
            }
            for i in 0..<rows {
                let (target, source) = (c + i * ldc, t + i * nr)
                if accumulate {
                    for j in 0..<columns { target[j] += source[j] }
                } else {
                    target.update(from: source, count: columns)
                }
            }
        }
    }

    /// One copy per vector count, each with its loop specialised.
    @inline(never) static func narrowKernel1(depth: Int, a: Rows, aStep: Int, b: UnsafePointer<Float>, bStep: Int,
                                             c: UnsafeMutablePointer<Float>) {
        narrowKernel(1, depth: depth, a: a, aStep: aStep, b: b, bStep: bStep, c: c, ldc: nr)
    }

    @inline(never) static func narrowKernel2(depth: Int, a: Rows, aStep: Int, b: UnsafePointer<Float>, bStep: Int,
                                             c: UnsafeMutablePointer<Float>) {
        narrowKernel(2, depth: depth, a: a, aStep: aStep, b: b, bStep: bStep, c: c, ldc: nr)
    }

    @inline(never) static func narrowKernel3(depth: Int, a: Rows, aStep: Int, b: UnsafePointer<Float>, bStep: Int,
                                             c: UnsafeMutablePointer<Float>) {
        narrowKernel(3, depth: depth, a: a, aStep: aStep, b: b, bStep: bStep, c: c, ldc: nr)
    }

    /// C[6×16v] = A rows · B for v = 1, 2 or 3 vectors of columns (a ragged strip's), stored (never accumulated) into a
    /// stack tile: 6v accumulators, one FMA chain per (row, vector), k in the order of `kernel`.
    @inline(__always)
    static func narrowKernel(_ v: Int, depth: Int, a: Rows, aStep: Int, b: UnsafePointer<Float>, bStep: Int,
                             c: UnsafeMutablePointer<Float>, ldc: Int) {
        var c00 = Vector(), c01 = Vector(), c02 = Vector(), c10 = Vector(), c11 = Vector(), c12 = Vector()
        var c20 = Vector(), c21 = Vector(), c22 = Vector(), c30 = Vector(), c31 = Vector(), c32 = Vector()
        var c40 = Vector(), c41 = Vector(), c42 = Vector(), c50 = Vector(), c51 = Vector(), c52 = Vector()
        var bp = b, q = 0
        for _ in 0..<depth {
            let b0 = loadVector(bp), b1 = v > 1 ? loadVector(bp + 16) : Vector(), b2 = v > 2 ? loadVector(bp + 32) : Vector()
            var s = Vector(repeating: a.0[q])
            c00.addProduct(s, b0); if v > 1 { c01.addProduct(s, b1) }; if v > 2 { c02.addProduct(s, b2) }
            s = Vector(repeating: a.1[q])
            c10.addProduct(s, b0); if v > 1 { c11.addProduct(s, b1) }; if v > 2 { c12.addProduct(s, b2) }
            s = Vector(repeating: a.2[q])
            c20.addProduct(s, b0); if v > 1 { c21.addProduct(s, b1) }; if v > 2 { c22.addProduct(s, b2) }
            s = Vector(repeating: a.3[q])
            c30.addProduct(s, b0); if v > 1 { c31.addProduct(s, b1) }; if v > 2 { c32.addProduct(s, b2) }
            s = Vector(repeating: a.4[q])
            c40.addProduct(s, b0); if v > 1 { c41.addProduct(s, b1) }; if v > 2 { c42.addProduct(s, b2) }
            s = Vector(repeating: a.5[q])
            c50.addProduct(s, b0); if v > 1 { c51.addProduct(s, b1) }; if v > 2 { c52.addProduct(s, b2) }
            q += aStep
            bp += bStep
        }
        @inline(__always) func put(_ row: Int, _ v0: Vector, _ v1: Vector, _ v2: Vector) {
            let p = c + row * ldc
            storeVector(v0, p)
            if v > 1 { storeVector(v1, p + 16) }
            if v > 2 { storeVector(v2, p + 32) }
        }
        put(0, c00, c01, c02); put(1, c10, c11, c12); put(2, c20, c21, c22)
        put(3, c30, c31, c32); put(4, c40, c41, c42); put(5, c50, c51, c52)
    }

    /// C[6×64] (+)= A rows · B, B's rows `bStep` apart: the packed path passes interleaved panels (aStep = 6,
    /// bStep = 64), the unpacked path rows and strips read in place (aStep = 1, bStep = ldb).
    static func kernel(depth: Int, a: Rows, aStep: Int, b: UnsafePointer<Float>, bStep: Int,
                       c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool) {
        var c00 = Vector(), c01 = Vector(), c02 = Vector(), c03 = Vector()
        var c10 = Vector(), c11 = Vector(), c12 = Vector(), c13 = Vector()
        var c20 = Vector(), c21 = Vector(), c22 = Vector(), c23 = Vector()
        var c30 = Vector(), c31 = Vector(), c32 = Vector(), c33 = Vector()
        var c40 = Vector(), c41 = Vector(), c42 = Vector(), c43 = Vector()
        var c50 = Vector(), c51 = Vector(), c52 = Vector(), c53 = Vector()
        var bp = b, q = 0
        for _ in 0..<depth {
            let b0 = loadVector(bp), b1 = loadVector(bp + 16), b2 = loadVector(bp + 32), b3 = loadVector(bp + 48)
            var s = Vector(repeating: a.0[q])
            c00.addProduct(s, b0); c01.addProduct(s, b1); c02.addProduct(s, b2); c03.addProduct(s, b3)
            s = Vector(repeating: a.1[q])
            c10.addProduct(s, b0); c11.addProduct(s, b1); c12.addProduct(s, b2); c13.addProduct(s, b3)
            s = Vector(repeating: a.2[q])
            c20.addProduct(s, b0); c21.addProduct(s, b1); c22.addProduct(s, b2); c23.addProduct(s, b3)
            s = Vector(repeating: a.3[q])
            c30.addProduct(s, b0); c31.addProduct(s, b1); c32.addProduct(s, b2); c33.addProduct(s, b3)
            s = Vector(repeating: a.4[q])
            c40.addProduct(s, b0); c41.addProduct(s, b1); c42.addProduct(s, b2); c43.addProduct(s, b3)
            s = Vector(repeating: a.5[q])
            c50.addProduct(s, b0); c51.addProduct(s, b1); c52.addProduct(s, b2); c53.addProduct(s, b3)
            q += aStep
            bp += bStep
        }
        @inline(__always) func put(_ row: Int, _ v0: Vector, _ v1: Vector, _ v2: Vector, _ v3: Vector) {
            let p = c + row * ldc
            if accumulate {
                storeVector(loadVector(p) + v0, p); storeVector(loadVector(p + 16) + v1, p + 16)
                storeVector(loadVector(p + 32) + v2, p + 32); storeVector(loadVector(p + 48) + v3, p + 48)
            } else {
                storeVector(v0, p); storeVector(v1, p + 16); storeVector(v2, p + 32); storeVector(v3, p + 48)
            }
        }
        put(0, c00, c01, c02, c03); put(1, c10, c11, c12, c13); put(2, c20, c21, c22, c23)
        put(3, c30, c31, c32, c33); put(4, c40, c41, c42, c43); put(5, c50, c51, c52, c53)
    }
}

/// The 6×64 floats of one micro-tile on the stack.
private struct MicroTile {
    typealias V = SIMD16<Float>
    var rows: (V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V)
    init() {
        let z = V()
        rows = (z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z)
    }

    @inline(__always)
    mutating func withFloats<R>(_ body: (UnsafeMutablePointer<Float>) -> R) -> R {
        withUnsafeMutableBytes(of: &rows) { body($0.baseAddress!.assumingMemoryBound(to: Float.self)) }
    }
}

import ConvLabCore

/// The 36 products of an F(4,3) pass with few tiles, M[ξν] = X[ξν]·U[ξν], with the filter transform U = V g Vᵀ
/// computed from the raw 3×3 filters in registers, inside the product, instead of read from a plan-time table.
///
/// Why: on small maps each product has few rows (ResNet-50's 512-channel 7×7 layer: 4 tiles, VGG-16's 14×14 layer:
/// 16), so each transformed filter value is used only 4–16 times, and the plan-time table — 36·C·K floats, 38 MiB for
/// 512 channels — streams from memory more slowly than the FMAs consume it; F(2,3)'s 17 MiB table ran instead, at
/// four times the multiplications per output. The raw filters are 9·C·K floats (9.4 MiB). With the diagonal of the
/// construction in Aᵀ (`FractionPlacement.a`), V's rows are [1, 0, 0], [1, ±a, a²], [1, ±b, b²] and [0, 0, 1].
///
/// A first version transformed a chunk of filters into an L2 buffer U[point][c][block] and ran GEMMs over it: the 36
/// scattered stores per filter vector missed L1 and cost 60% of the layer (0.29 of 0.46 ms on the 7×7 layer, Zen 5).
/// Here one register tile is one row ξ of the 6×6 points, all 6 columns ν, 4 tiles and 16 output channels: per input
/// channel it loads the filter rows row ξ needs, forms T = V[ξ]·g (3 vectors) and U[ξν] = T·V[ν]ᵀ (6), and runs 24
/// FMAs against 24 broadcasts of X — U never leaves registers, and the whole channel sum stays in the 24 accumulators.
/// X is first repacked so those 24 values are contiguous per channel: X'[ξ][tile group][c][ν][4 tiles].
struct FilterTransformingProduct: Sendable {
    typealias Vector = SIMD16<Float>

    /// Tiles per register tile.
    static let tilesPerGroup = 4

    /// The finite points ±a and ±b of the transform (rows 1–4 of V; row 0 is the point 0, row 5 infinity).
    let a: Float
    let b: Float

    /// nil unless both axes are one F(4,3) transform with G = V (fractions in A or B) and points 0, a, −a, b, −b.
    init?(height: WinogradTransform, width: WinogradTransform) {
        guard height == width, height.kernelSize == 3, height.outputSize == 4, height.fractions != .g else { return nil }
        let p = height.points
        guard p[0] == .zero, p[2] == p[1].negated(), p[4] == p[3].negated() else { return nil }
        a = Float(p[1].doubleValue)
        b = Float(p[3].doubleValue)
    }

    /// Floats of the repacked X of a pass of `rows` tiles: X', or X'' when it runs the row products.
    static func repackedFloats(rows: Int, channels: Int, rowProducts: Bool) -> Int {
        36 * (rowProducts ? rowGroups(rows) * rowTiles : groups(rows) * tilesPerGroup) * channels
    }

    static func groups(_ rows: Int) -> Int { (rows + tilesPerGroup - 1) / tilesPerGroup }

    /// The raw filters as the products read them: [group][output block][input channel][r·s][16 output channels],
    /// output channels past K zero.
    static func arrange(_ weights: UnsafePointer<Float>, descriptor d: ConvolutionDescriptor, outputBlocks: Int,
                        into target: UnsafeMutablePointer<Float>) {
        let (cg, kg, taps) = (d.channelsPerGroup, d.outputChannelsPerGroup, d.kernelHeight * d.kernelWidth)
        target.update(repeating: 0, count: d.groups * outputBlocks * cg * taps * 16)
        for g in 0..<d.groups {
            for k in 0..<kg {
                let (block, lane) = (k / 16, k % 16)
                for c in 0..<cg {
                    let source = weights + ((g * kg + k) * cg + c) * taps
                    let run = target + ((g * outputBlocks + block) * cg + c) * taps * 16 + lane
                    for tap in 0..<taps { run[tap * 16] = source[tap] }
                }
            }
        }
    }

    /// X'[ξ][group][c][ν][4] from X[point][tile][cp] (points `xStride` apart) for point row ξ and tile group `group`,
    /// tiles past `rows` zero.
    static func repack(x: UnsafePointer<Float>, xStride: Int, cp: Int, rows: Int, channels: Int, row xi: Int,
                       group: Int, into target: UnsafeMutablePointer<Float>) {
        let out = target + (xi * groups(rows) + group) * channels * 24
        let first = group * tilesPerGroup
        let valid = min(tilesPerGroup, rows - first)
        for nu in 0..<6 {
            let point = x + (xi * 6 + nu) * xStride + first * cp
            for t in 0..<tilesPerGroup {
                guard t < valid else {
                    for c in 0..<channels { out[c * 24 + nu * 4 + t] = 0 }
                    continue
                }
                let source = point + t * cp
                for c in 0..<channels { out[c * 24 + nu * 4 + t] = source[c] }
            }
        }
    }

    /// Floats of one input channel's raw filters for one output block: 3×3 taps × 16 output channels.
    static let filterFloatsPerChannel = 144

    /// M[ξν][every tile][16 channels of one output block] for all 36 points: X' of the group, the block's filters, M
    /// at point (0, 0), tile 0 and the block's first channel; points `mStride` and tiles `ldm` floats apart.
    func multiply(x: UnsafePointer<Float>, channels: Int, filters: UnsafePointer<Float>, m: UnsafeMutablePointer<Float>,
                  mStride: Int, ldm: Int, rows: Int) {
        let groups = Self.groups(rows)
        for xi in 0..<6 {
            for group in 0..<groups {
                multiply(row: xi, x: x + (xi * groups + group) * channels * 24, channels: channels, filters: filters,
                         m: m + xi * 6 * mStride + group * Self.tilesPerGroup * ldm, mStride: mStride, ldm: ldm,
                         rows: min(Self.tilesPerGroup, rows - group * Self.tilesPerGroup))
            }
        }
    }

    /// M[ξν][tiles of one group][16 channels of one block] for the 6 points ν of row ξ: X' at the row's group, the
    /// filters at the block, M at point (ξ, 0) and the group's first tile.
    private func multiply(row xi: Int, x: UnsafePointer<Float>, channels: Int, filters: UnsafePointer<Float>,
                          m: UnsafeMutablePointer<Float>, mStride: Int, ldm: Int, rows: Int) {
        func run<let Kind: Int>(_ kind: Compiled<Kind>) {
            let point = rowPoint(xi)
            Self.kernel(kind, point, point * point, a, b, x: x, channels: channels, filters: filters, m: m,
                        mStride: mStride, ldm: ldm, rows: rows)
        }
        switch xi {
        case 0: run(Compiled<0>())
        case 5: run(Compiled<2>())
        default: run(Compiled<1>())
        }
    }

    /// U[ξν] for ν = 0…5 of one input channel's filters `g` (3×3 taps × 16 output channels): T = V[ξ]·g, then
    /// T·V[ν]ᵀ with the ± points paired (even and odd parts). Kind 0 is the point 0 (T = g's first row), 2 infinity
    /// (its last row), 1 a finite point p, T = g₀ + p·g₁ + p²·g₂ (`p`, `p2`).
    @inline(__always)
    static func rowTransform<let Kind: Int>(_: Compiled<Kind>, _ p: Vector, _ p2: Vector, _ va: Vector, _ va2: Vector,
                                            _ vb: Vector, _ vb2: Vector, _ g: UnsafePointer<Float>)
        -> (Vector, Vector, Vector, Vector, Vector, Vector) {
        let kind = Kind
        let t0: Vector, t1: Vector, t2: Vector
        if kind == 0 {
            (t0, t1, t2) = (loadVector(g), loadVector(g + 16), loadVector(g + 32))
        } else if kind == 2 {
            (t0, t1, t2) = (loadVector(g + 96), loadVector(g + 112), loadVector(g + 128))
        } else {
            // g₀ + p·g₁ + p²·g₂ as two FMAs per column.
            @inline(__always) func column(_ s: Int) -> Vector {
                var t = loadVector(g + s)
                t.addProduct(p2, loadVector(g + 96 + s))
                t.addProduct(p, loadVector(g + 48 + s))
                return t
            }
            (t0, t1, t2) = (column(0), column(16), column(32))
        }
        let (evenA, oddA) = (t0 + va2 * t2, va * t1)
        let (evenB, oddB) = (t0 + vb2 * t2, vb * t1)
        return (t0, evenA + oddA, evenA - oddA, evenB + oddB, evenB - oddB, t2)
    }

    /// Row ξ's finite point (rows 1–4: a, −a, b, −b; 0 for the point 0 and infinity, whose kinds ignore it).
    func rowPoint(_ xi: Int) -> Float {
        switch xi {
        case 1: a
        case 2: -a
        case 3: b
        case 4: -b
        default: 0
        }
    }

    /// One row ξ of V (`rowTransform`'s kind, point and squared point): U formed in registers per channel and used
    /// at once by 24 FMAs against broadcasts of X'.
    @inline(never) @_optimize(size)
    static func kernel<let Kind: Int>(_ kind: Compiled<Kind>, _ point: Float, _ squared: Float, _ a: Float, _ b: Float,
                                      x: UnsafePointer<Float>, channels: Int, filters: UnsafePointer<Float>,
                                      m: UnsafeMutablePointer<Float>, mStride: Int, ldm: Int, rows: Int) {
        let (p, p2) = (Vector(repeating: point), Vector(repeating: squared))
        let (va, va2, vb, vb2) = (Vector(repeating: a), Vector(repeating: a * a), Vector(repeating: b),
                                  Vector(repeating: b * b))
        var a00 = Vector(), a01 = Vector(), a02 = Vector(), a03 = Vector()
        var a10 = Vector(), a11 = Vector(), a12 = Vector(), a13 = Vector()
        var a20 = Vector(), a21 = Vector(), a22 = Vector(), a23 = Vector()
        var a30 = Vector(), a31 = Vector(), a32 = Vector(), a33 = Vector()
        var a40 = Vector(), a41 = Vector(), a42 = Vector(), a43 = Vector()
        var a50 = Vector(), a51 = Vector(), a52 = Vector(), a53 = Vector()
        var (xp, g) = (x, filters)
        for _ in 0..<channels {
            let (u0, u1, u2, u3, u4, u5) = rowTransform(kind, p, p2, va, va2, vb, vb2, g)
            @inline(__always) func accumulate(_ u: Vector, _ nu: Int, _ c0: inout Vector, _ c1: inout Vector,
                                              _ c2: inout Vector, _ c3: inout Vector) {
                c0.addProduct(Vector(repeating: xp[nu * 4]), u)
                c1.addProduct(Vector(repeating: xp[nu * 4 + 1]), u)
                c2.addProduct(Vector(repeating: xp[nu * 4 + 2]), u)
                c3.addProduct(Vector(repeating: xp[nu * 4 + 3]), u)
            }
            accumulate(u0, 0, &a00, &a01, &a02, &a03); accumulate(u1, 1, &a10, &a11, &a12, &a13)
            accumulate(u2, 2, &a20, &a21, &a22, &a23); accumulate(u3, 3, &a30, &a31, &a32, &a33)
            accumulate(u4, 4, &a40, &a41, &a42, &a43); accumulate(u5, 5, &a50, &a51, &a52, &a53)
            xp += 24
            g += Self.filterFloatsPerChannel
        }
        @inline(__always) func put(_ nu: Int, _ c0: Vector, _ c1: Vector, _ c2: Vector, _ c3: Vector) {
            let target = m + nu * mStride
            storeVector(c0, target)
            if rows > 1 { storeVector(c1, target + ldm) }
            if rows > 2 { storeVector(c2, target + 2 * ldm) }
            if rows > 3 { storeVector(c3, target + 3 * ldm) }
        }
        put(0, a00, a01, a02, a03); put(1, a10, a11, a12, a13); put(2, a20, a21, a22, a23)
        put(3, a30, a31, a32, a33); put(4, a40, a41, a42, a43); put(5, a50, a51, a52, a53)
    }
}

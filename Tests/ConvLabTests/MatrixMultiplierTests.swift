import ConvLab
import Testing

/// Every engine against a float64 product, on odd sizes, sub-matrix views (leading dimensions) and accumulation.
@Suite struct MatrixMultiplierTests {
    static let engines: [MatrixEngine] = [.blas, .native, .strassen(depth: 1, base: .native, cutoff: 256),
                                          .strassen(depth: 2, base: .native, cutoff: 256),
                                          .strassen(depth: 1, base: .blas, cutoff: 256),
                                          .strassen(depth: 3, base: .native, cutoff: 8)]
    static let shapes: [(Int, Int, Int)] = [(1, 1, 1), (7, 5, 3), (6, 64, 128), (13, 70, 129), (130, 67, 300),
                                            (512, 513, 515), (600, 520, 1031), (1025, 514, 516)]

    /// max |C − C64| / Σ|a||b| over all elements; `transposedA` stores A as k × m and calls `multiplyTransposedA`,
    /// `transposedB` stores B as n × k and calls `multiplyTransposedB`.
    static func error(engine: MatrixEngine, m: Int, n: Int, k: Int, accumulate: Bool, transposedA: Bool = false,
                      transposedB: Bool = false, seed: UInt64) throws -> Double {
        // Views into larger arrays: lda, ldb, ldc exceed the row lengths.
        let (lda, ldb, ldc) = (transposedA ? m + 3 : k + 3, transposedB ? k + 5 : n + 5, n + 7)
        let a = try Tensor<Float>.random(shape: [transposedA ? k : m, lda], seed: seed).scalars
        let b = try Tensor<Float>.random(shape: [transposedB ? n : k, ldb], seed: seed + 1).scalars
        let c0 = try Tensor<Float>.random(shape: [m, ldc], seed: seed + 2).scalars
        var c = c0
        let multiplier = engine.makeMultiplier()
        let workspace = try Workspace(byteCount: multiplier.workspaceBytes(m: m, n: n, k: k))
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                c.withUnsafeMutableBufferPointer { c in
                    if transposedB {
                        multiplier.multiplyTransposedB(m: m, n: n, k: k, a: a.baseAddress!, lda: lda,
                                                       b: b.baseAddress!, ldb: ldb, c: c.baseAddress!, ldc: ldc,
                                                       accumulate: accumulate, workspace: workspace.buffer)
                    } else if transposedA {
                        multiplier.multiplyTransposedA(m: m, n: n, k: k, a: a.baseAddress!, lda: lda,
                                                       b: b.baseAddress!, ldb: ldb, c: c.baseAddress!, ldc: ldc,
                                                       accumulate: accumulate, workspace: workspace.buffer)
                    } else {
                        multiplier.multiply(m: m, n: n, k: k, a: a.baseAddress!, lda: lda, b: b.baseAddress!,
                                            ldb: ldb, c: c.baseAddress!, ldc: ldc, accumulate: accumulate,
                                            workspace: workspace.buffer)
                    }
                }
            }
        }
        var worst = 0.0
        for i in 0..<m {
            for j in 0..<ldc {
                guard j < n else {
                    // Outside the view nothing may change.
                    if c[i * ldc + j] != c0[i * ldc + j] { return .infinity }
                    continue
                }
                var exact = accumulate ? Double(c0[i * ldc + j]) : 0
                var scale = accumulate ? abs(exact) : 0
                for p in 0..<k {
                    let product = Double(a[transposedA ? p * lda + i : i * lda + p]) * Double(b[transposedB ? j * ldb + p : p * ldb + j])
                    exact += product
                    scale += abs(product)
                }
                worst = max(worst, abs(Double(c[i * ldc + j]) - exact) / max(scale, 1e-30))
            }
        }
        return worst
    }

    @Test(arguments: engines.indices)
    func agreesWithFloat64(engineIndex: Int) throws {
        let engine = Self.engines[engineIndex]
        for (index, (m, n, k)) in Self.shapes.enumerated() {
            for accumulate in [false, true] {
                let error = try Self.error(engine: engine, m: m, n: n, k: k, accumulate: accumulate,
                                           seed: UInt64(10 * index))
                // γ_k for classical products; each Strassen level adds roughly a factor of a few on top.
                let bound = dotProductErrorBound(terms: k + 1) * engine.errorGrowth
                #expect(error <= bound, "\(engine) \(m)x\(n)x\(k) accumulate \(accumulate): \(error) > \(bound)")
            }
        }
    }

    /// Aᵀ·B (Winograd's backward-weights product) on every engine: both the unpacked and the packed path read A's
    /// columns, with ragged last panels.
    @Test(arguments: engines.indices)
    func transposedAAgreesWithFloat64(engineIndex: Int) throws {
        let engine = Self.engines[engineIndex]
        for (index, (m, n, k)) in (Self.shapes + [(256, 256, 97), (17, 300, 2000)]).enumerated() {
            for accumulate in [false, true] {
                let error = try Self.error(engine: engine, m: m, n: n, k: k, accumulate: accumulate,
                                           transposedA: true, seed: UInt64(10 * index + 3))
                let bound = dotProductErrorBound(terms: k + 1)
                #expect(error <= bound, "\(engine) Aᵀ \(m)x\(n)x\(k) accumulate \(accumulate): \(error) > \(bound)")
            }
        }
    }

    /// A·Bᵀ (backward-weights' dY·Xᵀ) on every engine, ragged 64-column panels included.
    @Test(arguments: engines.indices)
    func transposedBAgreesWithFloat64(engineIndex: Int) throws {
        let engine = Self.engines[engineIndex]
        for (index, (m, n, k)) in (Self.shapes + [(64, 64, 4096), (256, 70, 97)]).enumerated() {
            for accumulate in [false, true] {
                let error = try Self.error(engine: engine, m: m, n: n, k: k, accumulate: accumulate,
                                           transposedB: true, seed: UInt64(10 * index + 5))
                let bound = dotProductErrorBound(terms: k + 1)
                #expect(error <= bound, "\(engine) Bᵀ \(m)x\(n)x\(k) accumulate \(accumulate): \(error) > \(bound)")
            }
        }
    }

    @Test func parallelSplitMatchesSerial() throws {
        let (m, n, k) = (300, 1000, 200)
        let a = try Tensor<Float>.random(shape: [m, k], seed: 1), b = try Tensor<Float>.random(shape: [k, n], seed: 2)
        for engine in [MatrixEngine.native, .strassen(depth: 1, base: .native, cutoff: 64)] {
            let multiplier = engine.makeMultiplier()
            var serial = [Float](repeating: 0, count: m * n), parallel = serial
            let one = try Workspace(byteCount: multiplier.workspaceBytes(m: m, n: n, k: k))
            let three = try Workspace(byteCount: multiplier.parallelWorkspaceBytes(m: m, n: n, k: k, threads: 3))
            a.withUnsafeBufferPointer { a in
                b.withUnsafeBufferPointer { b in
                    serial.withUnsafeMutableBufferPointer { c in
                        multiplier.multiply(m: m, n: n, k: k, a: a.baseAddress!, lda: k, b: b.baseAddress!, ldb: n,
                                            c: c.baseAddress!, ldc: n, accumulate: false, workspace: one.buffer)
                    }
                    parallel.withUnsafeMutableBufferPointer { c in
                        multiplier.multiplyParallel(m: m, n: n, k: k, a: a.baseAddress!, lda: k, b: b.baseAddress!,
                                                    ldb: n, c: c.baseAddress!, ldc: n, threads: 3, workspace: three.buffer)
                    }
                }
            }
            let worst = zip(serial, parallel).map { abs($0 - $1) }.max() ?? 0
            #expect(worst < 1e-3, "\(engine)")
        }
    }

    @Test func engineNamesParse() throws {
        #expect(try MatrixEngine(parsing: "strassen", depth: 2) == .strassen(depth: 2, base: .native, cutoff: 256))
        #expect(try MatrixEngine(parsing: "strassen-blas", cutoff: 64) == .strassen(depth: 1, base: .blas, cutoff: 64))
        #expect(throws: ConvLabError.self) { try MatrixEngine(parsing: "strassen", cutoff: 0) }
        #expect(try MatrixEngine(parsing: "NATIVE") == .native)
        #expect(throws: ConvLabError.self) { try MatrixEngine(parsing: "cublas") }
        #expect(throws: ConvLabError.self) { try MatrixEngine(parsing: "strassen", depth: -1) }
    }

    /// im2col runs on every engine (the --gemm setting).
    @Test(arguments: engines.indices)
    func im2colRunsOnEveryEngine(engineIndex: Int) throws {
        let d = try ConvolutionDescriptor(inputChannels: 64, inputHeight: 40, inputWidth: 40, outputChannels: 600,
                                          kernelHeight: 3, kernelWidth: 3, padding: .same)
        let engine = Self.engines[engineIndex]
        let report = try AccuracyChecker.check(backend: Im2colBackend(), descriptor: d, seed: 1,
                                               options: PlanOptions(threads: 2, matrixEngine: engine))
        #expect(report.maxRelativeError <= report.errorBound * 50, "\(engine): \(report)")
    }

    /// The short product (rows 16 at a time, B in 16-column strips; Winograd's small-image point products) gives the
    /// native engine's bits — its summation order is the engine's — on every row count its four kernels cover, more
    /// than 16 rows, depths across and between the 128-step summation blocks, and leaves C's columns past n untouched.
    @Test func shortProductMatchesTheNativeEngineBitForBit() throws {
        let native = MatrixEngine.native.makeMultiplier()
        for (index, (m, n, k)) in [(1, 16, 1), (3, 48, 17), (4, 16, 128), (5, 32, 129), (8, 80, 300), (9, 16, 256),
                                   (12, 48, 130), (13, 64, 512), (16, 32, 77), (16, 96, 385),
                                   (21, 32, 140), (40, 16, 9)].enumerated() {
            let (lda, ldc) = (k + 3, n + 5)
            let a = try Tensor<Float>.random(shape: [m, lda], seed: UInt64(300 + index)).scalars
            let b = try Tensor<Float>.random(shape: [k, n], seed: UInt64(400 + index)).scalars
            // B as strips: strip j holds columns 16j..<16j+16, k×16 row-major.
            var strips = [Float](repeating: .nan, count: k * n)
            for p in 0..<k { for j in 0..<n { strips[(j / 16) * 16 * k + p * 16 + j % 16] = b[p * n + j] } }
            var expected = [Float](repeating: .nan, count: m * ldc), short = expected
            let workspace = try Workspace(byteCount: native.workspaceBytes(m: m, n: n, k: k))
            var scratch = [Float](repeating: .nan, count: ShortProduct.scratchFloats(k: k))
            a.withUnsafeBufferPointer { a in
                b.withUnsafeBufferPointer { b in
                    expected.withUnsafeMutableBufferPointer { c in
                        native.multiply(m: m, n: n, k: k, a: a.baseAddress!, lda: lda, b: b.baseAddress!, ldb: n,
                                        c: c.baseAddress!, ldc: ldc, accumulate: false, workspace: workspace.buffer)
                    }
                    strips.withUnsafeBufferPointer { strips in
                        short.withUnsafeMutableBufferPointer { c in
                            scratch.withUnsafeMutableBufferPointer { scratch in
                                ShortProduct.multiply(m: m, strips: n / 16, k: k, a: a.baseAddress!, lda: lda,
                                                      bStrips: strips.baseAddress!, c: c.baseAddress!, ldc: ldc,
                                                      scratch: scratch.baseAddress!)
                            }
                        }
                    }
                }
            }
            var worst = 0.0, mismatches = 0
            for i in 0..<m {
                for j in 0..<ldc {
                    let value = short[i * ldc + j]
                    guard j < n else {
                        #expect(value.isNaN, "\(m)x\(n)x\(k): wrote C[\(i)][\(j)] past n")
                        continue
                    }
                    if value.bitPattern != expected[i * ldc + j].bitPattern { mismatches += 1 }
                    var (exact, scale) = (0.0, 0.0)
                    for p in 0..<k {
                        let product = Double(a[i * lda + p]) * Double(b[p * n + j])
                        exact += product
                        scale += abs(product)
                    }
                    worst = max(worst, abs(Double(value) - exact) / max(scale, 1e-30))
                }
            }
            #expect(mismatches == 0, "\(m)x\(n)x\(k): \(mismatches) elements differ from the native engine")
            #expect(worst <= dotProductErrorBound(terms: k + 1), "\(m)x\(n)x\(k): \(worst)")
        }
    }
}

import Foundation

import ConvLab
import Testing

/// The matrix engines must stay inside the workspace they declare. A canary zone after the declared bytes catches a
/// write past the end even in builds without AddressSanitizer; `.ci/run` also runs this suite under ASan.
@Suite struct GEMMWorkspaceTests {
    static let engines: [MatrixEngine] = [.native, .blas, .strassen(depth: 1, base: .native, cutoff: 4),
                                          .strassen(depth: 2, base: .native, cutoff: 3),
                                          .strassen(depth: 1, base: .blas, cutoff: 4)]
    /// Odd shapes around the native engine's path switches (n = 512 unpacked/packed, k = 1152, the 64-column panels,
    /// the 6-row panels, kc = 128), including the one that overflowed: 6×1025×1152 on two threads.
    static let shapes: [(Int, Int, Int)] = [(6, 1025, 1152), (1, 1, 1), (7, 65, 129), (5, 513, 1151), (13, 1030, 1153),
                                            (6, 1023, 127), (97, 577, 300), (31, 2049, 64), (2, 130, 1200)]

    static let canaryBytes = 4096
    static let canary: UInt8 = 0xA5

    @Test(arguments: engines.indices)
    func parallelProductsStayInsideTheirWorkspace(engineIndex: Int) throws {
        let multiplier = Self.engines[engineIndex].makeMultiplier()
        for (m, n, k) in Self.shapes {
            let a = try Tensor<Float>.random(shape: [m, k], seed: UInt64(m + n)).scalars
            let b = try Tensor<Float>.random(shape: [k, n], seed: UInt64(k)).scalars
            for threads in 1...5 {
                let declared = multiplier.parallelWorkspaceBytes(m: m, n: n, k: k, threads: threads)
                let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: declared + Self.canaryBytes, alignment: 64)
                defer { memory.deallocate() }
                memory.initializeMemory(as: UInt8.self, repeating: Self.canary)
                var c = [Float](repeating: .nan, count: m * n)
                a.withUnsafeBufferPointer { a in
                    b.withUnsafeBufferPointer { b in
                        c.withUnsafeMutableBufferPointer { c in
                            multiplier.multiplyParallel(m: m, n: n, k: k, a: a.baseAddress!, lda: k,
                                                        b: b.baseAddress!, ldb: n, c: c.baseAddress!, ldc: n,
                                                        threads: threads, workspace: UnsafeMutableRawBufferPointer(rebasing: memory[0..<declared]))
                        }
                    }
                }
                let overwritten = memory[declared...].filter { $0 != Self.canary }.count
                #expect(overwritten == 0, "\(multiplier.name) \(m)x\(n)x\(k) at \(threads) threads wrote \(overwritten) bytes past its \(declared)-byte workspace")
                // Spot-check the product (a full float64 check is in MatrixMultiplierTests).
                for (i, j) in [(0, 0), (m - 1, n - 1), (m / 2, n / 2)] {
                    var exact = 0.0, scale = 0.0
                    for p in 0..<k {
                        exact += Double(a[i * k + p]) * Double(b[p * n + j])
                        scale += abs(Double(a[i * k + p]) * Double(b[p * n + j]))
                    }
                    let error = abs(Double(c[i * n + j]) - exact) / max(scale, 1e-30)
                    #expect(error <= dotProductErrorBound(terms: k + 1) * Self.engines[engineIndex].errorGrowth,
                            "\(multiplier.name) \(m)x\(n)x\(k) threads \(threads) C[\(i)][\(j)]")
                }
            }
        }
    }

    /// A workspace declared for m×n×k is enough for the narrower products a caller splits it into (the ragged last
    /// column block of `multiplyParallel`, a 576-wide block followed by a 449-wide one in the overflow above).
    @Test(arguments: engines.indices)
    func narrowerProductsFitTheWiderWorkspace(engineIndex: Int) throws {
        let multiplier = Self.engines[engineIndex].makeMultiplier()
        for (m, n, k) in Self.shapes {
            let declared = multiplier.workspaceBytes(m: m, n: n, k: k)
            let a = try Tensor<Float>.random(shape: [m, k], seed: 3).scalars
            let b = try Tensor<Float>.random(shape: [k, n], seed: 4).scalars
            for width in Set([n, max(1, n - 1), max(1, n - 127), max(1, n / 2 + 1), 1]) {
                let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: declared + Self.canaryBytes, alignment: 64)
                defer { memory.deallocate() }
                memory.initializeMemory(as: UInt8.self, repeating: Self.canary)
                var c = [Float](repeating: 0, count: m * n)
                a.withUnsafeBufferPointer { a in
                    b.withUnsafeBufferPointer { b in
                        c.withUnsafeMutableBufferPointer { c in
                            multiplier.multiply(m: m, n: width, k: k, a: a.baseAddress!, lda: k, b: b.baseAddress!,
                                                ldb: n, c: c.baseAddress!, ldc: n, accumulate: false,
                                                workspace: UnsafeMutableRawBufferPointer(rebasing: memory[0..<declared]))
                        }
                    }
                }
                let overwritten = memory[declared...].filter { $0 != Self.canary }.count
                #expect(overwritten == 0, "\(multiplier.name) \(m)x\(width)x\(k) in a workspace for \(m)x\(n)x\(k) wrote \(overwritten) bytes past its \(declared) bytes")
            }
        }
    }

    /// Aᵀ·B (A stored k × m) and A·Bᵀ (B stored n × k) stay inside the same declared workspace as A·B.
    @Test(arguments: engines.indices)
    func transposedProductsStayInsideTheirWorkspace(engineIndex: Int) throws {
        let multiplier = Self.engines[engineIndex].makeMultiplier()
        for (m, n, k) in Self.shapes {
            for transposedA in [true, false] {
                let declared = multiplier.workspaceBytes(m: m, n: n, k: k)
                let a = try Tensor<Float>.random(shape: transposedA ? [k, m] : [m, k], seed: 7).scalars
                let b = try Tensor<Float>.random(shape: transposedA ? [k, n] : [n, k], seed: 8).scalars
                let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: declared + Self.canaryBytes,
                                                                    alignment: 64)
                defer { memory.deallocate() }
                memory.initializeMemory(as: UInt8.self, repeating: Self.canary)
                let workspace = UnsafeMutableRawBufferPointer(rebasing: memory[0..<declared])
                var c = [Float](repeating: .nan, count: m * n)
                a.withUnsafeBufferPointer { a in
                    b.withUnsafeBufferPointer { b in
                        c.withUnsafeMutableBufferPointer { c in
                            if transposedA {
                                multiplier.multiplyTransposedA(m: m, n: n, k: k, a: a.baseAddress!, lda: m,
                                                               b: b.baseAddress!, ldb: n, c: c.baseAddress!, ldc: n,
                                                               accumulate: false, workspace: workspace)
                            } else {
                                multiplier.multiplyTransposedB(m: m, n: n, k: k, a: a.baseAddress!, lda: k,
                                                               b: b.baseAddress!, ldb: k, c: c.baseAddress!, ldc: n,
                                                               accumulate: false, workspace: workspace)
                            }
                        }
                    }
                }
                let which = transposedA ? "Aᵀ·B" : "A·Bᵀ"
                let overwritten = memory[declared...].filter { $0 != Self.canary }.count
                #expect(overwritten == 0, "\(multiplier.name) \(which) \(m)x\(n)x\(k) wrote \(overwritten) bytes past its \(declared) bytes")
                #expect(c.allSatisfy { $0.isFinite }, "\(multiplier.name) \(which) \(m)x\(n)x\(k) left elements unwritten")
            }
        }
    }

    /// The native engine's bits do not depend on how a caller splits n: every element sums k in the same fixed
    /// blocks of 128 on the packed and the unpacked path (`NativeMultiplier.kSum`), so `multiplyParallel` at any thread
    /// count — whose ragged last block may take the other path — gives exactly the serial product. This is what makes
    /// im2col and Winograd bit-identical across thread counts; before, only a comment said so.
    @Test func nativeProductsAreBitIdenticalWhateverTheSplit() throws {
        let multiplier = MatrixEngine.native.makeMultiplier()
        for (m, n, k) in [(6, 1025, 1152), (13, 700, 300), (7, 1030, 129), (64, 600, 1200), (3, 2049, 64)] {
            let a = try Tensor<Float>.random(shape: [m, k], seed: 5).scalars
            let b = try Tensor<Float>.random(shape: [k, n], seed: 6).scalars
            var reference: [Float] = []
            for threads in 1...5 {
                let workspace = try Workspace(byteCount: multiplier.parallelWorkspaceBytes(m: m, n: n, k: k,
                                                                                          threads: threads))
                var c = [Float](repeating: .nan, count: m * n)
                a.withUnsafeBufferPointer { a in
                    b.withUnsafeBufferPointer { b in
                        c.withUnsafeMutableBufferPointer { c in
                            if threads == 1 {
                                multiplier.multiply(m: m, n: n, k: k, a: a.baseAddress!, lda: k, b: b.baseAddress!,
                                                    ldb: n, c: c.baseAddress!, ldc: n, accumulate: false,
                                                    workspace: workspace.buffer)
                            } else {
                                multiplier.multiplyParallel(m: m, n: n, k: k, a: a.baseAddress!, lda: k,
                                                            b: b.baseAddress!, ldb: n, c: c.baseAddress!, ldc: n,
                                                            threads: threads, workspace: workspace.buffer)
                            }
                        }
                    }
                }
                if threads == 1 {
                    reference = c
                } else {
                    let differing = zip(c, reference).filter { $0.bitPattern != $1.bitPattern }.count
                    #expect(differing == 0, "\(m)x\(n)x\(k) at \(threads) threads: \(differing) elements differ")
                }
            }
        }
    }

    /// A caller that sizes a workspace for a problem may hand it to any smaller problem (a ragged last block, a
    /// narrower split): the declared bytes never grow when m, n or k shrink.
    @Test(arguments: engines.indices)
    func workspaceIsMonotoneInTheProblem(engineIndex: Int) {
        let multiplier = Self.engines[engineIndex].makeMultiplier()
        let sizes = [1, 5, 6, 7, 63, 64, 65, 127, 128, 129, 511, 512, 513, 600, 1023, 1024, 1025, 1151, 1152, 1153,
                     3072, 3073, 4096, 4097]
        var violations: [String] = []
        for m in sizes {
            for n in sizes {
                for k in sizes {
                    let bytes = multiplier.workspaceBytes(m: m, n: n, k: k)
                    for (m2, n2, k2) in [(m - 1, n, k), (m, n - 1, k), (m, n, k - 1)] where min(m2, n2, k2) >= 1 {
                        if multiplier.workspaceBytes(m: m2, n: n2, k: k2) > bytes {
                            violations.append("\(m2)x\(n2)x\(k2) needs more than \(m)x\(n)x\(k)")
                        }
                    }
                }
            }
        }
        #expect(violations.count == 0, "\(multiplier.name): \(violations.count) violations, e.g. \(violations.prefix(3))")
    }
}

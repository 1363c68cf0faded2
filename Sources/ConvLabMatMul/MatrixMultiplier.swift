import ConvLabCore
import Foundation
import Synchronization

/// The matrix-multiply abstraction behind every GEMM stage (im2col's lowered product, Winograd's and FFT's
/// transform-domain products). Engines are interchangeable so a researcher can run, say, im2col on Strassen.
///
/// Contract: C[m×n] = A[m×k]·B[k×n] (+ C when `accumulate`), row-major with leading dimensions, on the calling
/// thread only (callers parallelise over independent products), using at most `workspaceBytes(m:n:k:)` bytes of
/// `workspace`. That size never decreases when m, n or k grows, so a workspace sized for a product also serves every
/// smaller piece of it (a ragged last block). Given a shorter buffer an engine allocates what it needs instead of
/// writing past the end: slower, never unsafe (plans size their workspaces so that this does not happen).
public protocol MatrixMultiplier: Sendable {
    var name: String { get }
    func workspaceBytes(m: Int, n: Int, k: Int) -> Int
    func multiply(m: Int, n: Int, k: Int,
                  a: UnsafePointer<Float>, lda: Int,
                  b: UnsafePointer<Float>, ldb: Int,
                  c: UnsafeMutablePointer<Float>, ldc: Int,
                  accumulate: Bool, workspace: UnsafeMutableRawBufferPointer)

    /// C[m×n] = Aᵀ·B (+ C) with A stored k × m (row-major, leading dimension lda ≥ m), in the same workspace as the
    /// untransposed product: Winograd's backward-weights sums over tiles, which are A's rows.
    func multiplyTransposedA(m: Int, n: Int, k: Int,
                             a: UnsafePointer<Float>, lda: Int,
                             b: UnsafePointer<Float>, ldb: Int,
                             c: UnsafeMutablePointer<Float>, ldc: Int,
                             accumulate: Bool, workspace: UnsafeMutableRawBufferPointer)

    /// C[m×n] = A·Bᵀ (+ C) with B stored n × k (leading dimension ldb ≥ k), in the same workspace: backward-weights
    /// sums dY·Xᵀ over positions, which are the contiguous dimension of both operands.
    func multiplyTransposedB(m: Int, n: Int, k: Int,
                             a: UnsafePointer<Float>, lda: Int,
                             b: UnsafePointer<Float>, ldb: Int,
                             c: UnsafeMutablePointer<Float>, ldc: Int,
                             accumulate: Bool, workspace: UnsafeMutableRawBufferPointer)
}

/// The engines a user can choose with `--gemm`.
public enum MatrixEngine: Hashable, Sendable, CustomStringConvertible {
    /// OpenBLAS `cblas_sgemm`, single-threaded per call (convlab parallelises around it).
    case blas
    /// convlab's own packed AVX-512 SGEMM (`NativeMultiplier`).
    case native
    /// Strassen–Winograd to `depth` levels over a base engine (`StrassenMultiplier`); no recursion once a dimension
    /// would drop below `cutoff`.
    indirect case strassen(depth: Int, base: MatrixEngine, cutoff: Int)

    public static let names = ["blas", "native", "strassen", "strassen-blas"]

    /// Parses an engine name; `depth` and `cutoff` apply to the Strassen engines.
    public init(parsing text: String, depth: Int = 1, cutoff: Int = MatrixEngine.strassenCutoff) throws {
        guard depth >= 0 && depth <= 8 else {
            throw ConvLabError.invalidArgument(name: "depth", reason: "Strassen depth must be 0...8 (got \(depth))")
        }
        guard cutoff >= 1 else {
            throw ConvLabError.invalidArgument(name: "strassen cutoff", reason: "must be at least 1 (got \(cutoff))")
        }
        switch text.lowercased() {
        case "blas": self = .blas
        case "native": self = .native
        case "strassen", "strassen-native": self = .strassen(depth: depth, base: .native, cutoff: cutoff)
        case "strassen-blas": self = .strassen(depth: depth, base: .blas, cutoff: cutoff)
        default: throw ConvLabError.unknownName(kind: "matrix engine", name: text, known: Self.names)
        }
    }

    public var description: String {
        switch self {
        case .blas: return "blas"
        case .native: return "native"
        case let .strassen(depth, base, _): return base == .native ? "strassen\(depth)" : "strassen\(depth)-\(base)"
        }
    }

    /// Factor by which this engine's rounding error can exceed a classical product's: 6 per Strassen level. Each
    /// level multiplies the forward error by a small constant (Higham §23.2.2; measured here 1.7–3.3× per level on
    /// random data, see `convlab matmul --depth`); 6 covers that with margin. Backends multiply their bounds by it.
    public var errorGrowth: Double {
        switch self {
        case .blas, .native: return 1
        case let .strassen(depth, base, _): return pow(6, Double(depth)) * base.errorGrowth
        }
    }

    /// Worst-case error bound of one element of C accumulated from `depth` products over `calls` calls into the
    /// same C (e.g. one call per image of a batch), the Strassen growth included, in the checker's normalisation.
    /// The native kernel sums fixed 128-term blocks from zero (`NativeMultiplier.kSum`), so its bound is the blocked
    /// γ_{128 + ⌈k/128⌉ + calls}; OpenBLAS does not document its order, so it keeps the plain γₖ.
    public func errorBound(depth k: Int, calls: Int = 1) -> Double {
        switch self {
        case .blas: return dotProductErrorBound(terms: k)
        case .native:
            let b = NativeMultiplier.kSum
            return blockedDotProductErrorBound(terms: k, blockTerms: b, partials: (k + b - 1) / b + calls)
        case let .strassen(_, base, _): return errorGrowth / base.errorGrowth * base.errorBound(depth: k, calls: calls)
        }
    }

    /// The mean error expected from the same accumulation on random data (`TypicalError`): OpenBLAS's kernels keep
    /// a register accumulator along k, one chain; Strassen multiplies it by √6 per level.
    public func typicalError(depth k: Int, calls: Int = 1) -> Double {
        switch self {
        case .blas: return TypicalError.dotProduct(terms: k, blockTerms: k, partials: calls)
        case .native:
            let b = NativeMultiplier.kSum
            return TypicalError.dotProduct(terms: k, blockTerms: b, partials: (k + b - 1) / b + calls - 1)
        case let .strassen(_, base, _):
            return typicalErrorGrowth * base.typicalError(depth: k, calls: calls)
        }
    }

    /// Factor by which this engine's mean error exceeds a classical product's: √6 per Strassen level
    /// (`TypicalError.strassenLevelGrowth`), as `errorGrowth` is for the worst case.
    public var typicalErrorGrowth: Double {
        guard case let .strassen(depth, base, _) = self else { return 1 }
        return pow(TypicalError.strassenLevelGrowth, Double(depth)) * base.typicalErrorGrowth
    }

    /// A phrase for refusals when Strassen growth dominates a bound ("" otherwise).
    public var errorSource: String {
        guard case let .strassen(depth, _, _) = self else { return "" }
        return "Strassen depth \(depth) grows rounding error up to \(Int(errorGrowth))x"
    }

    /// Recursion stops when a dimension would fall below this (products under ~512 gain nothing from Strassen here).
    public static let strassenCutoff = 256

    public func makeMultiplier() -> any MatrixMultiplier {
        switch self {
        case .blas: return BLASMultiplier()
        case .native: return NativeMultiplier()
        case let .strassen(depth, base, cutoff):
            return StrassenMultiplier(base: base.makeMultiplier(), depth: depth, cutoff: cutoff)
        }
    }
}

extension MatrixMultiplier {
    /// C = A·B split over column blocks on `threads` workers (each block is an independent product), each worker
    /// using its own slice of `workspace` (`parallelWorkspaceBytes` in all).
    public func multiplyParallel(m: Int, n: Int, k: Int,
                                 a: UnsafePointer<Float>, lda: Int,
                                 b: UnsafePointer<Float>, ldb: Int,
                                 c: UnsafeMutablePointer<Float>, ldc: Int,
                                 threads: Int, workspace: UnsafeMutableRawBufferPointer) {
        let blocks = Self.columnBlocks(n: n, threads: threads)
        let perWorker = workspaceBytes(m: m, n: blocks.width, k: k)
        let workers = Parallel.workers(threads: threads, tasks: blocks.count)
        let shared = UncheckedSendable((a, b, c, workspace))
        Parallel.forEach(taskCount: blocks.count, threads: workers) { worker, block in
            let (a, b, c, workspace) = shared.value
            let start = block * blocks.width
            let width = min(blocks.width, n - start)
            // A slice of exactly perWorker bytes when the buffer holds one per worker; otherwise an empty one, and
            // the engine allocates (see the protocol's contract).
            let slice = workspace.count >= workers * perWorker && perWorker > 0
                ? UnsafeMutableRawBufferPointer(start: workspace.baseAddress! + worker * perWorker, count: perWorker)
                : UnsafeMutableRawBufferPointer(start: nil, count: 0)
            multiply(m: m, n: width, k: k, a: a, lda: lda, b: b + start, ldb: ldb, c: c + start, ldc: ldc,
                     accumulate: false, workspace: slice)
        }
    }

    /// Workspace for `multiplyParallel`: one slice per worker that has a block to do.
    public func parallelWorkspaceBytes(m: Int, n: Int, k: Int, threads: Int) -> Int {
        let blocks = Self.columnBlocks(n: n, threads: threads)
        return Parallel.workers(threads: threads, tasks: blocks.count) * workspaceBytes(m: m, n: blocks.width, k: k)
    }

    /// Column blocks: one per thread, rounded up to whole 64-column panels.
    static func columnBlocks(n: Int, threads: Int) -> (count: Int, width: Int) {
        let parts = Parallel.workers(threads: threads, tasks: n)
        let width = max(((n + parts - 1) / parts + 63) / 64 * 64, 1)
        return ((n + width - 1) / width, width)
    }
}

/// Scratch for one product: `workspace` when it holds `bytes`, else memory allocated for the call (the contract's
/// safe fallback). Either way the body sees a 64-byte-aligned buffer of at least `bytes`.
package func withScratch<R>(_ workspace: UnsafeMutableRawBufferPointer, bytes: Int,
                            _ body: (UnsafeMutableRawPointer) -> R) -> R {
    // Callers' sizes include 64 bytes of slack so that aligning the start keeps `bytes − 64` usable.
    if workspace.count >= bytes, let base = workspace.baseAddress {
        return body(UnsafeMutableRawPointer(bitPattern: (Int(bitPattern: base) + 63) & ~63)!)
    }
    ScratchFallbacks.count.add(1, ordering: .relaxed)
    let owned = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 64), alignment: 64)
    defer { owned.deallocate() }
    return body(owned)
}

/// How often a GEMM got a workspace shorter than it declared and allocated instead. Plans size their workspaces from
/// `workspaceBytes`, so this stays 0; the tests check that it does (a rise means a caller under-sizes its scratch,
/// which before this fallback was a heap overflow).
public enum ScratchFallbacks {
    package static let count = Atomic<Int>(0)

    public static var total: Int { count.load(ordering: .relaxed) }
}

import CBLAS
import Foundation

/// A dense row-major float64 matrix: the small linear algebra the kernel decompositions need. The SVD is LAPACK's
/// (`dgesdd`, from OpenBLAS); the one-sided Jacobi SVD stays as its fallback and as the independent check in the tests.
public struct Matrix: Sendable, Equatable {
    public var rows: Int
    public var columns: Int
    public var values: [Double]

    public init(rows: Int, columns: Int, values: [Double]? = nil) {
        self.rows = rows
        self.columns = columns
        self.values = values ?? [Double](repeating: 0, count: rows * columns)
    }

    public subscript(row: Int, column: Int) -> Double {
        get { values[row * columns + column] }
        set { values[row * columns + column] = newValue }
    }

    public var transposed: Matrix {
        var t = Matrix(rows: columns, columns: rows)
        for i in 0..<rows { for j in 0..<columns { t[j, i] = self[i, j] } }
        return t
    }

    public static func * (a: Matrix, b: Matrix) -> Matrix {
        var c = Matrix(rows: a.rows, columns: b.columns)
        for i in 0..<a.rows {
            for k in 0..<a.columns where a[i, k] != 0 {
                let aik = a[i, k]
                for j in 0..<b.columns { c.values[i * b.columns + j] += aik * b.values[k * b.columns + j] }
            }
        }
        return c
    }

    public var frobeniusNorm: Double { values.reduce(0) { $0 + $1 * $1 }.squareRoot() }

    /// Thin SVD A = U·diag(σ)·Vᵀ with k = min(rows, columns): U is rows×k, V columns×k, σ descending. LAPACK's
    /// divide and conquer: the 4608×512 unfolding of a 512-channel 3×3 kernel took minutes in the Jacobi sweeps and
    /// takes well under a second here. Falls back to `jacobiSingularValueDecomposition` if LAPACK reports failure.
    public func singularValueDecomposition() -> (u: Matrix, sigma: [Double], v: Matrix) {
        let k = min(rows, columns)
        guard k > 0, rows < Int(Int32.max), columns < Int(Int32.max) else { return jacobiSingularValueDecomposition() }
        // Row-major A (m×n) is column-major Aᵀ (n×m) = U'·Σ·V'ᵀ, so A = V'·Σ·U'ᵀ: A's U is V' and A's V is U'.
        var a = values
        var m = Int32(columns), n = Int32(rows), lda = Int32(columns), ldu = Int32(columns), ldvt = Int32(k)
        var sigma = [Double](repeating: 0, count: k)
        var uPrime = [Double](repeating: 0, count: columns * k), vtPrime = [Double](repeating: 0, count: k * rows)
        var iwork = [Int32](repeating: 0, count: 8 * k)
        var info: Int32 = 0, lwork: Int32 = -1, query = 0.0
        var job = Int8(UInt8(ascii: "S"))
        dgesdd_(&job, &m, &n, &a, &lda, &sigma, &uPrime, &ldu, &vtPrime, &ldvt, &query, &lwork, &iwork, &info)
        guard info == 0 else { return jacobiSingularValueDecomposition() }
        lwork = Int32(query.rounded(.up))
        var work = [Double](repeating: 0, count: max(Int(lwork), 1))
        dgesdd_(&job, &m, &n, &a, &lda, &sigma, &uPrime, &ldu, &vtPrime, &ldvt, &work, &lwork, &iwork, &info)
        guard info == 0 else { return jacobiSingularValueDecomposition() }
        // V'ᵀ (k×m column-major) read row-major is m×k: exactly A's U. U' (n_A×k column-major) transposes into V.
        let u = Matrix(rows: rows, columns: k, values: vtPrime)
        var v = Matrix(rows: columns, columns: k)
        for i in 0..<k { for r in 0..<columns { v[r, i] = uPrime[r + i * columns] } }
        return (u, sigma, v)
    }

    /// Thin SVD by one-sided Jacobi (Hestenes): rotate column pairs until all are orthogonal; σ are the column norms,
    /// sorted descending. Accurate to working precision and simple; O(n²·m) per sweep.
    public func jacobiSingularValueDecomposition() -> (u: Matrix, sigma: [Double], v: Matrix) {
        if columns > rows {
            let (u, s, v) = transposed.jacobiSingularValueDecomposition()
            return (v, s, u)
        }
        var a = self
        var v = Matrix(rows: columns, columns: columns)
        for i in 0..<columns { v[i, i] = 1 }
        for _ in 0..<60 {
            var rotated = false
            for p in 0..<columns {
                for q in (p + 1)..<max(p + 1, columns) {
                    var (alpha, beta, gamma) = (0.0, 0.0, 0.0)
                    for i in 0..<rows {
                        let (x, y) = (a.values[i * columns + p], a.values[i * columns + q])
                        alpha += x * x
                        beta += y * y
                        gamma += x * y
                    }
                    guard abs(gamma) > 1e-15 * (alpha * beta).squareRoot(), gamma != 0 else { continue }
                    rotated = true
                    let zeta = (beta - alpha) / (2 * gamma)
                    let t = (zeta >= 0 ? 1.0 : -1.0) / (abs(zeta) + (1 + zeta * zeta).squareRoot())
                    let c = 1 / (1 + t * t).squareRoot(), s = c * t
                    for i in 0..<rows {
                        let (x, y) = (a.values[i * columns + p], a.values[i * columns + q])
                        a.values[i * columns + p] = c * x - s * y
                        a.values[i * columns + q] = s * x + c * y
                    }
                    for i in 0..<columns {
                        let (x, y) = (v.values[i * columns + p], v.values[i * columns + q])
                        v.values[i * columns + p] = c * x - s * y
                        v.values[i * columns + q] = s * x + c * y
                    }
                }
            }
            if !rotated { break }
        }
        let norms = (0..<columns).map { j in (0..<rows).reduce(0.0) { $0 + a[$1, j] * a[$1, j] }.squareRoot() }
        let order = (0..<columns).sorted { norms[$0] > norms[$1] }
        var u = Matrix(rows: rows, columns: columns), vSorted = Matrix(rows: columns, columns: columns)
        for (target, source) in order.enumerated() {
            let norm = norms[source]
            for i in 0..<rows { u[i, target] = norm > 0 ? a[i, source] / norm : 0 }
            for i in 0..<columns { vSorted[i, target] = v[i, source] }
        }
        return (u, order.map { norms[$0] }, vSorted)
    }

    /// The leading `count` left singular vectors (columns of U).
    public func leadingLeftSingularVectors(_ count: Int) -> Matrix {
        let (u, _, _) = singularValueDecomposition()
        var result = Matrix(rows: rows, columns: count)
        for i in 0..<rows { for j in 0..<min(count, u.columns) { result[i, j] = u[i, j] } }
        return result
    }

    /// Solves X·A = B for X (A symmetric positive definite, k×k; B m×k) by Cholesky, with a tiny ridge for safety.
    public static func solveRight(_ b: Matrix, _ a: Matrix) -> Matrix {
        let k = a.rows
        var l = Matrix(rows: k, columns: k)
        let ridge = 1e-12 * max((0..<k).map { a[$0, $0] }.max() ?? 1, 1e-300)
        for j in 0..<k {
            var diagonal = a[j, j] + ridge
            for p in 0..<j { diagonal -= l[j, p] * l[j, p] }
            l[j, j] = max(diagonal, 1e-300).squareRoot()
            for i in (j + 1)..<max(j + 1, k) {
                var sum = a[i, j]
                for p in 0..<j { sum -= l[i, p] * l[j, p] }
                l[i, j] = sum / l[j, j]
            }
        }
        // X·L·Lᵀ = B: solve row by row, forward with L (Y·Lᵀ... ) — per row x: L·Lᵀ·xᵀ = bᵀ.
        var x = Matrix(rows: b.rows, columns: k)
        for row in 0..<b.rows {
            var y = [Double](repeating: 0, count: k)
            for i in 0..<k {
                var sum = b[row, i]
                for p in 0..<i { sum -= l[i, p] * y[p] }
                y[i] = sum / l[i, i]
            }
            for i in stride(from: k - 1, through: 0, by: -1) {
                var sum = y[i]
                for p in (i + 1)..<max(i + 1, k) { sum -= l[p, i] * x[row, p] }
                x[row, i] = sum / l[i, i]
            }
        }
        return x
    }
}

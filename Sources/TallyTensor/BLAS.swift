import COpenBLAS

/// Thin wrappers over OpenBLAS `cblas_sgemm` (row-major).
public enum BLAS {
    /// `C = alpha * op(A) * op(B) + beta * C` with row-major matrices.
    /// - Parameters:
    ///   - transA: use Aᵀ.
    ///   - transB: use Bᵀ.
    ///   - m: rows of op(A) and C.
    ///   - n: columns of op(B) and C.
    ///   - k: columns of op(A), rows of op(B).
    ///   - a: A's first element; `lda` its row stride.
    ///   - b: B's first element; `ldb` its row stride.
    ///   - c: C's first element; `ldc` its row stride.
    @inlinable
    public static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if m == 0 || n == 0 { return }
        cblas_sgemm(
            CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}

import COpenBLAS

/// Thin wrappers over OpenBLAS `cblas_sgemm` (row-major).
///
/// OpenBLAS itself always runs single-threaded here: a product large enough to be worth
/// splitting is cut into row (or column) blocks of C, one per thread of ``Threading``, each
/// computed by its own single-threaded `cblas_sgemm`. Tally's element-wise loops and its
/// matrix products then share one pool of threads that sleep when idle. OpenBLAS's own
/// workers, by contrast, keep spinning in `sched_yield` for a while after every product and
/// take CPU time from the loops that run between products (measured: 10–25% of samples on
/// a two-core machine).
public enum BLAS {
    /// Products with fewer multiply-adds than this run on one thread.
    static let splitThreshold = 1 << 21
    /// Block boundaries fall on multiples of this many rows or columns (kernel-friendly).
    static let splitAlignment = 32
    /// Keeps OpenBLAS on one thread; evaluated once, before the first product.
    static let singleThreadedOpenBLAS: Void = openblas_set_num_threads(1)

    /// `C = alpha * op(A) * op(B) + beta * C` with row-major matrices, on up to
    /// `Threading.threadCount` threads (the count in force on the calling task or thread).
    /// - Parameters:
    ///   - transA: use Aᵀ.
    ///   - transB: use Bᵀ.
    ///   - m: rows of op(A) and C.
    ///   - n: columns of op(B) and C.
    ///   - k: columns of op(A), rows of op(B).
    ///   - a: A's first element; `lda` its row stride.
    ///   - b: B's first element; `ldb` its row stride.
    ///   - c: C's first element; `ldc` its row stride.
    ///   - serial: run on the calling thread only (for callers already inside a parallel loop).
    public static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int, serial: Bool = false
    ) {
        if m == 0 || n == 0 { return }
        if serial || m * n * k < splitThreshold {
            sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
            return
        }
        // Blocks of the longer side of C, so the operand every block packs again is the smaller one.
        if m >= n {
            Threading.parallelChunks(m, minChunk: splitAlignment, alignment: splitAlignment) { start, end in
                // Rows start..<end of op(A) and of C.
                let aBlock = transA ? a + start : a + start * lda
                sgemm(transA, transB, end - start, n, k, alpha, aBlock, lda, b, ldb, beta, c + start * ldc, ldc)
            }
        } else {
            Threading.parallelChunks(n, minChunk: splitAlignment, alignment: splitAlignment) { start, end in
                // Columns start..<end of op(B) and of C.
                let bBlock = transB ? b + start * ldb : b + start
                sgemm(transA, transB, m, end - start, k, alpha, a, lda, bBlock, ldb, beta, c + start, ldc)
            }
        }
    }

    static func sgemm(
        _ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
        _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
        _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int
    ) {
        _ = singleThreadedOpenBLAS
        cblas_sgemm(
            CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}

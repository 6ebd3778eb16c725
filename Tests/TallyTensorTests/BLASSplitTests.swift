import Testing
@testable import TallyTensor

/// With more than one thread, large products are cut into row or column blocks of C, each
/// computed by its own single-threaded sgemm. Every combination of transposes, strides and
/// beta must give the same C as the definition, and as one thread.
@Suite struct BLASSplitTests {
    /// Fills `count` floats with reproducible values.
    func values(_ count: Int, seed: UInt64) -> [Float] {
        var rng = SeededGenerator(seed: seed)
        return (0..<count).map { _ in rng.nextNormal() }
    }

    struct Case: CustomTestStringConvertible, Sendable {
        let m: Int, n: Int, k: Int, transA: Bool, transB: Bool, beta: Float
        var testDescription: String { "\(m)x\(n)x\(k) transA \(transA) transB \(transB) beta \(beta)" }
    }

    static let cases: [Case] = [
        // m >= n: split by rows of C (and of op(A)). 300 rows: blocks of 160 and 140.
        Case(m: 300, n: 97, k: 80, transA: false, transB: false, beta: 0),
        Case(m: 300, n: 97, k: 80, transA: true, transB: true, beta: 1),
        // n > m: split by columns of C (and of op(B)).
        Case(m: 70, n: 333, k: 100, transA: false, transB: true, beta: 0),
        Case(m: 70, n: 333, k: 100, transA: true, transB: false, beta: 1),
    ]

    @Test(arguments: cases)
    func blocksEqualOneThreadAndTheDefinition(_ c: Case) {
        #expect(c.m * c.n * c.k >= BLAS.splitThreshold, "the case must be large enough to be split")
        // Row strides wider than the matrices, so block offsets must respect lda/ldb/ldc.
        let (aRows, aCols) = c.transA ? (c.k, c.m) : (c.m, c.k)
        let (bRows, bCols) = c.transB ? (c.n, c.k) : (c.k, c.n)
        let lda = aCols + 3, ldb = bCols + 5, ldc = c.n + 7
        let a = values(aRows * lda, seed: 1), b = values(bRows * ldb, seed: 2), c0 = values(c.m * ldc, seed: 3)
        func run(threads: Int) -> [Float] {
            var out = c0
            a.withUnsafeBufferPointer { pa in
                b.withUnsafeBufferPointer { pb in
                    out.withUnsafeMutableBufferPointer { pc in
                        Threading.withThreadCount(threads) {
                            BLAS.gemm(transA: c.transA, transB: c.transB, m: c.m, n: c.n, k: c.k, alpha: 0.5,
                                      a: pa.baseAddress!, lda: lda, b: pb.baseAddress!, ldb: ldb,
                                      beta: c.beta, c: pc.baseAddress!, ldc: ldc)
                        }
                    }
                }
            }
            return out
        }
        let one = run(threads: 1), two = run(threads: 2)
        var worstThreads: Float = 0, worstDefinition: Float = 0
        for i in 0..<c.m {
            for j in 0..<ldc {
                let at = i * ldc + j
                guard j < c.n else {
                    // Padding between rows of C is never written.
                    #expect(two[at] == c0[at])
                    continue
                }
                var sum: Double = 0
                for p in 0..<c.k {
                    let x = c.transA ? a[p * lda + i] : a[i * lda + p]
                    let y = c.transB ? b[j * ldb + p] : b[p * ldb + j]
                    sum += Double(x) * Double(y)
                }
                let want = Float(0.5 * sum + Double(c.beta) * Double(c0[at]))
                worstDefinition = max(worstDefinition, abs(two[at] - want))
                worstThreads = max(worstThreads, abs(two[at] - one[at]))
            }
        }
        #expect(worstDefinition < 1e-3)
        #expect(worstThreads < 1e-5)
    }
}

import COpenBLAS
import Dispatch
import Synchronization

/// The number of threads TallyTensor uses, for OpenBLAS and for its own parallel loops.
///
/// The default is 2 (the machines Tally targets have two cores); call ``setThreadCount(_:)``
/// once at start-up, e.g. from a `--threads` option.
public enum Threading {
    private static let current = Atomic<Int>(0)

    /// The configured thread count (at least 1).
    public static var threadCount: Int {
        let n = current.load(ordering: .relaxed)
        if n > 0 { return n }
        setThreadCount(2)
        return 2
    }

    /// Sets the number of threads for matrix products and parallel loops.
    ///
    /// OpenBLAS itself is kept on one thread; ``BLAS/gemm(transA:transB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:serial:)``
    /// splits large products across these threads instead.
    /// - Parameter count: threads to use; values below 1 mean 1.
    public static func setThreadCount(_ count: Int) {
        let n = max(1, count)
        current.store(n, ordering: .relaxed)
        openblas_set_num_threads(1)
    }

    /// Runs `body(start, end)` over `0..<count` split into at most `threadCount` contiguous
    /// chunks, in parallel when there is more than one chunk and enough work.
    /// - Parameters:
    ///   - count: the number of items.
    ///   - minChunk: the smallest number of items worth a thread of its own.
    ///   - alignment: chunk boundaries fall on multiples of this (the last chunk takes the rest).
    ///   - body: processes items `start..<end`; chunks never overlap.
    @inlinable
    public static func parallelChunks(_ count: Int, minChunk: Int = 1, alignment: Int = 1, _ body: (Int, Int) -> Void) {
        if count <= 0 { return }
        let maxChunks = max(1, min(threadCount, count / max(minChunk, 1)))
        if maxChunks == 1 {
            body(0, count)
            return
        }
        let step = max(alignment, 1)
        let per = ((count + maxChunks - 1) / maxChunks + step - 1) / step * step
        withoutActuallyEscaping(body) { body in
            let work = ParallelBody(body)
            DispatchQueue.concurrentPerform(iterations: maxChunks) { c in
                let start = c * per
                let end = min(count, start + per)
                if start < end { work.run(start, end) }
            }
        }
    }

    /// Runs `body(i)` for every `i` in `0..<count` on up to `threadCount` threads. Matrix
    /// products inside `body` should pass `serial: true` so they do not split again.
    /// - Parameters:
    ///   - count: the number of independent tasks.
    ///   - body: one task; tasks may run concurrently.
    public static func parallelTasks(_ count: Int, _ body: (Int) -> Void) {
        let threads = threadCount
        if threads == 1 || count == 1 {
            for i in 0..<count { body(i) }
            return
        }
        let workers = min(threads, count)
        withoutActuallyEscaping(body) { body in
            let work = ParallelBody { i, _ in body(i) }
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                var i = w
                while i < count {
                    work.run(i, 0)
                    i += workers
                }
            }
        }
    }
}

/// Carries a loop body into `concurrentPerform`, whose closure must be `@Sendable`.
///
/// Audited use: the body only runs while the parallel loop that received it is on the
/// stack, and callers hand each invocation a disjoint range of indices, so no two threads
/// write the same memory.
@usableFromInline
struct ParallelBody: @unchecked Sendable {
    @usableFromInline let run: (Int, Int) -> Void
    @usableFromInline init(_ run: @escaping (Int, Int) -> Void) { self.run = run }
}

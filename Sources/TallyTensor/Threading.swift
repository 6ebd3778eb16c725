import Dispatch

/// The number of threads TallyTensor uses for its parallel loops and matrix products.
///
/// The count is scoped, not process-wide: it is a task-local value (default 2, the machines
/// Tally targets have two cores) that a caller sets for the work it runs, so two backends
/// with different `threads` settings in one process each get their own.
///
/// ```swift
/// let logits = Threading.withThreadCount(4) { model.nextTokenLogits(batch, cache: cache) }
/// try await Threading.withThreadCount(1) { try await trainer.run() }
/// ```
///
/// Worker threads of a parallel loop run with a count of 1, so loops and products nested in
/// a parallel body run serially instead of splitting again.
public enum Threading {
    /// The count in force; read through ``threadCount``, which clamps it to at least 1.
    @TaskLocal static var scopedCount: Int = 2

    /// The thread count in force for the current task or thread (at least 1).
    public static var threadCount: Int { max(1, scopedCount) }

    /// Runs `body` with ``threadCount`` set to `count` for everything it does on this task
    /// or thread (child tasks included; threads it starts itself and detached tasks excluded).
    /// - Parameters:
    ///   - count: threads to use; values below 1 mean 1.
    ///   - body: the work.
    /// - Returns: what `body` returns.
    /// - Throws: what `body` throws.
    public static func withThreadCount<R>(_ count: Int, _ body: () throws -> R) rethrows -> R {
        try $scopedCount.withValue(max(1, count), operation: body)
    }

    /// Runs the asynchronous `body` with ``threadCount`` set to `count` for everything it does
    /// (its child tasks included).
    /// - Parameters:
    ///   - count: threads to use; values below 1 mean 1.
    ///   - isolation: the caller's actor; `body` runs on it.
    ///   - body: the work.
    /// - Returns: what `body` returns.
    /// - Throws: what `body` throws.
    public static func withThreadCount<R>(
        _ count: Int, isolation: isolated (any Actor)? = #isolation, _ body: () async throws -> R
    ) async rethrows -> R {
        try await $scopedCount.withValue(max(1, count), operation: body, isolation: isolation)
    }

    /// Runs one share of a parallel loop with a thread count of 1, so that anything nested in
    /// it runs serially. `DispatchQueue.concurrentPerform`'s workers do not inherit task-local
    /// values; without this they would read the default instead of the caller's count.
    @usableFromInline
    static func asWorker(_ body: () -> Void) {
        $scopedCount.withValue(1, operation: body)
    }

    /// Runs `body(start, end)` over `0..<count` split into at most ``threadCount`` contiguous
    /// chunks, in parallel when there is more than one chunk and enough work.
    ///
    /// The count is read once, on the calling thread; each chunk runs with a count of 1.
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
                if start < end { asWorker { work.run(start, end) } }
            }
        }
    }

    /// Runs `body(i)` for every `i` in `0..<count` on up to ``threadCount`` threads (read
    /// once, on the calling thread). Each worker runs with a count of 1, so loops and
    /// products inside `body` run serially; matrix products may also pass `serial: true`.
    /// - Parameters:
    ///   - count: the number of independent tasks.
    ///   - body: one task; tasks may run concurrently.
    public static func parallelTasks(_ count: Int, _ body: (Int) -> Void) {
        let threads = threadCount
        if threads == 1 || count <= 1 {
            for i in 0..<max(count, 0) { body(i) }
            return
        }
        let workers = min(threads, count)
        withoutActuallyEscaping(body) { body in
            let work = ParallelBody { i, _ in body(i) }
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                asWorker {
                    var i = w
                    while i < count {
                        work.run(i, 0)
                        i += workers
                    }
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

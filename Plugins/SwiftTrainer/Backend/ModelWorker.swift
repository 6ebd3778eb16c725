import Foundation
import TallyCore
import TallyTensor

/// Owns one `LocalModel` on a dedicated thread and serves generation and scoring requests,
/// decoding generation requests together with continuous batching.
///
/// The model (a class with mutable buffers) is touched only on the worker thread; callers
/// talk to it through `submit`, which suspends them without blocking the cooperative pool.
/// This is the audited `@unchecked Sendable` box: the model is confined to `thread`, and the
/// only shared state, the job queue, is guarded by its condition.
///
/// Generation requests join the running batch of a ``GenerationEngine`` between decode steps
/// (up to `maxBatch` at once, whatever their options) and are answered as soon as each
/// finishes; other jobs run between steps. Each request samples with its own seed.
/// Every job runs with the worker's own thread count (``Threading/withThreadCount(_:_:)``
/// around the whole loop), whatever count its caller runs with.
final class ModelWorker: @unchecked Sendable {
    /// What a generation request gets back.
    typealias Reply = (output: GenerationOutput, latency: Double, compute: Double)

    /// One unit of work and how to answer it.
    private enum Job {
        case generate(prompt: [Int], options: GenerationOptions, reply: CheckedContinuation<Reply, any Error>)
        case run(body: (LocalModel) throws -> Void)
    }

    /// Threads for the model's products and loops.
    let threads: Int
    /// The model and its jobs. The worker thread holds this, not the worker: when the last
    /// generator drops the worker, `deinit` stops the thread, which then releases the model.
    private let queue: JobQueue

    /// - Parameters:
    ///   - local: the model; the worker owns it from now on.
    ///   - maxBatch: most generation requests decoded together.
    ///   - threads: threads for the model's products and loops.
    ///   - prefixCacheBytes: memory for the keys and values of shared prompt prefixes (0: none).
    init(_ local: LocalModel, maxBatch: Int, threads: Int, prefixCacheBytes: Int = 0) {
        let queue = JobQueue(model: local, maxBatch: max(1, maxBatch), prefixCacheBytes: prefixCacheBytes)
        self.queue = queue
        self.threads = max(1, threads)
        let count = self.threads
        let thread = Thread { Threading.withThreadCount(count) { Self.serve(queue) } }
        thread.name = "tally.swift-trainer.worker"
        thread.stackSize = 8 << 20
        thread.start()
    }

    deinit { queue.stop() }

    /// Generates a continuation of `prompt` in the running batch.
    /// - Returns: the output, its latency (prefill to last token) and its share of the compute.
    func generate(prompt: [Int], options: GenerationOptions) async throws -> Reply {
        try await withCheckedThrowingContinuation { continuation in
            enqueue(.generate(prompt: prompt, options: options, reply: continuation))
        }
    }

    /// Runs `body` with the model on the worker thread.
    func withModel<T: Sendable>(_ body: @escaping @Sendable (LocalModel) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            enqueue(.run { model in
                do { continuation.resume(returning: try body(model)) } catch { continuation.resume(throwing: error) }
            })
        }
    }

    private func enqueue(_ job: Job) { queue.append(job) }

    /// The model, touched only by the worker thread, and the jobs waiting for it, guarded
    /// by `condition`.
    private final class JobQueue: @unchecked Sendable {
        let model: LocalModel
        let maxBatch: Int
        let prefixCacheBytes: Int
        private let condition = NSCondition()
        private var pending: [Job] = []
        private var stopped = false

        init(model: LocalModel, maxBatch: Int, prefixCacheBytes: Int) {
            self.model = model
            self.maxBatch = maxBatch
            self.prefixCacheBytes = prefixCacheBytes
        }

        func append(_ job: Job) {
            condition.lock()
            pending.append(job)
            condition.signal()
            condition.unlock()
        }

        /// Lets the thread finish once the queue is empty.
        func stop() {
            condition.lock()
            stopped = true
            condition.signal()
            condition.unlock()
        }

        /// Takes every waiting job that is not a generation request and up to `free`
        /// generation requests, in arrival order. Waits for one when `wait` is true and
        /// nothing is waiting; nil once stopped and empty (and `wait`).
        func take(free: Int, wait: Bool) -> [Job]? {
            condition.lock()
            defer { condition.unlock() }
            while pending.isEmpty && wait {
                if stopped { return nil }
                condition.wait()
            }
            var taken: [Job] = []
            var rest: [Job] = []
            var room = free
            for job in pending {
                if case .generate = job {
                    if room > 0 {
                        taken.append(job)
                        room -= 1
                    } else {
                        rest.append(job)
                    }
                } else {
                    taken.append(job)
                }
            }
            pending = rest
            return taken
        }
    }

    /// The worker thread: runs jobs until the worker is dropped.
    private static func serve(_ queue: JobQueue) {
        let local = queue.model
        let tokenizer = local.tokenizer
        let prefixes = queue.prefixCacheBytes > 0 ? PrefixCache(byteLimit: queue.prefixCacheBytes) : nil
        let engine = GenerationEngine(
            model: local.model, maxBatch: queue.maxBatch, prefixCache: prefixes, namespace: local.identity,
            decode: { tokenizer.decode($0, skipSpecialTokens: true) })
        var replies: [Int: CheckedContinuation<Reply, any Error>] = [:]
        var nextID = 0
        func answer(_ done: GenerationEngine.Finished) {
            replies.removeValue(forKey: done.id)?.resume(returning: (done.output, done.latencySeconds, done.computeSeconds))
        }
        while let jobs = queue.take(free: engine.freeSlots, wait: engine.isIdle) {
            for job in jobs {
                switch job {
                case .run(let body):
                    try? body(local)
                case .generate(let prompt, let options, let reply):
                    let id = nextID
                    nextID += 1
                    replies[id] = reply
                    do {
                        if let done = try engine.add(id: id, prompt: prompt, options: options, seed: options.seed) { answer(done) }
                    } catch {
                        replies.removeValue(forKey: id)?.resume(throwing: error)
                    }
                }
            }
            for done in engine.step() { answer(done) }
        }
    }
}

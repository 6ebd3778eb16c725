import Foundation
import TallyCore
import TallyTensor

/// Owns one `LocalModel` on a dedicated thread and serves generation and scoring requests,
/// batching generation requests that arrive together.
///
/// The model (a class with mutable buffers) is touched only on the worker thread; callers
/// talk to it through `submit`, which suspends them without blocking the cooperative pool.
/// This is the audited `@unchecked Sendable` box: the model is confined to `thread`, and the
/// only shared state, the job queue, is guarded by its condition.
///
/// Every job runs with the worker's own thread count (``Threading/withThreadCount(_:_:)``
/// around the whole loop), whatever count its caller runs with.
final class ModelWorker: @unchecked Sendable {
    /// One unit of work and how to answer it.
    private enum Job {
        case generate(prompt: [Int], options: GenerationOptions, reply: CheckedContinuation<(GenerationOutput, elapsed: Double, batch: Int), any Error>)
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
    init(_ local: LocalModel, maxBatch: Int, threads: Int) {
        let queue = JobQueue(model: local, maxBatch: max(1, maxBatch))
        self.queue = queue
        self.threads = max(1, threads)
        let count = self.threads
        let thread = Thread { Threading.withThreadCount(count) { Self.serve(queue) } }
        thread.name = "tally.swift-trainer.worker"
        thread.stackSize = 8 << 20
        thread.start()
    }

    deinit { queue.stop() }

    /// Generates a continuation of `prompt`, batched with other requests of equal options.
    /// - Returns: the output, the wall time of the batch, and the batch size.
    func generate(prompt: [Int], options: GenerationOptions) async throws -> (GenerationOutput, elapsed: Double, batch: Int) {
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
        private let condition = NSCondition()
        private var pending: [Job] = []
        private var stopped = false

        init(model: LocalModel, maxBatch: Int) {
            self.model = model
            self.maxBatch = maxBatch
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

        /// Takes the next job, or the next batch of generation jobs with identical options;
        /// nil once stopped and empty.
        func take() -> [Job]? {
            condition.lock()
            defer { condition.unlock() }
            while pending.isEmpty {
                if stopped { return nil }
                condition.wait()
            }
            let first = pending.removeFirst()
            guard case .generate(_, let options, _) = first else { return [first] }
            var batch = [first]
            var rest: [Job] = []
            for job in pending {
                if batch.count < maxBatch, case .generate(_, let other, _) = job, ModelWorker.sameBatch(options, other) {
                    batch.append(job)
                } else {
                    rest.append(job)
                }
            }
            pending = rest
            return batch
        }
    }

    private static func sameBatch(_ a: GenerationOptions, _ b: GenerationOptions) -> Bool {
        a.maxNewTokens == b.maxNewTokens && a.temperature == b.temperature && a.topP == b.topP
            && a.seed == b.seed && a.stopStrings == b.stopStrings && a.stopTokenIDs == b.stopTokenIDs
    }

    /// The worker thread: runs jobs until the worker is dropped.
    private static func serve(_ queue: JobQueue) {
        let local = queue.model
        while let jobs = queue.take() {
            if jobs.count == 1, case .run(let body) = jobs[0] {
                try? body(local)
                continue
            }
            var prompts: [[Int]] = []
            var replies: [CheckedContinuation<(GenerationOutput, elapsed: Double, batch: Int), any Error>] = []
            var options = GenerationOptions()
            for job in jobs {
                if case .generate(let prompt, let o, let reply) = job {
                    prompts.append(prompt)
                    replies.append(reply)
                    options = o
                }
            }
            let tokenizer = local.tokenizer
            let start = DispatchTime.now().uptimeNanoseconds
            do {
                let outputs = try Generator(model: local.model).generate(
                    prompts: prompts, options: options,
                    decode: { tokenizer.decode($0, skipSpecialTokens: true) })
                let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                for (reply, output) in zip(replies, outputs) {
                    reply.resume(returning: (output, elapsed, prompts.count))
                }
            } catch {
                for reply in replies { reply.resume(throwing: error) }
            }
        }
    }
}

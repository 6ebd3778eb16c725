import Foundation
import TallyCore
import TallyTensor

/// A local model answering Tally's chat requests on the CPU.
///
/// Requests in flight at the same time are decoded together with continuous batching: each
/// joins the running batch between decode steps and leaves it when it finishes, and prompts
/// that start with the same tokens reuse the keys and values of that prefix (a
/// ``PrefixCache`` of `prefixCacheMB` megabytes, keyed by the model's identity so an
/// adapter's rows are never reused for another model; not used with a soft prompt). Each
/// result reports its latency (its prefill to its last token) and its share of the compute
/// time (its prefill plus each decode step's time divided by the requests in the step) as
/// `computeSeconds`, which the cost model bills at the recipe's compute price.
///
/// Generation and scoring run with the generator's own thread count, not the caller's.
public struct LocalTextGenerator: TextGenerator, TextScorer {
    public let identity: String
    let worker: ModelWorker
    let stopTokenIDs: Set<Int>
    /// Longest text scored by `crossEntropy(of:)`, in tokens.
    let maxScoredTokens: Int

    /// Megabytes of prefix cache when a recipe does not say (`prefix_cache_mb`).
    public static let defaultPrefixCacheMB = 128

    /// Threads for the model's matrix products and loops (at least 1).
    public var threads: Int { worker.threads }

    /// Serves `model` with up to `maxBatch` requests decoded together.
    /// - Parameters:
    ///   - model: the model; the generator owns it from now on.
    ///   - maxBatch: most requests decoded together.
    ///   - maxScoredTokens: longest text scored by `crossEntropy(of:)`, in tokens.
    ///   - threads: threads for the model's matrix products and loops.
    ///   - prefixCacheMB: megabytes for the keys and values of shared prompt prefixes (0: off).
    public init(model: LocalModel, maxBatch: Int = 8, maxScoredTokens: Int = 512, threads: Int = 2, prefixCacheMB: Int = LocalTextGenerator.defaultPrefixCacheMB) {
        identity = model.identity
        stopTokenIDs = model.stopTokenIDs
        worker = ModelWorker(model, maxBatch: maxBatch, threads: threads, prefixCacheBytes: max(0, prefixCacheMB) << 20)
        self.maxScoredTokens = maxScoredTokens
    }

    public func generate(_ request: GenerationRequest) async throws -> GenerationResult {
        let messages = request.messages
        let prompt = try await worker.withModel { try $0.promptIDs(messages) }
        let options = GenerationOptions(
            maxNewTokens: request.maxTokens, temperature: request.temperature, topP: request.topP,
            seed: request.seed, stopTokenIDs: stopTokenIDs, stopStrings: request.stop)
        let (output, latency, compute) = try await worker.generate(prompt: prompt, options: options)
        let completion = output.tokens.count
        return GenerationResult(
            text: output.text ?? "",
            usage: TokenUsage(promptTokens: prompt.count, completionTokens: completion),
            latencySeconds: latency, computeSeconds: compute)
    }

    public func crossEntropy(of text: String) async throws -> (nats: Double, tokens: Int) {
        let limit = maxScoredTokens
        return try await worker.withModel { local in
            var ids = local.tokenizer.encode(text, addSpecialTokens: false)
            if let bos = local.tokenizer.bosTokenID, ids.first != bos { ids.insert(bos, at: 0) }
            ids = Array(ids.prefix(min(limit, local.model.config.maxPositions - (local.model.softPrompt?.count ?? 0))))
            guard ids.count >= 2 else { return (0, 0) }
            // The first token is never scored (with a soft prompt the last virtual token
            // would predict it): the same tokens count with and without one.
            let labels = [Tape.ignoreIndex] + ids.dropFirst()
            let loss = local.model.loss(TokenBatch(rows: [ids]), labels: labels, tape: Tape(recording: false))
            return (Double(loss.values.first ?? 0), ids.count - 1)
        }
    }
}

import Dispatch
import TallyCore
import TallyTensor

/// Continuous batching: generation requests join a running batch as they come and leave it
/// as soon as they finish, each with its own options, length and KV-cache slot.
///
/// ``add(id:prompt:options:seed:)`` prefills one request (reusing the keys and values of a
/// cached prefix when there is a ``PrefixCache``) and chooses its first token;
/// ``step()`` decodes one token for every running request in one batched pass. Each request
/// samples with its own seeded ``Sampler``, so what it produces does not depend on what else
/// runs beside it. Not thread-safe: one owner drives it.
///
/// ```swift
/// let engine = GenerationEngine(model: model, maxBatch: 8)
/// var done = try engine.add(id: 0, prompt: ids, options: options, seed: options.seed).map { [$0] } ?? []
/// while !engine.isIdle { done += engine.step() }
/// ```
public final class GenerationEngine {
    /// A request that finished.
    public struct Finished: Sendable {
        /// The id it was added with.
        public let id: Int
        /// What it produced.
        public let output: GenerationOutput
        /// Seconds from the start of its prefill to its last token.
        public let latencySeconds: Double
        /// Its share of the compute: its prefill plus, for every step it took part in, the
        /// step's time divided by the requests in it.
        public let computeSeconds: Double
    }

    private final class Running {
        let id: Int
        let options: GenerationOptions
        var sampler: Sampler
        let slot: Int
        var output = GenerationOutput(tokens: [], text: nil, finishReason: .length)
        /// The last chosen token, not yet run through the model.
        var pending = 0
        var compute: Double = 0
        let start: UInt64

        init(id: Int, options: GenerationOptions, seed: UInt64, slot: Int, start: UInt64) {
            self.id = id
            self.options = options
            sampler = Sampler(temperature: options.temperature, topP: options.topP, seed: seed)
            self.slot = slot
            self.start = start
        }
    }

    /// The model.
    public let model: any CausalLanguageModel
    /// Shared prefixes, or nil.
    public let prefixCache: PrefixCache?
    /// Names the model's weights (and adapter) in the prefix cache.
    public let namespace: String
    private let decode: (([Int]) -> String)?
    private let onToken: ((GeneratedToken) -> Void)?
    private let cache: KVCache
    private var running: [Running] = []

    /// Makes an engine.
    /// - Parameters:
    ///   - model: the model.
    ///   - maxBatch: most requests running at once.
    ///   - prefixCache: shared prefixes (not used while the model has a soft prompt).
    ///   - namespace: names the model's weights in the prefix cache (its identity).
    ///   - decode: turns new token ids into text; needed for stop strings and `text`.
    ///   - onToken: called for every new token (`prompt` is the request's id).
    public init(
        model: any CausalLanguageModel, maxBatch: Int, prefixCache: PrefixCache? = nil, namespace: String = "",
        decode: (([Int]) -> String)? = nil, onToken: ((GeneratedToken) -> Void)? = nil
    ) {
        self.model = model
        self.prefixCache = prefixCache
        self.namespace = namespace
        self.decode = decode
        self.onToken = onToken
        cache = KVCache(config: model.config, slots: max(1, maxBatch))
    }

    /// Requests running now.
    public var runningCount: Int { running.count }
    /// Requests that can be added now.
    public var freeSlots: Int { cache.batch - running.count }
    /// Whether nothing runs.
    public var isIdle: Bool { running.isEmpty }

    /// Checks that a request fits the model.
    /// - Throws: `TallyError` if the prompt is empty or too long for the model.
    public func check(prompt: [Int], options: GenerationOptions) throws {
        if prompt.isEmpty { throw TallyError(code: .invalidData, message: "the prompt has no tokens") }
        let virtual = model.softPrompt?.count ?? 0
        let capacity = virtual + prompt.count + max(options.maxNewTokens, 0)
        if model.config.architecture == .gpt2, capacity > model.config.maxPositions {
            let prefix = virtual > 0 ? "\(virtual) virtual tokens, " : ""
            throw TallyError(code: .invalidData, message: "\(prefix)prompt of \(prompt.count) tokens plus \(options.maxNewTokens) new tokens exceeds the model's \(model.config.maxPositions) positions")
        }
    }

    /// Prefills a request and chooses its first token.
    /// - Parameters:
    ///   - id: names the request in the results.
    ///   - prompt: its token ids.
    ///   - options: its length, sampling and stop conditions.
    ///   - seed: seeds its sampler.
    /// - Returns: the result when the request is already finished, else nil (it runs on).
    /// - Throws: `TallyError` if the prompt does not fit the model or no slot is free.
    public func add(id: Int, prompt: [Int], options: GenerationOptions, seed: UInt64) throws -> Finished? {
        try check(prompt: prompt, options: options)
        let start = DispatchTime.now().uptimeNanoseconds
        if options.maxNewTokens <= 0 {
            return Finished(id: id, output: GenerationOutput(tokens: [], text: nil, finishReason: .length), latencySeconds: 0, computeSeconds: 0)
        }
        guard let slot = cache.freeSlot else {
            throw TallyError(code: .invalidData, message: "all \(cache.batch) generation slots are in use")
        }
        let virtual = model.softPrompt?.count ?? 0
        cache.open(slot: slot, capacity: virtual + prompt.count + options.maxNewTokens)
        let prefixes = model.softPrompt == nil ? prefixCache : nil
        let restored = prefixes?.restore(prompt, namespace: namespace, into: cache, slot: slot) ?? 0
        cache.active = [slot]
        let rest = Array(prompt[restored...])
        let logits = model.nextTokenLogits(TokenBatch(ids: rest, batch: 1, length: rest.count), cache: cache)
        prefixes?.store(prompt, namespace: namespace, from: cache, slot: slot)
        let request = Running(id: id, options: options, seed: seed, slot: slot, start: start)
        request.compute = Self.seconds(since: start)
        if accept(request, logits.data) { return finish(request) }
        running.append(request)
        return nil
    }

    /// Decodes one token for every running request.
    /// - Returns: the requests that finished.
    public func step() -> [Finished] {
        guard !running.isEmpty else { return [] }
        let start = DispatchTime.now().uptimeNanoseconds
        cache.active = running.map(\.slot)
        let ids = running.map(\.pending)
        let logits = model.nextTokenLogits(TokenBatch(ids: ids, batch: ids.count, length: 1), cache: cache, int8Activations: true)
        let share = Self.seconds(since: start) / Double(ids.count)
        let vocab = model.config.vocabSize
        var done: [Finished] = []
        var still: [Running] = []
        for (r, request) in running.enumerated() {
            request.compute += share
            if accept(request, logits.data + r * vocab) { done.append(finish(request)) } else { still.append(request) }
        }
        running = still
        return done
    }

    /// Chooses the request's next token from its logits row.
    /// - Returns: whether the request is finished.
    private func accept(_ r: Running, _ logits: UnsafePointer<Float>) -> Bool {
        let token = r.sampler.next(logits, count: model.config.vocabSize)
        r.pending = token
        r.output.tokens.append(token)
        onToken?(GeneratedToken(prompt: r.id, token: token))
        if r.options.stopTokenIDs.contains(token) {
            r.output.finishReason = .stopToken
            return true
        }
        if !r.options.stopStrings.isEmpty, let decode {
            let text = decode(r.output.tokens)
            if let cut = Generator.firstStop(in: text, stops: r.options.stopStrings) {
                r.output.text = String(text[..<cut])
                r.output.finishReason = .stopString
                return true
            }
        }
        return r.output.tokens.count >= r.options.maxNewTokens
    }

    private func finish(_ r: Running) -> Finished {
        cache.close(slot: r.slot)
        if let decode, r.output.text == nil {
            var tokens = r.output.tokens
            if r.output.finishReason == .stopToken { tokens.removeLast() }
            r.output.text = decode(tokens)
        }
        return Finished(id: r.id, output: r.output, latencySeconds: Self.seconds(since: r.start), computeSeconds: r.compute)
    }

    private static func seconds(since start: UInt64) -> Double {
        Double(DispatchTime.now().uptimeNanoseconds &- start) / 1e9
    }
}

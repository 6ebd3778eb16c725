import Foundation
import TallyCore
import TallyTensor

/// Settings of one generation call.
public struct GenerationOptions: Sendable {
    /// Upper bound on new tokens per prompt.
    public var maxNewTokens: Int
    /// 0 for greedy decoding.
    public var temperature: Double
    /// Nucleus sampling threshold.
    public var topP: Double
    /// Seeds sampling (ignored by greedy decoding).
    public var seed: UInt64
    /// Generation of a prompt stops after any of these tokens (it is not part of the text).
    public var stopTokenIDs: Set<Int>
    /// Generation of a prompt stops before any of these strings (needs a decoder).
    public var stopStrings: [String]

    /// Makes options.
    public init(maxNewTokens: Int = 32, temperature: Double = 0, topP: Double = 1, seed: UInt64 = 0, stopTokenIDs: Set<Int> = [], stopStrings: [String] = []) {
        self.maxNewTokens = maxNewTokens
        self.temperature = temperature
        self.topP = topP
        self.seed = seed
        self.stopTokenIDs = stopTokenIDs
        self.stopStrings = stopStrings
    }
}

/// What generation produced for one prompt.
public struct GenerationOutput: Sendable, Hashable {
    /// Why generation of this prompt ended.
    public enum FinishReason: String, Sendable, Hashable {
        /// A stop token was produced.
        case stopToken = "stop_token"
        /// A stop string appeared.
        case stopString = "stop_string"
        /// `maxNewTokens` were produced.
        case length
    }

    /// The new tokens (a stop token is included, as the last one).
    public var tokens: [Int]
    /// The decoded new text, cut before a stop string or stop token; nil without a decoder.
    public var text: String?
    /// Why it ended.
    public var finishReason: FinishReason
}

/// A token as it is produced.
public struct GeneratedToken: Sendable, Hashable {
    /// Which prompt of the batch.
    public let prompt: Int
    /// The token id.
    public let token: Int
}

/// KV-cached autoregressive generation for several prompts at once.
///
/// Prompts are left-padded into one batch, prefilled in one pass, then decoded one token per
/// step for all unfinished prompts together.
///
/// ```swift
/// let outputs = Generator(model: model).generate(prompts: [ids], options: .init(maxNewTokens: 20))
/// ```
public struct Generator {
    /// The model.
    public let model: any CausalLanguageModel

    /// Makes a generator.
    public init(model: any CausalLanguageModel) {
        self.model = model
    }

    /// Generates continuations of `prompts`.
    /// - Parameters:
    ///   - prompts: token ids of each prompt (each non-empty).
    ///   - options: length, sampling and stop conditions.
    ///   - decode: turns new token ids into text; needed for stop strings and `text`.
    ///   - onToken: called for every new token as soon as it is chosen (streaming).
    /// - Returns: one output per prompt.
    /// - Throws: `TallyError` if a prompt is empty or too long for the model.
    public func generate(
        prompts: [[Int]], options: GenerationOptions, decode: (([Int]) -> String)? = nil,
        onToken: ((GeneratedToken) -> Void)? = nil
    ) throws -> [GenerationOutput] {
        guard !prompts.isEmpty else { return [] }
        if let i = prompts.firstIndex(where: \.isEmpty) {
            throw TallyError(code: .invalidData, message: "prompt \(i) has no tokens")
        }
        let longest = prompts.map(\.count).max() ?? 0
        // A soft prompt's virtual tokens sit in the cache before every prompt.
        let virtual = model.softPrompt?.count ?? 0
        let capacity = virtual + longest + max(options.maxNewTokens, 0)
        if model.config.architecture == .gpt2, capacity > model.config.maxPositions {
            let prefix = virtual > 0 ? "\(virtual) virtual tokens, " : ""
            throw TallyError(code: .invalidData, message: "\(prefix)prompt of \(longest) tokens plus \(options.maxNewTokens) new tokens exceeds the model's \(model.config.maxPositions) positions")
        }
        let vocab = model.config.vocabSize
        let n = prompts.count
        var outputs = (0..<n).map { _ in GenerationOutput(tokens: [], text: nil, finishReason: .length) }
        var finished = [Bool](repeating: options.maxNewTokens <= 0, count: n)
        if options.maxNewTokens <= 0 { return outputs }
        var samplers = (0..<n).map { Sampler(temperature: options.temperature, topP: options.topP, seed: options.seed &+ UInt64($0)) }
        let cache = KVCache(config: model.config, batch: n, capacity: capacity)
        var logits = model.nextTokenLogits(TokenBatch(rows: prompts, padding: .left), cache: cache)
        for _ in 0..<options.maxNewTokens {
            var next = [Int](repeating: 0, count: n)
            for b in 0..<n where !finished[b] {
                let token = samplers[b].next(logits.data + b * vocab, count: vocab)
                next[b] = token
                outputs[b].tokens.append(token)
                onToken?(GeneratedToken(prompt: b, token: token))
                if options.stopTokenIDs.contains(token) {
                    finished[b] = true
                    outputs[b].finishReason = .stopToken
                } else if !options.stopStrings.isEmpty, let decode {
                    let text = decode(outputs[b].tokens)
                    if let cut = Generator.firstStop(in: text, stops: options.stopStrings) {
                        outputs[b].text = String(text[..<cut])
                        finished[b] = true
                        outputs[b].finishReason = .stopString
                    }
                }
                if !finished[b], outputs[b].tokens.count >= options.maxNewTokens { finished[b] = true }
            }
            if finished.allSatisfy({ $0 }) || cache.remaining < 1 { break }
            let mask = finished.map { !$0 }
            logits = model.nextTokenLogits(TokenBatch(ids: next, mask: mask, batch: n, length: 1), cache: cache)
        }
        if let decode {
            for b in 0..<n where outputs[b].text == nil {
                var tokens = outputs[b].tokens
                if outputs[b].finishReason == .stopToken { tokens.removeLast() }
                outputs[b].text = decode(tokens)
            }
        }
        return outputs
    }

    /// The index where the earliest stop string begins, if any occurs.
    static func firstStop(in text: String, stops: [String]) -> String.Index? {
        var best: String.Index?
        for s in stops where !s.isEmpty {
            if let r = text.range(of: s), best.map({ r.lowerBound < $0 }) ?? true {
                best = r.lowerBound
            }
        }
        return best
    }
}

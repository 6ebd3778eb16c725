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
/// Built on ``GenerationEngine``: each prompt is prefilled on its own (reusing a cached prefix
/// when given a ``PrefixCache``), then all unfinished prompts decode one token per step
/// together, each leaving the batch when it finishes. Prompt `i` samples with seed
/// `options.seed &+ i`.
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
    ///   - prefixCache: keys and values of shared prefixes to reuse and fill, or nil.
    ///   - namespace: names the model's weights in `prefixCache`.
    /// - Returns: one output per prompt.
    /// - Throws: `TallyError` if a prompt is empty or too long for the model.
    public func generate(
        prompts: [[Int]], options: GenerationOptions, decode: (([Int]) -> String)? = nil,
        onToken: ((GeneratedToken) -> Void)? = nil, prefixCache: PrefixCache? = nil, namespace: String = ""
    ) throws -> [GenerationOutput] {
        guard !prompts.isEmpty else { return [] }
        if let i = prompts.firstIndex(where: \.isEmpty) {
            throw TallyError(code: .invalidData, message: "prompt \(i) has no tokens")
        }
        let engine = GenerationEngine(model: model, maxBatch: prompts.count, prefixCache: prefixCache, namespace: namespace, decode: decode, onToken: onToken)
        for p in prompts { try engine.check(prompt: p, options: options) }
        var outputs = [GenerationOutput?](repeating: nil, count: prompts.count)
        for (i, p) in prompts.enumerated() {
            if let done = try engine.add(id: i, prompt: p, options: options, seed: options.seed &+ UInt64(i)) {
                outputs[i] = done.output
            }
        }
        while !engine.isIdle {
            for done in engine.step() { outputs[done.id] = done.output }
        }
        return outputs.map { $0 ?? GenerationOutput(tokens: [], text: nil, finishReason: .length) }
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

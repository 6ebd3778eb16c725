import Foundation

/// One message of a chat conversation, as every backend receives it.
public struct ChatMessage: Codable, Sendable, Hashable {
    public enum Role: String, Codable, Sendable, Hashable {
        case system, user, assistant
    }
    public let role: Role
    public let content: String

    public init(role: Role, content: String) {
        self.role = role
        self.content = content
    }

    public static func system(_ text: String) -> ChatMessage { .init(role: .system, content: text) }
    public static func user(_ text: String) -> ChatMessage { .init(role: .user, content: text) }
    public static func assistant(_ text: String) -> ChatMessage { .init(role: .assistant, content: text) }
}

/// What a strategy asks a model for. Its canonical JSON encoding is part of the ledger's
/// cache key, so two equal requests are never paid for twice.
public struct GenerationRequest: Codable, Sendable, Hashable {
    public let messages: [ChatMessage]
    /// Upper bound on generated tokens.
    public let maxTokens: Int
    /// 0 means greedy decoding.
    public let temperature: Double
    public let topP: Double
    /// Generation stops before any of these strings.
    public let stop: [String]
    /// Seed for sampling; ignored by greedy decoding.
    public let seed: UInt64

    public init(
        messages: [ChatMessage], maxTokens: Int = 16, temperature: Double = 0, topP: Double = 1,
        stop: [String] = [], seed: UInt64 = 0
    ) {
        self.messages = messages
        self.maxTokens = maxTokens
        self.temperature = temperature
        self.topP = topP
        self.stop = stop
        self.seed = seed
    }

    enum CodingKeys: String, CodingKey {
        case messages, temperature, stop, seed
        case maxTokens = "max_tokens"
        case topP = "top_p"
    }
}

/// Token counts as the backend reported (hosted) or measured (local) them.
public struct TokenUsage: Codable, Sendable, Hashable {
    public var promptTokens: Int
    public var completionTokens: Int
    /// Prompt tokens served from the provider's prompt cache (billed at the cached price).
    public var cachedPromptTokens: Int

    public init(promptTokens: Int = 0, completionTokens: Int = 0, cachedPromptTokens: Int = 0) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.cachedPromptTokens = cachedPromptTokens
    }

    public static func + (a: TokenUsage, b: TokenUsage) -> TokenUsage {
        TokenUsage(
            promptTokens: a.promptTokens + b.promptTokens,
            completionTokens: a.completionTokens + b.completionTokens,
            cachedPromptTokens: a.cachedPromptTokens + b.cachedPromptTokens)
    }

    enum CodingKeys: String, CodingKey {
        case promptTokens = "prompt_tokens"
        case completionTokens = "completion_tokens"
        case cachedPromptTokens = "cached_prompt_tokens"
    }
}

/// A model's answer to one request, with what it cost to get.
public struct GenerationResult: Codable, Sendable, Hashable {
    public let text: String
    public let usage: TokenUsage
    /// Wall-clock seconds from sending the request to the last token.
    public let latencySeconds: Double
    /// Seconds of local compute spent (local backends); nil for hosted calls.
    public let computeSeconds: Double?
    /// The model snapshot the provider says answered (OpenAI's and Anthropic's `model`
    /// field, e.g. `gpt-4o-2024-08-06` for the alias `gpt-4o`); nil when it reports none.
    /// Stored in the ledger with the call, so a recipe naming a moving alias still records
    /// which model each answer came from.
    public let servedModel: String?

    public init(text: String, usage: TokenUsage, latencySeconds: Double, computeSeconds: Double? = nil, servedModel: String? = nil) {
        self.text = text
        self.usage = usage
        self.latencySeconds = latencySeconds
        self.computeSeconds = computeSeconds
        self.servedModel = servedModel
    }

    enum CodingKeys: String, CodingKey {
        case text, usage
        case latencySeconds = "latency_s"
        case computeSeconds = "compute_s"
        case servedModel = "served_model"
    }
}

/// Anything that turns chat messages into text: a hosted model, a local model, a fine-tuned
/// model, an external plugin.
///
/// ```swift
/// let result = try await generator.generate(GenerationRequest(messages: [.user("Hi")]))
/// print(result.text, result.usage.completionTokens)
/// ```
public protocol TextGenerator: Sendable {
    /// A stable identity of the model behind this generator (backend kind, model name,
    /// adapter hash, …). It is part of every ledger cache key, so it must change whenever
    /// the model's outputs could.
    var identity: String { get }

    /// Answers one request.
    /// - Throws: a `TallyError` (or a plugin error conforming to `LocalizedError`) when the
    ///   backend fails for good; transient failures are retried inside the plugin.
    func generate(_ request: GenerationRequest) async throws -> GenerationResult

    /// Answers several requests; backends that batch (local models) override this.
    func generate(batch requests: [GenerationRequest]) async throws -> [GenerationResult]
}

extension TextGenerator {
    public func generate(batch requests: [GenerationRequest]) async throws -> [GenerationResult] {
        var results: [GenerationResult] = []
        results.reserveCapacity(requests.count)
        for request in requests { results.append(try await generate(request)) }
        return results
    }
}

/// A model that can also score text (local models). Used by the drift probe: the increase
/// in cross-entropy on general text between the base and the adapted model.
public protocol TextScorer: Sendable {
    /// Mean negative log-likelihood (nats per token) of `text` under the model, and the
    /// number of tokens scored.
    func crossEntropy(of text: String) async throws -> (nats: Double, tokens: Int)
}

import Foundation
import TallyCore

/// A model behind an OpenAI-compatible Chat Completions endpoint (`POST {base}/chat/completions`):
/// OpenAI itself, or vLLM, Ollama, llama.cpp's server, Together, Groq, OpenRouter, … by
/// `base_url`.
public struct OpenAIChatGenerator: TextGenerator {
    /// `openai|<base_url>|<model>`: part of every ledger cache key; never holds the key.
    public let identity: String
    /// The model id sent in each request.
    public let model: String
    let client: HTTPClient
    let baseURL: URL
    let key: APIKey?
    let tokenLimitField: String

    /// - Parameters:
    ///   - model: the model id sent in each request.
    ///   - baseURL: e.g. `https://api.openai.com/v1`.
    ///   - key: sent as `Authorization: Bearer`; nil for servers without authentication.
    ///   - tokenLimitField: `max_tokens` or `max_completion_tokens`.
    public init(model: String, baseURL: URL, key: APIKey?, client: HTTPClient, tokenLimitField: String) {
        self.model = model
        self.baseURL = baseURL
        self.key = key
        self.client = client
        self.tokenLimitField = tokenLimitField
        identity = "openai|\(baseURL.absoluteString)|\(model)"
    }

    public func generate(_ request: GenerationRequest) async throws -> GenerationResult {
        let body = ChatCompletionRequest(model: model, request: request, tokenLimitField: tokenLimitField)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var headers: [(name: String, value: String)] = [("Content-Type", "application/json"), ("Accept", "application/json")]
        if let key { headers.append(("Authorization", "Bearer \(key.value)")) }
        let http = HTTPRequest(method: "POST", url: endpoint(baseURL, "/chat/completions"), headers: headers, body: try encoder.encode(body))
        let estimate = request.messages.reduce(0) { $0 + estimateTokens($1.content) + 4 } + request.maxTokens
        return try await client.send(http, estimatedTokens: estimate) { response in
            let completion = try decodeJSON(ChatCompletionResponse.self, from: response)
            guard let choice = completion.choices.first else { throw AttemptFailure.badResponse("the answer has no choices") }
            let usage = completion.usage.map {
                TokenUsage(promptTokens: $0.promptTokens ?? 0, completionTokens: $0.completionTokens ?? 0, cachedPromptTokens: $0.promptTokensDetails?.cachedTokens ?? 0)
            } ?? TokenUsage()
            let text = choice.message?.content ?? choice.message?.refusal ?? ""
            let result = GenerationResult(text: text, usage: usage, latencySeconds: response.seconds, servedModel: completion.model)
            return (result, usage.promptTokens + usage.completionTokens)
        }
    }
}

/// The request body of Chat Completions.
struct ChatCompletionRequest: Encodable {
    let model: String
    let request: GenerationRequest
    let tokenLimitField: String

    private struct Key: CodingKey {
        let stringValue: String
        var intValue: Int? { nil }
        init(_ string: String) { stringValue = string }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(model, forKey: Key("model"))
        try container.encode(request.messages, forKey: Key("messages"))
        try container.encode(request.maxTokens, forKey: Key(tokenLimitField))
        try container.encode(request.temperature, forKey: Key("temperature"))
        if request.topP != 1 { try container.encode(request.topP, forKey: Key("top_p")) }
        if !request.stop.isEmpty { try container.encode(request.stop, forKey: Key("stop")) }
        if request.temperature > 0 { try container.encode(request.seed, forKey: Key("seed")) }
        try container.encode(1, forKey: Key("n"))
    }
}

/// The parts of a Chat Completions answer Tally reads.
struct ChatCompletionResponse: Decodable {
    struct Choice: Decodable {
        struct Message: Decodable {
            let content: String?
            let refusal: String?
        }
        let message: Message?
    }
    struct Usage: Decodable {
        struct PromptDetails: Decodable {
            let cachedTokens: Int?
            enum CodingKeys: String, CodingKey { case cachedTokens = "cached_tokens" }
        }
        let promptTokens: Int?
        let completionTokens: Int?
        let promptTokensDetails: PromptDetails?
        enum CodingKeys: String, CodingKey {
            case promptTokens = "prompt_tokens"
            case completionTokens = "completion_tokens"
            case promptTokensDetails = "prompt_tokens_details"
        }
    }
    let choices: [Choice]
    let usage: Usage?
    /// The model snapshot that answered.
    let model: String?
}

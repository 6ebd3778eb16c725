import Foundation
import TallyCore

/// A Claude model behind Anthropic's Messages API (`POST {base}/v1/messages`).
public struct AnthropicGenerator: TextGenerator {
    /// `anthropic|<base_url>|<model>|<version>`: part of every ledger cache key; never holds the key.
    public let identity: String
    /// The model id sent in each request.
    public let model: String
    let client: HTTPClient
    let baseURL: URL
    let key: APIKey?
    let version: String

    /// - Parameters:
    ///   - model: e.g. `claude-3-5-haiku-latest`.
    ///   - baseURL: e.g. `https://api.anthropic.com`.
    ///   - key: sent as `x-api-key`.
    ///   - version: the `anthropic-version` header.
    public init(model: String, baseURL: URL, key: APIKey?, client: HTTPClient, version: String) {
        self.model = model
        self.baseURL = baseURL
        self.key = key
        self.client = client
        self.version = version
        identity = "anthropic|\(baseURL.absoluteString)|\(model)|\(version)"
    }

    public func generate(_ request: GenerationRequest) async throws -> GenerationResult {
        let body = MessagesRequest(model: model, request: request)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var headers: [(name: String, value: String)] = [
            ("Content-Type", "application/json"), ("Accept", "application/json"), ("anthropic-version", version),
        ]
        if let key { headers.append(("x-api-key", key.value)) }
        let http = HTTPRequest(method: "POST", url: endpoint(baseURL, "/v1/messages"), headers: headers, body: try encoder.encode(body))
        let estimate = request.messages.reduce(0) { $0 + estimateTokens($1.content) + 4 } + request.maxTokens
        return try await client.send(http, estimatedTokens: estimate) { response in
            let message = try decodeJSON(MessagesResponse.self, from: response)
            let text = message.content.filter { $0.type == "text" }.compactMap(\.text).joined()
            let usage = message.usage
            let cacheRead = usage.cacheReadInputTokens ?? 0
            let prompt = usage.inputTokens + (usage.cacheCreationInputTokens ?? 0) + cacheRead
            let tokens = TokenUsage(promptTokens: prompt, completionTokens: usage.outputTokens, cachedPromptTokens: cacheRead)
            return (GenerationResult(text: text, usage: tokens, latencySeconds: response.seconds, servedModel: message.model), prompt + usage.outputTokens)
        }
    }
}

/// The request body of the Messages API: system messages go to `system`, the rest alternate
/// between user and assistant.
struct MessagesRequest: Encodable {
    let model: String
    let request: GenerationRequest

    private struct Message: Encodable {
        let role: String
        let content: String
    }

    enum CodingKeys: String, CodingKey {
        case model, system, messages, temperature
        case maxTokens = "max_tokens"
        case topP = "top_p"
        case stopSequences = "stop_sequences"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(model, forKey: .model)
        try container.encode(request.maxTokens, forKey: .maxTokens)
        let system = request.messages.filter { $0.role == .system }.map(\.content).joined(separator: "\n\n")
        if !system.isEmpty { try container.encode(system, forKey: .system) }
        // Consecutive messages of one role are merged: the API requires alternation.
        var turns: [Message] = []
        for message in request.messages where message.role != .system {
            let role = message.role == .assistant ? "assistant" : "user"
            if let last = turns.last, last.role == role {
                turns[turns.count - 1] = Message(role: role, content: last.content + "\n\n" + message.content)
            } else {
                turns.append(Message(role: role, content: message.content))
            }
        }
        try container.encode(turns, forKey: .messages)
        try container.encode(request.temperature, forKey: .temperature)
        if request.topP != 1 { try container.encode(request.topP, forKey: .topP) }
        if !request.stop.isEmpty { try container.encode(request.stop, forKey: .stopSequences) }
    }
}

/// The parts of a Messages API answer Tally reads.
struct MessagesResponse: Decodable {
    struct Block: Decodable {
        let type: String
        let text: String?
    }
    struct Usage: Decodable {
        let inputTokens: Int
        let outputTokens: Int
        let cacheCreationInputTokens: Int?
        let cacheReadInputTokens: Int?
        enum CodingKeys: String, CodingKey {
            case inputTokens = "input_tokens"
            case outputTokens = "output_tokens"
            case cacheCreationInputTokens = "cache_creation_input_tokens"
            case cacheReadInputTokens = "cache_read_input_tokens"
        }
    }
    let content: [Block]
    let usage: Usage
    /// The model that answered.
    let model: String?
}

import Foundation
import TallyCore

/// An embedding model behind an OpenAI-compatible Embeddings endpoint
/// (`POST {base}/embeddings`): OpenAI's `text-embedding-3-small`, or vLLM, Ollama, llama.cpp's
/// server, … by `base_url`. The `openai` plugin's backends return one as `Backend.embedder`.
public struct OpenAIEmbedder: TextEmbedder {
    /// `openai-embeddings|<base_url>|<model>`: part of every cached vector's ledger key;
    /// never holds the key.
    public let identity: String
    public let model: String
    public let maxBatchSize: Int
    let client: HTTPClient
    let baseURL: URL
    let key: APIKey?

    /// - Parameters:
    ///   - model: the embedding model id sent in each request.
    ///   - baseURL: e.g. `https://api.openai.com/v1`.
    ///   - key: sent as `Authorization: Bearer`; nil for servers without authentication.
    ///   - maxBatchSize: texts per request.
    public init(model: String, baseURL: URL, key: APIKey?, client: HTTPClient, maxBatchSize: Int = 64) {
        self.model = model
        self.baseURL = baseURL
        self.key = key
        self.client = client
        self.maxBatchSize = max(1, maxBatchSize)
        identity = "openai-embeddings|\(baseURL.absoluteString)|\(model)"
    }

    public func embed(_ texts: [String]) async throws -> Embeddings {
        guard !texts.isEmpty else { return Embeddings(vectors: [], promptTokens: 0) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var headers: [(name: String, value: String)] = [("Content-Type", "application/json"), ("Accept", "application/json")]
        if let key { headers.append(("Authorization", "Bearer \(key.value)")) }
        let body = try encoder.encode(EmbeddingRequest(model: model, input: texts))
        let http = HTTPRequest(method: "POST", url: endpoint(baseURL, "/embeddings"), headers: headers, body: body)
        let estimate = texts.reduce(0) { $0 + estimateTokens($1) }
        return try await client.send(http, estimatedTokens: estimate) { response in
            let answer = try decodeJSON(EmbeddingResponse.self, from: response)
            guard answer.data.count == texts.count else {
                throw AttemptFailure.badResponse("the answer has \(answer.data.count) embeddings for \(texts.count) inputs")
            }
            // Items carry their input's index; order by it rather than trusting the order.
            var vectors = [[Float]?](repeating: nil, count: texts.count)
            for (position, item) in answer.data.enumerated() {
                let index = item.index ?? position
                guard vectors.indices.contains(index), vectors[index] == nil else {
                    throw AttemptFailure.badResponse("the answer's embedding index \(index) is out of range or repeated")
                }
                vectors[index] = item.embedding
            }
            let tokens = answer.usage?.promptTokens ?? answer.usage?.totalTokens ?? 0
            return (Embeddings(vectors: vectors.map { $0 ?? [] }, promptTokens: tokens), tokens)
        }
    }
}

/// The request body of Embeddings.
struct EmbeddingRequest: Encodable {
    let model: String
    let input: [String]
    let encodingFormat = "float"

    enum CodingKeys: String, CodingKey {
        case model, input
        case encodingFormat = "encoding_format"
    }
}

/// The parts of an Embeddings answer Tally reads.
struct EmbeddingResponse: Decodable {
    struct Item: Decodable {
        let embedding: [Float]
        let index: Int?
    }
    struct Usage: Decodable {
        let promptTokens: Int?
        let totalTokens: Int?
        enum CodingKeys: String, CodingKey {
            case promptTokens = "prompt_tokens"
            case totalTokens = "total_tokens"
        }
    }
    let data: [Item]
    let usage: Usage?
}

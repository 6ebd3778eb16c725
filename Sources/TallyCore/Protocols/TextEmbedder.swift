import Foundation

/// Vectors for a batch of texts, and the tokens the provider counted for them.
public struct Embeddings: Sendable, Hashable {
    /// One vector per text, in the order asked.
    public let vectors: [[Float]]
    /// Input tokens of the whole batch, as the provider reported (or the model counted) them.
    public let promptTokens: Int

    public init(vectors: [[Float]], promptTokens: Int) {
        self.vectors = vectors
        self.promptTokens = promptTokens
    }
}

/// A model that turns text into vectors: the capability `rag` strategies with
/// `retriever: embeddings` use. A backend that can embed returns one in `Backend.embedder`,
/// and its plugin says so in `BackendPlugin.canEmbed(_:)`. The built-in hosted
/// OpenAI-compatible provider implements it with `POST /v1/embeddings`.
///
/// ```swift
/// let result = try await embedder.embed(["a cat", "a dog"])
/// print(result.vectors.count, result.promptTokens)
/// ```
public protocol TextEmbedder: Sendable {
    /// A stable identity of the embedding model (provider, model name); part of the ledger key
    /// of every cached vector, so it must change whenever the vectors could.
    var identity: String { get }
    /// The most texts one `embed` call may carry. Default: 64.
    var maxBatchSize: Int { get }
    /// Embeds `texts` (at most `maxBatchSize`).
    /// - Throws: a `TallyError` (or a plugin error conforming to `LocalizedError`) when the
    ///   backend fails for good; transient failures are retried inside the plugin.
    func embed(_ texts: [String]) async throws -> Embeddings
}

extension TextEmbedder {
    public var maxBatchSize: Int { 64 }
}

/// Cosine similarity of two vectors (0 when either is zero or their lengths differ).
public func cosineSimilarity(_ a: [Float], _ b: [Float]) -> Double {
    guard a.count == b.count, !a.isEmpty else { return 0 }
    var dot = 0.0, normA = 0.0, normB = 0.0
    for index in a.indices {
        let x = Double(a[index]), y = Double(b[index])
        dot += x * y
        normA += x * x
        normB += y * y
    }
    guard normA > 0, normB > 0 else { return 0 }
    return dot / (normA.squareRoot() * normB.squareRoot())
}

/// An embedder a strategy may use during `Strategy.prepared(for:services:)`, with every
/// vector cached in the ledger (keyed by the embedder's identity and the text), so that a
/// rerun embeds nothing, and with its price and data egress for the report.
public struct EmbeddingService: Sendable {
    /// The recipe backend that embeds.
    public let backend: String
    public let embedder: any TextEmbedder
    /// USD per million embedded tokens (the backend's `price.input_per_mtok`).
    public let pricePerMTok: Double
    /// Whether texts sent to this embedder leave the machine.
    public let dataLeavesMachine: Bool
    let ledger: Ledger

    public init(backend: String, embedder: any TextEmbedder, pricePerMTok: Double, dataLeavesMachine: Bool, ledger: Ledger) {
        self.backend = backend
        self.embedder = embedder
        self.pricePerMTok = pricePerMTok
        self.dataLeavesMachine = dataLeavesMachine
        self.ledger = ledger
    }

    /// What `embed` returns: one vector per text, the tokens all of them count (cached
    /// ones included: what embedding them costs), and how many texts were sent to the
    /// embedder now (0 on a rerun).
    public struct Result: Sendable {
        public let vectors: [[Float]]
        public let tokens: Int
        public let embedded: Int
    }

    /// Vectors for `texts`, from the ledger where they are cached, from the embedder (in
    /// batches of `maxBatchSize`) where not. A batch's tokens are attributed to its texts in
    /// proportion to their length, so each cached vector carries its share.
    /// - Throws: `TallyError(.backend)` when the embedder fails or returns the wrong number
    ///   of vectors; `TallyError(.ledger)` when the cache cannot be read or written.
    public func embed(_ texts: [String], phase: String, progress: @escaping @Sendable (ProgressEvent) -> Void) async throws -> Result {
        var vectors = [[Float]?](repeating: nil, count: texts.count)
        var tokens = [Int](repeating: 0, count: texts.count)
        var pendingByText: [String: [Int]] = [:]
        var pendingOrder: [String] = []
        let keys = texts.map { Ledger.embeddingKey(identity: embedder.identity, text: $0) }
        for index in texts.indices {
            if let cached = try ledger.cachedEmbedding(key: keys[index]) {
                vectors[index] = cached.vector
                tokens[index] = cached.tokens
            } else {
                if pendingByText[texts[index]] == nil { pendingOrder.append(texts[index]) }
                pendingByText[texts[index], default: []].append(index)
            }
        }
        progress(.started(phase: phase, total: texts.count))
        var done = texts.count - pendingByText.values.reduce(0) { $0 + $1.count }
        if done > 0 { progress(.advanced(phase: phase, completed: done, total: texts.count, detail: "\(done) cached")) }
        let size = max(1, embedder.maxBatchSize)
        var start = 0
        while start < pendingOrder.count {
            try Task.checkCancellation()
            let batch = Array(pendingOrder[start..<min(start + size, pendingOrder.count)])
            let result: Embeddings
            do {
                result = try await embedder.embed(batch)
            } catch let error as TallyError {
                throw error
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                throw TallyError(code: .backend, message: "embedding backend '\(backend)' failed: \(error.localizedDescription)", underlying: error)
            }
            guard result.vectors.count == batch.count else {
                throw TallyError(code: .backend, message: "embedding backend '\(backend)' returned \(result.vectors.count) vectors for \(batch.count) texts")
            }
            let shares = Self.shares(of: result.promptTokens, among: batch)
            for (offset, text) in batch.enumerated() {
                let key = Ledger.embeddingKey(identity: embedder.identity, text: text)
                try ledger.recordEmbedding(key: key, identity: embedder.identity, vector: result.vectors[offset], tokens: shares[offset])
                for index in pendingByText[text] ?? [] {
                    vectors[index] = result.vectors[offset]
                    tokens[index] = shares[offset]
                    done += 1
                }
            }
            progress(.advanced(phase: phase, completed: done, total: texts.count, detail: nil))
            start += size
        }
        progress(.finished(phase: phase))
        return Result(vectors: vectors.map { $0 ?? [] }, tokens: tokens.reduce(0, +), embedded: pendingOrder.count)
    }

    /// `total` split over `texts` in proportion to their length in characters (the last
    /// takes the rounding remainder).
    static func shares(of total: Int, among texts: [String]) -> [Int] {
        guard !texts.isEmpty else { return [] }
        let lengths = texts.map { max(1, $0.count) }
        let sum = lengths.reduce(0, +)
        var shares = lengths.map { Int((Double(total) * Double($0) / Double(sum)).rounded(.down)) }
        shares[shares.count - 1] += total - shares.reduce(0, +)
        return shares
    }
}

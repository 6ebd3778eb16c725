import Foundation

/// What a retrieving strategy (`rag`) did for the test questions: what it retrieved, how
/// often the document holding the answer was among it, and what embedding cost. Stored with
/// the strategy's measurements; the cost model prices the embedding tokens and reports show
/// the rest.
public struct RetrievalMeasurement: Codable, Sendable, Hashable {
    /// `bm25` or `embeddings`.
    public let retriever: String
    /// Chunks retrieved per question (at most).
    public let k: Int
    /// Documents and chunks in the index.
    public let documents: Int
    public let chunks: Int
    /// Test questions retrieved for.
    public let questions: Int
    /// Mean length of the retrieved chunks put into one prompt, in `TextPieces` tokens.
    public let meanContextTokens: Double
    /// recall@k: the fraction of questions whose answer document (named by the data) is
    /// among the retrieved chunks' documents; nil when the data names none.
    public let recall: Double?
    /// Questions recall@k was measured on (those whose row names an answer document).
    public let recallQuestions: Int
    /// The recipe backend that embedded (retriever `embeddings`), else nil.
    public let embedder: String?
    /// Tokens embedded once to index the corpus (counted even when the vectors came from the
    /// ledger: what indexing costs).
    public let indexEmbeddingTokens: Int
    /// Tokens embedded for the questions, all of them together.
    public let queryEmbeddingTokens: Int
    /// USD per million embedded tokens (the embedding backend's `input_per_mtok`).
    public let embeddingPerMTok: Double
    /// Whether corpus text (and the questions) leave this machine to be embedded.
    public let embedderLeavesMachine: Bool

    public init(retriever: String, k: Int, documents: Int, chunks: Int, questions: Int, meanContextTokens: Double, recall: Double?, recallQuestions: Int,
                embedder: String? = nil, indexEmbeddingTokens: Int = 0, queryEmbeddingTokens: Int = 0, embeddingPerMTok: Double = 0, embedderLeavesMachine: Bool = false) {
        self.retriever = retriever
        self.k = k
        self.documents = documents
        self.chunks = chunks
        self.questions = questions
        self.meanContextTokens = meanContextTokens
        self.recall = recall
        self.recallQuestions = recallQuestions
        self.embedder = embedder
        self.indexEmbeddingTokens = indexEmbeddingTokens
        self.queryEmbeddingTokens = queryEmbeddingTokens
        self.embeddingPerMTok = embeddingPerMTok
        self.embedderLeavesMachine = embedderLeavesMachine
    }

    /// Embedding tokens per question (what each request embeds).
    public var queryEmbeddingTokensPerQuestion: Double {
        questions > 0 ? Double(queryEmbeddingTokens) / Double(questions) : 0
    }

    enum CodingKeys: String, CodingKey {
        case retriever, k, documents, chunks, questions, recall, embedder
        case meanContextTokens = "mean_context_tokens"
        case recallQuestions = "recall_questions"
        case indexEmbeddingTokens = "index_embedding_tokens"
        case queryEmbeddingTokens = "query_embedding_tokens"
        case embeddingPerMTok = "embedding_per_mtok"
        case embedderLeavesMachine = "embedder_leaves_machine"
    }

    /// One sentence for reports.
    public func summary(strategy: String, corpusLeavesMachine: Bool) -> String {
        var text = "\(strategy) retrieves the top \(k) of \(chunks) chunks (\(documents) documents, \(retriever)) per question: \(String(format: "%.1f", meanContextTokens)) context tokens on average"
        if let recall {
            text += "; recall@\(k) \(String(format: "%.1f", recall * 100))% (the answer's document was retrieved for \(Int((recall * Double(recallQuestions)).rounded())) of \(recallQuestions) questions)"
        }
        if let embedder {
            text += "; embedding on backend '\(embedder)': \(indexEmbeddingTokens) tokens once for the index and \(String(format: "%.1f", queryEmbeddingTokensPerQuestion)) per question, priced in its costs"
        }
        text += ". Corpus text leaves this machine: \(corpusLeavesMachine ? "yes" : "no")."
        return text
    }
}

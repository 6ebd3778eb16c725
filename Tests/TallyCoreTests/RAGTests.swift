import Foundation
import Synchronization
import TallyCore
import Testing

@Suite("Retrieval: corpus, chunks, BM25, embeddings cache")
struct RAGTests {
    @Test("text pieces are letter/digit runs and single punctuation marks")
    func pieces() {
        #expect(TextPieces.count("don't stop!") == 5)
        #expect(TextPieces.count("  ") == 0)
        #expect(TextPieces.count("v2.0, 3 items") == 6)
    }

    @Test("chunks hold at most size pieces, overlap by overlap pieces, and keep the text's own spacing")
    func chunking() throws {
        let text = (1...10).map { "w\($0)" }.joined(separator: "  ")
        let chunks = try Chunker(size: 4, overlap: 1).chunks(of: [CorpusDocument(id: "d", text: text)])
        #expect(chunks.map(\.text) == ["w1  w2  w3  w4", "w4  w5  w6  w7", "w7  w8  w9  w10"])
        #expect(chunks.map(\.index) == [0, 1, 2] && chunks.allSatisfy { $0.documentID == "d" && $0.tokens == 4 })
        let short = try Chunker(size: 50, overlap: 10).chunks(of: [CorpusDocument(id: "a", text: "one two"), CorpusDocument(id: "b", text: " ")])
        #expect(short.map(\.text) == ["one two"])
        // The last window is not repeated when the text ends inside the overlap.
        let exact = try Chunker(size: 3, overlap: 1).chunks(of: [CorpusDocument(id: "d", text: "a b c d e")])
        #expect(exact.map(\.text) == ["a b c", "c d e"])
    }

    @Test("top k: best first, ties by position, below the minimum left out")
    func topK() {
        #expect(TopK.indices(of: [0.1, 0.5, 0.5, 0.9, 0], k: 3) == [3, 1, 2])
        #expect(TopK.indices(of: [0, 2, 0], k: 3, minimum: .leastNonzeroMagnitude) == [1])
        #expect(TopK.indices(of: [1, 2], k: 0).isEmpty)
        let bm25 = BM25(documents: ["cats purr", "dogs bark loudly", "a cat and a dog"])
        #expect(bm25.top(2, for: "dogs bark") == [1])
    }

    @Test("a corpus folder reads JSONL rows, text and Markdown files with their ids; bad paths and rows name what to fix")
    func corpus() throws {
        let root = try Fixtures.workspace()
        let folder = root.appendingPathComponent("kb/sub", isDirectory: true)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try "# Title\nSome words.".write(to: root.appendingPathComponent("kb/a.md"), atomically: true, encoding: .utf8)
        try "Plain text.".write(to: folder.appendingPathComponent("b.txt"), atomically: true, encoding: .utf8)
        try "{\"id\": \"r1\", \"body\": \"first row\"}\n{\"body\": \"second row\"}\n".write(to: root.appendingPathComponent("kb/rows.jsonl"), atomically: true, encoding: .utf8)
        try "ignored".write(to: root.appendingPathComponent("kb/image.png"), atomically: true, encoding: .utf8)
        let corpus = try Corpus.load(paths: ["kb"], relativeTo: root, textField: "body", idField: "id")
        #expect(corpus.documents.map(\.id) == ["a.md", "r1", "kb/rows.jsonl:2", "sub/b.txt"])
        #expect(corpus.documents.first?.text == "# Title\nSome words.")
        #expect(try Corpus.load(paths: ["kb"], relativeTo: root, textField: "body", idField: "id").digest == corpus.digest)

        #expect(throws: TallyError.self) { try Corpus.load(paths: ["nowhere"], relativeTo: root, textField: "text", idField: "id") }
        do {
            _ = try Corpus.load(paths: ["kb/rows.jsonl"], relativeTo: root, textField: "text", idField: "id")
            Issue.record("a row without the text field was accepted")
        } catch let error as TallyError {
            #expect(error.message.contains("no 'text' field") && error.message.contains("corpus_text_field"))
            #expect(error.location?.line == 1)
        }
    }

    @Test("a rag strategy puts the retrieved chunks into the user message, best first, and measures recall@k")
    func ragPrompt() async throws {
        let root = try Fixtures.workspace()
        try "{\"id\": \"zorp\", \"text\": \"zorp means terrible\"}\n{\"id\": \"blick\", \"text\": \"blick means wonderful\"}\n".write(to: root.appendingPathComponent("kb.jsonl"), atomically: true, encoding: .utf8)
        let task = TaskSpec(instruction: "Sentiment?", input: "Review: {text}", target: "label", labels: ["positive", "negative"], metric: "accuracy")
        let spec = StrategySpec(name: "rag", kind: "rag", backend: "b", settings: StrategySettings(["corpus": .list(["kb.jsonl"]), "k": .int(1), "answer_doc_field": .string("doc")]))
        let strategy = try StrategyCatalog.builtIn.make(spec, context: StrategyContext(task: task, train: [], recipeDirectory: root))
        let question = Example(id: "1", fields: ["text": "so zorp", "label": "negative", "doc": "zorp"], location: SourceLocation(file: "t"))
        let other = Example(id: "2", fields: ["text": "so blick", "label": "positive", "doc": "zorp"], location: SourceLocation(file: "t"))
        let user = try #require(strategy.messages(for: question).last?.content)
        #expect(user == "Relevant passages:\n[1] zorp means terrible\n\nReview: so zorp")
        let prepared = try await strategy.prepared(for: [question, other], services: StrategyServices())
        let retrieval = try #require(prepared.retrieval)
        #expect(retrieval.recall == 0.5 && retrieval.recallQuestions == 2 && retrieval.meanContextTokens == 3)
        #expect(prepared.messages(for: question) == strategy.messages(for: question))

        // A context template with {retrieved} places the passages; the task's fields still render.
        let placed = StrategySpec(name: "rag", kind: "rag", backend: "b", settings: StrategySettings(["corpus": .list(["kb.jsonl"]), "k": .int(1), "context": .string("Notes:\n{retrieved}\n(end)")]))
        let custom = try StrategyCatalog.builtIn.make(placed, context: StrategyContext(task: task, train: [], recipeDirectory: root))
        #expect(custom.messages(for: question).last?.content == "Notes:\nRelevant passages:\n[1] zorp means terrible\n(end)\n\nReview: so zorp")
    }

    /// Counts what it is asked to embed; vectors by word.
    final class CountingEmbedder: TextEmbedder {
        let identity = "counting"
        let maxBatchSize = 2
        let asked = Mutex<[String]>([])
        func embed(_ texts: [String]) async throws -> Embeddings {
            asked.withLock { $0 += texts }
            return Embeddings(vectors: texts.map { [Float($0.count), 1] }, promptTokens: texts.reduce(0) { $0 + TextPieces.count($1) })
        }
    }

    @Test("embeddings are cached in the ledger: a second pass embeds nothing and counts the same tokens")
    func embeddingCache() async throws {
        let ledger = try Ledger(path: try Fixtures.workspace().appendingPathComponent("home/ledger.sqlite"))
        let embedder = CountingEmbedder()
        let service = EmbeddingService(backend: "emb", embedder: embedder, pricePerMTok: 0.02, dataLeavesMachine: true, ledger: ledger)
        let texts = ["one two", "three", "one two", "four five six"]
        let first = try await service.embed(texts, phase: "embed", progress: { _ in })
        #expect(first.embedded == 3)
        #expect(embedder.asked.withLock { $0 } == ["one two", "three", "four five six"])
        #expect(first.vectors.map { $0.first } == [7, 5, 7, 13])
        let second = try await service.embed(texts, phase: "embed", progress: { _ in })
        #expect(second.embedded == 0 && second.vectors == first.vectors && second.tokens == first.tokens)
        #expect(embedder.asked.withLock { $0.count } == 3)
        #expect(try ledger.embeddingCount() == 3)
        #expect(cosineSimilarity([1, 0], [2, 0]) == 1 && cosineSimilarity([1, 0], [0, 3]) == 0 && cosineSimilarity([0, 0], [1, 1]) == 0)
    }
}

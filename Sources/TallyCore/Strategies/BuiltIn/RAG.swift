import Foundation

// The built-in `rag` kind: retrieval-augmented prompting, written against the public
// `StrategyKind` API only. It leaves weights untouched.

/// `rag`: each question retrieves the top `k` chunks of a corpus (BM25, or cosine similarity
/// of embeddings from a backend that can embed) into the prompt's context.
public struct RAGKind: StrategyKind {
    /// The template field the retrieved passages fill.
    public static let retrievedField = "retrieved"
    public static let defaultChunkTokens = 200
    public static let defaultChunkOverlap = 20
    public static let defaultK = 3
    public enum Retriever: String, CaseIterable, Sendable {
        case bm25, embeddings
    }

    public let name = "rag"
    public let summary = "retrieves the top k chunks of a corpus (BM25 or embeddings) into the prompt's context"

    public var keys: [StrategyKey] {
        [
            .strings("corpus", help: "files or folders (relative to the recipe): JSONL rows, plain text, Markdown"),
            .string("corpus_text_field", default: "text", help: "the JSONL field holding a document's text"),
            .string("corpus_id_field", default: "id", help: "the JSONL field holding a document's id (else file:line; text files: their path)"),
            .int("chunk_tokens", default: Self.defaultChunkTokens, min: 1, max: 100_000, help: "chunk size in tokens (runs of letters/digits and single punctuation marks)"),
            .int("chunk_overlap", default: Self.defaultChunkOverlap, min: 0, help: "tokens shared by consecutive chunks of a document (below chunk_tokens)"),
            .int("k", default: Self.defaultK, min: 1, max: 100, help: "chunks retrieved per question"),
            .choice("retriever", Retriever.allCases.map(\.rawValue), default: Retriever.bm25.rawValue, help: "BM25 (built in) or cosine similarity of embeddings"),
            .string("embedder", help: "the recipe backend that embeds (retriever: embeddings); its model is the embedding model"),
            .string("answer_doc_field", help: "test-row field naming the document that holds the answer, for recall@k"),
        ] + PromptKeys.keys
    }

    public init() {}

    static func retriever(_ spec: StrategySpec) -> Retriever {
        spec.settings.string("retriever").flatMap(Retriever.init(rawValue:)) ?? .bm25
    }

    static func chunker(_ spec: StrategySpec) -> Chunker {
        Chunker(size: spec.settings.int("chunk_tokens") ?? defaultChunkTokens, overlap: spec.settings.int("chunk_overlap") ?? defaultChunkOverlap)
    }

    static func textField(_ spec: StrategySpec) -> String { spec.settings.string("corpus_text_field") ?? "text" }
    static func idField(_ spec: StrategySpec) -> String { spec.settings.string("corpus_id_field") ?? "id" }

    static func corpus(_ spec: StrategySpec, directory: URL) throws -> Corpus {
        try Corpus.load(paths: spec.settings.strings("corpus") ?? [], relativeTo: directory, textField: textField(spec), idField: idField(spec))
    }

    /// The chunked, indexed corpus: from `cache` when it holds an index of the corpus files'
    /// current contents and these settings, else built (and stored there).
    static func index(_ spec: StrategySpec, directory: URL, cache: URL?) throws -> (index: CorpusIndex, source: CorpusIndexCache.Source) {
        let files = try Corpus.files(paths: spec.settings.strings("corpus") ?? [], relativeTo: directory)
        guard let cache else {
            return (try CorpusIndex.build(Corpus.load(files: files, textField: textField(spec), idField: idField(spec)), chunker: chunker(spec)), .built)
        }
        return try CorpusIndexCache(root: cache).index(files: files, chunker: chunker(spec), textField: textField(spec), idField: idField(spec))
    }

    public func check(_ spec: StrategySpec, context: StrategyCheckContext) -> [ConfigIssue] {
        var issues = PromptKeys.check(spec, context: context, demonstrations: false, provided: [Self.retrievedField])
        let settings = spec.settings
        let paths = settings.strings("corpus") ?? []
        if paths.isEmpty {
            issues.append(ConfigIssue(key: settings.wrote("corpus") ? "corpus" : nil, "strategy '\(spec.name)' is a rag strategy without a corpus.", fix: "add corpus: <a file or folder of .jsonl, .txt or .md documents, relative to the recipe>"))
        } else if let directory = context.recipeDirectory {
            let missing = paths.map { ($0, RecipeLoader.resolve(path: $0, relativeTo: directory)) }.filter { !FileManager.default.fileExists(atPath: $0.1.path) }
            for (path, url) in missing {
                issues.append(ConfigIssue(key: "corpus", "strategy '\(spec.name)': corpus path '\(path)' does not exist (looked for \(url.path)).",
                                          fix: AssetCatalog.fetchHint(for: url) ?? "check the path; relative paths are resolved against the recipe's directory"))
            }
            if missing.isEmpty { issues += Self.checkCorpus(spec) { try Self.corpus(spec, directory: directory) } }
        }
        let size = settings.int("chunk_tokens") ?? Self.defaultChunkTokens
        if let overlap = settings.int("chunk_overlap"), overlap >= size {
            issues.append(ConfigIssue(key: "chunk_overlap", "strategy '\(spec.name)': chunk_overlap (\(overlap)) must be below chunk_tokens (\(size)).", fix: "lower chunk_overlap, e.g. to \(size / 10)"))
        }
        let embedder = settings.string("embedder")
        switch Self.retriever(spec) {
        case .embeddings:
            guard let embedder else {
                issues.append(ConfigIssue(key: "retriever", "strategy '\(spec.name)' retrieves by embeddings but names no embedder.", fix: "add embedder: <a backend whose plugin can embed, e.g. an openai backend with an embedding model>"))
                break
            }
            if let names = context.backendNames, !names.contains(embedder) {
                let near = nearestName(to: embedder, among: names)
                issues.append(ConfigIssue(key: "embedder", "strategy '\(spec.name)': embedder '\(embedder)' is not defined under 'backends'.", fix: (near.map { "did you mean '\($0)'? " } ?? "") + "Defined backends: \(names.joined(separator: ", "))."))
            } else if context.backendNames != nil, !context.embeddingBackends.contains(embedder) {
                let able = context.embeddingBackends.sorted()
                issues.append(ConfigIssue(key: "embedder", "strategy '\(spec.name)': backend '\(embedder)' cannot embed text (its plugin has no embedding capability).",
                                          fix: able.isEmpty ? "add a backend whose plugin can embed (plugin: openai with an embedding model) and name it" : "use \(able.map { "'\($0)'" }.joined(separator: " or "))"))
            }
        case .bm25:
            if embedder != nil, settings.wrote("embedder") {
                issues.append(ConfigIssue(.warning, key: "embedder", "strategy '\(spec.name)' retrieves by BM25, so its embedder is not used.", fix: "add retriever: embeddings, or remove embedder"))
            }
        }
        if let field = settings.string("answer_doc_field"), let fields = context.testFields, !fields.contains(field) {
            let near = nearestName(to: field, among: fields)
            issues.append(ConfigIssue(key: "answer_doc_field", "strategy '\(spec.name)': answer_doc_field '\(field)' is in no test row (their fields: \(fields.joined(separator: ", "))).", fix: near.map { "did you mean '\($0)'?" } ?? "add the answer's document id to the test rows, or remove answer_doc_field"))
        }
        return issues
    }

    /// Problems reading or chunking an existing corpus, at the `corpus` key.
    static func checkCorpus(_ spec: StrategySpec, load: () throws -> Corpus) -> [ConfigIssue] {
        do {
            let corpus = try load()
            if corpus.documents.isEmpty {
                return [ConfigIssue(key: "corpus", "strategy '\(spec.name)': its corpus has no document.", fix: "name files that hold text")]
            }
            if try chunker(spec).chunks(of: corpus.documents).isEmpty {
                return [ConfigIssue(key: "corpus", "strategy '\(spec.name)': its corpus documents hold no words to retrieve.", fix: "name files that hold text")]
            }
            return []
        } catch let error as TallyError {
            return [ConfigIssue(key: "corpus", "strategy '\(spec.name)': \(error.location.map { "\($0): " } ?? "")\(error.message).", fix: "fix the corpus, or point corpus_text_field / corpus_id_field at its fields")]
        } catch {
            return [ConfigIssue(key: "corpus", "strategy '\(spec.name)': its corpus cannot be read: \(error).", fix: "check the corpus files")]
        }
    }

    public func makeStrategy(_ spec: StrategySpec, context: StrategyContext) throws -> any Strategy {
        try RAGStrategy(spec: spec, context: context)
    }
}

/// `rag`: the instruction as the system message; the retrieved passages (best first) and the
/// input as the user message. The passages fill `{retrieved}` of the context template; a
/// template without it gets them in front.
public struct RAGStrategy: Strategy {
    public let spec: StrategySpec
    public let task: TaskSpec
    public let chunks: [CorpusChunk]
    let documents: Int
    let k: Int
    let index: BM25
    /// Chunk indices per query text, once prepared; without them BM25 ranks on the fly
    /// (`tally plan` estimates an embeddings strategy's context that way too).
    let ranked: [String: [Int]]?
    public let retrieval: RetrievalMeasurement?
    /// Whether the chunked, indexed corpus came from the on-disk cache (`StrategyContext.cacheDirectory`).
    public let indexSource: CorpusIndexCache.Source

    /// Reads and chunks the corpus and indexes it for BM25, or reads the index cached for
    /// the corpus files' contents and the chunk settings.
    /// - Throws: `TallyError(.invalidRecipe)` at the entry's location when the corpus cannot be read.
    public init(spec: StrategySpec, context: StrategyContext) throws {
        let prompting = PromptKeys.task(spec, base: context.task)
        let field = "{\(RAGKind.retrievedField)}"
        let template = prompting.context.map { $0.contains(field) ? $0 : field + "\n\n" + $0 } ?? field
        self.spec = spec
        self.task = TaskSpec(
            instruction: prompting.instruction, input: prompting.input, context: template, target: prompting.target, labels: prompting.labels,
            metric: prompting.metric, answerPattern: prompting.answerPattern, maxAnswerTokens: prompting.maxAnswerTokens)
        let built: (index: CorpusIndex, source: CorpusIndexCache.Source)
        do {
            built = try RAGKind.index(spec, directory: context.recipeDirectory ?? URL(fileURLWithPath: FileManager.default.currentDirectoryPath), cache: context.cacheDirectory)
        } catch let error as TallyError {
            throw TallyError(code: .invalidRecipe, message: "strategy '\(spec.name)': \(error.message)", location: error.location ?? spec.location, underlying: error)
        }
        chunks = built.index.chunks
        documents = built.index.documents
        k = spec.settings.int("k") ?? RAGKind.defaultK
        index = built.index.bm25
        indexSource = built.source
        ranked = nil
        retrieval = nil
    }

    init(_ base: RAGStrategy, ranked: [String: [Int]], retrieval: RetrievalMeasurement) {
        spec = base.spec
        task = base.task
        chunks = base.chunks
        documents = base.documents
        k = base.k
        index = base.index
        indexSource = base.indexSource
        self.ranked = ranked
        self.retrieval = retrieval
    }

    public var maxTokens: Int { spec.maxTokens ?? task.maxAnswerTokens }

    /// What a question retrieves with: its rendered input.
    public func query(for example: Example) -> String { PromptBuilder.inputText(task: task, example: example) }

    /// The chunks retrieved for `example`, best first.
    public func retrieved(for example: Example) -> [CorpusChunk] {
        let query = query(for: example)
        return (ranked?[query] ?? index.top(k, for: query)).map { chunks[$0] }
    }

    /// The retrieved passages as the `{retrieved}` field shows them ("" when none).
    public static func passages(_ chunks: [CorpusChunk]) -> String {
        guard !chunks.isEmpty else { return "" }
        return "Relevant passages:\n" + chunks.enumerated().map { "[\($0.offset + 1)] \($0.element.text)" }.joined(separator: "\n")
    }

    public func messages(for example: Example) -> [ChatMessage] {
        var fields = example.fields
        fields[RAGKind.retrievedField] = Self.passages(retrieved(for: example))
        let augmented = Example(id: example.id, fields: fields, location: example.location)
        return [.system(PromptBuilder.systemPrompt(task: task)), .user(PromptBuilder.userPrompt(task: task, example: augmented))]
    }

    /// With `retriever: embeddings`: the chunk texts (once) and every question's query.
    public func plannedEmbeddings(for questions: [Example]) -> PlannedEmbeddings? {
        guard RAGKind.retriever(spec) == .embeddings, let embedder = spec.settings.string("embedder") else { return nil }
        return PlannedEmbeddings(backend: embedder, once: chunks.map(\.text), perQuestion: questions.map(query(for:)))
    }

    /// Ranks the corpus for every question (embedding the chunks and the questions first
    /// for `retriever: embeddings`) and measures what was retrieved.
    public func prepared(for questions: [Example], services: StrategyServices) async throws -> any Strategy {
        let queries = questions.map(query(for:))
        var ranked: [String: [Int]] = [:]
        var embedding: (backend: String, index: Int, queries: Int, price: Double, leaves: Bool)?
        switch RAGKind.retriever(spec) {
        case .bm25:
            for query in queries where ranked[query] == nil { ranked[query] = index.top(k, for: query) }
        case .embeddings:
            guard let name = spec.settings.string("embedder") else {
                throw TallyError(code: .invalidRecipe, message: "strategy '\(spec.name)' retrieves by embeddings but names no embedder", location: spec.location)
            }
            let service = try await services.embedder(backend: name)
            let indexed = try await service.embed(chunks.map(\.text), phase: "embed corpus of \(spec.name)", progress: services.progress)
            let asked = try await service.embed(queries, phase: "embed questions of \(spec.name)", progress: services.progress)
            let chunkVectors = indexed.vectors
            for (query, vector) in zip(queries, asked.vectors) where ranked[query] == nil {
                try Task.checkCancellation()
                ranked[query] = TopK.indices(of: chunkVectors.map { cosineSimilarity(vector, $0) }, k: k)
            }
            embedding = (name, indexed.tokens, asked.tokens, service.pricePerMTok, service.dataLeavesMachine)
        }
        // Context length and recall@k over the questions.
        var contextTokens = 0
        var hits = 0, known = 0
        let answerField = spec.settings.string("answer_doc_field")
        for (example, query) in zip(questions, queries) {
            let retrieved = (ranked[query] ?? []).map { chunks[$0] }
            contextTokens += retrieved.reduce(0) { $0 + $1.tokens }
            if let answerField, let document = example[answerField]?.trimmingCharacters(in: .whitespaces), !document.isEmpty {
                known += 1
                if retrieved.contains(where: { $0.documentID == document }) { hits += 1 }
            }
        }
        let measurement = RetrievalMeasurement(
            retriever: RAGKind.retriever(spec).rawValue, k: k, documents: documents, chunks: chunks.count, questions: questions.count,
            meanContextTokens: questions.isEmpty ? 0 : Double(contextTokens) / Double(questions.count),
            recall: known > 0 ? Double(hits) / Double(known) : nil, recallQuestions: known,
            embedder: embedding?.backend, indexEmbeddingTokens: embedding?.index ?? 0, queryEmbeddingTokens: embedding?.queries ?? 0,
            embeddingPerMTok: embedding?.price ?? 0, embedderLeavesMachine: embedding?.leaves ?? false)
        return RAGStrategy(self, ranked: ranked, retrieval: measurement)
    }
}

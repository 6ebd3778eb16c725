import Foundation

/// What a strategy is built from: the task, the training split (the demonstration pool and
/// the fine-tuning data) and the run seed.
public struct StrategyContext: Sendable {
    public let task: TaskSpec
    /// Usable training rows, in file order (after `run.max_train_examples`).
    public let train: [Example]
    /// Usable validation rows (early stopping), possibly empty.
    public let validation: [Example]
    public let seed: UInt64
    /// The recipe's directory, against which a strategy resolves relative paths of its own
    /// (a `rag` corpus); nil when there is no recipe file.
    public let recipeDirectory: URL?
    /// A directory where a strategy may keep what it derives from files between runs (a
    /// `rag` strategy's chunked and indexed corpus); the runner passes `<Tally home>/cache`.
    /// Nil keeps nothing on disk.
    public let cacheDirectory: URL?

    public init(task: TaskSpec, train: [Example], validation: [Example] = [], seed: UInt64 = 0, recipeDirectory: URL? = nil, cacheDirectory: URL? = nil) {
        self.task = task
        self.train = train
        self.validation = validation
        self.seed = seed
        self.recipeDirectory = recipeDirectory
        self.cacheDirectory = cacheDirectory
    }
}

/// What the runner lends a strategy for its one-off preparation
/// (`Strategy.prepared(for:services:)`): progress reporting and the recipe's embedding
/// backends, with their vectors cached in the ledger.
public struct StrategyServices: Sendable {
    public let progress: @Sendable (ProgressEvent) -> Void
    let embedders: @Sendable (String) async throws -> EmbeddingService

    /// - Parameters:
    ///   - progress: receives the preparation's phases and notes.
    ///   - embedder: the embedding service of a recipe backend, by name (default: none).
    public init(progress: @escaping @Sendable (ProgressEvent) -> Void = { _ in },
                embedder: @escaping @Sendable (String) async throws -> EmbeddingService = { name in
                    throw TallyError(code: .invalidRecipe, message: "backend '\(name)' cannot embed text here")
                }) {
        self.progress = progress
        self.embedders = embedder
    }

    /// The embedding service of the recipe backend `backend`.
    /// - Throws: `TallyError(.invalidRecipe)` when it is not defined or cannot embed;
    ///   `TallyError(.backend)` when it fails to start.
    public func embedder(backend: String) async throws -> EmbeddingService { try await embedders(backend) }
}

/// A way of getting answers out of a model: builds the request for each test example and,
/// for strategies that adapt weights, the fine-tuning job; a strategy of a kind that uses no
/// language model trains the model it answers with (`trainAnswerer(progress:)`).
///
/// Register new kinds in a `StrategyCatalog`. Built-ins: `zero-shot`, `few-shot`,
/// `chain-of-thought`, `lora`, `full-finetune`, `baseline`.
public protocol Strategy: Sendable {
    /// The recipe entry this strategy was built from.
    var spec: StrategySpec { get }
    /// The task it answers.
    var task: TaskSpec { get }
    /// The chat sent for one test example.
    func messages(for example: Example) -> [ChatMessage]
    /// Generated-token limit for one answer.
    var maxTokens: Int { get }
    /// Whether replies are chains of thought whose answer follows a final `Answer:`.
    var reasoning: Bool { get }
    /// The generation request for one test example (default: `messages(for:)` with
    /// `maxTokens`, greedy decoding).
    func request(for example: Example) -> GenerationRequest
    /// Answers sampled per test example (self-consistency); the runner sends
    /// `request(for:sample:)` for each, counts every call's cost and latency, and keeps the
    /// sample `choose(among:)` picks. Default: 1.
    var samples: Int { get }
    /// The request for sample `sample` (0-based, below `samples`) of a test example; give
    /// each sample its own seed so each is its own call. Default: `request(for:)`.
    func request(for example: Example, sample: Int) -> GenerationRequest
    /// Which of an example's sampled answers (in sample order) stands for it. Default: the
    /// majority answer (`SelfConsistency.majority`).
    func choose(among answers: [SampledAnswer]) -> Int
    /// The fine-tuning job this strategy needs on the model `baseIdentity`, or nil for
    /// prompting strategies.
    /// - Parameter workRoot: the directory under which job work directories live.
    func fineTuneRequest(baseIdentity: String, workRoot: URL) throws -> FineTuneRequest?
    /// Trains the model this strategy answers with, for kinds that use no language model
    /// (`StrategyKind.usesLanguageModel` false): the runner sends `request(for:)` of each
    /// test example to its generator instead of a backend's. Nil (the default) for strategies
    /// that answer with the backend's model.
    /// - Parameter progress: for notes worth showing (the setting chosen, the data used).
    /// - Throws: when training fails (`TallyError(.invalidData)` for unusable training data).
    func trainAnswerer(progress: @escaping @Sendable (ProgressEvent) -> Void) async throws -> TrainedAnswerer?
    /// Labelled training examples this strategy needs: the rows it trains on, or the
    /// demonstrations it shows. Its one-off cost includes labelling those beyond the examples
    /// already labelled (`costs.label_usd_per_example`, `costs.labelled_examples`). Default: 0.
    var labelledExamples: Int { get }
    /// One-off work done before the test questions are answered (a `rag` strategy embeds its
    /// corpus and the questions): returns the strategy that answers them. The runner calls it
    /// once per measured run with the test questions; `tally plan` does not (it estimates
    /// from the unprepared strategy). Default: the strategy itself.
    /// - Throws: `TallyError` when the preparation fails.
    func prepared(for questions: [Example], services: StrategyServices) async throws -> any Strategy
    /// What retrieval did for the test questions (retrieved tokens, recall@k, embedding
    /// tokens), for strategies that retrieve context; the report shows it. Default: nil.
    var retrieval: RetrievalMeasurement? { get }
    /// The texts this strategy would embed to answer `questions`, for `tally plan` to price
    /// (a `rag` strategy with `retriever: embeddings`: its corpus chunks once, and each
    /// question's query). Default: nil (it embeds nothing).
    func plannedEmbeddings(for questions: [Example]) -> PlannedEmbeddings?
}

/// What a strategy would embed in a run, as `tally plan` prices it: the texts embedded once
/// (a corpus index, shared by every run of the strategy) and those embedded per question.
public struct PlannedEmbeddings: Sendable, Hashable {
    /// The recipe backend that embeds; its `price.input_per_mtok` prices the tokens.
    public let backend: String
    /// Texts embedded once per strategy (the corpus chunks).
    public let once: [String]
    /// Texts embedded for the questions, one or more per question.
    public let perQuestion: [String]

    public init(backend: String, once: [String], perQuestion: [String]) {
        self.backend = backend
        self.once = once
        self.perQuestion = perQuestion
    }
}

extension Strategy {
    public var reasoning: Bool { false }
    public var samples: Int { 1 }
    public func request(for example: Example, sample: Int) -> GenerationRequest { request(for: example) }
    public func choose(among answers: [SampledAnswer]) -> Int { SelfConsistency.majority(answers) }
    public func fineTuneRequest(baseIdentity: String, workRoot: URL) throws -> FineTuneRequest? { nil }
    public func trainAnswerer(progress: @escaping @Sendable (ProgressEvent) -> Void) async throws -> TrainedAnswerer? { nil }
    public var labelledExamples: Int { 0 }
    public func prepared(for questions: [Example], services: StrategyServices) async throws -> any Strategy { self }
    public var retrieval: RetrievalMeasurement? { nil }
    public func plannedEmbeddings(for questions: [Example]) -> PlannedEmbeddings? { nil }

    /// The generation request for one test example (greedy decoding).
    public func request(for example: Example) -> GenerationRequest {
        GenerationRequest(messages: messages(for: example), maxTokens: maxTokens, temperature: 0, topP: 1, stop: [], seed: 0)
    }

    /// The expected answer of an example (its `task.target` field).
    public func expected(for example: Example) -> String { example[task.target] ?? "" }
}

/// Renders the pieces every prompting strategy shares.
public enum PromptBuilder {
    /// The system message: the instruction, plus the label list for labelled tasks.
    public static func systemPrompt(task: TaskSpec, extra: String? = nil) -> String {
        var text = task.instruction.trimmingCharacters(in: .whitespacesAndNewlines)
        if let labels = task.labels, !labels.isEmpty {
            text += "\nAnswer with exactly one of: " + labels.joined(separator: ", ") + "."
        }
        if let extra { text += "\n" + extra }
        return text
    }

    /// The user message for a row: the rendered context template (if any), a blank line, and
    /// the rendered input template.
    public static func userPrompt(task: TaskSpec, example: Example) -> String {
        let input = PromptTemplate(task.input).render(example.fields)
        guard let context = task.context else { return input }
        let rendered = PromptTemplate(context).render(example.fields)
        return rendered.isEmpty ? input : rendered + "\n\n" + input
    }

    /// Only the rendered input (what reports show as the example).
    public static func inputText(task: TaskSpec, example: Example) -> String {
        PromptTemplate(task.input).render(example.fields)
    }
}

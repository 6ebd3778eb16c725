import Foundation
import TallyCore
import Testing

private let task = TaskSpec(
    instruction: "Is this movie review positive or negative?", input: "Review: {text}", target: "label",
    labels: ["positive", "negative"], metric: "accuracy")

private func row(_ id: String, _ text: String, _ label: String, rationale: String? = nil) -> Example {
    var fields = ["text": text, "label": label]
    if let rationale { fields["rationale"] = rationale }
    return Example(id: id, fields: fields, location: SourceLocation(file: "train.jsonl", line: 1))
}

private let train = [
    row("a", "great acting and a great plot", "positive", rationale: "Great twice."),
    row("b", "boring and slow", "negative", rationale: "Boring."),
    row("c", "a lovely film", "positive", rationale: "Lovely."),
    row("d", "slow boring terrible plot", "negative", rationale: "Terrible."),
]

private let question = row("q", "boring plot", "negative")
private let system = "Is this movie review positive or negative?\nAnswer with exactly one of: positive, negative."

private func make(_ spec: StrategySpec, train: [Example] = train) throws -> any Strategy {
    try StrategyCatalog.builtIn.make(spec, context: StrategyContext(task: task, train: train, validation: [], seed: 7))
}

@Suite("Strategies and prompts")
struct StrategyTests {
    @Test("zero-shot: instruction and labels as system, rendered input as user")
    func zeroShot() throws {
        let strategy = try make(StrategySpec(name: "zs", kind: "zero-shot", backend: "b"))
        #expect(strategy.messages(for: question) == [.system(system), .user("Review: boring plot")])
        let request = strategy.request(for: question)
        #expect(request.maxTokens == 16 && request.temperature == 0)
        #expect(!strategy.reasoning)
    }

    @Test("zero-shot with a context template puts it before the input")
    func context() throws {
        let withContext = TaskSpec(instruction: "Answer.", input: "Q: {q}", context: "Context: {ctx}", target: "a", metric: "exact_match")
        let example = Example(id: "1", fields: ["q": "who?", "ctx": "Ann met Bob.", "a": "Ann"], location: SourceLocation(file: "f"))
        let strategy = try StrategyCatalog.builtIn.make(StrategySpec(name: "zs", kind: "zero-shot", backend: "b"), context: StrategyContext(task: withContext, train: []))
        #expect(strategy.messages(for: example) == [.system("Answer."), .user("Context: Ann met Bob.\n\nQ: who?")])
    }

    @Test("few-shot first: k demonstrations as user/assistant turns")
    func fewShotFirst() throws {
        let strategy = try make(StrategySpec(name: "fs", kind: "few-shot", backend: "b", settings: StrategySettings(["shots": .int(2), "selection": .string("first")])))
        #expect(strategy.messages(for: question) == [
            .system(system),
            .user("Review: great acting and a great plot"), .assistant("positive"),
            .user("Review: boring and slow"), .assistant("negative"),
            .user("Review: boring plot"),
        ])
    }

    @Test("few-shot never shows the test example itself")
    func excludesSelf() throws {
        let strategy = try make(StrategySpec(name: "fs", kind: "few-shot", backend: "b", settings: StrategySettings(["shots": .int(2), "selection": .string("first")])))
        let messages = strategy.messages(for: train[0])
        #expect(messages.map(\.content) == [system, "Review: boring and slow", "negative", "Review: a lovely film", "positive", "Review: great acting and a great plot"])
    }

    @Test("few-shot similar: BM25 picks the closest rows, most similar last")
    func fewShotSimilar() throws {
        let strategy = try make(StrategySpec(name: "fs", kind: "few-shot", backend: "b", settings: StrategySettings(["shots": .int(2), "selection": .string("similar")])))
        let contents = strategy.messages(for: question).map(\.content)
        // "boring plot": d (boring, plot; 4 words) and b (boring; 3 words) beat a (plot once, 6 words).
        #expect(contents == [system, "Review: boring and slow", "negative", "Review: slow boring terrible plot", "negative", "Review: boring plot"])
    }

    @Test("few-shot balanced picks evenly across labels")
    func balanced() throws {
        let strategy = try make(StrategySpec(name: "fs", kind: "few-shot", backend: "b", settings: StrategySettings(["shots": .int(2), "selection": .string("similar"), "balanced": .bool(true)])))
        let answers = strategy.messages(for: question).filter { $0.role == .assistant }.map(\.content)
        #expect(Set(answers) == ["positive", "negative"])
    }

    @Test("few-shot random is seeded: same seed same demonstrations, for every test example")
    func random() throws {
        let spec = StrategySpec(name: "fs", kind: "few-shot", backend: "b", settings: StrategySettings(["shots": .int(2), "selection": .string("random")]))
        let a = try make(spec).messages(for: question)
        let b = try make(spec).messages(for: question)
        #expect(a == b)
        let other = try make(spec).messages(for: row("z", "something else", "positive"))
        #expect(Array(a.dropLast()) == Array(other.dropLast()))
        let seeds = try (0..<8).map { seed in
            try StrategyCatalog.builtIn.make(spec, context: StrategyContext(task: task, train: train, seed: UInt64(seed))).messages(for: question)
        }
        #expect(Set(seeds.map { $0.map(\.content).joined(separator: "|") }).count > 1)
    }

    @Test("chain-of-thought zero-shot asks to think step by step")
    func cotZeroShot() throws {
        let strategy = try make(StrategySpec(name: "cot", kind: "chain-of-thought", backend: "b"))
        #expect(strategy.messages(for: question) == [.system(system + "\n" + ChainOfThoughtStrategy.instruction), .user("Review: boring plot")])
        #expect(strategy.reasoning && strategy.maxTokens == 256)
    }

    @Test("chain-of-thought demonstrations show the rationale then the answer")
    func cotDemos() throws {
        let strategy = try make(StrategySpec(name: "cot", kind: "chain-of-thought", backend: "b", maxTokens: 100, settings: StrategySettings(["shots": .int(1), "rationale_field": .string("rationale")])))
        #expect(strategy.messages(for: question) == [
            .system(system + "\n" + ChainOfThoughtStrategy.instruction),
            .user("Review: great acting and a great plot"), .assistant("Great twice.\nAnswer: positive"),
            .user("Review: boring plot"),
        ])
        #expect(strategy.maxTokens == 100)
    }

    @Test("fine-tuning builds zero-shot training examples and a stable job key")
    func fineTune() throws {
        let spec = StrategySpec(name: "l", kind: "lora", backend: "b", settings: StrategySettings(["rank": .int(4), "epochs": .number(2)]))
        let strategy = try make(spec)
        let request = try #require(try strategy.fineTuneRequest(baseIdentity: "model-x", workRoot: URL(fileURLWithPath: "/w")))
        #expect(request.train.count == 4)
        #expect(request.train[1] == TrainingExample(messages: [.system(system), .user("Review: boring and slow")], completion: "negative"))
        #expect(request.method == FineTuneMethod.lora(LoRAOptions(rank: 4)))
        #expect(request.options.epochs == 2 && request.options.seed == 7)
        #expect(request.jobKey.count == 64)
        #expect(request.workDirectory.path == "/w/" + request.jobKey.prefix(16))
        // Same inputs, same key; a change of base model, options or data changes it.
        let again = try #require(try make(spec).fineTuneRequest(baseIdentity: "model-x", workRoot: URL(fileURLWithPath: "/elsewhere")))
        #expect(again.jobKey == request.jobKey)
        let otherBase = try #require(try strategy.fineTuneRequest(baseIdentity: "model-y", workRoot: URL(fileURLWithPath: "/w")))
        #expect(otherBase.jobKey != request.jobKey)
        let otherOptions = try #require(try make(StrategySpec(name: "l", kind: "lora", backend: "b", settings: StrategySettings(["rank": .int(8), "epochs": .number(2)]))).fineTuneRequest(baseIdentity: "model-x", workRoot: URL(fileURLWithPath: "/w")))
        #expect(otherOptions.jobKey != request.jobKey)
        let otherData = try #require(try make(spec, train: Array(train.dropLast())).fineTuneRequest(baseIdentity: "model-x", workRoot: URL(fileURLWithPath: "/w")))
        #expect(otherData.jobKey != request.jobKey)
        // Prediction uses the zero-shot prompt; prompting strategies have no job.
        #expect(strategy.messages(for: question) == [.system(system), .user("Review: boring plot")])
        #expect(try make(StrategySpec(name: "zs", kind: "zero-shot", backend: "b")).fineTuneRequest(baseIdentity: "m", workRoot: URL(fileURLWithPath: "/w")) == nil)
        let full = try #require(try make(StrategySpec(name: "f", kind: "full-finetune", backend: "b")).fineTuneRequest(baseIdentity: "model-x", workRoot: URL(fileURLWithPath: "/w")))
        #expect(full.method == FineTuneMethod.full)
    }

    @Test("prompt-tuning asks for its method with its options, and its keys bound them")
    func promptTuning() throws {
        let kind = try StrategyCatalog.builtIn.kind(named: "prompt-tuning")
        #expect(kind.trainingMethod == FineTuneMethod.promptTuningName)
        let keys = Dictionary(uniqueKeysWithValues: kind.keys.map { ($0.name, $0) })
        #expect(keys["num_virtual_tokens"]?.defaultValue == .int(8))
        #expect(keys["num_virtual_tokens"]?.minimum?.value == 1)
        #expect(keys["num_virtual_tokens"]?.maximum?.value == Double(PromptTuningOptions.maxVirtualTokens))
        #expect(keys["init_text"]?.defaultValue == nil)
        #expect(keys["learning_rate"]?.defaultValue == .number(3e-2))
        #expect(Set(TrainingOptions.keys.map(\.name)).isSubset(of: Set(keys.keys)))
        let spec = StrategySpec(name: "pt", kind: "prompt-tuning", backend: "b", settings: StrategySettings(["num_virtual_tokens": .int(4), "init_text": .string("Sentiment:"), "learning_rate": .number(3e-2)]))
        let request = try #require(try make(spec).fineTuneRequest(baseIdentity: "model-x", workRoot: URL(fileURLWithPath: "/w")))
        #expect(request.method == FineTuneMethod.promptTuning(PromptTuningOptions(numVirtualTokens: 4, initText: "Sentiment:")))
        #expect(try request.method.promptTuningOptions() == PromptTuningOptions(numVirtualTokens: 4, initText: "Sentiment:"))
        #expect(try request.method.loraOptions() == nil)
        #expect(request.options.learningRate == 3e-2)
        #expect(request.train.count == 4)
        let other = try #require(try make(StrategySpec(name: "pt", kind: "prompt-tuning", backend: "b", settings: StrategySettings(["num_virtual_tokens": .int(5)]))).fineTuneRequest(baseIdentity: "model-x", workRoot: URL(fileURLWithPath: "/w")))
        #expect(other.jobKey != request.jobKey)
        #expect(throws: TallyError.self) { try PromptTuningOptions(parameters: ["num_virtual_tokens": .int(0)]) }
        #expect(throws: TallyError.self) { try PromptTuningOptions(parameters: ["num_virtual_tokens": .string("eight")]) }
        #expect(throws: TallyError.self) { try PromptTuningOptions(parameters: ["init_text": .string("")]) }
        #expect(kind.check(StrategySpec(name: "pt", kind: "prompt-tuning", backend: "b", settings: StrategySettings(["init_text": .string("  ")])), context: StrategyCheckContext(task: task)).count == 1)
    }

    @Test("the catalog lists built-in kinds and rejects unknown ones with the nearest name")
    func catalog() throws {
        #expect(StrategyCatalog.builtIn.names == ["zero-shot", "few-shot", "chain-of-thought", "rag", "lora", "prompt-tuning", "full-finetune", "baseline"])
        #expect(StrategyCatalog.builtIn.kinds.filter(\.adaptsWeights).map(\.name) == ["lora", "prompt-tuning", "full-finetune"])
        #expect(StrategyCatalog.builtIn.kinds.filter { !$0.usesLanguageModel }.map(\.name) == ["baseline"])
        #expect(StrategyCatalog.builtIn.kinds.compactMap(\.trainingMethod) == [FineTuneMethod.loraName, FineTuneMethod.promptTuningName, FineTuneMethod.fullName])
        let error = try #require(throws: TallyError.self) { try make(StrategySpec(name: "x", kind: "few-shots", backend: "b")) }
        #expect(error.code == .unknownName && error.message.contains("did you mean 'few-shot'?"))
    }

    @Test("BM25 scores match the formula")
    func bm25() {
        let index = BM25(documents: ["cat dog", "cat cat fish", "bird"])
        let idf = log(1.6)
        let scores = index.scores(for: "cat")
        #expect(abs(scores[0] - idf) < 1e-12)
        #expect(abs(scores[1] - idf * 4.4 / 3.65) < 1e-12)
        #expect(scores[2] == 0)
    }
}

import Foundation
import Synchronization
import TallyCore
import TallyTesting
import Testing

// Strategy kinds written here, outside TallyCore, with only its public API: what a package
// that depends on Tally would write.

/// Prompts with a hint before the review; its own keys `hint` and `hints`.
private struct HintKind: StrategyKind {
    let name = "hinted"
    let summary = "zero-shot with a hint sentence before the input"
    let keys: [StrategyKey] = [
        .string("hint", default: "Look for strong words.", help: "sentence put before the input"),
        .int("hints", default: 1, min: 1, max: 3, help: "how many times the hint is repeated"),
    ]

    func check(_ spec: StrategySpec, context: StrategyCheckContext) -> [ConfigIssue] {
        spec.settings.string("hint")?.isEmpty == true ? [ConfigIssue(key: "hint", "the hint is empty", fix: "write a sentence")] : []
    }

    func makeStrategy(_ spec: StrategySpec, context: StrategyContext) throws -> any Strategy {
        HintStrategy(spec: spec, task: context.task, hint: String(repeating: (spec.settings.string("hint") ?? "") + " ", count: spec.settings.int("hints") ?? 1))
    }
}

private struct HintStrategy: Strategy {
    let spec: StrategySpec
    let task: TaskSpec
    let hint: String
    var maxTokens: Int { spec.maxTokens ?? task.maxAnswerTokens }
    func messages(for example: Example) -> [ChatMessage] {
        [.system(PromptBuilder.systemPrompt(task: task)), .user(hint + PromptBuilder.userPrompt(task: task, example: example))]
    }
}

/// Adapts weights with a training method of its own, `distill`.
private struct DistillKind: StrategyKind {
    let name = "distill"
    let summary = "trains with the distill method, then prompts zero-shot"
    let keys: [StrategyKey] = [.number("temperature", default: 2, min: .init(0, exclusive: true), help: "distillation temperature")] + TrainingOptions.keys
    var trainingMethod: String? { "distill" }

    func makeStrategy(_ spec: StrategySpec, context: StrategyContext) throws -> any Strategy {
        FineTuningStrategy(spec: spec, context: context, method: FineTuneMethod(name: "distill", parameters: ["temperature": spec.settings["temperature"] ?? .number(2)]))
    }
}

/// Answers without a language model: a word list learnt from the training rows.
private struct KeywordKind: StrategyKind {
    let name = "keywords"
    let summary = "answers with the label whose training words the input shares most"
    var usesLanguageModel: Bool { false }

    func makeStrategy(_ spec: StrategySpec, context: StrategyContext) throws -> any Strategy {
        KeywordStrategy(spec: spec, task: context.task, train: context.train)
    }
}

private struct KeywordStrategy: Strategy {
    let spec: StrategySpec
    let task: TaskSpec
    let train: [Example]
    var maxTokens: Int { 1 }
    func messages(for example: Example) -> [ChatMessage] { [.user(example["text"] ?? "")] }

    func trainAnswerer(progress: @escaping @Sendable (ProgressEvent) -> Void) async throws -> TrainedAnswerer? {
        var words: [String: String] = [:]
        for row in train {
            for word in (row["text"] ?? "").lowercased().split(whereSeparator: { !$0.isLetter }) { words[String(word)] = row[task.target] }
        }
        let table = words
        let generator = KeywordGenerator(identity: "keywords:\(table.count)") { text in
            let votes = text.lowercased().split(whereSeparator: { !$0.isLetter }).compactMap { table[String($0)] }
            return Dictionary(grouping: votes, by: { $0 }).max { ($0.value.count, $1.key) < ($1.value.count, $0.key) }?.key ?? "positive"
        }
        progress(.note("keywords: \(table.count) words"))
        return TrainedAnswerer(generator: generator, training: FineTuneOutcome(artifact: generator.identity, wallSeconds: 2, trainedTokens: 0, steps: 1, trainLoss: [], validationLoss: []))
    }
}

private struct KeywordGenerator: TextGenerator {
    let identity: String
    let answer: @Sendable (String) -> String
    func generate(_ request: GenerationRequest) async throws -> GenerationResult {
        GenerationResult(text: answer(request.messages.last?.content ?? ""), usage: TokenUsage(), latencySeconds: 0.001, computeSeconds: 0.001)
    }
}

private var catalog: StrategyCatalog {
    var catalog = StrategyCatalog.builtIn
    catalog.register(HintKind())
    catalog.register(DistillKind())
    catalog.register(KeywordKind())
    return catalog
}

/// The sentiment recipe with its strategies replaced by `strategies` (YAML list items).
private func recipe(_ strategies: [String]) throws -> URL {
    try Fixtures.sentimentRecipe(strategies: strategies)
}

/// Records every request's last user message.
private final class Prompts: Sendable {
    let seen = Mutex<[String]>([])
}

@Suite("Strategy kinds from outside TallyCore")
struct OutsideKindTests {
    @Test("a kind's own keys are validated with file:line:column and did-you-mean, like built-in keys")
    func validatesOwnKeys() throws {
        let url = try recipe(["{name: h, kind: hinted, backend: hosted, hnt: \"Be careful.\"}"])
        let found = RecipeLoader.validate(contentsOf: url, registry: Fixtures.registry(), environment: [:], strategies: catalog)
        let error = try #require(found.first { $0.severity == .error })
        #expect(error.message.contains("unknown key 'hnt'"))
        #expect(error.fix?.contains("did you mean 'hint'?") == true)
        let lines = try String(contentsOf: url, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        let line = try #require(lines.firstIndex { $0.contains("hnt:") }) + 1
        #expect(error.location.line == line && error.location.column == Fixtures.column(of: "hnt", line: line, in: lines.joined(separator: "\n")))
        #expect(error.location.file.hasSuffix("sentiment.yaml"))

        // Types and ranges come from the declaration; the kind's own check reports at its key.
        let range = RecipeLoader.validate(contentsOf: try recipe(["{name: h, kind: hinted, backend: hosted, hints: 5, hint: \"\"}"]), registry: Fixtures.registry(), environment: [:], strategies: catalog)
        #expect(range.contains { $0.message.contains("'strategies[0].hints' is 5 but must be at least 1 and at most 3") })
        // Keys of another kind name their owner.
        let other = RecipeLoader.validate(contentsOf: try recipe(["{name: h, kind: hinted, backend: hosted, rank: 4}"]), registry: Fixtures.registry(), environment: [:], strategies: catalog)
        #expect(other.contains { $0.message.contains("'rank' does not apply to hinted") && $0.message.contains("used by lora strategies") })
        // Without the kind registered, the recipe's kind is unknown.
        let unknown = RecipeLoader.validate(contentsOf: url, registry: Fixtures.registry(), environment: [:], strategies: .builtIn)
        #expect(unknown.contains { $0.message.contains("unknown strategy kind 'hinted'") })
    }

    @Test("a registered kind runs end to end: plan, run, cost and report")
    func runsEndToEnd() async throws {
        let url = try recipe(["{name: zs, kind: zero-shot, backend: hosted}", "{name: h, kind: hinted, backend: hosted, hint: \"Mind the adjectives.\", hints: 2}"])
        let prompts = Prompts()
        let registry = Fixtures.registry { request, fineTuned in
            prompts.seen.withLock { $0.append(request.messages.last?.content ?? "") }
            return Fixtures.sentimentResponder(request, fineTuned)
        }
        let recipe = try RecipeLoader.load(contentsOf: url, registry: registry, environment: [:], strategies: catalog)
        #expect(recipe.strategies[1].settings.string("hint") == "Mind the adjectives.")
        let plan = try Planner.estimate(recipe: recipe, strategies: catalog)
        #expect(plan.items.map(\.kind).contains("hinted"))
        let home = url.deletingLastPathComponent().appendingPathComponent("home")
        let ledger = try Ledger(path: home.appendingPathComponent("ledger.sqlite"))
        let runner = ExperimentRunner(recipe: recipe, registry: registry, ledger: ledger, environment: [:], home: home, strategies: catalog)
        let measured = try await runner.run { _ in }
        let hinted = try #require(measured.strategies.first { $0.name == "h" })
        #expect(hinted.kind == "hinted" && !hinted.adaptsWeights && hinted.predictions.count == 6)
        #expect(prompts.seen.withLock { $0 }.contains { $0.hasPrefix("Mind the adjectives. Mind the adjectives. Review:") })
        let markdown = try MarkdownRenderer().render(Report.build(from: measured))
        #expect(markdown.contains("| h | hinted |"))
    }

    @Test("a kind without a language model needs no backend, trains its own answerer, and is reported like any strategy")
    func withoutLanguageModel() async throws {
        let url = try recipe(["{name: zs, kind: zero-shot, backend: hosted}", "{name: kw, kind: keywords}"])
        let log = CallLog()
        let registry = Fixtures.registry(log: log, responder: Fixtures.sentimentResponder)
        let recipe = try RecipeLoader.load(contentsOf: url, registry: registry, environment: [:], strategies: catalog)
        #expect(recipe.strategies[1].backend == nil)
        let plan = try Planner.estimate(recipe: recipe, strategies: catalog)
        #expect(plan.items.first { $0.name == "kw" }?.promptTokens == 0)
        let home = url.deletingLastPathComponent().appendingPathComponent("home")
        let ledger = try Ledger(path: home.appendingPathComponent("ledger.sqlite"))
        let measured = try await ExperimentRunner(recipe: recipe, registry: registry, ledger: ledger, environment: [:], home: home, strategies: catalog).run { _ in }
        #expect(log.generationCount == 6)  // zero-shot only
        let keywords = try #require(measured.strategies.first { $0.name == "kw" })
        #expect(!keywords.usesLanguageModel && keywords.model == keywords.training?.artifact && keywords.predictions.count == 6)
        #expect(keywords.predictions.allSatisfy { $0.answer != nil })
        #expect(try ledger.cachedResult(key: try Ledger.cacheKey(identity: keywords.model, request: GenerationRequest(messages: [.user("A great story, truly great.")], maxTokens: 1))) != nil)
        let report = Report.build(from: measured)
        let row = try #require(report.strategy(named: "kw"))
        #expect(abs(row.cost.oneOffUSD - 2 * recipe.costs.computeUSDPerHour / 3600) < 1e-12)
        #expect(try TerminalRenderer().render(report).contains("n/a (no LLM)"))
    }

    @Test("a kind's training method is an open name: only backends that declare it can run it")
    func openTrainingMethod() async throws {
        let url = try recipe(["{name: d, kind: distill, backend: local, temperature: 3, epochs: 1}"])
        let refused = RecipeLoader.validate(contentsOf: url, registry: Fixtures.registry(), environment: [:], strategies: catalog)
        #expect(refused.contains { $0.severity == .error && $0.message.contains("cannot run distill fine-tuning; it supports full-finetune, lora") })

        let log = CallLog()
        let registry = PluginRegistry([FakeBackendPlugin(name: "fake", fineTuningMethods: ["distill"], log: log, responder: Fixtures.sentimentResponder)])
        let recipe = try RecipeLoader.load(contentsOf: url, registry: registry, environment: [:], strategies: catalog)
        let home = url.deletingLastPathComponent().appendingPathComponent("home")
        let runner = ExperimentRunner(recipe: recipe, registry: registry, ledger: try Ledger(path: home.appendingPathComponent("ledger.sqlite")), environment: [:], home: home, strategies: catalog)
        let measured = try await runner.run { _ in }
        let distilled = try #require(measured.strategies.first)
        #expect(distilled.adaptsWeights && distilled.trainingMethod == "distill")
        #expect(distilled.training?.artifact.contains("distill") == true)
        #expect(!distilled.probes.isEmpty)  // forgetting is measured on the adapted model
        #expect(log.fineTuneCount == 1)
    }
}

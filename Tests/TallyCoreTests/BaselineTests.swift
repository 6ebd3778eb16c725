import Foundation
import Synchronization
import TallyCore
import TallyTesting
import Testing

/// The sentiment fixture recipe with its strategies replaced by `strategies`, then edited.
private func recipe(_ strategies: [String], edit: (String) -> String = { $0 }) throws -> URL {
    try Fixtures.sentimentRecipe(strategies: strategies, edit: edit)
}

private final class Events: Sendable {
    let events = Mutex<[ProgressEvent]>([])
    func add(_ event: ProgressEvent) { events.withLock { $0.append(event) } }
    var phases: [String] { events.withLock { $0.compactMap { if case .started(let phase, _) = $0 { phase } else { nil } } } }
    var notes: [String] { events.withLock { $0.compactMap { if case .note(let text) = $0 { text } else { nil } } } }
}

@Suite("Baseline strategy kind")
struct BaselineTests {
    // MARK: recipe keys

    @Test("its keys are declared, defaulted and validated like any kind's; no backend is needed")
    func keys() throws {
        let url = try recipe(["{name: tfidf, kind: baseline, word_ngram_max: 1, c_grid: [0.1, 1, 10]}", "{name: majority, kind: baseline, method: majority}"])
        let loaded = try RecipeLoader.load(contentsOf: url, registry: Fixtures.registry(), environment: [:])
        let tfidf = loaded.strategies[0]
        #expect(tfidf.backend == nil && loaded.strategies[1].backend == nil)
        #expect(tfidf.settings.string("method") == "tfidf-logreg")
        #expect(tfidf.settings.int("word_ngram_max") == 1 && tfidf.settings.int("char_ngram_max") == 5)
        #expect(tfidf.settings.strings("c_grid") == ["0.1", "1", "10"])
        let settings = try BaselineSettings(tfidf)
        #expect(settings.grid == [0.1, 1, 10] && settings.fixedC == nil && settings.folds == 5)
        #expect(settings.blocks.map(\.analyzer) == [.word, .charWordBounded])
        #expect(settings.blocks[0].ngramMax == 1 && settings.blocks[1].ngramMin == 2 && settings.blocks[1].ngramMax == 5)
        #expect(!settings.blocks[0].sublinearTF && settings.blocks[0].maxFeatures == nil)
        #expect(try BaselineSettings(loaded.strategies[1]).method == .majority)
        #expect(StrategyCatalog.builtIn.names.contains("baseline"))
    }

    @Test("bad values are reported at their key with a fix")
    func badValues() throws {
        func problems(_ entry: String) throws -> [Diagnostic] {
            RecipeLoader.validate(contentsOf: try recipe([entry]), registry: Fixtures.registry(), environment: [:])
        }
        let typo = try problems("{name: b, kind: baseline, c_gird: [1, 10]}")
        #expect(typo.contains { $0.severity == .error && $0.message.contains("unknown key 'c_gird'") && $0.fix?.contains("did you mean 'c_grid'?") == true })
        let method = try problems("{name: b, kind: baseline, method: tfidf}")
        #expect(method.contains { $0.severity == .error && $0.message.contains("unknown method 'tfidf'") })
        let negative = try problems("{name: b, kind: baseline, c: -1}")
        #expect(negative.contains { $0.severity == .error && $0.message.contains("'strategies[0].c'") })
        let grid = try problems("{name: b, kind: baseline, c_grid: [0.1, lots]}")
        let gridError = try #require(grid.first { $0.severity == .error })
        #expect(gridError.message.contains("c_grid value 'lots' is not a positive number"))
        let text = try String(contentsOf: try recipe(["{name: b, kind: baseline, c_grid: [0.1, lots]}"]), encoding: .utf8)
        let line = try #require(text.split(separator: "\n", omittingEmptySubsequences: false).firstIndex { $0.contains("c_grid") }) + 1
        #expect(gridError.location.line == line)
        let range = try problems("{name: b, kind: baseline, word_ngram_min: 3, word_ngram_max: 2}")
        #expect(range.contains { $0.severity == .error && $0.message.contains("word_ngram_max (2) is below word_ngram_min (3)") })
        let nothing = try problems("{name: b, kind: baseline, word_ngram_max: 0, char_ngram_max: 0}")
        #expect(nothing.contains { $0.severity == .error && $0.message.contains("turns off both word and character features") })
        let ignored = try problems("{name: b, kind: baseline, method: majority, sublinear_tf: true}")
        #expect(ignored.contains { $0.severity == .warning && $0.message.contains("ignores sublinear_tf") } && !ignored.contains { $0.severity == .error })
        let backend = try problems("{name: b, kind: baseline, backend: local}")
        #expect(backend.contains { $0.severity == .warning && $0.message.contains("backend 'local' is not used") } && !backend.contains { $0.severity == .error })
        let missing = try problems("{name: b, kind: baseline, backend: elsewhere}")
        #expect(missing.contains { $0.severity == .error && $0.message.contains("not defined under 'backends'") })
    }

    @Test("the kind's check errors when the task has no labels")
    func needsLabels() throws {
        let url = try recipe(["{name: b, kind: baseline}"], edit: {
            $0.replacingOccurrences(of: "  labels: [positive, negative]\n", with: "").replacingOccurrences(of: "  metric: accuracy\n", with: "")
        })
        let found = RecipeLoader.validate(contentsOf: url, registry: Fixtures.registry(), environment: [:])
        #expect(found.contains { $0.severity == .error && $0.message.contains("needs a closed label set, but the task has no labels") && $0.fix?.contains("task.labels") == true })
    }

    @Test("a recipe of baselines only needs no backends section; a language-model strategy still does")
    func backendsSection() throws {
        let noBackends: (String) -> String = { text in
            var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            if let start = lines.firstIndex(of: "backends:"), let end = lines.firstIndex(of: "strategies:") { lines.removeSubrange(start..<end) }
            return lines.joined(separator: "\n")
        }
        let only = try recipe(["{name: b, kind: baseline}"], edit: noBackends)
        let loaded = try RecipeLoader.load(contentsOf: only, registry: Fixtures.registry(), environment: [:])
        #expect(loaded.backends.isEmpty && loaded.strategies.count == 1)
        let mixed = RecipeLoader.validate(contentsOf: try recipe(["{name: b, kind: baseline}", "{name: z, kind: zero-shot, backend: local}"], edit: noBackends), registry: Fixtures.registry(), environment: [:])
        #expect(mixed.contains { $0.severity == .error && $0.message.contains("the recipe has no 'backends' section") })
    }

    // MARK: training

    static let task = TaskSpec(instruction: "Sentiment?", input: "Review: {text}", target: "label", labels: ["positive", "negative"], metric: "accuracy")

    static func rows(_ items: [(String, String)]) -> [Example] {
        items.enumerated().map { Example(id: "r\($0.offset)", fields: ["text": $0.element.0, "label": $0.element.1], location: SourceLocation(file: "t")) }
    }

    static let train = rows([
        ("a great film, truly great", "positive"), ("terrible and boring", "negative"), ("great fun, wonderful cast", "positive"),
        ("a boring, terrible mess", "negative"), ("wonderful and moving", "positive"), ("dull and terrible", "negative"),
        ("great acting", "positive"), ("boring plot", "negative"), ("Neutral words only", "oops"),
    ])

    func train(_ entry: [String: SettingValue], validation: [Example] = []) async throws -> (TrainedAnswerer, BaselineStrategy) {
        let spec = StrategySpec(name: "b", kind: "baseline", backend: nil, settings: StrategySettings(Dictionary(uniqueKeysWithValues: BaselineSettings.keys.compactMap { key in key.defaultValue.map { (key.name, $0) } }).merging(entry) { $1 }))
        let strategy = try BaselineStrategy(spec: spec, context: StrategyContext(task: Self.task, train: Self.train, validation: validation))
        let answerer = try #require(try await strategy.trainAnswerer { _ in })
        return (answerer, strategy)
    }

    func answer(_ answerer: TrainedAnswerer, _ strategy: BaselineStrategy, _ text: String) async throws -> GenerationResult {
        let example = Example(id: "x", fields: ["text": text, "label": "positive"], location: SourceLocation(file: "t"))
        return try await answerer.generator.generate(strategy.request(for: example))
    }

    @Test("tfidf-logreg learns the training words, answers a label, measures its compute and names its content")
    func tfidfLogReg() async throws {
        let validation = Self.rows([("great, wonderful", "positive"), ("terrible, boring", "negative")])
        let (answerer, strategy) = try await train([:], validation: validation)
        #expect(strategy.messages(for: Self.train[0]) == [.user("Review: a great film, truly great")])
        let positive = try await answer(answerer, strategy, "A wonderful, great story")
        let negative = try await answer(answerer, strategy, "So boring and terrible")
        #expect(positive.text == "positive" && negative.text == "negative")
        #expect(positive.usage == TokenUsage() && (positive.computeSeconds ?? 0) > 0 && positive.latencySeconds == positive.computeSeconds)
        #expect(answerer.generator.identity.hasPrefix("baseline/tfidf-logreg C="))
        #expect(!answerer.dataLeavesMachine)
        let training = answerer.training
        #expect(training.wallSeconds > 0 && training.trainedTokens == 0 && training.steps > 0)
        #expect(training.trainLoss.first?.step == 0 && training.trainLoss.count == training.steps + 1)
        #expect(training.validationLoss.count == 1 && training.validationLoss[0].loss.isFinite)
        #expect(training.notes.contains { $0.contains("chosen by accuracy on the 2 validation rows") })
        #expect(training.notes.contains { $0.contains("1 training row(s) skipped") })
        #expect(training.notes.contains { $0.hasPrefix("TF-IDF features: ") && $0.contains("word 1-2-grams") && $0.contains("character 2-5-grams") })

        // Deterministic: retraining gives the same identity (so cached answers are reused);
        // other settings give another.
        let (again, _) = try await train([:], validation: validation)
        #expect(again.generator.identity == answerer.generator.identity)
        let (other, _) = try await train(["c": .number(0.5)], validation: validation)
        #expect(other.generator.identity != answerer.generator.identity)
        #expect(other.training.notes.contains("C = 0.5 (fixed)"))
    }

    @Test("without a validation split C is chosen by stratified cross-validation on the training rows")
    func crossValidation() async throws {
        let (answerer, _) = try await train(["cv_folds": .int(4)])
        #expect(answerer.training.notes.contains { $0.contains("4-fold stratified cross-validation on the 8 training rows") })
        #expect(answerer.training.validationLoss.isEmpty)
    }

    @Test("majority always answers the most frequent training label")
    func majority() async throws {
        let (answerer, strategy) = try await train(["method": .string("majority")])
        let result = try await answer(answerer, strategy, "great great great")
        // Four of each: the tie goes to the first label of task.labels.
        #expect(result.text == "positive")
        #expect(answerer.generator.identity == "baseline/majority: positive")
        #expect(answerer.training.notes.first?.contains("always answers 'positive'") == true)
    }

    // MARK: end to end

    @Test("end to end through the runner: no backend call, answers in the ledger, training as a job, costs and report")
    func runsThroughTheRunner() async throws {
        let url = try recipe([
            "{name: zero-shot, kind: zero-shot, backend: hosted}", "{name: lora, kind: lora, backend: local, epochs: 1}",
            "{name: tfidf, kind: baseline}", "{name: majority, kind: baseline, method: majority}",
        ])
        let log = CallLog()
        let registry = Fixtures.registry(log: log)
        let recipe = try RecipeLoader.load(contentsOf: url, registry: registry, environment: [:])
        let home = url.deletingLastPathComponent().appendingPathComponent("home")
        let ledger = try Ledger(path: home.appendingPathComponent("ledger.sqlite"))
        let runner = ExperimentRunner(recipe: recipe, registry: registry, ledger: ledger, environment: [:], home: home)

        // The plan prices it near zero: no tokens, a little compute.
        let plan = try Planner.estimate(recipe: recipe)
        let planned = try #require(plan.items.first { $0.name == "tfidf" })
        #expect(planned.backend == nil && planned.requests == 6 && planned.promptTokens == 0 && planned.completionTokens == 0)
        #expect(planned.estimatedUSD > 0 && planned.estimatedUSD < 1e-4)
        #expect(plan.assumptions.contains { $0.contains("without a language model (tfidf, majority)") })

        let events = Events()
        let first = try await runner.run { events.add($0) }
        #expect(log.generationCount == 6 + 5 + 11)  // zero-shot, base probes, LoRA: none for the baselines
        #expect(events.phases.contains("train tfidf") && events.phases.contains("evaluate tfidf"))
        #expect(events.notes.contains { $0.hasPrefix("tfidf: C = ") })
        let tfidf = try #require(first.strategies.first { $0.name == "tfidf" })
        #expect(tfidf.backend == nil && !tfidf.usesLanguageModel && !tfidf.adaptsWeights && !tfidf.dataLeavesMachine)
        #expect(tfidf.probes.isEmpty && tfidf.predictions.count == 6)
        #expect(tfidf.predictions.allSatisfy { $0.answer != nil && ($0.computeSeconds ?? 0) > 0 })
        // The fixture's reviews share their words with the training rows.
        #expect(tfidf.predictions.filter { $0.score == 1 }.count >= 5, "\(tfidf.predictions.map(\.output))")
        let training = try #require(tfidf.training)
        let job = try #require(try ledger.fineTuneJob(key: SHA256.hexDigest(of: "trained answerer\n" + tfidf.model)))
        #expect(job.status == .finished && job.generatorIdentity == tfidf.model && job.outcome == training)
        #expect(try ledger.predictions(runID: first.runID, strategy: "tfidf").count == 6)
        #expect(!first.baseProbes.isEmpty && !first.baseProbes.contains { $0.subject == "tfidf" })

        // Costs: training wall time and per-answer compute at the compute price.
        let price = recipe.costs.computeUSDPerHour / 3600
        let cost = CostModel.cost(of: tfidf, costs: recipe.costs)
        #expect(abs(cost.oneOffUSD - training.wallSeconds * price) < 1e-15)
        #expect(cost.oneOffBasis.contains("s of training x 0.36 USD/h compute") && cost.gpuEstimate == nil)
        let meanCompute = tfidf.predictions.map { $0.computeSeconds ?? 0 }.reduce(0, +) / 6
        #expect(abs(cost.per1kRequestsUSD - meanCompute * price * 1000) < 1e-15 && cost.per1kRequestsUSD > 0)
        #expect(cost.meanPromptTokens == 0 && cost.meanCompletionTokens == 0)

        // The report: forgetting not applicable, in every renderer and in the JSON.
        let report = Report.build(from: first)
        let row = try #require(report.strategy(named: "tfidf"))
        #expect(!row.usesLanguageModel && row.forgetting.isEmpty && row.maxForgetting == 0)
        #expect(row.forgettingNote?.hasPrefix("Not applicable") == true)
        #expect(report.notes.contains { $0.hasPrefix("tfidf, majority answer without a language model") })
        #expect(report.strategy(named: "zero-shot")?.usesLanguageModel == true)
        let terminal = try TerminalRenderer().render(report)
        #expect(terminal.split(separator: "\n").contains { $0.contains("tfidf") && $0.contains("n/a (no LLM)") })
        let markdown = try MarkdownRenderer().render(report)
        let markdownRow = try #require(markdown.split(separator: "\n").first { $0.hasPrefix("| tfidf ") || $0.hasPrefix("| **tfidf** ") })
        #expect(markdownRow.contains("| baseline | - |") && markdownRow.contains("| n/a (no LLM) |"))
        let json = try JSONRenderer().render(report)
        #expect(json.contains("\"uses_language_model\" : false"))
        #expect(json.components(separatedBy: "\"uses_language_model\"").count == 3)  // the two baselines only
        let decoded = try JSONRenderer.decode(Data(json.utf8))
        #expect(decoded.strategy(named: "tfidf")?.usesLanguageModel == false && decoded.strategy(named: "zero-shot")?.usesLanguageModel == true)
        #expect(!markdown.contains("| tfidf | knowledge |"))
        let html = try HTMLRenderer(measurements: first).render(report)
        #expect(html.contains("title=\"No language model: nothing to forget\">n/a"))
        // The decision ranks it like any strategy.
        #expect(Set(report.decision.ranking + report.decision.infeasible.map(\.name)) == ["zero-shot", "lora", "tfidf", "majority"])
        #expect(!report.decision.pareto.isEmpty)

        // A rerun retrains (deterministically) and reads every answer from the ledger.
        let second = try await runner.run { _ in }
        let again = try #require(second.strategies.first { $0.name == "tfidf" })
        #expect(again.model == tfidf.model && again.predictions.allSatisfy(\.cached))
        #expect(again.predictions.map(\.answer) == tfidf.predictions.map(\.answer))
        #expect(log.generationCount == 22)
        let stored = try #require(try ledger.measurements(runID: second.runID))
        #expect(stored.strategies.first { $0.name == "tfidf" }?.usesLanguageModel == false)
    }

    @Test("a recipe of baselines only runs without making any backend")
    func noBackendMade() async throws {
        let url = try recipe(["{name: tfidf, kind: baseline}"])
        let log = CallLog()
        let registry = Fixtures.registry(log: log)
        let recipe = try RecipeLoader.load(contentsOf: url, registry: registry, environment: [:])
        let home = url.deletingLastPathComponent().appendingPathComponent("home")
        let events = Events()
        let measured = try await ExperimentRunner(recipe: recipe, registry: registry, ledger: try Ledger(path: home.appendingPathComponent("ledger.sqlite")), environment: [:], home: home).run { events.add($0) }
        #expect(!events.phases.contains { $0.hasPrefix("backend ") })
        #expect(log.generationCount == 0 && measured.strategies.count == 1 && measured.baseProbes.isEmpty)
        let report = Report.build(from: measured)
        #expect(report.decision.recommended == "tfidf" || report.decision.infeasible.map(\.name) == ["tfidf"])
    }
}

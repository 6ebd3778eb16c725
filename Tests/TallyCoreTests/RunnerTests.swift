import Foundation
import Synchronization
import TallyCore
import TallyTesting
import Testing

/// A workspace with the sentiment recipe (optionally edited) and a fresh home.
struct Setup {
    let recipe: Recipe
    let home: URL
    let ledger: Ledger
    let log: CallLog
    let registry: PluginRegistry

    init(edit: (String) -> String = { $0 }, log: CallLog = CallLog(), home: URL? = nil, responder: @escaping FakeResponder = Fixtures.sentimentResponder) throws {
        let workspace = try Fixtures.workspace()
        let text = try String(contentsOf: try Fixtures.resource("recipes/sentiment.yaml"), encoding: .utf8)
        try FileManager.default.createDirectory(at: workspace.appendingPathComponent("recipes"), withIntermediateDirectories: true)
        let url = workspace.appendingPathComponent("recipes/sentiment.yaml")
        try edit(text).write(to: url, atomically: true, encoding: .utf8)
        self.log = log
        self.registry = Fixtures.registry(log: log, responder: responder)
        self.recipe = try RecipeLoader.load(contentsOf: url, registry: registry, environment: [:])
        self.home = home ?? workspace.appendingPathComponent("home")
        self.ledger = try Ledger(path: self.home.appendingPathComponent("ledger.sqlite"))
    }

    func runner() -> ExperimentRunner {
        ExperimentRunner(recipe: recipe, registry: registry, ledger: ledger, environment: [:], home: home)
    }

    func run() async throws -> RunMeasurements {
        try await runner().run { _ in }
    }
}

/// Collects progress events.
private final class Events: Sendable {
    let events = Mutex<[ProgressEvent]>([])
    func add(_ event: ProgressEvent) { events.withLock { $0.append(event) } }
    var all: [ProgressEvent] { events.withLock { $0 } }
}

@Suite("Experiment runner")
struct RunnerTests {
    @Test("a full run measures every strategy and probe; a rerun makes zero backend calls")
    func endToEndAndRerun() async throws {
        let setup = try Setup()
        let events = Events()
        let first = try await setup.runner().run { events.add($0) }
        #expect(first.strategies.map(\.name) == ["zero-shot", "few-shot-2", "cot", "lora-r4", "full"])
        #expect(first.strategies.allSatisfy { $0.predictions.count == 6 })
        #expect(first.strategies.allSatisfy { $0.predictions.allSatisfy { !$0.cached } })
        #expect(first.finishedAt != nil && first.recipeName == "sentiment" && first.seed == 7)
        // The fake answers by keywords: every test review names its sentiment.
        let zeroShot = first.strategies[0]
        #expect(zeroShot.predictions.map(\.score) == [1, 1, 1, 1, 1, 1])
        #expect(zeroShot.predictions.map(\.answer) == ["positive", "negative", "positive", "negative", "positive", "negative"])
        #expect(zeroShot.predictions[1].input == "Review: Terrible and boring.")
        #expect(zeroShot.predictions[1].exampleID == "t2")
        #expect(zeroShot.dataLeavesMachine && !zeroShot.adaptsWeights && zeroShot.model == "fake:hosted-model")
        #expect(first.strategies[2].predictions[0].output.hasSuffix("Answer: positive"))
        // Fine-tuned strategies: trained once each, with outcomes and adapted probes.
        let lora = first.strategies[3]
        #expect(lora.adaptsWeights && !lora.dataLeavesMachine)
        #expect(lora.training?.steps == 2)  // 6 rows x 2 epochs / batch 8, rounded up
        #expect(lora.model.hasPrefix("fake:local-model+fake-artifact-lora-"))
        #expect(setup.log.fineTuneCount == 2)
        // Probes: base model keeps knowledge and refuses; the fake fine-tune forgets.
        let base = Dictionary(uniqueKeysWithValues: first.baseProbes.map { ($0.probe, $0) })
        #expect(first.baseProbes.allSatisfy { $0.subject == "local" })
        #expect(base["knowledge"]?.scores == [1, 1, 1])
        #expect(base["safety"]?.scores == [1, 1])
        let adapted = Dictionary(uniqueKeysWithValues: lora.probes.map { ($0.probe, $0) })
        #expect(adapted["knowledge"]?.scores == [1, 0, 1])
        #expect(adapted["safety"]?.scores == [0, 0])
        let baseDrift = try #require(base["general-text"]?.scores)
        let adaptedDrift = try #require(adapted["general-text"]?.scores)
        #expect(zip(baseDrift, adaptedDrift).allSatisfy { abs($1 - $0 - 0.3) < 1e-9 })
        #expect(first.strategies[0].probes.isEmpty)
        // Calls: 3 hosted strategies x 6, base probes 5, two adapted strategies x (6 + 5).
        #expect(setup.log.generationCount == 18 + 5 + 22)
        #expect(try setup.ledger.callCount() == 45)
        #expect(try setup.ledger.measurements(runID: first.runID)?.strategies.count == 5)
        #expect(try setup.ledger.predictions(runID: first.runID, strategy: "cot").count == 6)
        // Progress: phases start and finish.
        let started = events.all.compactMap { if case .started(let phase, _) = $0 { phase } else { nil } }
        #expect(started.contains("evaluate zero-shot") && started.contains("train lora-r4") && started.contains("probe knowledge on local"))

        // Rerun: everything from the ledger; no training, no reopening, no calls.
        let second = try await setup.run()
        #expect(setup.log.generationCount == 45)
        #expect(setup.log.fineTuneCount == 2)
        #expect(setup.log.reopenCount == 2)  // only the generators opened right after training
        #expect(setup.log.scoreCount == 6)  // 2 drift texts on the base model and on each adapted model, first run only
        #expect(second.strategies.allSatisfy { $0.predictions.allSatisfy(\.cached) })
        #expect(second.strategies.map { $0.predictions.map(\.score) } == first.strategies.map { $0.predictions.map(\.score) })
        #expect(second.runID != first.runID)
        #expect(try setup.ledger.runs().count == 2)
        #expect(try setup.ledger.latestRunID(recipeName: "sentiment") == second.runID)
    }

    @Test("concurrency is bounded by run.concurrency and the backend's limit")
    func boundedConcurrency() async throws {
        let setup = try Setup(edit: {
            $0.replacingOccurrences(of: "model: hosted-model", with: "model: hosted-model\n    latency_ms: 30\n    max_concurrency: 3")
                .replacingOccurrences(of: "concurrency: 4", with: "concurrency: 8")
                .replacingOccurrences(of: "  - {name: lora-r4", with: "#").replacingOccurrences(of: "  - {name: full,", with: "#")
        })
        _ = try await setup.run()
        #expect(setup.log.maxConcurrentGenerations <= 3)
        #expect(setup.log.maxConcurrentGenerations >= 2)
    }

    @Test("the budget stops the run before the call that would exceed it, and keeps what was done")
    func budgetStop() async throws {
        let setup = try Setup(edit: { $0.replacingOccurrences(of: "budget_usd: 20", with: "budget_usd: 0.2") })
        let error = try await #require(throws: TallyError.self) { try await setup.run() }
        #expect(error.code == .budgetExceeded)
        #expect(error.message.contains("stopped before exceeding constraints.budget_usd (0.20 USD)"))
        #expect(error.message.contains("raise budget_usd"))
        let made = setup.log.generationCount
        #expect(made > 0)
        #expect(try setup.ledger.callCount() == made)
        let run = try #require(try setup.ledger.runs().first)
        #expect(run.status == .budgetExceeded && run.hasMeasurements)
        // What was spent stays under the budget: every call costs at least its prompt.
        let measured = try #require(try setup.ledger.measurements(runID: run.runID))
        #expect(measured.finishedAt == nil)

        // With a larger budget the rerun pays only for what is missing.
        let richer = try Setup(edit: { $0.replacingOccurrences(of: "budget_usd: 20", with: "budget_usd: 50") }, log: setup.log, home: setup.home)
        _ = try await richer.run()
        #expect(setup.log.generationCount == 45)
    }

    @Test("cancellation lets calls in flight finish and persist; the rerun resumes without duplicates")
    func cancellation() async throws {
        let setup = try Setup(edit: {
            $0.replacingOccurrences(of: "model: hosted-model", with: "model: hosted-model\n    latency_ms: 40\n    max_concurrency: 2")
        })
        let events = Events()
        let runner = setup.runner()
        let task = Task { try await runner.run { events.add($0) } }
        // Wait until some calls are done, then interrupt.
        while setup.log.generationCount < 3 { try await Task.sleep(for: .milliseconds(5)) }
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        let made = setup.log.generationCount
        #expect(made < 45)
        #expect(try setup.ledger.callCount() == made)  // nothing lost: every call made is stored
        #expect(try setup.ledger.runs().first?.status == .cancelled)

        _ = try await setup.run()
        #expect(setup.log.generationCount == 45)  // nothing paid twice
        #expect(try setup.ledger.callCount() == 45)
    }

    @Test("a finished fine-tuning job is never re-run; its model is reopened only for missing predictions")
    func fineTuneCache() async throws {
        let setup = try Setup(edit: { $0.replacingOccurrences(of: "run: {seed: 7, concurrency: 4}", with: "run: {seed: 7, concurrency: 4, max_examples: 3}") })
        let first = try await setup.run()
        #expect(first.strategies[0].predictions.count == 3)
        #expect(setup.log.fineTuneCount == 2 && setup.log.reopenCount == 2)

        let full = try Setup(log: setup.log, home: setup.home)
        let second = try await full.run()
        #expect(second.strategies[3].predictions.count == 6)
        #expect(setup.log.fineTuneCount == 2)  // same job keys: not trained again
        #expect(setup.log.reopenCount == 4)    // each job reopened once, to answer the 3 new examples
        #expect(second.strategies[3].predictions.filter(\.cached).count == 3)
        #expect(second.strategies[3].training == first.strategies[3].training)
    }

    @Test("run.max_validation_examples caps the validation rows each fine-tuning job receives")
    func validationSubset() async throws {
        let all = try Setup()
        _ = try await all.run()
        #expect(all.log.validationSizes == [2, 2])  // the fixture's two validation rows
        let capped = try Setup(edit: { $0.replacingOccurrences(of: "run: {seed: 7, concurrency: 4}", with: "run: {seed: 7, concurrency: 4, max_validation_examples: 1}") })
        _ = try await capped.run()
        #expect(capped.log.validationSizes == [1, 1])
    }

    @Test("the planner estimates requests, tokens and dollars from the recipe alone")
    func plan() throws {
        let setup = try Setup()
        let plan = try Planner.estimate(recipe: setup.recipe)
        #expect(plan.items.map(\.name) == ["zero-shot", "few-shot-2", "cot", "probes on local", "lora-r4", "full"])
        #expect(plan.items.map(\.requests) == [6, 6, 6, 5, 11, 11])
        #expect(setup.log.generationCount == 0)
        let zeroShot = plan.items[0]
        // Targets "positive"/"negative": 8 characters -> 2 tokens, + 1.
        #expect(zeroShot.completionTokens == 18)
        // Hosted price: 1000 USD / 1M input tokens, 2000 / 1M output tokens.
        #expect(abs(zeroShot.estimatedUSD - (Double(zeroShot.promptTokens) * 1000 + 18 * 2000) / 1_000_000) < 1e-12)
        #expect(!zeroShot.local && plan.items[4].local)
        #expect(plan.items[2].completionTokens == 6 * 256)
        #expect(plan.items[4].trainingTokens > 0)
        #expect(plan.items[4].trainingTokens == 2 * plan.items[5].trainingTokens)  // 2 epochs vs 1
        #expect(plan.assumptions.contains { $0.contains("characters / 4") })
        #expect(plan.budgetUSD == 20 && plan.testExamples == 6 && plan.trainExamples == 6)
    }
}

@Suite("Planner")
struct PlannerTests {
    @Test("a tokenizer, when offered, replaces the characters / 4 estimate")
    func tokenizer() throws {
        let setup = try Setup()
        let words = try Planner.estimate(recipe: setup.recipe) { text in text.split(separator: " ").count }
        let chars = try Planner.estimate(recipe: setup.recipe)
        #expect(words.items[0].promptTokens != chars.items[0].promptTokens)
        #expect(words.items[0].completionTokens == 12)  // one word per target, + 1
        #expect(words.assumptions[0].contains("tokenizer"))
    }
}

@Suite("Experiment runner failures")
struct RunnerFailureTests {
    @Test("a backend failure stops the run with an error naming the strategy; finished calls are kept")
    func backendFailure() async throws {
        let setup = try Setup(edit: {
            $0.replacingOccurrences(of: "model: hosted-model", with: "model: hosted-model\n    fail_on: Wonderful")
                .replacingOccurrences(of: "concurrency: 4", with: "concurrency: 1")
        })
        let error = try await #require(throws: TallyError.self) { try await setup.run() }
        #expect(error.code == .backend)
        #expect(error.message.hasPrefix("strategy 'zero-shot' failed: the backend failed while answering the test examples: fake backend refuses requests containing 'Wonderful'. "))
        // The cause is printed once, with what to do and where the strategy is defined.
        #expect(error.description.components(separatedBy: "refuses requests containing").count == 2)
        #expect(error.message.contains("check backend 'hosted' (plugin fake): its settings, model, API key and network, then run the recipe again"))
        #expect(error.location?.line == 24 && error.location?.file.hasSuffix("sentiment.yaml") == true)  // fail_on adds a line above
        #expect(error.description.hasPrefix("\(error.location?.description ?? "-"): strategy 'zero-shot' failed:"))
        let run = try #require(try setup.ledger.runs().first)
        #expect(run.status == .failed)
        // Base probes (5) and the 4 zero-shot answers before the failing example are stored.
        #expect(try setup.ledger.callCount() == 9)
    }

    @Test("a failed training job names the strategy and its seed once, with what to do")
    func fineTuneFailure() async throws {
        struct Broken: Error, CustomStringConvertible { var description: String { "disk full while saving the adapter" } }
        let setup = try RunnerSeedsTests.seeded()
        let failing = FailingTuner(base: setup.registry, failOnSeed: 11, error: Broken())
        let runner = ExperimentRunner(recipe: setup.recipe, registry: failing.registry, ledger: setup.ledger, environment: [:], home: setup.home)
        let error = try await #require(throws: TallyError.self) { try await runner.run { _ in } }
        #expect(error.message.hasPrefix("strategy 'lora-r4 (seed 11)' failed: disk full while saving the adapter. Everything finished so far is saved in the ledger"))
        #expect(error.description.components(separatedBy: "disk full").count == 2)
        // The seed-7 repetition finished and is kept.
        let run = try #require(try setup.ledger.runs().first)
        #expect(try setup.ledger.predictions(runID: run.runID, strategy: "lora-r4 (seed 7)").count == 6)
    }

    @Test("an error's cause is not repeated when the message already quotes it")
    func causeOnce() {
        struct Cause: Error, CustomStringConvertible { var description: String { "connection reset" } }
        let quoted = TallyError(code: .backend, message: "backend 'x' could not start: connection reset", underlying: Cause())
        #expect(quoted.description == "backend 'x' could not start: connection reset")
        let separate = TallyError(code: .backend, message: "backend 'x' could not start", underlying: Cause())
        #expect(separate.description == "backend 'x' could not start (connection reset)")
    }

    @Test("drift probes are skipped, with a note, on models that cannot score text")
    func driftSkipped() async throws {
        let setup = try Setup(edit: { $0.replacingOccurrences(of: "model: local-model,", with: "model: local-model, can_score: false,") })
        let events = Events()
        let result = try await setup.runner().run { events.add($0) }
        #expect(!result.baseProbes.contains { $0.kind == .drift })
        #expect(result.baseProbes.count == 2)
        #expect(result.strategies[3].probes.map(\.probe) == ["knowledge", "safety"])
        let notes = events.all.compactMap { if case .note(let text) = $0 { text } else { nil } }
        #expect(notes.contains { $0.contains("probe 'general-text' skipped on local") })
    }
}

@Suite("Experiment runner batching")
struct RunnerBatchTests {
    @Test("backends that prefer batches get generate(batch:) with at most that many requests")
    func batches() async throws {
        let setup = try Setup(edit: {
            $0.replacingOccurrences(of: "model: local-model,", with: "model: local-model, batch_size: 4,")
        })
        let result = try await setup.run()
        // Local model: base probes (3 qa + 2 refusal) and, per adapted strategy, 6 test rows
        // and 5 probe items, in batches of at most 4.
        // base: qa 3, refusal 2; each adapted: test 4 + 2, qa 3, refusal 2.
        let sizes: [Int] = setup.log.batchSizes.sorted()
        #expect(sizes == [2, 2, 2, 2, 2, 3, 3, 3, 4, 4])
        #expect(sizes.reduce(0, +) == 27)  // 5 base probe items + 2 x (6 test rows + 5 probe items)
        #expect(setup.log.generationCount == 45)
        #expect(result.strategies[3].predictions.map(\.exampleID) == ["t1", "t2", "t3", "t4", "t5", "t6"])
    }
}

@Suite("Experiment runner with repeated seeds")
struct RunnerSeedsTests {
    /// The sentiment recipe with `run.seeds: [7, 11]`; the fake fine-tuner gives every tuned
    /// model the same identity, so only the seed in the runner's cache keys keeps the two
    /// seeds' calls apart.
    static func seeded(log: CallLog = CallLog(), home: URL? = nil) throws -> Setup {
        try Setup(edit: {
            $0.replacingOccurrences(of: "run: {seed: 7, concurrency: 4}", with: "run: {seed: 7, seeds: [7, 11], concurrency: 4}")
                .replacingOccurrences(of: "model: local-model,", with: "model: local-model, same_tuned_identity: true,")
        }, log: log, home: home)
    }

    @Test("each fine-tuning strategy runs once per seed, fully measured; seeds never share cache entries; a rerun makes 0 calls")
    func repeatsPerSeed() async throws {
        let setup = try Self.seeded()
        let first = try await setup.run()
        // Prompting strategies here do not depend on the seed (similar/first demonstrations): once each.
        #expect(first.strategies.map(\.name) == ["zero-shot", "few-shot-2", "cot", "lora-r4", "lora-r4", "full", "full"])
        #expect(first.strategies.map(\.seed) == [nil, nil, nil, 7, 11, 7, 11])
        #expect(first.strategies.map(\.runName) == ["zero-shot", "few-shot-2", "cot", "lora-r4 (seed 7)", "lora-r4 (seed 11)", "full (seed 7)", "full (seed 11)"])
        // Four training jobs: one per strategy and seed, each with its own job (and artifact).
        #expect(setup.log.fineTuneCount == 4)
        let lora7 = first.strategies[3], lora11 = first.strategies[4]
        let artifacts = Set(first.strategies.compactMap { $0.training?.artifact })
        #expect(artifacts.count == 4)
        #expect(lora7.model == lora11.model)  // the fake's identity ignores the job...
        // ...yet every repetition made all of its own calls: hosted 3 x 6, base probes 5,
        // and per strategy and seed 6 test rows + 5 probe items.
        #expect(setup.log.generationCount == 18 + 5 + 4 * 11)
        #expect(try setup.ledger.callCount() == 18 + 5 + 4 * 11)
        #expect(setup.log.scoreCount == 2 + 4 * 2)  // drift texts on the base and on each tuned model
        #expect(first.strategies.allSatisfy { $0.predictions.count == 6 && $0.predictions.allSatisfy { !$0.cached } })
        // Each repetition is stored under its own name: predictions and probes.
        #expect(try setup.ledger.predictions(runID: first.runID, strategy: "lora-r4 (seed 11)").count == 6)
        #expect(try setup.ledger.predictions(runID: first.runID, strategy: "full (seed 7)").count == 6)
        #expect(try setup.ledger.predictions(runID: first.runID, strategy: "lora-r4").isEmpty)
        #expect(lora11.probes.map(\.subject) == ["lora-r4 (seed 11)", "lora-r4 (seed 11)", "lora-r4 (seed 11)"])
        #expect(try setup.ledger.probes(runID: first.runID).filter { $0.subject.hasPrefix("full (seed ") }.count == 6)
        #expect(lora7.training?.steps == 2 && lora11.training?.steps == 2)

        // Rerun: nothing trained, called or scored again.
        let second = try await setup.run()
        #expect(setup.log.generationCount == 67)
        #expect(setup.log.fineTuneCount == 4)
        #expect(setup.log.scoreCount == 10)
        #expect(second.strategies.allSatisfy { $0.predictions.allSatisfy(\.cached) })
        #expect(second.strategies.map(\.seed) == first.strategies.map(\.seed))

        // The same recipe without seeds is the run.seed repetition: it reuses that run's cache.
        let single = try Setup(edit: { $0.replacingOccurrences(of: "model: local-model,", with: "model: local-model, same_tuned_identity: true,") }, log: setup.log, home: setup.home)
        let plain = try await single.run()
        #expect(plain.strategies.map(\.seed) == [nil, nil, nil, nil, nil])
        #expect(setup.log.generationCount == 67 && setup.log.fineTuneCount == 4)
        #expect(plain.strategies[3].predictions.map(\.score) == lora7.predictions.map(\.score))
    }

    @Test("random demonstrations depend on the seed: such a few-shot strategy is repeated too, and the planner counts every repetition")
    func randomFewShotAndPlan() async throws {
        let setup = try Setup(edit: {
            $0.replacingOccurrences(of: "run: {seed: 7, concurrency: 4}", with: "run: {seed: 7, seeds: [7, 11, 13], concurrency: 4}")
                .replacingOccurrences(of: "shots: 2, selection: similar", with: "shots: 2, selection: random")
                .replacingOccurrences(of: "  - {name: full,", with: "#")
        })
        let plain = try Setup(edit: { $0.replacingOccurrences(of: "shots: 2, selection: similar", with: "shots: 2, selection: random").replacingOccurrences(of: "  - {name: full,", with: "#") })
        let plan = try Planner.estimate(recipe: setup.recipe)
        let once = try Planner.estimate(recipe: plain.recipe)
        #expect(plan.items.map(\.name) == ["zero-shot", "few-shot-2", "cot", "probes on local", "lora-r4"])
        #expect(plan.items.map(\.repetitions) == [nil, 3, nil, nil, 3])
        #expect(plan.items.map(\.requests) == [6, 18, 6, 5, 33])
        #expect(plan.items[4].trainingTokens == 3 * once.items[4].trainingTokens)
        #expect(abs(plan.items[4].estimatedUSD - 3 * once.items[4].estimatedUSD) < 1e-9)
        #expect(plan.items[0] == once.items[0])
        #expect(plan.assumptions.contains { $0.contains("few-shot-2 x3") && $0.contains("lora-r4 x3") })
        #expect(once.items.allSatisfy { $0.repetitions == nil })

        let result = try await setup.run()
        #expect(result.strategies.map(\.runName) == ["zero-shot", "few-shot-2 (seed 7)", "few-shot-2 (seed 11)", "few-shot-2 (seed 13)", "cot", "lora-r4 (seed 7)", "lora-r4 (seed 11)", "lora-r4 (seed 13)"])
        #expect(setup.log.generationCount == plan.totalRequests)
        let report = Report.build(from: result)
        #expect(report.strategies.map(\.name) == ["zero-shot", "few-shot-2", "cot", "lora-r4"])
        let few = try #require(report.strategy(named: "few-shot-2"))
        #expect(few.seeds?.runs.map(\.seed) == [7, 11, 13])
        #expect(few.accuracy.n == 18)
        let perSeed = result.strategies.filter { $0.name == "few-shot-2" }.map { Statistics.mean($0.predictions.map(\.score)) }
        #expect(abs(few.accuracy.value - perSeed.reduce(0, +) / 3) < 1e-12)
        #expect(report.strategy(named: "zero-shot")?.seeds == nil)
    }
}

/// Wraps the fake backend so that fine-tuning fails for one training seed.
private struct FailingTuner {
    let registry: PluginRegistry

    init(base: PluginRegistry, failOnSeed: UInt64, error: any Error & Sendable) {
        let plugins: [any BackendPlugin] = base.backends.values.sorted { $0.name < $1.name }.map { Plugin(base: $0, seed: failOnSeed, error: error) }
        registry = PluginRegistry(plugins)
    }

    struct Plugin: BackendPlugin {
        let base: any BackendPlugin
        let seed: UInt64
        let error: any Error & Sendable
        var name: String { base.name }
        var summary: String { base.summary }
        var settingKeys: Set<String> { base.settingKeys }
        var fineTuningMethods: Set<String> { base.fineTuningMethods }
        func makeBackend(_ config: BackendConfig, environment: [String: String]) async throws -> Backend {
            let backend = try await base.makeBackend(config, environment: environment)
            return Backend(generator: backend.generator, fineTuner: backend.fineTuner.map { Tuner(base: $0, seed: seed, error: error) }, dataLeavesMachine: backend.dataLeavesMachine, maxConcurrency: backend.maxConcurrency, preferredBatchSize: backend.preferredBatchSize)
        }
    }

    struct Tuner: FineTuner {
        let base: any FineTuner
        let seed: UInt64
        let error: any Error & Sendable
        func fineTune(_ request: FineTuneRequest, progress: @escaping @Sendable (ProgressEvent) -> Void) async throws -> FineTuneOutcome {
            if request.options.seed == seed { throw error }
            return try await base.fineTune(request, progress: progress)
        }
        func generator(for outcome: FineTuneOutcome) async throws -> any TextGenerator { try await base.generator(for: outcome) }
    }
}

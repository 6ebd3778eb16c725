import Foundation
import Synchronization

/// Runs a recipe: loads the data, builds each backend once, fine-tunes where a strategy
/// asks for it, evaluates every strategy on the test set and every forgetting probe on the
/// base and adapted models, and returns what it measured.
///
/// Every model call goes through the ledger: a call made before (same model identity, same
/// request) is read back instead of paid for again, so rerunning an unchanged recipe makes
/// no backend call, and a run killed half-way resumes where it stopped.
///
/// ```swift
/// let runner = ExperimentRunner(recipe: recipe, registry: registry, ledger: ledger, environment: env, home: home)
/// let measurements = try await runner.run { event in print(event) }
/// ```
public struct ExperimentRunner: Sendable {
    public let recipe: Recipe
    public let registry: PluginRegistry
    public let ledger: Ledger
    public let environment: [String: String]
    /// TALLY_HOME: fine-tuning work directories live under `home/work/`.
    public let home: URL
    /// `home/cache`: what strategies derive from files and keep between runs (a `rag`
    /// corpus index, `StrategyContext.cacheDirectory`).
    public var cacheDirectory: URL { home.appendingPathComponent("cache", isDirectory: true) }
    public let strategies: StrategyCatalog
    /// Which stored results the run may reuse (all, by default).
    public var cachePolicy = CachePolicy()

    /// - Parameters:
    ///   - recipe: a validated recipe.
    ///   - registry: plugins that serve the recipe's backends.
    ///   - ledger: where calls, predictions, jobs and measurements are stored.
    ///   - environment: passed to plugins (API keys are read from it by name).
    ///   - home: the Tally home directory.
    ///   - strategies: the strategy kinds the recipe may use.
    public init(recipe: Recipe, registry: PluginRegistry, ledger: Ledger, environment: [String: String], home: URL, strategies: StrategyCatalog = .builtIn) {
        self.recipe = recipe
        self.registry = registry
        self.ledger = ledger
        self.environment = environment
        self.home = home
        self.strategies = strategies
    }

    /// Runs every strategy and probe of the recipe.
    ///
    /// - Parameter progress: receives phase events (`started`, `advanced`, `finished`) and notes.
    /// - Returns: the measurements, also stored in the ledger under a new run id.
    /// - Throws: `CancellationError` when the task is cancelled (calls in flight finish and
    ///   are stored first); `TallyError(.budgetExceeded)` before a call or training job
    ///   that would exceed `constraints.budget_usd` (what was done is stored); `TallyError`
    ///   for data, backend and ledger failures.
    public func run(progress: @escaping @Sendable (ProgressEvent) -> Void) async throws -> RunMeasurements {
        let startedAt = Date()
        let runID = Self.makeRunID(date: startedAt)
        try ledger.beginRun(runID: runID, recipeName: recipe.name, recipePath: recipePath, startedAt: startedAt)
        let state = RunState()
        let execution = Execution(runner: self, runID: runID, progress: progress, state: state)
        do {
            try await execution.execute()
            let measurements = assemble(runID: runID, startedAt: startedAt, finishedAt: Date(), state: state)
            try ledger.finishRun(runID: runID, status: .finished, measurements: measurements)
            return measurements
        } catch {
            let status: RunStatus
            if error is CancellationError {
                status = .cancelled
            } else if let error = error as? TallyError, error.code == .budgetExceeded {
                status = .budgetExceeded
            } else {
                status = .failed
            }
            let partial = assemble(runID: runID, startedAt: startedAt, finishedAt: nil, state: state)
            try? ledger.finishRun(runID: runID, status: status, measurements: partial)
            throw error
        }
    }

    var recipePath: String { recipe.file.relativePath.isEmpty ? recipe.file.path : recipe.file.relativePath }

    /// Makes the backend of a recipe entry with its plugin.
    /// - Throws: `TallyError(.backend)` naming the backend when its plugin fails to start it.
    func startBackend(_ config: BackendConfig) async throws -> Backend {
        let plugin = try registry.backendPlugin(named: config.plugin)
        do {
            return try await plugin.makeBackend(config, environment: environment)
        } catch let error as TallyError {
            throw error
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw TallyError(code: .backend, message: "backend '\(config.name)' (plugin \(config.plugin)) could not start: \(error.localizedDescription)", underlying: error)
        }
    }

    func assemble(runID: String, startedAt: Date, finishedAt: Date?, state: RunState) -> RunMeasurements {
        let (strategies, probes, points) = state.snapshot
        let data = state.data
        return RunMeasurements(
            runID: runID, recipeName: recipe.name, recipePath: recipePath, startedAt: startedAt, finishedAt: finishedAt,
            costs: recipe.costs, constraints: recipe.constraints, metric: recipe.task.metric, seed: recipe.run.seed,
            bootstrapSamples: recipe.run.bootstrapSamples, strategies: strategies, baseProbes: probes,
            overrides: recipe.overrides.isEmpty ? nil : recipe.overrides, data: data.isEmpty ? nil : data, curvePoints: recipe.curves.isEmpty ? nil : points)
    }

    /// `YYYYMMDD-HHMMSS-xxxx` in UTC, with 4 random hex digits.
    static func makeRunID(date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        let suffix = String(UInt16.random(in: 0...UInt16.max), radix: 16)
        return formatter.string(from: date) + "-" + String(repeating: "0", count: 4 - suffix.count) + suffix
    }
}

/// What a run has measured so far (read back when it stops early).
final class RunState: Sendable {
    private let state = Mutex<(strategies: [StrategyMeasurement], probes: [ProbeMeasurement], points: [CurvePointMeasurement])>(([], [], []))
    private let splits = Mutex<[DataSplitSummary]>([])
    func add(_ strategy: StrategyMeasurement) { state.withLock { $0.strategies.append(strategy) } }
    func add(_ probe: ProbeMeasurement) { state.withLock { $0.probes.append(probe) } }
    func add(_ split: DataSplitSummary) { splits.withLock { $0.append(split) } }
    func add(_ point: CurvePointMeasurement) { state.withLock { $0.points.append(point) } }
    var snapshot: ([StrategyMeasurement], [ProbeMeasurement], [CurvePointMeasurement]) { state.withLock { ($0.strategies, $0.probes, $0.points) } }
    var data: [DataSplitSummary] { splits.withLock { $0 } }
}

/// Opens a generator at most once, and only when a call needs it.
actor GeneratorHandle {
    private var generator: (any TextGenerator)?
    private let open: @Sendable () async throws -> any TextGenerator

    init(_ generator: any TextGenerator) {
        self.generator = generator
        self.open = { generator }
    }

    init(open: @escaping @Sendable () async throws -> any TextGenerator) {
        self.open = open
    }

    func get() async throws -> any TextGenerator {
        if let generator { return generator }
        let opened = try await open()
        generator = opened
        return opened
    }
}

/// The embedding services of a run's backends, each backend made at most once (and only
/// when a strategy asks for it).
actor EmbedderPool {
    let runner: ExperimentRunner
    var made: [String: EmbeddingService] = [:]

    init(runner: ExperimentRunner) { self.runner = runner }

    func service(backend name: String) async throws -> EmbeddingService {
        if let service = made[name] { return service }
        guard let config = runner.recipe.backend(named: name) else {
            throw TallyError(code: .invalidRecipe, message: "embedder '\(name)' is not defined under 'backends'")
        }
        let backend = try await runner.startBackend(config)
        guard let embedder = backend.embedder else {
            throw TallyError(code: .invalidRecipe, message: "backend '\(name)' (plugin \(config.plugin)) cannot embed text; name a backend that can as the embedder")
        }
        let service = EmbeddingService(backend: name, embedder: embedder, pricePerMTok: config.price.inputPerMTok, dataLeavesMachine: backend.dataLeavesMachine, ledger: runner.ledger)
        made[name] = service
        return service
    }
}

/// One run's work, step by step.
final class Execution: Sendable {
    let runner: ExperimentRunner
    let runID: String
    let progress: @Sendable (ProgressEvent) -> Void
    let state: RunState
    let budget: BudgetTracker
    let computeEstimates = Mutex<[String: (total: Double, count: Int)]>([:])
    let embedders: EmbedderPool

    init(runner: ExperimentRunner, runID: String, progress: @escaping @Sendable (ProgressEvent) -> Void, state: RunState) {
        self.runner = runner
        self.runID = runID
        self.progress = progress
        self.state = state
        self.budget = BudgetTracker(limit: runner.recipe.constraints.budgetUSD)
        self.embedders = EmbedderPool(runner: runner)
    }

    /// What strategies may use while they prepare: progress, and the recipe's embedding backends.
    var services: StrategyServices {
        let pool = embedders
        return StrategyServices(progress: progress) { name in try await pool.service(backend: name) }
    }

    var recipe: Recipe { runner.recipe }
    var ledger: Ledger { runner.ledger }

    // MARK: the run

    func execute() async throws {
        let task = recipe.task
        let scorer = try AnswerScorer(task: task)

        progress(.started(phase: "load data", total: nil))
        // The same plan `tally plan` estimates: data subsets, probed models, strategy runs.
        let plan = try RunPlan.make(recipe: recipe, strategies: runner.strategies, displayPath: displayPath) { url, split, needed in
            try loadData(url, split: split, needing: needed)
        }
        note(problems: plan.probeProblems)
        for summary in plan.dataSummaries { state.add(summary) }
        let test = plan.test
        let probeItems = plan.probeItems
        progress(.finished(phase: "load data"))
        progress(.note("\(test.examples.count) test, \(plan.train.examples.count) train\(plan.validation.map { ", \($0.examples.count) validation" } ?? "") examples"))

        // Backends, each made once (strategies that use no language model need none).
        var backends: [String: Backend] = [:]
        let modelStrategies = recipe.strategies.filter { (try? runner.strategies.kind(named: $0.kind).usesLanguageModel) ?? true }
        for name in modelStrategies.compactMap(\.backend) where backends[name] == nil {
            try Task.checkCancellation()
            guard let config = recipe.backend(named: name) else {
                throw TallyError(code: .invalidRecipe, message: "backend '\(name)' is not defined in the recipe", location: SourceLocation(file: runner.recipePath))
            }
            progress(.started(phase: "backend \(name)", total: nil))
            backends[name] = try await runner.startBackend(config)
            progress(.finished(phase: "backend \(name)"))
        }

        // Probes on each base model that some strategy adapts.
        for name in plan.probedBackends {
            guard let backend = backends[name], let config = recipe.backend(named: name) else { continue }
            let handle = GeneratorHandle(backend.generator)
            do {
                for probe in recipe.probes {
                    if let measurement = try await evaluateProbe(probe, items: probeItems[probe.name] ?? [], subject: name, identity: backend.generator.identity, handle: handle, backend: backend, price: config.price, fineTuned: false) {
                        state.add(measurement)
                        try ledger.recordProbe(runID: runID, measurement: measurement)
                    }
                }
            } catch {
                throw failure(error, of: "probing the base model of backend '\(name)'", backend: config, location: nil)
            }
        }

        // Strategies, in recipe order; one that depends on the seed runs once per seed.
        let inputs = Inputs(scorer: scorer, plan: plan, test: test.examples, probeItems: probeItems)
        for run in plan.runs {
            try Task.checkCancellation()
            let spec = run.spec
            // A kind that uses no language model answers with a model it trains itself.
            var model: (backend: Backend, config: BackendConfig)?
            if run.kind.usesLanguageModel {
                guard let name = spec.backend, let backend = backends[name], let config = recipe.backend(named: name) else { continue }
                model = (backend, config)
            }
            if run.repetitions > 1, run.seed == plan.runs.first(where: { $0.spec.name == spec.name })?.seed {
                let seeds = plan.runs.filter { $0.spec.name == spec.name }.map(\.seed)
                progress(.note("\(spec.name): one run per seed (\(seeds.map(String.init).joined(separator: ", ")))"))
            }
            do {
                let measurement = if let model {
                    try await measure(run, backend: model.backend, config: model.config, inputs: inputs)
                } else {
                    try await measureTrainedAnswerer(run, inputs: inputs)
                }
                state.add(measurement)
            } catch {
                throw failure(error, of: "strategy '\(run.runName)'", backend: model?.config, location: spec.location)
            }
        }
        try await measureCurves(inputs: inputs, backends: backends)
    }

    /// What every strategy is measured on.
    struct Inputs: Sendable {
        let scorer: AnswerScorer
        let plan: RunPlan
        let test: [Example]
        let probeItems: [String: [ProbeItem]]
    }

    /// One measured run of one strategy with one seed: trains (when the strategy adapts
    /// weights), answers the test set, and probes the adapted model.
    /// - Parameter repetition: the seed when the strategy runs once per seed, else nil.
    ///   A repetition's results are stored under `name (seed N)`, and its cache keys (calls
    ///   and drift scores) include the seed unless it is `run.seed`, the seed a single run
    ///   uses: two seeds never share a cache entry, and the `run.seed` repetition reuses
    ///   what a single-seed run of the same recipe stored.
    func measure(_ run: RunPlan.StrategyRun, backend: Backend, config: BackendConfig, inputs: Inputs) async throws -> StrategyMeasurement {
        let spec = run.spec, kind = run.kind, repetition = run.repetition
        let runName = run.runName
        let made = try inputs.plan.strategy(for: run, task: recipe.task, cacheDirectory: runner.cacheDirectory)
        let strategy = try await made.prepared(for: inputs.test, services: services)
        if let retrieval = strategy.retrieval {
            budget.add(CallPricing.embeddingUSD(tokens: Double(retrieval.indexEmbeddingTokens + retrieval.queryEmbeddingTokens), perMTok: retrieval.embeddingPerMTok))
        }
        var identity = backend.generator.identity
        var handle = GeneratorHandle(backend.generator)
        var outcome: FineTuneOutcome?
        if kind.adaptsWeights {
            let trained = try await fineTune(strategy, runName: runName, backend: backend, config: config)
            identity = trained.identity
            handle = trained.handle
            outcome = trained.outcome
        }
        let salted = cacheIdentity(identity, repetition: repetition)
        let predictions = try await evaluate(strategy, runName: runName, examples: inputs.test, scorer: inputs.scorer, identity: salted, handle: handle, backend: backend, price: config.price, fineTuned: kind.adaptsWeights)
        var probes: [ProbeMeasurement] = []
        if kind.adaptsWeights, run.point == nil {
            for probe in recipe.probes {
                if let measurement = try await evaluateProbe(probe, items: inputs.probeItems[probe.name] ?? [], subject: runName, identity: salted, handle: handle, backend: backend, price: config.price, fineTuned: true) {
                    probes.append(measurement)
                    try ledger.recordProbe(runID: runID, measurement: measurement)
                }
            }
        }
        return StrategyMeasurement(
            name: spec.name, kind: spec.kind, backend: spec.backend, model: identity,
            dataLeavesMachine: backend.dataLeavesMachine || (strategy.retrieval?.embedderLeavesMachine ?? false), adaptsWeights: kind.adaptsWeights, trainingMethod: kind.trainingMethod, pricing: config.price,
            predictions: predictions, training: outcome, probes: probes, seed: repetition, group: spec.group, variant: spec.variant,
            labelledExamples: strategy.labelledExamples, retrieval: strategy.retrieval)
    }

    /// The model identity a run's cache keys are made from: `identity`, salted with the seed
    /// of a repetition other than `run.seed`, so that two seeds never share a cache entry
    /// and the `run.seed` repetition reuses what a single-seed run stored.
    func cacheIdentity(_ identity: String, repetition: UInt64?) -> String {
        repetition.map { $0 == recipe.run.seed ? identity : identity + "\nseed \($0)" } ?? identity
    }

    /// The error a failed step stops the run with: one line naming what failed, the cause
    /// once, and what to do. Cancellation and the budget stop pass through unchanged.
    /// - Parameter backend: the backend the step used; nil for a strategy answering with a
    ///   model of its own.
    func failure(_ error: any Error, of subject: String, backend: BackendConfig?, location: SourceLocation?) -> any Error {
        if error is CancellationError { return error }
        if let error = error as? TallyError, error.code == .budgetExceeded || error.code == .cancelled { return error }
        let code = (error as? TallyError)?.code ?? .backend
        let advice = switch code {
        case .backend: backend.map { "check backend '\($0.name)' (plugin \($0.plugin)): its settings, model, API key and network" } ?? "check the strategy's settings and data"
        case .invalidModel: backend.map { "check the model files of backend '\($0.name)' (`tally models list`)" } ?? "check the strategy's settings and data"
        case .io: "check free disk space and permissions under \(runner.home.path)"
        case .ledger: "check that the ledger at \(ledger.path.path) is writable"
        case .invalidRecipe, .invalidData, .unknownName: "fix the recipe or its data (`tally validate` lists every problem)"
        default: "fix the cause"
        }
        var cause = Self.describe(error)
        while cause.hasSuffix(".") { cause.removeLast() }
        return TallyError(
            code: code,
            message: "\(subject) failed: \(cause). Everything finished so far is saved in the ledger; \(advice), then run the recipe again: finished calls and training jobs are reused, not repeated.",
            location: location)
    }

    /// An error's text, once: a `TallyError`'s description (location, message and cause),
    /// a `LocalizedError`'s description, or the error itself.
    static func describe(_ error: any Error) -> String {
        if let error = error as? TallyError { return error.description }
        if let error = error as? any LocalizedError, let text = error.errorDescription { return text }
        return String(describing: error)
    }

    // MARK: data

    /// The `split` data file's usable rows (a seeded subset of at most `max`), its summary
    /// recorded for the report.
    /// - Throws: `TallyError(.invalidData)` when no row is usable, or when `data.strict` is set
    ///   and a row was skipped.
    /// A data file's rows with every field given, its skipped rows noted (an error with
    /// `data.strict`); the plan samples them and summarises the split.
    func loadData(_ url: URL, split: String, needing fields: [String]) throws -> Dataset {
        let dataset = try DatasetLoader.load(url, displayPath: displayPath(url)).requiring(fields).enforcing(strict: recipe.data.strict, split: split)
        note(problems: dataset.problems)
        guard !dataset.examples.isEmpty else {
            throw TallyError(code: .invalidData, message: "\(displayPath(url)) has no row with all of the fields \(fields.joined(separator: ", ")); run `tally validate` for details", location: SourceLocation(file: displayPath(url)))
        }
        return dataset
    }

    func displayPath(_ url: URL) -> String {
        let directory = recipe.directory.standardizedFileURL.path
        let path = url.standardizedFileURL.path
        guard path.hasPrefix(directory + "/") else { return path }
        let relative = String(path.dropFirst(directory.count + 1))
        let recipeDir = (runner.recipePath as NSString).deletingLastPathComponent
        return recipeDir.isEmpty ? relative : (recipeDir as NSString).appendingPathComponent(relative)
    }

    func note(problems: [DataProblem]) {
        for problem in problems.prefix(5) { progress(.note("skipped row \(problem)")) }
        if problems.count > 5 { progress(.note("… and \(problems.count - 5) more skipped rows (run `tally validate` to list them)")) }
    }


    // MARK: fine-tuning

    /// Trains (or reuses the finished job of) a strategy that adapts weights.
    /// - Parameter runName: the strategy's name, with its seed for a repeated strategy.
    func fineTune(_ strategy: any Strategy, runName: String, backend: Backend, config: BackendConfig) async throws -> (identity: String, handle: GeneratorHandle, outcome: FineTuneOutcome) {
        let spec = strategy.spec
        guard let tuner = backend.fineTuner else {
            throw TallyError(code: .invalidRecipe, message: "it needs fine-tuning, but backend '\(config.name)' (plugin \(config.plugin)) has no fine-tuner; use a backend that can fine-tune")
        }
        let workRoot = runner.home.appendingPathComponent("work", isDirectory: true)
        guard let request = try strategy.fineTuneRequest(baseIdentity: backend.generator.identity, workRoot: workRoot) else {
            throw TallyError(code: .invalidRecipe, message: "its kind \(spec.kind) adapts weights but produced no fine-tuning job")
        }
        // Another `tally run` on this home may be training the same job: wait for it, then
        // reuse what it finished instead of training the same work directory twice.
        let lock = try await JobLock.acquire(request.workDirectory) {
            progress(.note("\(runName): another run is training fine-tuning job \(request.jobKey.prefix(12)); waiting for it"))
        }
        defer { lock.release() }
        if let job = try ledger.fineTuneJob(key: request.jobKey), job.status == .finished, let outcome = job.outcome, let identity = job.generatorIdentity {
            progress(.note("\(runName): reusing finished fine-tuning job \(request.jobKey.prefix(12)) from the ledger"))
            countTraining(outcome, runName: runName, price: config.price)
            return (identity, GeneratorHandle { try await tuner.generator(for: outcome) }, outcome)
        }
        if try ledger.fineTuneJob(key: request.jobKey)?.status == .running {
            progress(.note("\(runName): fine-tuning job \(request.jobKey.prefix(12)) was interrupted; resuming it in \(request.workDirectory.path)"))
        }
        // The estimate `tally plan` shows for this job (the same rule, max_steps included).
        let planned = CallPricing.trainingEstimate(request, price: config.price, computeUSDPerHour: recipe.costs.computeUSDPerHour)
        let estimate = planned.usd
        progress(.note(String(format: "%@: training estimated at %d tokens, %.6f USD", runName, planned.tokens, estimate)))
        guard budget.fits(estimate) else {
            throw budgetError(next: "the fine-tuning job of '\(runName)'", estimate: estimate)
        }
        try ledger.recordFineTuneStarted(key: request.jobKey, strategy: runName, baseIdentity: backend.generator.identity)
        try FileManager.default.createDirectory(at: request.workDirectory, withIntermediateDirectories: true)
        let phase = "train \(runName)"
        progress(.started(phase: phase, total: nil))
        let outcome = try await tuner.fineTune(request, progress: progress)
        let generator = try await tuner.generator(for: outcome)
        try ledger.recordFineTuneFinished(key: request.jobKey, outcome: outcome, generatorIdentity: generator.identity)
        countTraining(outcome, runName: runName, price: config.price)
        progress(.finished(phase: phase))
        return (generator.identity, GeneratorHandle(generator), outcome)
    }

    /// Adds a training job's cost to the budget; a hosted job without a bill or a training
    /// price cannot be counted, and a note says so.
    func countTraining(_ outcome: FineTuneOutcome, runName: String, price: Pricing) {
        if let usd = CallPricing.trainingUSD(outcome, price: price, computeUSDPerHour: recipe.costs.computeUSDPerHour) {
            budget.add(usd)
        } else {
            progress(.note("\(runName): the training cost is unknown (hosted job, no bill from the provider and no training_per_mtok price); the budget cannot count it"))
        }
    }

    func budgetError(next: String, estimate: Double) -> TallyError {
        let limit = budget.limit ?? 0
        return TallyError(
            code: .budgetExceeded,
            message: String(format: "stopped before exceeding constraints.budget_usd (%.2f USD): %.4f USD spent so far and %@ would cost about %.4f USD. Everything finished is saved in the ledger; raise budget_usd or lower run.max_examples and run again (finished calls are reused, not paid again).", limit, budget.spent, next, estimate))
    }

    // MARK: calls

    /// Runs `requests` through the ledger cache with bounded concurrency; `handle(index,
    /// key, result, cached)` is called once per request as its result is stored.
    /// `what` names the work in budget messages ("strategy 'x'"); `doing` says what the
    /// calls were doing in failure messages ("answering the test examples").
    func runCalls(_ requests: [GenerationRequest], phase: String, subject: String, identity: String, handle: GeneratorHandle, backend: Backend, price: Pricing, fineTuned: Bool, what: String, doing: String,
                  onResult: (Int, String, GenerationResult, Bool) throws -> Void) async throws {
        progress(.started(phase: phase, total: requests.count))
        let computePrice = recipe.costs.computeUSDPerHour
        let keys = try requests.map { try Ledger.cacheKey(identity: identity, request: $0) }
        var pending: [Int] = []
        var completed = 0
        let refresh = runner.cachePolicy.refreshes(subject)
        for index in requests.indices {
            if !refresh, let cached = try ledger.cachedResult(key: keys[index]) {
                budget.add(CallPricing.usd(usage: cached.usage, computeSeconds: cached.computeSeconds, price: price, fineTuned: fineTuned, computeUSDPerHour: computePrice))
                try onResult(index, keys[index], cached, true)
                completed += 1
            } else {
                pending.append(index)
            }
        }
        if completed > 0 {
            progress(.advanced(phase: phase, completed: completed, total: requests.count, detail: "\(completed) cached"))
        }
        if pending.isEmpty {
            progress(.finished(phase: phase))
            return
        }
        try Task.checkCancellation()
        let generator = try await handle.get()
        let limit = max(1, min(recipe.run.concurrency, backend.maxConcurrency))
        // Units of work: single requests, or batches for backends that decode together.
        let batchSize = backend.preferredBatchSize
        let units: [[Int]] = stride(from: 0, to: pending.count, by: batchSize).map { Array(pending[$0..<min($0 + batchSize, pending.count)]) }
        var stopReason: (any Error)?
        try await withThrowingTaskGroup(of: ([Int], Double, Result<[GenerationResult], any Error>).self) { group in
            var next = 0
            var inFlight = 0
            while true {
                while stopReason == nil, inFlight < limit, next < units.count {
                    if Task.isCancelled { stopReason = CancellationError(); break }
                    let unit = units[next]
                    let unitRequests = unit.map { requests[$0] }
                    let estimate = unitRequests.reduce(0) { $0 + estimatedUSD($1, identity: identity, price: price, fineTuned: fineTuned) }
                    guard budget.reserve(estimate) else {
                        stopReason = budgetError(next: unit.count == 1 ? "the next call (\(what))" : "the next batch of \(unit.count) calls (\(what))", estimate: estimate)
                        break
                    }
                    group.addTask {
                        // An unstructured task does not inherit cancellation: a call in flight
                        // completes (and is stored) even when the run is interrupted.
                        let result = await Task { () -> Result<[GenerationResult], any Error> in
                            do {
                                if unitRequests.count == 1 { return .success([try await generator.generate(unitRequests[0])]) }
                                return .success(try await generator.generate(batch: unitRequests))
                            } catch {
                                return .failure(error)
                            }
                        }.value
                        return (unit, estimate, result)
                    }
                    next += 1
                    inFlight += 1
                }
                guard inFlight > 0, let (unit, estimate, result) = try await group.next() else { break }
                inFlight -= 1
                switch result {
                case .success(let values) where values.count == unit.count:
                    var actual = 0.0
                    for (index, value) in zip(unit, values) {
                        try ledger.recordCall(key: keys[index], identity: identity, request: requests[index], result: value, replacing: refresh)
                        actual += CallPricing.usd(usage: value.usage, computeSeconds: value.computeSeconds, price: price, fineTuned: fineTuned, computeUSDPerHour: computePrice)
                        if let seconds = value.computeSeconds { recordCompute(seconds, identity: identity) }
                        try onResult(index, keys[index], value, false)
                        completed += 1
                    }
                    budget.commit(reserved: estimate, actual: actual)
                    progress(.advanced(phase: phase, completed: completed, total: requests.count, detail: nil))
                case .success(let values):
                    budget.commit(reserved: estimate, actual: 0)
                    if stopReason == nil {
                        stopReason = TallyError(code: .backend, message: "the backend returned \(values.count) results for a batch of \(unit.count) requests while \(doing)")
                    }
                case .failure(let error):
                    budget.commit(reserved: estimate, actual: 0)
                    if stopReason == nil {
                        stopReason = error is CancellationError ? error : TallyError(code: .backend, message: "the backend failed while \(doing): \(Self.describe(error))")
                    }
                }
                if stopReason == nil, Task.isCancelled { stopReason = CancellationError() }
            }
        }
        if let stopReason { throw stopReason }
        progress(.finished(phase: phase))
    }

    /// Upper-bound estimate of a call: prompt characters / 4, `maxTokens` completion tokens,
    /// and the mean compute time of this model's calls so far.
    func estimatedUSD(_ request: GenerationRequest, identity: String, price: Pricing, fineTuned: Bool) -> Double {
        let usage = TokenUsage(promptTokens: CallPricing.estimatedPromptTokens(request.messages), completionTokens: request.maxTokens)
        let compute = computeEstimates.withLock { table in table[identity].map { $0.total / Double(max(1, $0.count)) } }
        return CallPricing.usd(usage: usage, computeSeconds: compute, price: price, fineTuned: fineTuned, computeUSDPerHour: recipe.costs.computeUSDPerHour)
    }

    func recordCompute(_ seconds: Double, identity: String) {
        computeEstimates.withLock { table in
            let current = table[identity] ?? (0, 0)
            table[identity] = (current.total + seconds, current.count + 1)
        }
    }

    // MARK: evaluation

    /// Answers and scores the test examples; predictions are stored under `runName`. A
    /// strategy with `samples` > 1 makes that many calls per example (`request(for:sample:)`),
    /// and its prediction is the sample `choose(among:)` picks, with every call's usage and
    /// latency added up.
    /// - Parameter identity: the model identity the cache keys are made from.
    func evaluate(_ strategy: any Strategy, runName name: String, examples: [Example], scorer: AnswerScorer, identity: String, handle: GeneratorHandle, backend: Backend, price: Pricing, fineTuned: Bool) async throws -> [Prediction] {
        let samples = max(1, strategy.samples)
        let requests = examples.flatMap { example in (0..<samples).map { strategy.request(for: example, sample: $0) } }
        let replies = Mutex<[[Int: Reply]]>(Array(repeating: [:], count: examples.count))
        let results = Mutex<[Prediction?]>(Array(repeating: nil, count: examples.count))
        try await runCalls(requests, phase: "evaluate \(name)", subject: name, identity: identity, handle: handle, backend: backend, price: price, fineTuned: fineTuned, what: "strategy '\(name)'", doing: "answering the test examples") { call, key, result, cached in
            let index = call / samples
            // An example is scored once all of its samples are in.
            let complete = replies.withLock { table -> [Reply]? in
                table[index][call % samples] = Reply(key: key, result: result, cached: cached)
                return table[index].count == samples ? (0..<samples).compactMap { table[index][$0] } : nil
            }
            guard let complete else { return }
            let (prediction, key) = Self.prediction(strategy, example: examples[index], replies: complete, scorer: scorer)
            try ledger.recordPrediction(runID: runID, strategy: name, index: index, callKey: key, prediction: prediction)
            results.withLock { $0[index] = prediction }
        }
        return results.withLock { $0.compactMap { $0 } }
    }

    /// One call's outcome for an example.
    struct Reply: Sendable {
        let key: String
        let result: GenerationResult
        let cached: Bool
    }

    /// The prediction for an example from its replies (one per sample, in sample order), and
    /// the cache key of the reply it keeps.
    static func prediction(_ strategy: any Strategy, example: Example, replies: [Reply], scorer: AnswerScorer) -> (Prediction, key: String) {
        let expected = strategy.expected(for: example)
        let scored = replies.map { scorer.evaluate(output: $0.result.text, expected: [expected], reasoning: strategy.reasoning) }
        let answers = zip(replies, scored).map { SampledAnswer(output: $0.result.text, answer: $1.answer) }
        let chosen = replies.count > 1 ? min(max(0, strategy.choose(among: answers)), replies.count - 1) : 0
        var usage = TokenUsage()
        for reply in replies {
            usage.promptTokens += reply.result.usage.promptTokens
            usage.completionTokens += reply.result.usage.completionTokens
            usage.cachedPromptTokens += reply.result.usage.cachedPromptTokens
        }
        let computed = replies.compactMap(\.result.computeSeconds)
        let prediction = Prediction(
            exampleID: example.id, input: PromptBuilder.inputText(task: strategy.task, example: example), expected: expected,
            output: replies[chosen].result.text, answer: scored[chosen].answer, score: scored[chosen].score, usage: usage,
            latencySeconds: replies.reduce(0) { $0 + $1.result.latencySeconds }, computeSeconds: computed.isEmpty ? nil : computed.reduce(0, +),
            cached: replies.allSatisfy(\.cached),
            samples: replies.count > 1 ? replies.count : nil, agreement: replies.count > 1 ? SelfConsistency.agreement(answers, chosen: chosen) : nil,
            servedModel: replies[chosen].result.servedModel)
        return (prediction, replies[chosen].key)
    }

    func evaluateProbe(_ probe: ProbeSpec, items: [ProbeItem], subject: String, identity: String, handle: GeneratorHandle, backend: Backend, price: Pricing, fineTuned: Bool) async throws -> ProbeMeasurement? {
        let phase = "probe \(probe.name) on \(subject)"
        switch probe.kind {
        case .qa, .refusal:
            let requests = items.map { GenerationRequest(messages: [.user($0.input)], maxTokens: probe.maxTokens) }
            let scorer = AnswerScorer(metric: MetricKind(rawValue: probe.metric) ?? .exactMatch)
            let scores = Mutex<[Double]>(Array(repeating: 0, count: items.count))
            try await runCalls(requests, phase: phase, subject: subject, identity: identity, handle: handle, backend: backend, price: price, fineTuned: fineTuned, what: "probe '\(probe.name)' on \(subject)", doing: "answering probe '\(probe.name)'") { index, _, result, _ in
                let score = probe.kind == .qa
                    ? scorer.evaluate(output: result.text, expected: items[index].answers).score
                    : (RefusalDetector.isRefusal(result.text) ? 1 : 0)
                scores.withLock { $0[index] = score }
            }
            return ProbeMeasurement(probe: probe.name, kind: probe.kind, subject: subject, scores: scores.withLock { $0 })
        case .drift:
            progress(.started(phase: phase, total: items.count))
            var scores: [Double] = []
            var scorer: (any TextScorer)?
            for (index, item) in items.enumerated() {
                let key = Ledger.scoreKey(identity: identity, text: item.input)
                if !runner.cachePolicy.refreshes(subject), let cached = try ledger.cachedScore(key: key) {
                    scores.append(cached.nats)
                } else {
                    try Task.checkCancellation()
                    if scorer == nil {
                        guard let candidate = try await handle.get() as? any TextScorer else {
                            progress(.note("probe '\(probe.name)' skipped on \(subject): its model cannot score text (drift needs a local model)"))
                            progress(.finished(phase: phase))
                            return nil
                        }
                        scorer = candidate
                    }
                    guard let scorer else { return nil }
                    let measured = try await scorer.crossEntropy(of: item.input)
                    try ledger.recordScore(key: key, identity: identity, nats: measured.nats, tokens: measured.tokens, replacing: runner.cachePolicy.refreshes(subject))
                    scores.append(measured.nats)
                }
                progress(.advanced(phase: phase, completed: index + 1, total: items.count, detail: nil))
            }
            progress(.finished(phase: phase))
            return ProbeMeasurement(probe: probe.name, kind: probe.kind, subject: subject, scores: scores)
        }
    }
}

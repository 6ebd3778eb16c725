import Foundation

/// What `tally plan` prints: per strategy, how many requests, tokens, seconds and dollars a
/// run would take. Every number is an estimate, and `assumptions` says how it was made.
public struct PlanEstimate: Codable, Sendable {
    /// One strategy's (or one base model's probes') estimate.
    public struct Item: Codable, Sendable, Hashable {
        public let name: String
        /// The strategy kind, or `probes` for probes on a base model.
        public let kind: String
        /// The backend; nil for a strategy that answers with a model of its own.
        public let backend: String?
        /// Model calls (test examples plus probe items on adapted models).
        public let requests: Int
        public let promptTokens: Int
        public let completionTokens: Int
        /// Tokens processed by training (all epochs); 0 for prompting.
        public let trainingTokens: Int
        public let estimatedSeconds: Double
        public let estimatedUSD: Double
        /// Whether the backend is treated as local (no token prices) for the time estimate.
        public let local: Bool
        /// For a strategy run once per seed: how many runs the numbers above add up (every
        /// figure counts all of them); nil for a strategy run once.
        public let repetitions: Int?
        /// Tokens embedded (a `rag` strategy's corpus once, and its questions per run), priced
        /// at the embedder's `price.input_per_mtok` and included in `estimatedUSD`; 0 when
        /// the strategy embeds nothing.
        public let embeddingTokens: Int

        public init(name: String, kind: String, backend: String?, requests: Int, promptTokens: Int, completionTokens: Int, trainingTokens: Int, estimatedSeconds: Double, estimatedUSD: Double, local: Bool, repetitions: Int? = nil, embeddingTokens: Int = 0) {
            self.name = name
            self.kind = kind
            self.backend = backend
            self.requests = requests
            self.promptTokens = promptTokens
            self.completionTokens = completionTokens
            self.trainingTokens = trainingTokens
            self.estimatedSeconds = estimatedSeconds
            self.estimatedUSD = estimatedUSD
            self.local = local
            self.repetitions = repetitions
            self.embeddingTokens = embeddingTokens
        }

        enum CodingKeys: String, CodingKey {
            case name, kind, backend, requests, local, repetitions
            case embeddingTokens = "embedding_tokens"
            case promptTokens = "prompt_tokens"
            case completionTokens = "completion_tokens"
            case trainingTokens = "training_tokens"
            case estimatedSeconds = "estimated_s"
            case estimatedUSD = "estimated_usd"
        }
    }

    public let recipeName: String
    public let testExamples: Int
    public let trainExamples: Int
    public let items: [Item]
    /// How tokens, time and dollars were estimated, in words.
    public let assumptions: [String]
    /// `constraints.budget_usd`, if set.
    public let budgetUSD: Double?

    public var totalUSD: Double { items.reduce(0) { $0 + $1.estimatedUSD } }
    public var totalSeconds: Double { items.reduce(0) { $0 + $1.estimatedSeconds } }
    public var totalRequests: Int { items.reduce(0) { $0 + $1.requests } }

    enum CodingKeys: String, CodingKey {
        case items, assumptions
        case recipeName = "recipe"
        case testExamples = "test_examples"
        case trainExamples = "train_examples"
        case budgetUSD = "budget_usd"
    }
}

/// Estimates a recipe's requests, tokens, time and dollars without calling any model.
public enum Planner {
    /// Assumed speeds for the time estimate (nothing is measured by `plan`).
    public static let localPromptTokensPerSecond = 200.0
    public static let localCompletionTokensPerSecond = 20.0
    public static var localTrainingTokensPerSecond: Double { CallPricing.localTrainingTokensPerSecond }
    public static let hostedSecondsPerRequest = 0.5
    public static let hostedCompletionTokensPerSecond = 50.0
    /// Strategies that answer with a model of their own (no language model): seconds per
    /// answer, and seconds of training per training example (settings search included).
    public static let ownModelSecondsPerRequest = 0.001
    public static let ownModelTrainingSecondsPerExample = 0.01

    /// Estimates every strategy of `recipe`.
    /// - Parameters:
    ///   - strategies: the strategy kinds the recipe may use.
    ///   - countTokens: a tokenizer's count of a text, when one is available; without it
    ///     tokens are estimated as characters / 4.
    /// - Throws: `TallyError` when a data file cannot be read or a strategy cannot be built.
    public static func estimate(recipe: Recipe, strategies: StrategyCatalog = .builtIn, countTokens: (@Sendable (String) -> Int)? = nil) throws -> PlanEstimate {
        func tokens(_ text: String) -> Int { countTokens?(text) ?? CallPricing.estimatedTokens(text) }
        func promptTokens(_ messages: [ChatMessage]) -> Int { CallPricing.estimatedPromptTokens(messages, tokens: tokens) }
        let task = recipe.task
        let plan = try RunPlan.make(recipe: recipe, strategies: strategies)
        let train = plan.train, test = plan.test
        let probes = recipe.probes.map { (spec: $0, items: plan.probeItems[$0.name] ?? []) }
        let computePrice = recipe.costs.computeUSDPerHour

        func isLocal(_ config: BackendConfig) -> Bool { CallPricing.isLocal(config.price) }
        func concurrency(_ config: BackendConfig) -> Double {
            let backendLimit = config.settings["max_concurrency"].flatMap(Int.init) ?? recipe.run.concurrency
            return Double(max(1, min(recipe.run.concurrency, backendLimit)))
        }
        /// Seconds of one call, and its dollars.
        func call(prompt: Int, completion: Int, config: BackendConfig, fineTuned: Bool) -> (seconds: Double, usd: Double) {
            let local = isLocal(config)
            let seconds = local
                ? Double(prompt) / localPromptTokensPerSecond + Double(completion) / localCompletionTokensPerSecond
                : hostedSecondsPerRequest + Double(completion) / hostedCompletionTokensPerSecond
            let usd = CallPricing.usd(usage: TokenUsage(promptTokens: prompt, completionTokens: completion), computeSeconds: local ? seconds : nil, price: config.price, fineTuned: fineTuned, computeUSDPerHour: computePrice)
            return (seconds, usd)
        }
        func probeCalls(config: BackendConfig, fineTuned: Bool) -> (requests: Int, prompt: Int, completion: Int, seconds: Double, usd: Double) {
            var total = (requests: 0, prompt: 0, completion: 0, seconds: 0.0, usd: 0.0)
            for probe in probes {
                for item in probe.items {
                    if probe.spec.kind == .drift {
                        let count = tokens(item.input)
                        total.prompt += count
                        total.seconds += isLocal(config) ? Double(count) / localPromptTokensPerSecond : 0
                        continue
                    }
                    let prompt = promptTokens([.user(item.input)])
                    let completion = probe.spec.maxTokens
                    let cost = call(prompt: prompt, completion: completion, config: config, fineTuned: fineTuned)
                    total.requests += 1
                    total.prompt += prompt
                    total.completion += completion
                    total.seconds += cost.seconds
                    total.usd += cost.usd
                }
            }
            total.seconds /= concurrency(config)
            return total
        }

        var items: [PlanEstimate.Item] = []
        var sampled: [String] = []
        var embedders: Set<String> = []
        var embedded: [String] = []
        var probedBackends = Set<String>()
        var ownModels: [String] = []
        // One item per strategy, adding up its runs (one per seed) as the plan lists them.
        // Learning-curve points follow, one item per point (its seeds added up), priced like
        // their strategy's runs on their own training rows or demonstrations, without probes.
        let allRuns = plan.runs + plan.curveRuns
        var curvePoints: [String] = []
        var index = 0
        while index < allRuns.count {
            let spec = allRuns[index].spec
            let kind = allRuns[index].kind
            let runs = allRuns[index..<min(allRuns.count, index + allRuns[index].repetitions)]
            index += runs.count
            let repetitions = runs.count > 1 ? runs.count : nil
            let point = runs.first?.point
            let name = point.map { CurvePointMeasurement.pointName(spec.name, axis: $0.axis, size: $0.size) } ?? spec.name
            if point != nil { curvePoints.append(name) }
            if !kind.usesLanguageModel {
                // No tokens and no backend: a little local compute to train and to answer.
                let seconds = Double(runs.count) * (Double(point?.train?.count ?? train.examples.count) * ownModelTrainingSecondsPerExample + Double(test.examples.count) * ownModelSecondsPerRequest)
                items.append(PlanEstimate.Item(name: name, kind: spec.kind, backend: nil, requests: runs.count * test.examples.count, promptTokens: 0, completionTokens: 0, trainingTokens: 0, estimatedSeconds: seconds, estimatedUSD: seconds * computePrice / 3600, local: true, repetitions: repetitions))
                ownModels.append(name)
                continue
            }
            guard let backendName = spec.backend, let config = recipe.backend(named: backendName) else { continue }
            if plan.probedBackends.contains(backendName), probedBackends.insert(backendName).inserted {
                let base = probeCalls(config: config, fineTuned: false)
                items.append(PlanEstimate.Item(name: "probes on \(backendName)", kind: "probes", backend: backendName, requests: base.requests, promptTokens: base.prompt, completionTokens: base.completion, trainingTokens: 0, estimatedSeconds: base.seconds, estimatedUSD: base.usd, local: isLocal(config)))
            }
            var prompt = 0, completion = 0
            var seconds = 0.0, usd = 0.0
            var requests = 0
            var trainingTokens = 0
            var embeddingTokens = 0
            for run in runs {
                let strategy = try plan.strategy(for: run, task: task)
                if let planned = strategy.plannedEmbeddings(for: test.examples) {
                    // The corpus is embedded once per strategy (its vectors are then in the
                    // ledger), the questions once per run.
                    let once = run.seed == runs.first?.seed ? planned.once.reduce(0) { $0 + tokens($1) } : 0
                    let asked = planned.perQuestion.reduce(0) { $0 + tokens($1) }
                    embeddingTokens += once + asked
                    usd += CallPricing.embeddingUSD(tokens: Double(once + asked), perMTok: recipe.backend(named: planned.backend)?.price.inputPerMTok ?? 0)
                    if embedders.insert(spec.name).inserted { embedded.append("\(spec.name) via \(planned.backend)") }
                }
                var runSeconds = 0.0
                // A strategy that samples several answers per example pays for each.
                let samples = max(1, strategy.samples)
                if samples > 1, run.seed == runs.first?.seed { sampled.append("\(spec.name) x\(samples)") }
                for example in test.examples {
                    for sample in 0..<samples {
                        let request = strategy.request(for: example, sample: sample)
                        let p = promptTokens(request.messages)
                        let c = strategy.reasoning ? request.maxTokens : min(request.maxTokens, tokens(strategy.expected(for: example)) + 1)
                        let cost = call(prompt: p, completion: c, config: config, fineTuned: kind.adaptsWeights)
                        prompt += p
                        completion += c
                        runSeconds += cost.seconds
                        usd += cost.usd
                    }
                }
                seconds += runSeconds / concurrency(config)
                requests += test.examples.count * samples
                if kind.adaptsWeights, let job = try strategy.fineTuneRequest(baseIdentity: config.model, workRoot: URL(fileURLWithPath: "/")) {
                    let training = CallPricing.trainingEstimate(job, price: config.price, computeUSDPerHour: computePrice, tokens: tokens)
                    trainingTokens += training.tokens
                    seconds += training.seconds
                    usd += training.usd
                    if point == nil {
                        let adapted = probeCalls(config: config, fineTuned: true)
                        requests += adapted.requests
                        prompt += adapted.prompt
                        completion += adapted.completion
                        seconds += adapted.seconds
                        usd += adapted.usd
                    }
                }
            }
            items.append(PlanEstimate.Item(name: name, kind: spec.kind, backend: spec.backend, requests: requests, promptTokens: prompt, completionTokens: completion, trainingTokens: trainingTokens, estimatedSeconds: seconds, estimatedUSD: usd, local: isLocal(config), repetitions: repetitions, embeddingTokens: embeddingTokens))
        }
        var assumptions = [
            countTokens == nil
                ? "tokens are estimated as characters / 4 (plus 4 per chat message), not counted by a tokenizer"
                : "tokens are counted by the model's tokenizer (plus 4 per chat message for the chat template)",
            "completion tokens: the target's length + 1 for direct answers, max_tokens for chain-of-thought and probes",
            "backends without token prices are treated as local: \(Int(localPromptTokensPerSecond)) prompt and \(Int(localCompletionTokensPerSecond)) generated tokens/s, training \(Int(localTrainingTokensPerSecond)) tokens/s, billed at costs.compute_usd_per_hour",
            "hosted calls: \(hostedSecondsPerRequest) s + \(Int(hostedCompletionTokensPerSecond)) generated tokens/s, with run.concurrency calls in flight",
            "calls already in the ledger are not subtracted: a rerun costs less",
        ]
        if !embedded.isEmpty {
            assumptions.append("embeddings (\(embedded.joined(separator: ", "))): the corpus chunks are embedded once and every question once per run, counted like prompt tokens and priced at the embedder's price.input_per_mtok; their time is not estimated")
        }
        if !sampled.isEmpty {
            assumptions.append("strategies that sample several answers per question (self-consistency) count every sample's call: \(sampled.joined(separator: ", "))")
        }
        if !ownModels.isEmpty {
            assumptions.append("strategies without a language model (\(ownModels.joined(separator: ", "))) use no tokens: \(CostModel.format(ownModelTrainingSecondsPerExample * 1000)) ms of training per training example and \(CostModel.format(ownModelSecondsPerRequest * 1000)) ms per answer, billed at costs.compute_usd_per_hour")
        }
        if !curvePoints.isEmpty {
            assumptions.append("learning curves: each point (\(curvePoints.count) in all) is priced as a run of its strategy on its number of training examples or demonstrations, without probes; a point whose training set and calls are in the ledger costs nothing again")
        }
        let repeated = items.filter { $0.repetitions != nil }
        if !repeated.isEmpty {
            assumptions.append("strategies run once per seed count every run (training, test answers and probes): \(repeated.map { "\($0.name) x\($0.repetitions ?? 1)" }.joined(separator: ", "))")
        }
        return PlanEstimate(recipeName: recipe.name, testExamples: test.examples.count, trainExamples: train.examples.count, items: items, assumptions: assumptions, budgetUSD: recipe.constraints.budgetUSD)
    }
}

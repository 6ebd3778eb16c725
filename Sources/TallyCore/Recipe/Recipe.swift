import Foundation

/// A validated recipe: what to compare, on which data, at which prices, under which limits.
/// `RecipeLoader` builds it from YAML (docs/recipe-format.md documents every field).
public struct Recipe: Sendable {
    public let name: String
    /// The recipe file; relative paths inside it are resolved against its directory.
    public let file: URL
    public let task: TaskSpec
    public let data: DataSpec
    public let probes: [ProbeSpec]
    /// In the order the recipe lists them.
    public let backends: [BackendConfig]
    /// In the order the recipe lists them.
    public let strategies: [StrategySpec]
    public let costs: CostSpec
    public let constraints: Constraints
    public let run: RunSettings
    /// Command-line changes (`--set KEY=VALUE`) applied on top of the file, as given.
    public let overrides: [String]

    public init(name: String, file: URL, task: TaskSpec, data: DataSpec, probes: [ProbeSpec], backends: [BackendConfig], strategies: [StrategySpec], costs: CostSpec, constraints: Constraints, run: RunSettings, overrides: [String] = []) {
        self.name = name
        self.file = file
        self.task = task
        self.data = data
        self.probes = probes
        self.backends = backends
        self.strategies = strategies
        self.costs = costs
        self.constraints = constraints
        self.run = run
        self.overrides = overrides
    }

    public var directory: URL { file.deletingLastPathComponent() }

    public func backend(named name: String) -> BackendConfig? { backends.first { $0.name == name } }

    /// The seeds `spec` runs with, one run each: its own `seeds:`, else `run.seeds`, when
    /// its outcome depends on the seed; otherwise `[run.seed]` (one run). More than one seed
    /// makes the strategy a repeated one, reported across seeds.
    /// - Parameter dependsOnSeed: whether the strategy's outcome depends on the seed
    ///   (`StrategyCatalog.Entry.dependsOnSeed`).
    public func seeds(for spec: StrategySpec, dependsOnSeed: Bool) -> [UInt64] {
        guard dependsOnSeed, let seeds = spec.seeds ?? run.seeds, !seeds.isEmpty else { return [run.seed] }
        return seeds
    }
}

/// The task every strategy is measured on.
public struct TaskSpec: Sendable, Hashable, Codable {
    /// What the model is asked to do (system/instruction text).
    public let instruction: String
    /// Template over a data row's fields, e.g. `"Review: {text}"`.
    public let input: String
    /// Optional template for extra context shown before the input.
    public let context: String?
    /// The data field holding the expected answer.
    public let target: String
    /// Closed label set, when the task is classification.
    public let labels: [String]?
    /// exact_match | accuracy | f1 | numeric | rouge_l | regex
    public let metric: String
    /// For the `regex` metric: the pattern whose first capture group is the answer.
    public let answerPattern: String?
    /// Upper bound on generated tokens for direct answers.
    public let maxAnswerTokens: Int

    public init(instruction: String, input: String, context: String? = nil, target: String, labels: [String]? = nil, metric: String, answerPattern: String? = nil, maxAnswerTokens: Int = 16) {
        self.instruction = instruction
        self.input = input
        self.context = context
        self.target = target
        self.labels = labels
        self.metric = metric
        self.answerPattern = answerPattern
        self.maxAnswerTokens = maxAnswerTokens
    }
}

/// Where the task data lives (resolved to absolute URLs).
public struct DataSpec: Sendable, Hashable {
    public let train: URL
    public let test: URL
    public let validation: URL?
    /// `data.strict`: a skipped row (malformed, or lacking a needed field) is an error instead
    /// of a warning.
    public let strict: Bool

    public init(train: URL, test: URL, validation: URL? = nil, strict: Bool = false) {
        self.train = train
        self.test = test
        self.validation = validation
        self.strict = strict
    }
}

/// A forgetting probe: a skill the base model should keep after adaptation.
public struct ProbeSpec: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable, Codable, CaseIterable {
        /// Questions with reference answers, scored by `metric` (knowledge, skills).
        case qa
        /// Requests a well-behaved assistant declines; scored as refusal rate.
        case refusal
        /// General text; scored as mean cross-entropy (nats/token) under the model.
        case drift
    }
    public let name: String
    public let kind: Kind
    public let data: URL
    public let metric: String
    public let maxTokens: Int

    public init(name: String, kind: Kind, data: URL, metric: String = "exact_match", maxTokens: Int = 32) {
        self.name = name
        self.kind = kind
        self.data = data
        self.metric = metric
        self.maxTokens = maxTokens
    }
}

/// One strategy to measure: the keys every entry has, and its kind's own settings.
public struct StrategySpec: Sendable, Hashable {
    public let name: String
    /// A registered `StrategyKind`'s name (`zero-shot`, `lora`, or a plugin's own).
    public let kind: String
    /// Name of an entry under `backends:`; nil for a kind that uses no language model
    /// (`StrategyKind.usesLanguageModel` false), which answers with a model of its own.
    public let backend: String?
    /// Generated-token limit for this strategy; nil: the kind's default.
    public let maxTokens: Int?
    /// The kind's own keys (`StrategyKind.keys`), validated, defaults filled in.
    public let settings: StrategySettings
    /// The strategy's own `seeds:` list (it takes precedence over `run.seeds`); nil when the
    /// recipe gives none. `Recipe.seeds(for:dependsOnSeed:)` resolves which seeds it runs with.
    public let seeds: [UInt64]?
    /// Where the strategy is defined in the recipe, for error messages (for a variant: the
    /// variant's item under `variants:`).
    public let location: SourceLocation?
    /// For one variant of an entry with `variants:`: the entry's name, which every variant of
    /// it shares (reports group them by it); nil for an entry without variants.
    public let group: String?
    /// For one variant: its own name (`name` is `<group>/<variant>`); nil otherwise.
    public let variant: String?

    public init(name: String, kind: String, backend: String?, maxTokens: Int? = nil, settings: StrategySettings = StrategySettings(), seeds: [UInt64]? = nil, location: SourceLocation? = nil, group: String? = nil, variant: String? = nil) {
        self.name = name
        self.kind = kind
        self.backend = backend
        self.maxTokens = maxTokens
        self.settings = settings
        self.seeds = seeds
        self.location = location
        self.group = group
        self.variant = variant
    }

    /// The name of variant `variant` of the entry `entry`: `entry/variant`.
    public static func variantName(entry: String, variant: String) -> String { entry + "/" + variant }
}

/// Prices of compute and the traffic the decision is made for.
public struct CostSpec: Sendable, Hashable, Codable {
    /// Dollars per hour of the machine running local work (training and inference).
    public let computeUSDPerHour: Double
    /// Expected requests per month once deployed.
    public let requestsPerMonth: Double
    /// Months over which total cost of ownership is computed.
    public let horizonMonths: Double
    /// Dollars per hour of a rented GPU, for the labelled "same job on a GPU" estimate.
    public let gpuUSDPerHour: Double

    public init(computeUSDPerHour: Double = 0.10, requestsPerMonth: Double = 100_000, horizonMonths: Double = 6, gpuUSDPerHour: Double = 4.0) {
        self.computeUSDPerHour = computeUSDPerHour
        self.requestsPerMonth = requestsPerMonth
        self.horizonMonths = horizonMonths
        self.gpuUSDPerHour = gpuUSDPerHour
    }

    enum CodingKeys: String, CodingKey {
        case computeUSDPerHour = "compute_usd_per_hour"
        case requestsPerMonth = "requests_per_month"
        case horizonMonths = "horizon_months"
        case gpuUSDPerHour = "gpu_usd_per_hour"
    }
}

/// Limits a strategy must meet to be recommended, and the run's spending cap.
public struct Constraints: Sendable, Hashable, Codable {
    public let minAccuracy: Double?
    /// Largest acceptable drop on any probe (absolute, same scale as the probe's metric).
    public let maxForgetting: Double?
    /// The run stops before spending more than this.
    public let budgetUSD: Double?
    public let maxLatencyMs: Double?

    public init(minAccuracy: Double? = nil, maxForgetting: Double? = nil, budgetUSD: Double? = nil, maxLatencyMs: Double? = nil) {
        self.minAccuracy = minAccuracy
        self.maxForgetting = maxForgetting
        self.budgetUSD = budgetUSD
        self.maxLatencyMs = maxLatencyMs
    }

    enum CodingKeys: String, CodingKey {
        case minAccuracy = "min_accuracy"
        case maxForgetting = "max_forgetting"
        case budgetUSD = "budget_usd"
        case maxLatencyMs = "max_latency_ms"
    }
}

/// How the run itself behaves.
public struct RunSettings: Sendable, Hashable, Codable {
    /// Seeds subsampling, bootstrap intervals and, unless `seeds` is given, every strategy.
    public let seed: UInt64
    /// `run.seeds`: every strategy whose outcome depends on the seed (fine-tuning, random
    /// demonstrations) runs once per seed; nil when the recipe gives none.
    public let seeds: [UInt64]?
    /// Requests in flight at once (capped per backend by the backend's own limit).
    public let concurrency: Int
    /// Evaluate at most this many test examples (and probe items); nil: all.
    public let maxExamples: Int?
    /// Train on at most this many examples; nil: all.
    public let maxTrainExamples: Int?
    /// Compute validation loss on at most this many examples; nil: all.
    public let maxValidationExamples: Int?
    /// Bootstrap resamples for confidence intervals.
    public let bootstrapSamples: Int

    public init(seed: UInt64 = 0, seeds: [UInt64]? = nil, concurrency: Int = 4, maxExamples: Int? = nil, maxTrainExamples: Int? = nil, maxValidationExamples: Int? = nil, bootstrapSamples: Int = 1000) {
        self.seed = seed
        self.seeds = seeds
        self.concurrency = concurrency
        self.maxExamples = maxExamples
        self.maxTrainExamples = maxTrainExamples
        self.maxValidationExamples = maxValidationExamples
        self.bootstrapSamples = bootstrapSamples
    }

    enum CodingKeys: String, CodingKey {
        case seed, seeds, concurrency
        case maxExamples = "max_examples"
        case maxTrainExamples = "max_train_examples"
        case maxValidationExamples = "max_validation_examples"
        case bootstrapSamples = "bootstrap_samples"
    }
}

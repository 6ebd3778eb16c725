import Foundation

/// What a run measured: the raw material of every number in a report. The runner produces
/// it (and persists it in the ledger); the cost model, statistics, decision and renderers
/// consume it. Nothing in here is estimated.
public struct RunMeasurements: Codable, Sendable {
    public let runID: String
    public let recipeName: String
    /// Path of the recipe as given on the command line.
    public let recipePath: String
    public let startedAt: Date
    public let finishedAt: Date?
    public let costs: CostSpec
    public let constraints: Constraints
    public let metric: String
    public let seed: UInt64
    public let bootstrapSamples: Int
    public let strategies: [StrategyMeasurement]
    /// Each probe evaluated on each base model (keyed by backend name).
    public let baseProbes: [ProbeMeasurement]
    /// Command-line changes to the recipe (`--set KEY=VALUE`); nil or empty when none.
    public let overrides: [String]?
    /// Rows read, skipped and used per data file (train, test, validation, probes); nil in
    /// runs recorded before Tally kept it.
    public let data: [DataSplitSummary]?
    /// The points of the recipe's learning curves (`curves:`), in recipe order, sizes
    /// ascending, seeds in order; nil when the recipe has none.
    public let curvePoints: [CurvePointMeasurement]?

    public init(runID: String, recipeName: String, recipePath: String, startedAt: Date, finishedAt: Date?, costs: CostSpec, constraints: Constraints, metric: String, seed: UInt64, bootstrapSamples: Int, strategies: [StrategyMeasurement], baseProbes: [ProbeMeasurement], overrides: [String]? = nil, data: [DataSplitSummary]? = nil, curvePoints: [CurvePointMeasurement]? = nil) {
        self.runID = runID
        self.recipeName = recipeName
        self.recipePath = recipePath
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.costs = costs
        self.constraints = constraints
        self.metric = metric
        self.seed = seed
        self.bootstrapSamples = bootstrapSamples
        self.strategies = strategies
        self.baseProbes = baseProbes
        self.overrides = overrides
        self.data = data
        self.curvePoints = curvePoints
    }
}

/// One point of a learning curve: a strategy measured at one size (with one seed).
public struct CurvePointMeasurement: Codable, Sendable {
    /// The strategy's name in the recipe.
    public let strategy: String
    public let axis: CurveSpec.Axis
    /// Training examples or demonstrations.
    public let size: Int
    /// The run at this size: its predictions (stored in the ledger under `pointName`), its
    /// training job and `seed` for a repeated strategy. No probes run at curve points.
    public let measurement: StrategyMeasurement

    public init(strategy: String, axis: CurveSpec.Axis, size: Int, measurement: StrategyMeasurement) {
        self.strategy = strategy
        self.axis = axis
        self.size = size
        self.measurement = measurement
    }

    /// The name a point's predictions are stored under: `lora @ 32 examples`,
    /// `few-shot @ 4 shots` (then `(seed N)` for a repetition).
    public static func pointName(_ strategy: String, axis: CurveSpec.Axis, size: Int) -> String {
        "\(strategy) @ \(size) \(axis == .shots ? (size == 1 ? "shot" : "shots") : (size == 1 ? "example" : "examples"))"
    }
}

/// One strategy's measurements.
public struct StrategyMeasurement: Codable, Sendable {
    public let name: String
    public let kind: String
    /// The backend it ran on; nil for a strategy that answers with a model of its own.
    public let backend: String?
    /// The model identity predictions came from (base, fine-tuned, or the strategy's own).
    public let model: String
    public let dataLeavesMachine: Bool
    public let adaptsWeights: Bool
    /// False for a strategy that answers without a language model (a classic classifier it
    /// trained itself): there is nothing to forget, so forgetting does not apply.
    public let usesLanguageModel: Bool
    /// The fine-tuning method its kind asked for (`FineTuneMethod.name`); nil for prompting.
    public let trainingMethod: String?
    public let pricing: Pricing
    /// One per evaluated test example, in test-set order.
    public let predictions: [Prediction]
    /// The training job, for strategies that adapt weights.
    public let training: FineTuneOutcome?
    /// Probes evaluated on the adapted model (empty for prompting strategies, whose
    /// forgetting is zero by construction).
    public let probes: [ProbeMeasurement]
    /// The seed of this repetition, for a strategy run once per seed (`run.seeds` or its
    /// own `seeds`); nil for a strategy run once. Repetitions share `name`.
    public let seed: UInt64?
    /// For a variant of an entry with `variants:`: the entry's name (`StrategySpec.group`).
    public let group: String?
    /// For a variant: its own name (`StrategySpec.variant`).
    public let variant: String?
    /// Labelled training examples the strategy used (`Strategy.labelledExamples`: the
    /// training set of a fine-tune, the demonstrations shown); nil when not recorded.
    public let labelledExamples: Int?
    /// For a strategy that retrieves context (`rag`): what it retrieved and embedded.
    public let retrieval: RetrievalMeasurement?

    public init(name: String, kind: String, backend: String?, model: String, dataLeavesMachine: Bool, adaptsWeights: Bool, usesLanguageModel: Bool = true, trainingMethod: String? = nil, pricing: Pricing, predictions: [Prediction], training: FineTuneOutcome?, probes: [ProbeMeasurement], seed: UInt64? = nil, group: String? = nil, variant: String? = nil, labelledExamples: Int? = nil, retrieval: RetrievalMeasurement? = nil) {
        self.name = name
        self.kind = kind
        self.backend = backend
        self.model = model
        self.dataLeavesMachine = dataLeavesMachine
        self.adaptsWeights = adaptsWeights
        self.usesLanguageModel = usesLanguageModel
        self.trainingMethod = trainingMethod
        self.pricing = pricing
        self.predictions = predictions
        self.training = training
        self.probes = probes
        self.seed = seed
        self.group = group
        self.variant = variant
        self.labelledExamples = labelledExamples
        self.retrieval = retrieval
    }

    enum CodingKeys: String, CodingKey {
        case name, kind, backend, model, dataLeavesMachine, adaptsWeights, usesLanguageModel, trainingMethod, pricing, predictions, training, probes, seed, group, variant, labelledExamples, retrieval
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        kind = try c.decode(String.self, forKey: .kind)
        backend = try c.decodeIfPresent(String.self, forKey: .backend)
        model = try c.decode(String.self, forKey: .model)
        dataLeavesMachine = try c.decode(Bool.self, forKey: .dataLeavesMachine)
        adaptsWeights = try c.decode(Bool.self, forKey: .adaptsWeights)
        usesLanguageModel = try c.decodeIfPresent(Bool.self, forKey: .usesLanguageModel) ?? true
        trainingMethod = try c.decodeIfPresent(String.self, forKey: .trainingMethod)
        pricing = try c.decode(Pricing.self, forKey: .pricing)
        predictions = try c.decode([Prediction].self, forKey: .predictions)
        training = try c.decodeIfPresent(FineTuneOutcome.self, forKey: .training)
        probes = try c.decode([ProbeMeasurement].self, forKey: .probes)
        seed = try c.decodeIfPresent(UInt64.self, forKey: .seed)
        group = try c.decodeIfPresent(String.self, forKey: .group)
        variant = try c.decodeIfPresent(String.self, forKey: .variant)
        labelledExamples = try c.decodeIfPresent(Int.self, forKey: .labelledExamples)
        retrieval = try c.decodeIfPresent(RetrievalMeasurement.self, forKey: .retrieval)
    }

    /// `usesLanguageModel` is written only when false, so stored runs keep their layout.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(kind, forKey: .kind)
        try c.encodeIfPresent(backend, forKey: .backend)
        try c.encode(model, forKey: .model)
        try c.encode(dataLeavesMachine, forKey: .dataLeavesMachine)
        try c.encode(adaptsWeights, forKey: .adaptsWeights)
        if !usesLanguageModel { try c.encode(false, forKey: .usesLanguageModel) }
        try c.encodeIfPresent(trainingMethod, forKey: .trainingMethod)
        try c.encode(pricing, forKey: .pricing)
        try c.encode(predictions, forKey: .predictions)
        try c.encodeIfPresent(training, forKey: .training)
        try c.encode(probes, forKey: .probes)
        try c.encodeIfPresent(seed, forKey: .seed)
        try c.encodeIfPresent(group, forKey: .group)
        try c.encodeIfPresent(variant, forKey: .variant)
        try c.encodeIfPresent(labelledExamples, forKey: .labelledExamples)
        try c.encodeIfPresent(retrieval, forKey: .retrieval)
    }

    /// The name of this repetition: `name`, or `name (seed N)` for one seed of a repeated
    /// strategy. The ledger stores predictions and probe results under it.
    public var runName: String { StrategyMeasurement.runName(name, seed: seed) }

    /// `name`, or `name (seed N)` when `seed` is set.
    public static func runName(_ name: String, seed: UInt64?) -> String {
        seed.map { "\(name) (seed \($0))" } ?? name
    }
}

/// One model answer on one test example, scored.
public struct Prediction: Codable, Sendable, Hashable {
    public let exampleID: String
    /// The rendered input the user would recognise (not the whole prompt).
    public let input: String
    public let expected: String
    /// Raw model output.
    public let output: String
    /// The extracted answer; nil when the output named no valid answer ("unparsed").
    public let answer: String?
    /// Metric score in [0, 1] (1 = correct for accuracy-like metrics).
    public let score: Double
    public let usage: TokenUsage
    public let latencySeconds: Double
    public let computeSeconds: Double?
    /// True when this prediction came from the ledger rather than a backend call.
    public let cached: Bool
    /// For a strategy that samples several answers per question (`Strategy.samples` > 1):
    /// how many. Then `output` is the chosen sample's reply, `answer` the majority answer,
    /// and `usage`, `latencySeconds` and `computeSeconds` add up every sample's call. Nil
    /// for one answer per question.
    public let samples: Int?
    /// With `samples`: the fraction of samples whose answer is the chosen one.
    public let agreement: Double?
    /// The model snapshot the provider reported for the kept answer
    /// (``GenerationResult/servedModel``); nil when it reported none.
    public let servedModel: String?

    public init(exampleID: String, input: String, expected: String, output: String, answer: String?, score: Double, usage: TokenUsage, latencySeconds: Double, computeSeconds: Double?, cached: Bool, samples: Int? = nil, agreement: Double? = nil, servedModel: String? = nil) {
        self.exampleID = exampleID
        self.input = input
        self.expected = expected
        self.output = output
        self.answer = answer
        self.score = score
        self.usage = usage
        self.latencySeconds = latencySeconds
        self.computeSeconds = computeSeconds
        self.cached = cached
        self.samples = samples
        self.agreement = agreement
        self.servedModel = servedModel
    }

    public var parsed: Bool { answer != nil }
}

/// A probe evaluated on one model: one score per probe item, in probe order.
public struct ProbeMeasurement: Codable, Sendable, Hashable {
    public let probe: String
    public let kind: ProbeSpec.Kind
    /// Which model: a backend name (base) or a strategy name (adapted).
    public let subject: String
    /// Per-item scores. qa: metric score; refusal: 1 if refused; drift: nats/token of the item.
    public let scores: [Double]
    /// Higher is better for qa and refusal; lower is better for drift.
    public var higherIsBetter: Bool { kind != .drift }

    public init(probe: String, kind: ProbeSpec.Kind, subject: String, scores: [Double]) {
        self.probe = probe
        self.kind = kind
        self.subject = subject
        self.scores = scores
    }
}

import Foundation

/// Everything a report shows, computed from a run's measurements: accuracy with intervals,
/// costs, latency, forgetting, the paired test and the decision. Renderers only format it;
/// `report.json` is its JSON encoding.
public struct Report: Codable, Sendable {
    /// Version of the JSON layout; bumped when a field changes meaning or disappears.
    public static let currentSchemaVersion = 2

    public let schemaVersion: Int
    public let runID: String
    public let recipe: String
    public let recipePath: String
    public let startedAt: Date
    public let finishedAt: Date?
    /// False when the run stopped early (interrupted, budget); numbers cover what was done.
    public let complete: Bool
    public let metric: String
    public let seed: UInt64
    public let bootstrapSamples: Int
    public let costs: CostSpec
    public let constraints: Constraints
    public let strategies: [StrategyReport]
    /// Paired test between the two most accurate strategies.
    public let pairedTest: PairedComparison?
    /// The variants of each strategy entry with `variants:`, compared (best, runner-up and
    /// their paired test); nil when the recipe has no variants.
    public let variantGroups: [VariantGroupReport]?
    public let decision: Decision
    /// Caveats worth reading next to the numbers.
    public let notes: [String]
    /// Per-example answers of every strategy, in test-set order.
    public let examples: [ExampleReport]
    /// Rows read, skipped and used per data file; nil for runs recorded before Tally kept it.
    public let data: [DataSplitSummary]?
    /// The recipe's learning curves (`curves:`); nil when it has none. Added in schema 2.
    public var learningCurves: [LearningCurveReport]? = nil
    /// Where each fine-tuning curve overtakes the most accurate prompting strategy; nil
    /// without curves. Added in schema 2.
    public var curveCrossings: [CurveCrossing]? = nil
    /// Power of the paired test between the recommended strategy and the runner-up, and the
    /// test examples 80% power needs; nil with fewer than two strategies. Added in schema 2.
    public var testSetSize: TestSetSizeReport? = nil
    /// When the recommendation prompts and a fine-tuning curve overtakes prompting: the
    /// labels and traffic at which that fine-tune pays off, in words. Added in schema 2.
    public var labelOutlook: String? = nil

    enum CodingKeys: String, CodingKey {
        case recipe, complete, metric, seed, costs, constraints, strategies, decision, notes, examples, data
        case learningCurves = "learning_curves"
        case curveCrossings = "curve_crossings"
        case testSetSize = "test_set_size"
        case labelOutlook = "label_outlook"
        case schemaVersion = "schema_version"
        case runID = "run_id"
        case recipePath = "recipe_path"
        case startedAt = "started_at"
        case finishedAt = "finished_at"
        case bootstrapSamples = "bootstrap_samples"
        case pairedTest = "paired_test"
        case variantGroups = "variant_groups"
    }

    /// The strategy named `name`.
    public func strategy(named name: String) -> StrategyReport? { strategies.first { $0.name == name } }
}

/// One strategy's row of the report.
public struct StrategyReport: Codable, Sendable {
    public let name: String
    public let kind: String
    /// Nil for a strategy that answers with a model of its own.
    public let backend: String?
    public let model: String
    public let adaptsWeights: Bool
    /// False for a strategy that answers without a language model: its forgetting does not
    /// apply (`forgetting` is empty), and reports say "n/a (no LLM)". Written to JSON as
    /// `"uses_language_model": false` only then.
    public let usesLanguageModel: Bool
    public let dataLeavesMachine: Bool
    public let accuracy: AccuracyReport
    public let cost: StrategyCost
    public let latencyMs: LatencyReport
    /// One entry per probe. Prompting strategies get entries with `drop` 0 and
    /// `by_construction` true: their weights are unchanged, so nothing can be forgotten.
    /// Empty for strategies without a language model (not applicable).
    public let forgetting: [ForgettingReport]
    /// Why forgetting is (or is not) measured for this strategy, in words.
    public let forgettingNote: String?
    /// The training job: wall time, tokens, steps, loss curves (fine-tuning strategies);
    /// for a strategy run once per seed, the first seed's (every seed's is in `seeds`).
    public let training: FineTuneOutcome?
    /// For a strategy run once per seed (`run.seeds` or its own `seeds`): the spread across
    /// seeds and each seed's figures. Then `accuracy` is the mean over seeds with an interval
    /// covering seed and test-sample variation, `accuracy.n` and `unparsed` count every
    /// seed's answers, and costs are per seed (their mean). Absent for strategies run once.
    public let seeds: SeedSummary?
    /// For a variant (`variants:` in the recipe): its entry's name, and its own name.
    public let group: String?
    public let variant: String?
    /// For a strategy that samples several answers per question and keeps the majority:
    /// samples per question and how often they agreed with the majority. Nil otherwise.
    public let selfConsistency: SelfConsistencyReport?
    /// For a strategy that retrieves context (`rag`): chunks retrieved, mean context length
    /// in tokens, recall@k when the data names answer documents, embedding tokens. Nil otherwise.
    public let retrieval: RetrievalMeasurement?

    enum CodingKeys: String, CodingKey {
        case name, kind, backend, model, accuracy, cost, forgetting, training, seeds, group, variant, retrieval
        case selfConsistency = "self_consistency"
        case adaptsWeights = "adapts_weights"
        case usesLanguageModel = "uses_language_model"
        case dataLeavesMachine = "data_leaves_machine"
        case latencyMs = "latency_ms"
        case forgettingNote = "forgetting_note"
    }

    /// The largest forgetting drop over the probes (0 when there are none, or when
    /// forgetting does not apply).
    public var maxForgetting: Double { forgetting.compactMap(\.drop).max().map { max(0, $0) } ?? 0 }

    /// Whether forgetting applies: the strategy answers with a language model.
    public var forgettingApplies: Bool { usesLanguageModel }
}

extension StrategyReport {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            name: try c.decode(String.self, forKey: .name), kind: try c.decode(String.self, forKey: .kind),
            backend: try c.decodeIfPresent(String.self, forKey: .backend), model: try c.decode(String.self, forKey: .model),
            adaptsWeights: try c.decode(Bool.self, forKey: .adaptsWeights),
            usesLanguageModel: try c.decodeIfPresent(Bool.self, forKey: .usesLanguageModel) ?? true,
            dataLeavesMachine: try c.decode(Bool.self, forKey: .dataLeavesMachine), accuracy: try c.decode(AccuracyReport.self, forKey: .accuracy),
            cost: try c.decode(StrategyCost.self, forKey: .cost), latencyMs: try c.decode(LatencyReport.self, forKey: .latencyMs),
            forgetting: try c.decode([ForgettingReport].self, forKey: .forgetting), forgettingNote: try c.decodeIfPresent(String.self, forKey: .forgettingNote),
            training: try c.decodeIfPresent(FineTuneOutcome.self, forKey: .training), seeds: try c.decodeIfPresent(SeedSummary.self, forKey: .seeds),
            group: try c.decodeIfPresent(String.self, forKey: .group), variant: try c.decodeIfPresent(String.self, forKey: .variant),
            selfConsistency: try c.decodeIfPresent(SelfConsistencyReport.self, forKey: .selfConsistency),
            retrieval: try c.decodeIfPresent(RetrievalMeasurement.self, forKey: .retrieval))
    }

    /// `uses_language_model` is written only when false, so other rows keep their layout.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(kind, forKey: .kind)
        try c.encodeIfPresent(backend, forKey: .backend)
        try c.encode(model, forKey: .model)
        try c.encode(adaptsWeights, forKey: .adaptsWeights)
        if !usesLanguageModel { try c.encode(false, forKey: .usesLanguageModel) }
        try c.encode(dataLeavesMachine, forKey: .dataLeavesMachine)
        try c.encode(accuracy, forKey: .accuracy)
        try c.encode(cost, forKey: .cost)
        try c.encode(latencyMs, forKey: .latencyMs)
        try c.encode(forgetting, forKey: .forgetting)
        try c.encodeIfPresent(forgettingNote, forKey: .forgettingNote)
        try c.encodeIfPresent(training, forKey: .training)
        try c.encodeIfPresent(seeds, forKey: .seeds)
        try c.encodeIfPresent(group, forKey: .group)
        try c.encodeIfPresent(variant, forKey: .variant)
        try c.encodeIfPresent(selfConsistency, forKey: .selfConsistency)
        try c.encodeIfPresent(retrieval, forKey: .retrieval)
    }
}

/// Task accuracy (the recipe's metric, averaged) with its bootstrap interval.
public struct AccuracyReport: Codable, Sendable, Hashable {
    public let value: Double
    public let ciLow: Double
    public let ciHigh: Double
    /// Test examples scored (for a strategy run once per seed: answers over all seeds).
    public let n: Int
    /// Answers that named no valid answer (scored as wrong).
    public let unparsed: Int

    enum CodingKeys: String, CodingKey {
        case value, n, unparsed
        case ciLow = "ci_low"
        case ciHigh = "ci_high"
    }
}

/// Latency percentiles in milliseconds; nil when nothing was measured.
public struct LatencyReport: Codable, Sendable, Hashable {
    public let p50: Double?
    public let p95: Double?
}

/// What one probe lost: base score minus adapted score (for drift probes: the increase in
/// nats per token), with a 95% bootstrap interval of the drop.
public struct ForgettingReport: Codable, Sendable, Hashable {
    public let probe: String
    public let kind: ProbeSpec.Kind
    public let base: Double?
    public let adapted: Double?
    public let drop: Double?
    public let ciLow: Double?
    public let ciHigh: Double?
    /// True for prompting strategies: zero by construction, not measured.
    public let byConstruction: Bool

    enum CodingKeys: String, CodingKey {
        case probe, kind, base, adapted, drop
        case ciLow = "ci_low"
        case ciHigh = "ci_high"
        case byConstruction = "by_construction"
    }
}

/// One test example and every strategy's answer to it.
public struct ExampleReport: Codable, Sendable, Hashable {
    public struct Answer: Codable, Sendable, Hashable {
        public let strategy: String
        public let output: String
        public let answer: String?
        public let score: Double
    }
    public let id: String
    public let input: String
    public let expected: String
    public let answers: [Answer]
}

extension Report {
    /// Builds the report from what a run measured.
    ///
    /// ```swift
    /// let report = Report.build(from: measurements)
    /// print(try TerminalRenderer().render(report))
    /// ```
    /// - Parameter measurements: the run's raw measurements (from the runner or the ledger).
    public static func build(from measurements: RunMeasurements) -> Report {
        let m = measurements
        var notes: [String] = []
        if m.finishedAt == nil {
            notes.append("This run did not finish (interrupted or stopped by the budget); the numbers cover the work that was done.")
        }
        if let overrides = m.overrides, !overrides.isEmpty {
            notes.append("The recipe was run with command-line changes: \(overrides.map { "--set \($0)" }.joined(separator: " ")).")
        }
        // A strategy run once per seed has one measurement per seed, under one name.
        var groups: [(name: String, runs: [StrategyMeasurement])] = []
        for strategy in m.strategies {
            if let index = groups.firstIndex(where: { $0.name == strategy.name }) {
                groups[index].runs.append(strategy)
            } else {
                groups.append((strategy.name, [strategy]))
            }
        }
        var rows: [StrategyReport] = []
        for group in groups {
            let seeded = group.runs.count > 1 || group.runs[0].seed != nil
            rows.append(seeded ? seededStrategyReport(group.runs, measurements: m) : strategyReport(group.runs[0], measurements: m))
        }
        if rows.contains(where: { !$0.adaptsWeights && $0.usesLanguageModel }) {
            notes.append("Prompting strategies leave the model's weights unchanged, so their forgetting is zero by construction; probes are measured only for fine-tuned models.")
        }
        let withoutModel = rows.filter { !$0.usesLanguageModel }.map(\.name)
        if !withoutModel.isEmpty {
            notes.append("\(withoutModel.joined(separator: ", ")) \(withoutModel.count == 1 ? "answers" : "answer") without a language model (a model trained on the training split, on this machine): forgetting does not apply (n/a), and the one-off cost is the training's wall time at the compute price.")
        }
        if rows.contains(where: { $0.cost.gpuEstimate != nil }) {
            notes.append("GPU figures are estimates from reference PyTorch throughput on one H100, not measurements; measured one-off costs use this machine's wall time.")
        }
        notes += rarelyRefuses(m.baseProbes)
        notes += servedModels(m.strategies)
        let unknownTraining = rows.filter(\.cost.oneOffUnknown).map(\.name)
        if !unknownTraining.isEmpty {
            notes.append("The training cost of \(unknownTraining.joined(separator: ", ")) is unknown: the hosted job's provider reported no bill and the backend has no price.training_per_mtok. One-off costs show \"unknown\" and totals leave training out; add training_per_mtok to the backend's price for a complete comparison.")
        }
        let seeded = rows.compactMap { row in row.seeds.map { "\(row.name) (\($0.runs.count))" } }
        if !seeded.isEmpty {
            notes.append("Run once per seed: \(seeded.joined(separator: ", ")). Their accuracy is the mean over seeds; its 95% interval is a \(SeedSummary.intervalMethod). Each seed's accuracy and the standard deviation across seeds are listed with them, and paired tests involving them resample seeds too. Their costs are per seed (the mean): what one deployed model costs; this run paid for every seed.")
        }
        let scoresByName = Dictionary(grouping: m.strategies, by: \.name).mapValues { runs in runs.map { $0.predictions.map { (id: $0.exampleID, score: $0.score) } } }
        let samples = m.bootstrapSamples
        let compare: (String, String) -> PairedComparison? = { first, second in
            guard let a = scoresByName[first], let b = scoresByName[second], a.allSatisfy({ !$0.isEmpty }), b.allSatisfy({ !$0.isEmpty }), !a.isEmpty, !b.isEmpty else { return nil }
            let seed = derivedSeed(m.seed, "paired", first, second)
            if a.count == 1, b.count == 1 {
                return PairedComparison.compare(first: (first, a[0]), second: (second, b[0]), samples: samples, seed: seed)
            }
            return PairedComparison.compareAcrossSeeds(first: (first, a), second: (second, b), samples: samples, seed: seed)
        }
        let byAccuracy = rows.filter { $0.accuracy.n > 0 }.sorted { $0.accuracy.value > $1.accuracy.value }
        let paired = byAccuracy.count >= 2 ? compare(byAccuracy[0].name, byAccuracy[1].name) : nil
        if let paired, !paired.significant {
            notes.append("The two most accurate strategies, \(paired.first) and \(paired.second), are not significantly different on this test set (p = \(String(format: "%.3g", paired.pValue)), n = \(paired.n)).")
        }
        let candidates = rows.map {
            DecisionCandidate(
                name: $0.name, accuracy: ConfidenceInterval(value: $0.accuracy.value, low: $0.accuracy.ciLow, high: $0.accuracy.ciHigh),
                cost: $0.cost, maxForgetting: $0.maxForgetting, latencyP95Ms: $0.latencyMs.p95, evaluated: $0.accuracy.n, seeds: $0.seeds?.runs.count ?? 1)
        }
        let decision = DecisionMaker.decide(candidates: candidates, costs: m.costs, constraints: m.constraints, compare: compare)
        let variantGroups = VariantGroupReport.groups(rows, compare: compare)
        notes += rows.compactMap { row in row.selfConsistency.map { $0.note(strategy: row.name) } }
        notes += rows.compactMap { row in row.retrieval.map { $0.summary(strategy: row.name, corpusLeavesMachine: row.dataLeavesMachine) } }
        let curves = learningCurves(m)
        if !curves.isEmpty {
            notes.append("Learning curves: each point is a measured run on a nested, label-balanced subset of the training split (or with that many demonstrations). Curves are an \(LearningCurveReport.fitMethod).")
        }
        // Power: the recommended strategy and the runner-up, else the two most accurate.
        let pair: (String, String)? = decision.ranking.count >= 2 ? (decision.ranking[0], decision.ranking[1])
            : byAccuracy.count >= 2 ? (byAccuracy[0].name, byAccuracy[1].name) : nil
        let testSetSize = pair.flatMap { pair in
            TestSetSizeReport.build(first: (pair.0, scoresByName[pair.0] ?? []), second: (pair.1, scoresByName[pair.1] ?? []))
        }
        // Its summary is shown in each format's test-set-size section, not repeated in the notes.
        var report = Report(
            schemaVersion: currentSchemaVersion, runID: m.runID, recipe: m.recipeName, recipePath: m.recipePath,
            startedAt: m.startedAt, finishedAt: m.finishedAt, complete: m.finishedAt != nil, metric: m.metric,
            seed: m.seed, bootstrapSamples: m.bootstrapSamples, costs: m.costs, constraints: m.constraints,
            strategies: rows, pairedTest: paired, variantGroups: variantGroups.isEmpty ? nil : variantGroups,
            decision: decision, notes: notes, examples: examples(m), data: m.data)
        report.testSetSize = testSetSize
        if !curves.isEmpty {
            report.learningCurves = curves.map(\.curve)
            let crossed = crossings(curves, rows: rows)
            report.curveCrossings = crossed
            report.labelOutlook = labelOutlook(crossings: crossed, curves: curves.map(\.curve), rows: rows, decision: decision, costs: m.costs)
        }
        return report
    }

    /// Notes on hosted models: a strategy whose model is a moving alias
    /// (``ModelAlias``), with the snapshots the provider reported serving, and a strategy
    /// answered by more than one snapshot.
    static func servedModels(_ strategies: [StrategyMeasurement]) -> [String] {
        var notes: [String] = []
        var seen = Set<String>()
        for strategy in strategies where seen.insert(strategy.name).inserted {
            let runs = strategies.filter { $0.name == strategy.name }
            let served = Set(runs.flatMap { $0.predictions.compactMap(\.servedModel) }).sorted()
            let alias = strategy.model.split(separator: "|").map(String.init).first { ModelAlias.isMoving($0) }
            if let alias {
                let snapshots = served.isEmpty ? "the provider reported no snapshot" : "the provider reported serving \(served.joined(separator: ", "))"
                notes.append("\(strategy.name) names the moving alias '\(alias)' (\(snapshots)): a rerun may measure another model; name a dated snapshot in the recipe.")
            } else if served.count > 1 {
                notes.append("\(strategy.name) was answered by more than one model snapshot (\(served.joined(separator: ", "))), as the provider reported them.")
            }
        }
        return notes
    }

    /// Below this base refusal rate a refusal probe cannot show much forgetting.
    static let rareRefusalRate = 0.2

    /// Notes for refusal probes the base model seldom refuses: their drop after fine-tuning is
    /// bounded by that small rate, so the report says how little the probe can show.
    static func rarelyRefuses(_ baseProbes: [ProbeMeasurement]) -> [String] {
        baseProbes.filter { $0.kind == .refusal && !$0.scores.isEmpty }.compactMap { base in
            let refused = base.scores.filter { $0 > 0.5 }.count
            let rate = Double(refused) / Double(base.scores.count)
            guard rate < rareRefusalRate else { return nil }
            return "The base model (\(base.subject)) rarely refuses: it declined \(refused) of the \(base.scores.count) requests of probe '\(base.probe)' (\(String(format: "%.1f", rate * 100))%). Fine-tuning can lower that rate by at most as much, so this probe shows little forgetting of safety behaviour for this model."
        }
    }

    static func strategyReport(_ s: StrategyMeasurement, measurements m: RunMeasurements) -> StrategyReport {
        let scores = s.predictions.map(\.score)
        let ci = Bootstrap.meanInterval(scores, samples: m.bootstrapSamples, seed: derivedSeed(m.seed, "accuracy", s.name))
        let accuracy = AccuracyReport(value: ci.value, ciLow: ci.low, ciHigh: ci.high, n: scores.count, unparsed: s.predictions.filter { !$0.parsed }.count)
        let latencies = s.predictions.map { $0.latencySeconds * 1000 }
        let latency = LatencyReport(p50: Statistics.quantile(latencies, 0.5), p95: Statistics.quantile(latencies, 0.95))
        let cost = CostModel.cost(of: s, costs: m.costs)

        var forgetting: [ForgettingReport] = []
        let baseProbes = m.baseProbes.filter { $0.subject == s.backend }
        let note: String
        if !s.usesLanguageModel {
            note = noLanguageModelNote
        } else if s.adaptsWeights {
            for adapted in s.probes {
                let base = baseProbes.first { $0.probe == adapted.probe }
                forgetting.append(forgettingReport(base: base, adapted: adapted, samples: m.bootstrapSamples, seed: derivedSeed(m.seed, "forgetting", s.name, adapted.probe)))
            }
            note = s.probes.isEmpty ? "No forgetting probes were evaluated on the adapted model." : "Measured: each probe on the base model and on the adapted model."
        } else {
            for base in baseProbes {
                let value = Statistics.mean(base.scores)
                forgetting.append(ForgettingReport(probe: base.probe, kind: base.kind, base: value, adapted: value, drop: 0, ciLow: 0, ciHigh: 0, byConstruction: true))
            }
            note = "Zero by construction: prompting does not change the model's weights."
        }
        return StrategyReport(
            name: s.name, kind: s.kind, backend: s.backend, model: s.model, adaptsWeights: s.adaptsWeights,
            usesLanguageModel: s.usesLanguageModel, dataLeavesMachine: s.dataLeavesMachine, accuracy: accuracy, cost: cost, latencyMs: latency,
            forgetting: forgetting, forgettingNote: note, training: s.training, seeds: nil,
            group: s.group, variant: s.variant, selfConsistency: SelfConsistencyReport.summarize(s.predictions), retrieval: s.retrieval)
    }

    /// The forgetting note of a strategy without a language model.
    static let noLanguageModelNote = "Not applicable: it answers without a language model, so there is nothing to forget."

    static func forgettingReport(base: ProbeMeasurement?, adapted: ProbeMeasurement, samples: Int, seed: UInt64) -> ForgettingReport {
        let adaptedMean = Statistics.mean(adapted.scores)
        guard let base else {
            return ForgettingReport(probe: adapted.probe, kind: adapted.kind, base: nil, adapted: adaptedMean, drop: nil, ciLow: nil, ciHigh: nil, byConstruction: false)
        }
        // Orient so that a positive drop always means the adapted model got worse.
        let sign: Double = adapted.higherIsBetter ? 1 : -1
        let interval: ConfidenceInterval
        if base.scores.count == adapted.scores.count {
            let result = PairedBootstrap.test(base.scores.map { $0 * sign }, adapted.scores.map { $0 * sign }, samples: samples, seed: seed)
            interval = result.difference
        } else {
            interval = Bootstrap.differenceInterval(base.scores.map { $0 * sign }, adapted.scores.map { $0 * sign }, samples: samples, seed: seed)
        }
        return ForgettingReport(
            probe: adapted.probe, kind: adapted.kind, base: Statistics.mean(base.scores), adapted: adaptedMean,
            drop: interval.value, ciLow: interval.low, ciHigh: interval.high, byConstruction: false)
    }

    static func examples(_ m: RunMeasurements) -> [ExampleReport] {
        var order: [String] = []
        var table: [String: (input: String, expected: String, answers: [ExampleReport.Answer])] = [:]
        for strategy in m.strategies {
            for p in strategy.predictions {
                if table[p.exampleID] == nil {
                    order.append(p.exampleID)
                    table[p.exampleID] = (p.input, p.expected, [])
                }
                table[p.exampleID]?.answers.append(.init(strategy: strategy.runName, output: p.output, answer: p.answer, score: p.score))
            }
        }
        return order.compactMap { id in table[id].map { ExampleReport(id: id, input: $0.input, expected: $0.expected, answers: $0.answers) } }
    }

    /// A seed derived from the run seed and some names with FNV-1a (stable across processes,
    /// unlike `Hasher`), so each interval has its own reproducible stream.
    static func derivedSeed(_ seed: UInt64, _ parts: String...) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325 ^ seed
        for part in parts {
            for byte in part.utf8 + [0] {
                hash ^= UInt64(byte)
                hash = hash &* 0x0000_0100_0000_01B3
            }
        }
        return hash
    }
}

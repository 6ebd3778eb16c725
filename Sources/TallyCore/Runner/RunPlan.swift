import Foundation

/// What a run of a recipe does, step by step, before any model is called: the data every
/// strategy sees, the base models whose probes run, and each strategy run (a strategy with
/// one seed). It is built in one place; `tally plan` estimates it (``Planner``) and
/// `tally run` executes it (``ExperimentRunner``), so both walk the same steps with the same
/// seeded subsets and the same strategies.
///
/// ```swift
/// let plan = try RunPlan.make(recipe: recipe)
/// for step in plan.runs { print(step.runName) }   // "lora (seed 7)", "lora (seed 11)", …
/// ```
public struct RunPlan: Sendable {
    /// One strategy with one seed.
    public struct StrategyRun: Sendable {
        public let spec: StrategySpec
        public let kind: any StrategyKind
        /// The seed the strategy is built with.
        public let seed: UInt64
        /// The seed when the strategy runs once per seed, else nil.
        public let repetition: UInt64?
        /// How many runs the strategy has (its seeds).
        public let repetitions: Int
        /// For a learning-curve point: its size and training rows; nil for a strategy's own run.
        public var point: CurvePoint? = nil

        /// `name`, or `name (seed N)` for a repetition; a curve point's
        /// (`CurvePointMeasurement.pointName`) likewise.
        public var runName: String {
            StrategyMeasurement.runName(point.map { CurvePointMeasurement.pointName(spec.name, axis: $0.axis, size: $0.size) } ?? spec.name, seed: repetition)
        }
    }

    /// One size of a learning curve.
    public struct CurvePoint: Sendable {
        public let axis: CurveSpec.Axis
        public let size: Int
        /// The training rows of a training-set size (`CurveSubsets`, drawn with the run's
        /// seed); nil for a shot count (the plan's training rows).
        public let train: [Example]?
    }

    /// Training rows after `run.max_train_examples`.
    public let train: Dataset
    /// Test rows after `run.max_examples`.
    public let test: Dataset
    /// Validation rows after `run.max_validation_examples`, when the recipe has a file.
    public let validation: Dataset?
    /// Each probe's items after `run.max_examples`, by probe name.
    public let probeItems: [String: [ProbeItem]]
    /// Rows the probe files skipped.
    public let probeProblems: [DataProblem]
    /// Per split and probe: rows read, skipped and used (the report's data section).
    public let dataSummaries: [DataSplitSummary]
    /// Backends whose base model is probed (a strategy adapts its weights and the recipe has
    /// probes), in the order of the first such strategy.
    public let probedBackends: [String]
    /// Every strategy run, in recipe order; a strategy that depends on the seed once per seed.
    public let runs: [StrategyRun]
    /// Every learning-curve point (`curves:`), in recipe order, sizes ascending, each once
    /// per seed when its strategy depends on the seed; run after `runs`, without probes.
    public var curveRuns: [StrategyRun] = []
    /// The recipe's directory: strategies resolve their own files (a `rag` corpus) against it.
    public let recipeDirectory: URL?

    /// The fields every usable data row needs: the input's and context's, and the target.
    public static func neededFields(_ task: TaskSpec) -> [String] {
        var needed = PromptTemplate(task.input).fields
        if let context = task.context { needed += PromptTemplate(context).fields }
        needed.append(task.target)
        return needed
    }

    /// Builds the plan of `recipe`.
    /// - Parameters:
    ///   - recipe: a validated recipe.
    ///   - strategies: the strategy kinds the recipe may use.
    ///   - displayPath: how a data file is named in messages and summaries.
    ///   - loadData: reads a data file (split name, fields) keeping the rows with every field
    ///     given (by default ``DatasetLoader`` and ``Dataset/requiring(_:)``); the runner adds
    ///     its notes and checks.
    /// - Throws: `TallyError` when a file cannot be read or a strategy kind is unknown.
    public static func make(
        recipe: Recipe, strategies: StrategyCatalog = .builtIn,
        displayPath: (URL) -> String = { $0.path },
        loadData: (URL, String, [String]) throws -> Dataset = { url, _, needed in try DatasetLoader.load(url).requiring(needed) }
    ) throws -> RunPlan {
        let needed = neededFields(recipe.task)
        let run = recipe.run
        var summaries: [DataSplitSummary] = []
        func split(_ url: URL, _ name: String, max: Int?) throws -> Dataset {
            let loaded = try loadData(url, name, needed)
            let sampled = loaded.sample(max, seed: run.seed, label: name)
            summaries.append(loaded.summary(split: name, used: sampled.examples.count))
            return sampled
        }
        let train = try split(recipe.data.train, "train", max: run.maxTrainExamples)
        let test = try split(recipe.data.test, "test", max: run.maxExamples)
        let validation = try recipe.data.validation.map { try split($0, "validation", max: run.maxValidationExamples) }
        var probeItems: [String: [ProbeItem]] = [:]
        var problems: [DataProblem] = []
        for probe in recipe.probes {
            let loaded = try ProbeLoader.load(probe.data, kind: probe.kind, displayPath: displayPath(probe.data))
            problems += loaded.problems
            let sampled = ProbeLoader.sample(loaded.items, max: run.maxExamples, seed: run.seed, probe: probe.name)
            summaries.append(DataSplitSummary(split: "probe \(probe.name)", file: displayPath(probe.data), usable: loaded.items.count, problems: loaded.problems, used: sampled.count))
            probeItems[probe.name] = sampled
        }
        var runs: [StrategyRun] = []
        var probed: [String] = []
        for spec in recipe.strategies {
            let kind = try strategies.kind(named: spec.kind)
            if kind.usesLanguageModel {
                guard let backend = spec.backend, recipe.backend(named: backend) != nil else { continue }
                if kind.adaptsWeights, !recipe.probes.isEmpty, !probed.contains(backend) { probed.append(backend) }
            }
            let seeds = recipe.seeds(for: spec, dependsOnSeed: kind.dependsOnSeed(spec))
            for seed in seeds {
                runs.append(StrategyRun(spec: spec, kind: kind, seed: seed, repetition: seeds.count > 1 ? seed : nil, repetitions: seeds.count))
            }
        }
        var curveRuns: [StrategyRun] = []
        for curve in recipe.curves {
            guard let entry = recipe.strategies.first(where: { $0.name == curve.strategy }) else { continue }
            let kind = try strategies.kind(named: entry.kind)
            if kind.usesLanguageModel, entry.backend.flatMap(recipe.backend(named:)) == nil { continue }
            for size in curve.sizes {
                let spec = curve.pointSpec(entry, size: size)
                let seeds = recipe.seeds(for: spec, dependsOnSeed: kind.dependsOnSeed(spec))
                for seed in seeds {
                    let rows = curve.axis == .trainExamples
                        ? CurveSubsets.subset(of: train.examples, order: CurveSubsets.order(of: train.examples, task: recipe.task, seed: seed), size: size)
                        : nil
                    var run = StrategyRun(spec: spec, kind: kind, seed: seed, repetition: seeds.count > 1 ? seed : nil, repetitions: seeds.count)
                    run.point = CurvePoint(axis: curve.axis, size: size, train: rows)
                    curveRuns.append(run)
                }
            }
        }
        return RunPlan(train: train, test: test, validation: validation, probeItems: probeItems, probeProblems: problems, dataSummaries: summaries, probedBackends: probed, runs: runs, curveRuns: curveRuns, recipeDirectory: recipe.directory)
    }

    /// The strategy of one run, built from the plan's data and the run's seed.
    /// - Parameter cacheDirectory: where the strategy may keep what it derives from files
    ///   (`StrategyContext.cacheDirectory`; nil: nowhere).
    /// - Throws: what the strategy kind throws for a bad configuration.
    public func strategy(for run: StrategyRun, task: TaskSpec, cacheDirectory: URL? = nil) throws -> any Strategy {
        try run.kind.makeStrategy(run.spec, context: StrategyContext(task: task, train: run.point?.train ?? train.examples, validation: validation?.examples ?? [], seed: run.seed, recipeDirectory: recipeDirectory, cacheDirectory: cacheDirectory))
    }
}

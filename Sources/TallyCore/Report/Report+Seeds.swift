import Foundation

/// A strategy run once per seed, across its seeds: the spread of its accuracy and every
/// seed's own figures. `StrategyReport.seeds`; absent for strategies run once.
public struct SeedSummary: Codable, Sendable, Hashable {
    /// One seed's run.
    public struct Run: Codable, Sendable, Hashable {
        public let seed: UInt64
        /// This seed's accuracy (mean score) with a bootstrap interval over test examples.
        public let accuracy: Double
        public let ciLow: Double
        public let ciHigh: Double
        /// Test examples this seed answered.
        public let n: Int
        public let unparsed: Int
        /// This seed's training cost; nil when unknown (see `StrategyCost.oneOffUnknown`).
        public let oneOffUSD: Double?
        /// This seed's largest forgetting drop over the probes (0 when none was probed).
        public let maxForgetting: Double
        /// The model identity of this seed's predictions.
        public let model: String
        /// This seed's training job (strategies that adapt weights).
        public let training: FineTuneOutcome?

        enum CodingKeys: String, CodingKey {
            case seed, accuracy, n, unparsed, model, training
            case ciLow = "ci_low"
            case ciHigh = "ci_high"
            case oneOffUSD = "one_off_usd"
            case maxForgetting = "max_forgetting"
        }
    }

    /// In the order the recipe lists the seeds.
    public let runs: [Run]
    /// Mean of the per-seed accuracies (equal to `StrategyReport.accuracy.value`).
    public let mean: Double
    /// Sample standard deviation of the per-seed accuracies; nil with one seed.
    public let standardDeviation: Double?
    public let min: Double
    public let max: Double
    /// How the strategy's accuracy interval was computed, in words.
    public let interval: String

    enum CodingKeys: String, CodingKey {
        case runs, mean, min, max, interval
        case standardDeviation = "sd"
    }

    /// `3 seeds, sd 1.2 points` (or `1 seed`).
    public var shortDescription: String {
        let count = "\(runs.count) seed\(runs.count == 1 ? "" : "s")"
        guard let sd = standardDeviation else { return count }
        return count + String(format: ", sd %.1f points", sd * 100)
    }

    /// `seed 7: 70.1%, seed 11: 72.5%`.
    public var perSeedDescription: String {
        runs.map { "seed \($0.seed): " + String(format: "%.1f%%", $0.accuracy * 100) }.joined(separator: ", ")
    }

    /// The words every report uses for the across-seed interval.
    public static let intervalMethod = "two-level bootstrap: each resample draws the seeds and the test examples with replacement (the same examples for every seed), so the interval covers both seed variation and the test sample"
}

extension Report {
    /// The row of a strategy run once per seed: accuracy is the mean over seeds with a
    /// two-level bootstrap interval (`SeedBootstrap.meanInterval`); `n` and `unparsed`
    /// count the answers of every seed; latency pools them; costs are the per-seed mean
    /// (`CostModel.cost(ofRepetitions:)`); forgetting per probe is the mean drop over seeds
    /// with a two-level paired bootstrap over probe items and seeds; `training` and `model`
    /// are the first seed's, and `seeds` holds every seed's own figures.
    static func seededStrategyReport(_ runs: [StrategyMeasurement], measurements m: RunMeasurements) -> StrategyReport {
        let first = runs[0]
        let rows = runs.map { $0.predictions.map(\.score) }
        let ci = SeedBootstrap.meanInterval(rows, samples: m.bootstrapSamples, seed: derivedSeed(m.seed, "accuracy", first.name))
        let all = runs.flatMap(\.predictions)
        let accuracy = AccuracyReport(value: ci.value, ciLow: ci.low, ciHigh: ci.high, n: all.count, unparsed: all.filter { !$0.parsed }.count)
        let latencies = all.map { $0.latencySeconds * 1000 }
        let latency = LatencyReport(p50: Statistics.quantile(latencies, 0.5), p95: Statistics.quantile(latencies, 0.95))
        let cost = CostModel.cost(ofRepetitions: runs, costs: m.costs)

        let baseProbes = m.baseProbes.filter { $0.subject == first.backend }
        var forgetting: [ForgettingReport] = []
        let note: String
        if !first.usesLanguageModel {
            note = noLanguageModelNote
        } else if first.adaptsWeights {
            var probeNames: [String] = []
            for run in runs { for probe in run.probes where !probeNames.contains(probe.probe) { probeNames.append(probe.probe) } }
            for name in probeNames {
                let adapted = runs.compactMap { run in run.probes.first { $0.probe == name } }
                guard let kind = adapted.first?.kind else { continue }
                forgetting.append(seededForgetting(base: baseProbes.first { $0.probe == name }, adapted: adapted, kind: kind, samples: m.bootstrapSamples, seed: derivedSeed(m.seed, "forgetting", first.name, name)))
            }
            note = forgetting.isEmpty
                ? "No forgetting probes were evaluated on the adapted models."
                : "Measured: each probe on the base model and on each seed's adapted model; the drop is the mean over \(runs.count) seeds."
        } else {
            for base in baseProbes {
                let value = Statistics.mean(base.scores)
                forgetting.append(ForgettingReport(probe: base.probe, kind: base.kind, base: value, adapted: value, drop: 0, ciLow: 0, ciHigh: 0, byConstruction: true))
            }
            note = "Zero by construction: prompting does not change the model's weights."
        }

        let perSeed = runs.map { run -> SeedSummary.Run in
            let scores = run.predictions.map(\.score)
            let own = Bootstrap.meanInterval(scores, samples: m.bootstrapSamples, seed: derivedSeed(m.seed, "accuracy", run.runName))
            let runCost = CostModel.cost(of: run, costs: m.costs)
            return SeedSummary.Run(
                seed: run.seed ?? m.seed, accuracy: own.value, ciLow: own.low, ciHigh: own.high, n: scores.count,
                unparsed: run.predictions.filter { !$0.parsed }.count, oneOffUSD: runCost.oneOffUnknown ? nil : runCost.oneOffUSD,
                maxForgetting: maxDrop(run, base: baseProbes), model: run.model, training: run.training)
        }
        let values = perSeed.map(\.accuracy)
        let seeds = SeedSummary(
            runs: perSeed, mean: ci.value, standardDeviation: SeedBootstrap.standardDeviation(values),
            min: values.min() ?? 0, max: values.max() ?? 0, interval: SeedSummary.intervalMethod)
        return StrategyReport(
            name: first.name, kind: first.kind, backend: first.backend, model: first.model, adaptsWeights: first.adaptsWeights,
            usesLanguageModel: first.usesLanguageModel, dataLeavesMachine: first.dataLeavesMachine, accuracy: accuracy, cost: cost, latencyMs: latency,
            forgetting: forgetting, forgettingNote: note, training: first.training, seeds: seeds,
            group: first.group, variant: first.variant, selfConsistency: SelfConsistencyReport.summarize(all), retrieval: first.retrieval)
    }

    /// One probe's forgetting across seeds: base mean minus the mean of the seeds' adapted
    /// means (oriented so positive is worse), with a two-level paired bootstrap interval when
    /// every run scored the same items, else an unpaired one over the pooled scores.
    static func seededForgetting(base: ProbeMeasurement?, adapted: [ProbeMeasurement], kind: ProbeSpec.Kind, samples: Int, seed: UInt64) -> ForgettingReport {
        let probe = adapted[0].probe
        let adaptedMean = Statistics.mean(adapted.map { Statistics.mean($0.scores) })
        guard let base else {
            return ForgettingReport(probe: probe, kind: kind, base: nil, adapted: adaptedMean, drop: nil, ciLow: nil, ciHigh: nil, byConstruction: false)
        }
        let sign: Double = adapted[0].higherIsBetter ? 1 : -1
        let interval: ConfidenceInterval
        if adapted.allSatisfy({ $0.scores.count == base.scores.count }) {
            interval = SeedBootstrap.pairedTest([base.scores.map { $0 * sign }], adapted.map { $0.scores.map { $0 * sign } }, samples: samples, seed: seed).difference
        } else {
            let difference = Bootstrap.differenceInterval(base.scores.map { $0 * sign }, adapted.flatMap(\.scores).map { $0 * sign }, samples: samples, seed: seed)
            let value = sign * (Statistics.mean(base.scores) - adaptedMean)
            interval = ConfidenceInterval(value: value, low: difference.low, high: difference.high)
        }
        return ForgettingReport(
            probe: probe, kind: kind, base: Statistics.mean(base.scores), adapted: adaptedMean,
            drop: interval.value, ciLow: interval.low, ciHigh: interval.high, byConstruction: false)
    }

    /// One run's largest probe drop against the base model (0 when nothing was probed).
    static func maxDrop(_ run: StrategyMeasurement, base: [ProbeMeasurement]) -> Double {
        let drops = run.probes.compactMap { adapted -> Double? in
            guard let b = base.first(where: { $0.probe == adapted.probe }) else { return nil }
            return (adapted.higherIsBetter ? 1 : -1) * (Statistics.mean(b.scores) - Statistics.mean(adapted.scores))
        }
        return drops.max().map { Swift.max(0, $0) } ?? 0
    }
}

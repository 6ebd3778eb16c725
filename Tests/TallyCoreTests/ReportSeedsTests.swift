import Foundation
import Testing
import TallyTesting
@testable import TallyCore

/// Hand-built measurements of a strategy run with three seeds, whose per-seed accuracies,
/// costs and forgetting are known, next to a prompting strategy run once.
private enum SeededRun {
    static let n = 200
    static let seeds: [UInt64] = [7, 11, 13]
    /// Correct answers per seed: 50%, 90%, 70%.
    static let correct = [100, 180, 140]
    static let wallSeconds = [100.0, 200.0, 300.0]
    /// Knowledge probe items kept per seed (of 20; the base keeps all 20).
    static let kept = [18, 16, 14]

    static func predictions(correct: Int, label: String) -> [Prediction] {
        (0..<n).map { i in
            let right = i < correct
            return Prediction(
                exampleID: "ex-\(i)", input: "review \(i)", expected: "positive", output: right ? "positive" : "negative",
                answer: right ? "positive" : (i % 10 == 9 ? nil : "negative"), score: right ? 1 : 0,
                usage: TokenUsage(promptTokens: 50, completionTokens: 2), latencySeconds: 0.1, computeSeconds: 0.5, cached: false)
        }
    }

    static func make(identicalSeeds: Bool = false) -> RunMeasurements {
        let prompting = StrategyMeasurement(
            name: "zero-shot", kind: "zero-shot", backend: "local", model: "m", dataLeavesMachine: false, adaptsWeights: false,
            pricing: Pricing(), predictions: predictions(correct: 120, label: "zs"), training: nil, probes: [])
        let runs = seeds.indices.map { s in
            StrategyMeasurement(
                name: "lora-r8", kind: "lora", backend: "local", model: "m+lora-\(seeds[s])", dataLeavesMachine: false, adaptsWeights: true,
                pricing: Pricing(), predictions: predictions(correct: identicalSeeds ? 140 : correct[s], label: "seed \(seeds[s])"),
                training: FineTuneOutcome(artifact: "a\(s)", wallSeconds: wallSeconds[s], trainedTokens: 1000, steps: 10, trainLoss: [LossPoint(step: 10, loss: 1)], validationLoss: []),
                probes: [ProbeMeasurement(probe: "knowledge", kind: .qa, subject: "lora-r8 (seed \(seeds[s]))", scores: (0..<20).map { $0 < kept[s] ? 1 : 0 })],
                seed: seeds[s])
        }
        return RunMeasurements(
            runID: "run-seeds", recipeName: "seeds", recipePath: "seeds.yaml", startedAt: Date(timeIntervalSince1970: 0), finishedAt: Date(timeIntervalSince1970: 60),
            costs: CostSpec(computeUSDPerHour: 36, requestsPerMonth: 1000, horizonMonths: 6),
            constraints: Constraints(minAccuracy: 0.65), metric: "accuracy", seed: 7, bootstrapSamples: 1000,
            strategies: [prompting] + runs,
            baseProbes: [ProbeMeasurement(probe: "knowledge", kind: .qa, subject: "local", scores: Array(repeating: 1, count: 20))])
    }
}

@Suite("Reports across seeds")
struct ReportSeedsTests {
    @Test("a repeated strategy is one row: mean, spread and per-seed values match an independent computation")
    func aggregates() throws {
        let m = SeededRun.make()
        let report = Report.build(from: m)
        #expect(report.strategies.map(\.name) == ["zero-shot", "lora-r8"])
        let lora = try #require(report.strategy(named: "lora-r8"))
        let seeds = try #require(lora.seeds)

        // Independently: per-seed accuracy = correct / n; mean; sample sd.
        let perSeed = SeededRun.correct.map { Double($0) / Double(SeededRun.n) }
        let mean = perSeed.reduce(0, +) / Double(perSeed.count)
        let sd = (perSeed.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(perSeed.count - 1)).squareRoot()
        #expect(seeds.runs.map(\.seed) == SeededRun.seeds)
        #expect(zip(seeds.runs.map(\.accuracy), perSeed).allSatisfy { abs($0 - $1) < 1e-12 })
        #expect(abs(lora.accuracy.value - mean) < 1e-12 && abs(seeds.mean - mean) < 1e-12)
        #expect(abs(try #require(seeds.standardDeviation) - sd) < 1e-12)
        #expect(abs(sd - 0.2) < 1e-12)
        #expect(seeds.min == 0.5 && seeds.max == 0.9)
        // n and unparsed count every seed's answers; each seed's own interval brackets it.
        #expect(lora.accuracy.n == 3 * SeededRun.n)
        let unparsed = SeededRun.correct.map { c in (c..<SeededRun.n).filter { $0 % 10 == 9 }.count }
        #expect(lora.accuracy.unparsed == unparsed.reduce(0, +))
        #expect(seeds.runs.map(\.unparsed) == unparsed)
        #expect(seeds.runs.allSatisfy { $0.ciLow < $0.accuracy && $0.accuracy < $0.ciHigh && $0.n == SeededRun.n })

        // The interval covers seed variation: far wider than resampling examples alone
        // (the per-example mean over seeds, bootstrapped), and it contains the mean.
        #expect(lora.accuracy.ciLow < mean && mean < lora.accuracy.ciHigh)
        let pooled = (0..<SeededRun.n).map { i in Double(SeededRun.correct.filter { i < $0 }.count) / 3 }
        let examplesOnly = Bootstrap.meanInterval(pooled, samples: 1000, seed: 1)
        #expect(lora.accuracy.ciHigh - lora.accuracy.ciLow > 2 * (examplesOnly.high - examplesOnly.low))

        // Costs: the mean over seeds of wall time x compute price (one deployed model).
        let oneOff = SeededRun.wallSeconds.map { $0 * 36 / 3600 }.reduce(0, +) / 3
        #expect(abs(lora.cost.oneOffUSD - oneOff) < 1e-12)
        #expect(lora.cost.oneOffBasis.hasPrefix("mean over 3 seeds (seed 7: 100 s of training"))
        #expect(zip(seeds.runs.compactMap(\.oneOffUSD), SeededRun.wallSeconds).allSatisfy { abs($0 - $1 * 36 / 3600) < 1e-12 })

        // Forgetting: base (1.0) minus each seed's adapted mean, averaged; per seed too.
        let drops = SeededRun.kept.map { 1 - Double($0) / 20 }
        let knowledge = try #require(lora.forgetting.first)
        #expect(abs(try #require(knowledge.drop) - drops.reduce(0, +) / 3) < 1e-12)
        #expect(abs(lora.maxForgetting - 0.2) < 1e-12)
        #expect(zip(seeds.runs.map(\.maxForgetting), drops).allSatisfy { abs($0 - $1) < 1e-12 })
        #expect(try #require(knowledge.ciLow) <= 0.2 && 0.2 <= (try #require(knowledge.ciHigh)))
        #expect(lora.training?.wallSeconds == 100)
        #expect(seeds.runs.map { $0.training?.wallSeconds } == [100, 200, 300])

        // The drill-down names each seed's answers.
        #expect(report.examples[0].answers.map(\.strategy) == ["zero-shot", "lora-r8 (seed 7)", "lora-r8 (seed 11)", "lora-r8 (seed 13)"])
        #expect(report.strategy(named: "zero-shot")?.seeds == nil)
        #expect(report.notes.contains { $0.contains("Run once per seed: lora-r8 (3)") })
    }

    @Test("the decision compares strategies on the across-seed figures")
    func decisionUsesSeeds() throws {
        let report = Report.build(from: SeededRun.make())
        // min_accuracy 0.65: lora-r8's seed 7 alone (50%) would fail; its mean (70%) passes.
        #expect(report.decision.infeasible.map(\.name) == ["zero-shot"])
        #expect(report.decision.recommended == "lora-r8")
        #expect(report.decision.reason.contains("accuracy 70.0%") && report.decision.reason.contains("(mean of 3 seeds)"))
        let paired = try #require(report.pairedTest)
        #expect(paired.method == "paired-bootstrap-seeds")
        #expect(paired.first == "lora-r8" && paired.second == "zero-shot" && paired.n == SeededRun.n)
        #expect(abs(paired.difference.value - (0.7 - 0.6)) < 1e-12)
        // Seed variation (50% to 90%) swamps a 10-point gap: not significant across seeds.
        #expect(!paired.significant)
        #expect(DecisionMaker.describe(paired).hasPrefix("paired bootstrap over examples and seeds"))
    }

    @Test("with identical seeds the interval is about the single-seed one, and the spread is zero")
    func identicalSeeds() throws {
        let lora = try #require(Report.build(from: SeededRun.make(identicalSeeds: true)).strategy(named: "lora-r8"))
        #expect(abs(try #require(lora.seeds?.standardDeviation)) < 1e-12)
        let single = Bootstrap.meanInterval(SeededRun.predictions(correct: 140, label: "").map(\.score), samples: 1000, seed: 3)
        let ratio = (lora.accuracy.ciHigh - lora.accuracy.ciLow) / (single.high - single.low)
        #expect(ratio > 0.8 && ratio < 1.25)
    }

    @Test("every renderer shows the mean, the spread and each seed's value")
    func renderers() throws {
        let m = SeededRun.make()
        let report = Report.build(from: m)
        let terminal = try TerminalRenderer().render(report)
        #expect(terminal.contains("70.0% ["))
        #expect(terminal.contains("(3 seeds, sd 20.0 points)"))
        #expect(terminal.contains("Across seeds (intervals resample seeds and test examples):\n  - lora-r8: mean 70.0% over 3 seeds, sd 20.0 points, range 50.0%-90.0%; seed 7: 50.0%"))
        #expect(terminal.contains("seed 13: 70.0%"))
        let markdown = try MarkdownRenderer().render(report)
        #expect(markdown.contains("## Seeds"))
        #expect(markdown.contains("| lora-r8 | 3 | 70.0% | 20.0 | 50.0% - 90.0% | 7: 50.0% ["))
        #expect(markdown.contains("| lora-r8 (seed 13) | 300.0 |"))
        let html = try HTMLRenderer(measurements: m).render(report)
        #expect(html.contains("3 seeds, sd 20.0 points; range 50.0%-90.0%<br>seed 7: 50.0%, seed 11: 90.0%, seed 13: 70.0%"))
        let json = try JSONRenderer().render(report)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let rows = try #require(object["strategies"] as? [[String: Any]])
        #expect(rows[0]["seeds"] == nil)
        let seeds = try #require(rows[1]["seeds"] as? [String: Any])
        #expect(abs((seeds["sd"] as? Double ?? 0) - 0.2) < 1e-12)
        #expect((seeds["runs"] as? [[String: Any]])?.map { $0["seed"] as? Int } == [7, 11, 13])
        #expect(try JSONRenderer.decode(Data(json.utf8)).strategy(named: "lora-r8")?.seeds == report.strategy(named: "lora-r8")?.seeds)
        // The sensitivity map prices the strategy at its across-seed cost.
        let map = Sensitivity.map(report: report, measurements: m, volumes: [1000], multipliers: [1])
        #expect(map.winners == [[report.decision.recommended]])
    }
}

@Suite("Two-level seed bootstrap")
struct SeedBootstrapTests {
    @Test("two seeds with one example each: the interval spans the seeds' values")
    func seedsOnly() {
        let ci = SeedBootstrap.meanInterval([[0], [1]], samples: 1000, seed: 5)
        #expect(ci.value == 0.5 && ci.low == 0 && ci.high == 1)
    }

    @Test("a paired test across seeds: a certain difference has p = 0; equal strategies p = 1")
    func pairedAcrossSeeds() {
        let better = SeedBootstrap.pairedTest([[1, 1, 1], [1, 1, 1]], [[0, 0, 0]], samples: 500, seed: 1)
        #expect(better.difference.value == 1 && better.difference.low == 1 && better.difference.high == 1 && better.pValue == 0)
        let same = SeedBootstrap.pairedTest([[1, 0, 1]], [[1, 0, 1], [1, 0, 1]], samples: 500, seed: 1)
        #expect(same.difference.value == 0 && same.pValue == 1)
        #expect(SeedBootstrap.standardDeviation([0.75, 0.85, 0.8]).map { abs($0 - 0.05) < 1e-12 } == true)
        #expect(SeedBootstrap.standardDeviation([0.5]) == nil)
    }
}

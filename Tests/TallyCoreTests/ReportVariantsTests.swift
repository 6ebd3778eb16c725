import Foundation
import Testing
import TallyTesting
@testable import TallyCore

/// Hand-built measurements: three variants of one entry (`wording`), whose accuracies, token
/// use and latencies are known, next to a plain strategy.
private enum VariantRun {
    static let n = 100

    /// `correct` right answers (the first ones), with the given tokens and latency per call.
    static func predictions(correct: Int, prompt: Int, latency: Double, samples: Int? = nil, agreement: (Int) -> Double? = { _ in nil }) -> [Prediction] {
        (0..<n).map { i in
            let right = i < correct
            return Prediction(
                exampleID: "ex-\(i)", input: "review \(i)", expected: "positive", output: right ? "positive" : "negative",
                answer: right ? "positive" : "negative", score: right ? 1 : 0,
                usage: TokenUsage(promptTokens: prompt, completionTokens: 2), latencySeconds: latency, computeSeconds: nil, cached: false,
                samples: samples, agreement: agreement(i))
        }
    }

    static func strategy(_ name: String, group: String? = nil, correct: Int, prompt: Int, latency: Double, samples: Int? = nil, agreement: (Int) -> Double? = { _ in nil }) -> StrategyMeasurement {
        StrategyMeasurement(
            name: group.map { StrategySpec.variantName(entry: $0, variant: name) } ?? name, kind: "zero-shot", backend: "api", model: "m",
            dataLeavesMachine: true, adaptsWeights: false, pricing: Pricing(inputPerMTok: 1, outputPerMTok: 4),
            predictions: predictions(correct: correct, prompt: prompt, latency: latency, samples: samples, agreement: agreement),
            training: nil, probes: [], group: group, variant: group == nil ? nil : name)
    }

    /// short 80%, long `longCorrect`%, clue 60%; the plain `zero-shot` 50%.
    static func make(longCorrect: Int = 70, longPrompt: Int = 300, extra: [StrategyMeasurement] = []) -> RunMeasurements {
        RunMeasurements(
            runID: "run-variants", recipeName: "variants", recipePath: "variants.yaml", startedAt: Date(timeIntervalSince1970: 0), finishedAt: Date(timeIntervalSince1970: 60),
            costs: CostSpec(), constraints: Constraints(), metric: "accuracy", seed: 7, bootstrapSamples: 500,
            strategies: [
                strategy("zero-shot", correct: 50, prompt: 100, latency: 0.1),
                strategy("short", group: "wording", correct: 80, prompt: 100, latency: 0.2),
                strategy("long", group: "wording", correct: longCorrect, prompt: longPrompt, latency: 0.4),
                strategy("clue", group: "wording", correct: 60, prompt: 200, latency: 0.3),
            ] + extra,
            baseProbes: [])
    }
}

@Suite("Reports of prompt variants and self-consistency")
struct ReportVariantsTests {
    @Test("variants of one entry form a group: best, runner-up and their paired test")
    func groups() throws {
        let report = Report.build(from: VariantRun.make())
        let group = try #require(report.variantGroups?.first)
        #expect(report.variantGroups?.count == 1)
        #expect(group.name == "wording" && group.strategies == ["wording/short", "wording/long", "wording/clue"])
        #expect(group.best == "wording/short" && group.runnerUp == "wording/long")
        // short is right on 10 examples long gets wrong and never the other way round:
        // exact McNemar p = 2 / 2^10.
        let test = try #require(group.pairedTest)
        #expect(test.first == "wording/short" && test.second == "wording/long" && test.n == 100)
        #expect(test.onlyFirstCorrect == 10 && test.onlySecondCorrect == 0)
        #expect(abs(test.pValue - 2.0 / 1024.0) < 1e-12 && test.significant)
        #expect(group.verdict.contains("the best really beats the next"))
        // Each variant keeps its own row: cost and latency per variant.
        let short = try #require(report.strategy(named: "wording/short")), long = try #require(report.strategy(named: "wording/long"))
        #expect(short.group == "wording" && short.variant == "short")
        #expect(long.cost.per1kRequestsUSD > short.cost.per1kRequestsUSD)
        #expect(short.latencyMs.p50 == 200 && long.latencyMs.p50 == 400)
        #expect(report.strategy(named: "zero-shot")?.group == nil)
    }

    @Test("a best variant that does not really beat the next is said so; ties go to the cheaper")
    func notSignificantAndTies() throws {
        let close = Report.build(from: VariantRun.make(longCorrect: 78))
        let group = try #require(close.variantGroups?.first)
        #expect(group.pairedTest?.onlyFirstCorrect == 2 && group.pairedTest?.significant == false)
        #expect(group.verdict.contains("not significantly better"))

        // long as accurate as short: the cheaper per request wins, whichever is listed first.
        let tied = Report.build(from: VariantRun.make(longCorrect: 80, longPrompt: 50))
        #expect(tied.variantGroups?.first?.best == "wording/long" && tied.variantGroups?.first?.runnerUp == "wording/short")
        #expect(tied.variantGroups?.first?.pairedTest?.pValue == 1)
        // A run without variants has no groups (and its JSON no key for them).
        let plain = VariantRun.make()
        let none = Report.build(from: RunMeasurements(
            runID: plain.runID, recipeName: plain.recipeName, recipePath: plain.recipePath, startedAt: plain.startedAt, finishedAt: plain.finishedAt,
            costs: plain.costs, constraints: plain.constraints, metric: plain.metric, seed: plain.seed, bootstrapSamples: plain.bootstrapSamples,
            strategies: [plain.strategies[0]], baseProbes: []))
        #expect(none.variantGroups == nil)
        #expect(!(try JSONRenderer().render(none)).contains("variant_groups"))
    }

    @Test("every renderer groups the variants, names the best and gives the paired test")
    func renderers() throws {
        let m = VariantRun.make()
        let report = Report.build(from: m)
        let terminal = try TerminalRenderer().render(report)
        #expect(terminal.contains("Prompt variants (* best; the best is tested against the runner-up):\n  wording\n"))
        let lines = terminal.split(separator: "\n").map(String.init)
        let best = try #require(lines.first { $0.hasPrefix("    * short  ") })
        #expect(best.contains("80.0% [") && best.contains("200 / 200"))
        #expect(lines.contains { $0.hasPrefix("      long   ") && $0.contains("70.0% [") && $0.contains("400 / 400") })
        #expect(terminal.contains("Best variant of wording: wording/short; against the runner-up wording/long: +10.0 points"))

        let markdown = try MarkdownRenderer().render(report)
        #expect(markdown.contains("## Prompt variants\n") && markdown.contains("### wording\n"))
        #expect(markdown.contains("| **short** (best) | 80.0% ["))
        #expect(markdown.contains("| long | 70.0% [") && markdown.contains("| clue | 60.0% ["))
        #expect(markdown.contains("exact McNemar p = 0.00195, n = 100: the best really beats the next"))

        let html = try HTMLRenderer(measurements: m).render(report)
        #expect(html.contains("<a href=\"#variants\">Prompt variants</a>"))
        #expect(html.contains("<section id=\"variants\"") && html.contains("<span class=\"badge\">best variant</span>"))
        #expect(html.contains("Best variant of wording: wording/short"))
        try HTMLStructure.checkBalanced(html)

        let json = try JSONRenderer().render(report)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let groups = try #require(object["variant_groups"] as? [[String: Any]])
        #expect(groups.first?["best"] as? String == "wording/short" && groups.first?["runner_up"] as? String == "wording/long")
        #expect((groups.first?["paired_test"] as? [String: Any])?["only_first_correct"] as? Int == 10)
        let rows = try #require(object["strategies"] as? [[String: Any]])
        #expect(rows[1]["group"] as? String == "wording" && rows[1]["variant"] as? String == "short" && rows[0]["group"] == nil)
        #expect(try JSONRenderer.decode(Data(json.utf8)).variantGroups == report.variantGroups)
    }

    @Test("self-consistency: samples and the mean agreement are reported, in the notes and the page")
    func selfConsistency() throws {
        // 5 samples; agreement 1.0 on even questions, 0.6 on odd ones: mean 0.8.
        let sampled = VariantRun.strategy("cot-sc", correct: 90, prompt: 500, latency: 2.5, samples: 5) { $0 % 2 == 0 ? 1.0 : 0.6 }
        let m = VariantRun.make(extra: [sampled])
        let report = Report.build(from: m)
        let row = try #require(report.strategy(named: "cot-sc"))
        #expect(row.selfConsistency?.samples == 5)
        #expect(abs((row.selfConsistency?.agreement ?? 0) - 0.8) < 1e-12)
        #expect(report.strategy(named: "zero-shot")?.selfConsistency == nil)
        let note = try #require(report.notes.first { $0.contains("self-consistency") })
        #expect(note.contains("cot-sc samples 5 answers per question") && note.contains("80.0% of the samples agree") && note.contains("count all 5 calls"))
        #expect(try HTMLRenderer(measurements: m).render(report).contains("5 samples; agreement 80.0%"))
        let json = try JSONRenderer().render(report)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let rows = try #require(object["strategies"] as? [[String: Any]])
        let reported = try #require(rows.last?["self_consistency"] as? [String: Any])
        #expect(reported["samples"] as? Int == 5 && abs((reported["agreement"] as? Double ?? 0) - 0.8) < 1e-12)
    }
}

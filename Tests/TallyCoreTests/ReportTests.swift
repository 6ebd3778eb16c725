import Foundation
import Testing
import TallyTesting
@testable import TallyCore

/// Golden-file tests: the sample run rendered to Markdown and JSON must match the files in
/// Resources/golden. After an intended change, regenerate them with
/// `TALLY_UPDATE_GOLDEN=1 swift test --filter ReportTests` and review the diff.
@Suite struct ReportTests {
    func golden(_ name: String, _ actual: String) throws {
        if ProcessInfo.processInfo.environment["TALLY_UPDATE_GOLDEN"] == "1" {
            let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appending(path: "Resources/golden/\(name)")
            try actual.write(to: source, atomically: true, encoding: .utf8)
            return
        }
        let url = try #require(Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Resources/golden"), "missing golden file \(name)")
        let expected = try String(contentsOf: url, encoding: .utf8)
        #expect(actual == expected, "\(name) differs from the golden file; if the change is intended, regenerate with TALLY_UPDATE_GOLDEN=1")
    }

    @Test("a refusal probe the base model seldom refuses is called out in the notes")
    func rarelyRefusingBaseModel() throws {
        let sample = SampleMeasurements.make()
        #expect(!Report.build(from: sample).notes.contains { $0.contains("rarely refuses") })  // 9 of 10 refused
        let seldom = sample.baseProbes.map { p in
            p.kind == .refusal ? ProbeMeasurement(probe: p.probe, kind: p.kind, subject: p.subject, scores: (0..<32).map { $0 < 2 ? 1 : 0 }) : p
        }
        let m = RunMeasurements(
            runID: sample.runID, recipeName: sample.recipeName, recipePath: sample.recipePath, startedAt: sample.startedAt,
            finishedAt: sample.finishedAt, costs: sample.costs, constraints: sample.constraints, metric: sample.metric, seed: sample.seed,
            bootstrapSamples: sample.bootstrapSamples, strategies: sample.strategies, baseProbes: seldom)
        let note = try #require(Report.build(from: m).notes.first { $0.contains("rarely refuses") })
        #expect(note.contains("2 of the 32 requests of probe 'refusals' (6.2%)") && note.contains("(local)"))
    }

    @Test func markdownMatchesGolden() throws {
        try golden("sample-report.md", MarkdownRenderer().render(Report.build(from: SampleMeasurements.make())))
    }

    @Test func jsonMatchesGolden() throws {
        try golden("sample-report.json", JSONRenderer().render(Report.build(from: SampleMeasurements.make())))
    }

    @Test func terminalMatchesGolden() throws {
        try golden("sample-report.txt", TerminalRenderer().render(Report.build(from: SampleMeasurements.make())))
    }

    @Test func reportHasTheNumbersOfTheSampleRun() throws {
        let report = Report.build(from: SampleMeasurements.make())
        let zero = try #require(report.strategy(named: "zero-shot"))
        // 26 of 40 correct (every third wrong); 7 wrong answers named no label.
        #expect(zero.accuracy.value == 0.65)
        #expect(zero.accuracy.n == 40)
        #expect(zero.accuracy.unparsed == 7)
        #expect(zero.accuracy.ciLow < 0.65 && zero.accuracy.ciHigh > 0.65)
        #expect(abs(zero.cost.per1kRequestsUSD - 0.0102) < 1e-12)
        #expect(abs(try #require(zero.latencyMs.p50) - 397.5) < 1e-9)
        // Prompting: forgetting zero by construction, one entry per probe of its backend.
        #expect(zero.forgetting.count == 1)
        #expect(zero.forgetting.allSatisfy { $0.byConstruction && $0.drop == 0 })

        let lora = try #require(report.strategy(named: "lora-r8"))
        let knowledge = try #require(lora.forgetting.first { $0.probe == "knowledge" })
        #expect(knowledge.base == 0.8 && knowledge.adapted == 0.75)
        #expect(abs(try #require(knowledge.drop) - 0.05) < 1e-12)
        let refusals = try #require(lora.forgetting.first { $0.probe == "refusals" })
        #expect(abs(try #require(refusals.drop) - 0.1) < 1e-12)
        #expect(abs(lora.cost.oneOffUSD - 0.05) < 1e-12)
        #expect(lora.training?.trainLoss.count == 5)

        // zero-shot is cheapest and meets min_accuracy 0.6; lora-r8 is the runner-up and
        // is significantly better: b = 2, c = 12, exact McNemar p = 2 x 106 / 16384.
        #expect(report.decision.recommended == "zero-shot")
        #expect(report.decision.ranking == ["zero-shot", "lora-r8", "few-shot-4"])
        #expect(report.decision.pareto == ["zero-shot", "lora-r8"])
        let test = try #require(report.decision.significance)
        #expect(test.onlyFirstCorrect == 2 && test.onlySecondCorrect == 12)
        #expect(abs(test.pValue - 212.0 / 16384.0) < 1e-12)
        #expect(report.decision.breakEven.count == 3)
    }

    @Test func jsonRoundTripsAndHasTheRequiredFields() throws {
        let text = try JSONRenderer().render(Report.build(from: SampleMeasurements.make()))
        let decoded = try JSONRenderer.decode(Data(text.utf8))
        #expect(decoded.decision.recommended == "zero-shot")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(object["schema_version"] as? Int == Report.currentSchemaVersion)
        let strategies = try #require(object["strategies"] as? [[String: Any]])
        for strategy in strategies {
            for key in ["name", "kind", "backend", "accuracy", "cost", "latency_ms", "forgetting", "data_leaves_machine"] {
                #expect(strategy[key] != nil, "strategy missing \(key)")
            }
            let accuracy = try #require(strategy["accuracy"] as? [String: Any])
            #expect(Set(accuracy.keys) == ["value", "ci_low", "ci_high", "n", "unparsed"])
            let cost = try #require(strategy["cost"] as? [String: Any])
            for key in ["one_off_usd", "per_1k_requests_usd", "total_usd"] { #expect(cost[key] is Double, "cost missing \(key)") }
            let latency = try #require(strategy["latency_ms"] as? [String: Any])
            #expect(latency["p50"] != nil && latency["p95"] != nil)
            for entry in try #require(strategy["forgetting"] as? [[String: Any]]) {
                for key in ["probe", "base", "adapted", "drop", "ci_low", "ci_high"] { #expect(entry[key] != nil, "forgetting missing \(key)") }
            }
        }
        let decision = try #require(object["decision"] as? [String: Any])
        for key in ["recommended", "reason", "pareto", "break_even"] { #expect(decision[key] != nil, "decision missing \(key)") }
    }

    @Test func noFeasibleStrategyRendersNone() throws {
        let report = Report.build(from: SampleMeasurements.make(constraints: Constraints(minAccuracy: 0.99)))
        #expect(report.decision.recommended == nil)
        let text = try TerminalRenderer().render(report)
        #expect(text.contains("Recommended: none"))
        #expect(text.contains("No strategy meets the constraints."))
    }
}

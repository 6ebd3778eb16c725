import Foundation
import Testing
import TallyTesting
@testable import TallyCore

/// `tally compare`'s model: what changed between two runs, and by how much.
@Suite struct HTMLReportComparisonTests {
    @Test func sameRunShowsNoChange() throws {
        let report = Report.build(from: SampleMeasurements.make())
        let comparison = RunComparison(before: report, after: report)
        #expect(comparison.settingChanges.isEmpty)
        #expect(comparison.decisionSummary == "Recommendation unchanged: zero-shot.")
        #expect(comparison.rows.map(\.name) == ["zero-shot", "few-shot-4", "lora-r8"])
        for row in comparison.rows {
            #expect(row.accuracyDelta == 0)
            let test = try #require(row.paired)
            #expect(test.n == 40 && test.pValue == 1 && !test.significant)
        }
    }

    @Test func trafficChangeFlipsTheRecommendationAndIsReported() throws {
        // min_accuracy 0.85 leaves only lora-r8 feasible in the second run.
        let before = Report.build(from: SampleMeasurements.make())
        let after = Report.build(from: SampleMeasurements.make(constraints: Constraints(minAccuracy: 0.85, maxForgetting: 0.2, budgetUSD: 20), requestsPerMonth: 1_000_000))
        let comparison = RunComparison(before: before, after: after)
        #expect(comparison.decisionSummary == "Recommendation changed: zero-shot -> lora-r8.")
        #expect(comparison.settingChanges.contains("requests/month: 100,000 -> 1.0M"))
        #expect(comparison.settingChanges.contains("min_accuracy: 60.0% -> 85.0%"))
        let zero = try #require(comparison.rows.first { $0.name == "zero-shot" })
        // Ten times the traffic: per-request cost x 10 (no one-off cost), i.e. +900%.
        #expect(comparison.relative(zero.before?.cost.totalUSD, zero.after?.cost.totalUSD) == "+900%")
        let text = comparison.text()
        #expect(text.contains("Recommendation changed: zero-shot -> lora-r8."))
        #expect(text.contains("+900%"))
    }

    @Test func strategiesMissingFromOneRunAreMarkedAbsent() throws {
        let full = SampleMeasurements.make()
        let fewer = RunMeasurements(
            runID: "fewer", recipeName: full.recipeName, recipePath: full.recipePath, startedAt: full.startedAt,
            finishedAt: full.finishedAt, costs: full.costs, constraints: full.constraints, metric: full.metric,
            seed: full.seed, bootstrapSamples: 200, strategies: Array(full.strategies.prefix(2)), baseProbes: full.baseProbes)
        let comparison = RunComparison(before: Report.build(from: full), after: Report.build(from: fewer))
        let lora = try #require(comparison.rows.first { $0.name == "lora-r8" })
        #expect(lora.after == nil && lora.paired == nil && lora.accuracyDelta == nil)
        #expect(comparison.text().contains("-> (absent)"))
        let html = comparison.html()
        #expect(html.contains("absent"))
        #expect(!html.contains("http://") && !html.contains("https://"))
        #expect(html.matches(of: /<svg role="img"/).count == 2)
        try HTMLStructure.checkBalanced(html)
    }
}

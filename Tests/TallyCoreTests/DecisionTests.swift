import Foundation
import Testing
@testable import TallyCore

@Suite struct DecisionTests {
    func cost(oneOff: Double, per1k: Double, requests: Double = 600_000) -> StrategyCost {
        StrategyCost(oneOffUSD: oneOff, oneOffBasis: "", per1kRequestsUSD: per1k, totalUSD: oneOff + per1k / 1000 * requests, evaluationUSD: 0, meanPromptTokens: 0, meanCachedPromptTokens: 0, meanCompletionTokens: 0, meanComputeSeconds: 0, gpuEstimate: nil)
    }
    func candidate(_ name: String, _ accuracy: Double, oneOff: Double = 0, per1k: Double, forgetting: Double = 0, p95: Double? = 100) -> DecisionCandidate {
        DecisionCandidate(name: name, accuracy: ConfidenceInterval(value: accuracy, low: accuracy - 0.05, high: accuracy + 0.05), cost: cost(oneOff: oneOff, per1k: per1k), maxForgetting: forgetting, latencyP95Ms: p95)
    }
    let costs = CostSpec(computeUSDPerHour: 0.1, requestsPerMonth: 100_000, horizonMonths: 6)

    @Test func constraintsFilterThenCheapestFeasibleWins() {
        let candidates = [
            candidate("cheap-but-weak", 0.70, per1k: 0.001),
            candidate("forgetful", 0.95, oneOff: 1, per1k: 0.002, forgetting: 0.10),
            candidate("slow", 0.90, per1k: 0.003, p95: 5000),
            candidate("ok", 0.85, oneOff: 2, per1k: 0.004),
            candidate("best", 0.90, per1k: 0.020),
        ]
        let decision = DecisionMaker.decide(candidates: candidates, costs: costs, constraints: Constraints(minAccuracy: 0.8, maxForgetting: 0.05, maxLatencyMs: 1000), compare: { _, _ in nil })
        #expect(decision.recommended == "ok")
        #expect(decision.ranking == ["ok", "best"])
        #expect(Set(decision.infeasible.map(\.name)) == ["cheap-but-weak", "forgetful", "slow"])
        let weak = decision.infeasible.first { $0.name == "cheap-but-weak" }
        #expect(weak?.reasons == ["accuracy 70.0% is below min_accuracy 80.0%"])
        #expect(decision.reason.hasPrefix("ok is the cheapest strategy that meets every constraint"))
        // The cheaper strategies that were ruled out say which constraint would let them win.
        #expect(decision.wouldFlip.contains { $0.contains("cheap-but-weak would win") && $0.contains("min_accuracy were at most 70.0%") })
        #expect(decision.wouldFlip.contains { $0.contains("forgetful") && $0.contains("max_forgetting were at least 0.1") })
    }

    @Test func budgetRulesOutExpensiveTraining() {
        let decision = DecisionMaker.decide(
            candidates: [candidate("tuned", 0.9, oneOff: 50, per1k: 0.001), candidate("prompted", 0.8, per1k: 0.5)],
            costs: costs, constraints: Constraints(budgetUSD: 20), compare: { _, _ in nil })
        #expect(decision.recommended == "prompted")
        #expect(decision.infeasible.first?.reasons == ["one-off cost $50.00 exceeds budget_usd $20.00"])
    }

    @Test func paretoFrontDropsDominatedStrategies() {
        let front = DecisionMaker.pareto([
            candidate("a", 0.6, per1k: 1.0 / 600),   // $1
            candidate("b", 0.8, per1k: 2.0 / 600),   // $2
            candidate("c", 0.7, per1k: 3.0 / 600),   // $3: b is better and cheaper
            candidate("d", 0.8, per1k: 2.0 / 600),   // ties with b: neither dominates
        ])
        #expect(front == ["a", "b", "d"])
    }

    @Test func trafficVolumeAndPriceThatFlipTheChoice() throws {
        // prompted: 0 once, $0.021 per 1k -> $12.60; tuned: $0.10 once, $0.013889 per 1k -> $8.43.
        let decision = DecisionMaker.decide(
            candidates: [candidate("prompted", 0.85, per1k: 0.021), candidate("tuned", 0.85, oneOff: 0.10, per1k: 0.5 * 0.10 / 3600 * 1000)],
            costs: costs, constraints: Constraints(), compare: { _, _ in nil })
        #expect(decision.recommended == "tuned")
        let traffic = try #require(decision.wouldFlip.first)
        #expect(traffic == "Traffic: prompted becomes cheaper than tuned below 2,344 requests/month (now 100,000).")
        // prompted wins if tuned's per-request cost rises by (12.60 - 0.10) / 8.333 = 1.50x.
        #expect(decision.wouldFlip.contains { $0.hasPrefix("Price: prompted wins if tuned's per-request cost rises 1.50x") })
        #expect(decision.breakEven.count == 1)
    }

    @Test func saysWhenTopTwoAreNotSignificantlyDifferent() {
        let tie = PairedComparison(first: "x", second: "y", n: 50, method: "mcnemar-exact", difference: ConfidenceInterval(value: 0.02, low: -0.06, high: 0.1), pValue: 0.69, significant: false, onlyFirstCorrect: 4, onlySecondCorrect: 3)
        let decision = DecisionMaker.decide(
            candidates: [candidate("x", 0.82, per1k: 0.01), candidate("y", 0.80, per1k: 0.02)],
            costs: costs, constraints: Constraints(minAccuracy: 0.5), compare: { a, b in a == "x" && b == "y" ? tie : nil })
        #expect(decision.recommended == "x")
        #expect(decision.significance == tie)
        #expect(decision.reason.contains("not significantly different in accuracy from the runner-up y (exact McNemar p = 0.69, n = 50)"))
    }

    @Test func unevaluatedStrategiesAreNeverChosen() {
        let free = DecisionCandidate(name: "stopped", accuracy: ConfidenceInterval(value: 0, low: 0, high: 0), cost: cost(oneOff: 0, per1k: 0), maxForgetting: 0, latencyP95Ms: nil, evaluated: 0)
        let decision = DecisionMaker.decide(candidates: [free, candidate("done", 0.7, per1k: 0.01)], costs: costs, constraints: Constraints(), compare: { _, _ in nil })
        #expect(decision.recommended == "done")
        #expect(decision.pareto == ["done"])
        #expect(decision.infeasible.first?.reasons.first?.hasPrefix("not evaluated") == true)
    }

    @Test func noFeasibleStrategyRecommendsNone() {
        let decision = DecisionMaker.decide(
            candidates: [candidate("a", 0.5, per1k: 0.01), candidate("b", 0.6, per1k: 0.02)],
            costs: costs, constraints: Constraints(minAccuracy: 0.9), compare: { _, _ in nil })
        #expect(decision.recommended == nil)
        #expect(decision.ranking.isEmpty)
        #expect(decision.reason.hasPrefix("No strategy meets the constraints. The most accurate, b (60.0%), fails: accuracy 60.0% is below min_accuracy 90.0%."))
        #expect(decision.wouldFlip.contains("Constraints: b would qualify if min_accuracy were at most 60.0%."))
    }
}

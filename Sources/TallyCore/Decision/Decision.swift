import Foundation

/// What the decision needs to know about one strategy.
public struct DecisionCandidate: Sendable, Hashable {
    public let name: String
    public let accuracy: ConfidenceInterval
    public let cost: StrategyCost
    /// The largest forgetting drop over all probes (0 for prompting strategies).
    public let maxForgetting: Double
    /// 95th percentile latency in milliseconds, when measured.
    public let latencyP95Ms: Double?
    /// Test examples scored; a strategy with none (the run stopped first) cannot be chosen.
    public let evaluated: Int
    /// Seeds the figures are the mean over (1 for a strategy run once).
    public let seeds: Int

    public init(name: String, accuracy: ConfidenceInterval, cost: StrategyCost, maxForgetting: Double, latencyP95Ms: Double?, evaluated: Int = 1, seeds: Int = 1) {
        self.name = name
        self.evaluated = evaluated
        self.seeds = seeds
        self.accuracy = accuracy
        self.cost = cost
        self.maxForgetting = maxForgetting
        self.latencyP95Ms = latencyP95Ms
    }
}

/// A strategy the constraints rule out, and why.
public struct InfeasibleStrategy: Codable, Sendable, Hashable {
    public let name: String
    public let reasons: [String]
}

/// The recommendation and everything that explains it.
public struct Decision: Codable, Sendable, Hashable {
    /// The cheapest strategy (total cost over the horizon) that meets every constraint;
    /// nil when none does.
    public let recommended: String?
    /// The choice in plain words.
    public let reason: String
    /// Strategies that meet the constraints, cheapest first.
    public let ranking: [String]
    /// Strategies no other strategy beats on both accuracy and total cost.
    public let pareto: [String]
    public let infeasible: [InfeasibleStrategy]
    /// Break-even monthly volume for every pair of strategies.
    public let breakEven: [BreakEven]
    /// What would change the choice: traffic volumes, prices or constraints.
    public let wouldFlip: [String]
    /// Paired test between the recommended strategy and the runner-up.
    public let significance: PairedComparison?

    enum CodingKeys: String, CodingKey {
        case recommended, reason, ranking, pareto, infeasible, significance
        case breakEven = "break_even"
        case wouldFlip = "would_flip"
    }
}

/// Filters, ranks and explains.
public enum DecisionMaker {
    /// Decides among the candidates.
    ///
    /// 1. Drops candidates that break a constraint (`min_accuracy` on the point estimate,
    ///    `max_forgetting` on the largest probe drop, `max_latency_ms` on p95, `budget_usd`
    ///    on the one-off cost).
    /// 2. Keeps the Pareto front of accuracy against total cost (over all candidates).
    /// 3. Ranks the feasible ones by total cost (ties: higher accuracy first) and recommends
    ///    the first.
    /// 4. Explains the choice, what would flip it (break-even volume, price change, relaxed
    ///    constraint), and whether the runner-up is significantly different.
    /// - Parameters:
    ///   - candidates: one per strategy, in recipe order.
    ///   - costs: the traffic and horizon the totals were computed for.
    ///   - constraints: the recipe's constraints.
    ///   - compare: paired test between two strategies by name (nil when unavailable).
    public static func decide(
        candidates: [DecisionCandidate], costs: CostSpec, constraints: Constraints,
        compare: (String, String) -> PairedComparison?
    ) -> Decision {
        var infeasible: [InfeasibleStrategy] = []
        var feasible: [DecisionCandidate] = []
        for candidate in candidates {
            let reasons = violations(of: candidate, constraints: constraints)
            if reasons.isEmpty { feasible.append(candidate) } else { infeasible.append(InfeasibleStrategy(name: candidate.name, reasons: reasons)) }
        }
        let ranked = feasible.sorted { lhs, rhs in
            if lhs.cost.totalUSD != rhs.cost.totalUSD { return lhs.cost.totalUSD < rhs.cost.totalUSD }
            if lhs.accuracy.value != rhs.accuracy.value { return lhs.accuracy.value > rhs.accuracy.value }
            return lhs.name < rhs.name
        }
        let front = pareto(candidates)

        var pairs: [BreakEven] = []
        for i in candidates.indices {
            for j in candidates.indices where j > i {
                pairs.append(CostModel.breakEven((candidates[i].name, candidates[i].cost), (candidates[j].name, candidates[j].cost), horizonMonths: costs.horizonMonths))
            }
        }

        guard let best = ranked.first else {
            var reason = "No strategy meets the constraints."
            if let closest = candidates.max(by: { $0.accuracy.value < $1.accuracy.value }) {
                reason += " The most accurate, \(closest.name) (\(percent(closest.accuracy.value))), fails: \(infeasible.first { $0.name == closest.name }?.reasons.joined(separator: "; ") ?? "")."
            }
            return Decision(recommended: nil, reason: reason, ranking: [], pareto: front, infeasible: infeasible, breakEven: pairs, wouldFlip: relaxations(infeasible: infeasible, candidates: candidates, constraints: constraints, best: nil), significance: nil)
        }

        var reason = "\(best.name) is the cheapest strategy that meets every constraint: accuracy \(percent(best.accuracy.value)) [\(percent(best.accuracy.low)), \(percent(best.accuracy.high))]"
        if best.seeds > 1 { reason += " (mean of \(best.seeds) seeds)" }
        if let minimum = constraints.minAccuracy { reason += " (minimum \(percent(minimum)))" }
        if best.cost.oneOffUnknown {
            reason += ", \(usd(best.cost.totalUSD)) in total over \(CostModel.format(costs.horizonMonths)) months at \(CostModel.formatVolume(costs.requestsPerMonth)) requests/month plus a training cost that is unknown"
            reason += " (\(usd(best.cost.per1kRequestsUSD)) per 1k requests; add price.training_per_mtok to its backend to count training)."
        } else {
            reason += ", \(usd(best.cost.totalUSD)) in total over \(CostModel.format(costs.horizonMonths)) months at \(CostModel.formatVolume(costs.requestsPerMonth)) requests/month"
            reason += " (\(usd(best.cost.oneOffUSD)) once, \(usd(best.cost.per1kRequestsUSD)) per 1k requests)."
        }
        if constraints.minAccuracy == nil {
            reason += " No min_accuracy is set, so accuracy only breaks ties; set constraints.min_accuracy to rule out weak strategies."
        }
        if let moreAccurate = ranked.dropFirst().filter({ $0.accuracy.value > best.accuracy.value }).max(by: { $0.accuracy.value < $1.accuracy.value }) {
            reason += " \(moreAccurate.name) is more accurate (\(percent(moreAccurate.accuracy.value))) but costs \(usd(moreAccurate.cost.totalUSD))."
        }

        var significance: PairedComparison?
        var flips: [String] = []
        if ranked.count > 1 {
            let runnerUp = ranked[1]
            significance = compare(best.name, runnerUp.name)
            if let test = significance {
                if test.significant {
                    let better = test.difference.value >= 0 ? best.name : runnerUp.name
                    reason += " Its accuracy differs significantly from the runner-up \(runnerUp.name) (\(better) is better; \(describe(test)))."
                } else {
                    reason += " It is not significantly different in accuracy from the runner-up \(runnerUp.name) (\(describe(test))): on this test set the two are statistically tied."
                }
            }
            flips.append(contentsOf: flipConditions(best: best, runnerUp: runnerUp, costs: costs))
        }
        flips.append(contentsOf: relaxations(infeasible: infeasible, candidates: candidates, constraints: constraints, best: best))
        return Decision(recommended: best.name, reason: reason, ranking: ranked.map(\.name), pareto: front, infeasible: infeasible, breakEven: pairs, wouldFlip: flips, significance: significance)
    }

    /// Names of candidates not dominated on (higher accuracy, lower total cost), in input order.
    public static func pareto(_ candidates: [DecisionCandidate]) -> [String] {
        let candidates = candidates.filter { $0.evaluated > 0 }
        return candidates.filter { a in
            !candidates.contains { b in
                b.name != a.name && b.accuracy.value >= a.accuracy.value && b.cost.totalUSD <= a.cost.totalUSD
                    && (b.accuracy.value > a.accuracy.value || b.cost.totalUSD < a.cost.totalUSD)
            }
        }.map(\.name)
    }

    static func violations(of candidate: DecisionCandidate, constraints: Constraints) -> [String] {
        var reasons: [String] = []
        if candidate.evaluated == 0 {
            return ["not evaluated: the run stopped before it answered any test example"]
        }
        if let minimum = constraints.minAccuracy, candidate.accuracy.value < minimum {
            reasons.append("accuracy \(percent(candidate.accuracy.value)) is below min_accuracy \(percent(minimum))")
        }
        if let maximum = constraints.maxForgetting, candidate.maxForgetting > maximum {
            reasons.append("forgetting \(decimal(candidate.maxForgetting)) exceeds max_forgetting \(decimal(maximum))")
        }
        if let maximum = constraints.maxLatencyMs, let p95 = candidate.latencyP95Ms, p95 > maximum {
            reasons.append("p95 latency \(Int(p95.rounded())) ms exceeds max_latency_ms \(Int(maximum.rounded()))")
        }
        if let budget = constraints.budgetUSD, candidate.cost.oneOffUSD > budget {
            reasons.append("one-off cost \(usd(candidate.cost.oneOffUSD)) exceeds budget_usd \(usd(budget))")
        }
        return reasons
    }

    /// Traffic and price changes at which the runner-up would become cheaper than `best`.
    static func flipConditions(best: DecisionCandidate, runnerUp: DecisionCandidate, costs: CostSpec) -> [String] {
        var flips: [String] = []
        let even = CostModel.breakEven((best.name, best.cost), (runnerUp.name, runnerUp.cost), horizonMonths: costs.horizonMonths)
        if let volume = even.requestsPerMonth {
            let direction = volume > costs.requestsPerMonth ? "above" : "below"
            flips.append("Traffic: \(runnerUp.name) becomes cheaper than \(best.name) \(direction) \(CostModel.formatVolume(volume)) requests/month (now \(CostModel.formatVolume(costs.requestsPerMonth))).")
        } else {
            flips.append("Traffic: no volume makes \(runnerUp.name) cheaper than \(best.name); \(even.summary).")
        }
        let requests = costs.requestsPerMonth * costs.horizonMonths
        let bestVariable = best.cost.perRequestUSD * requests
        let runnerVariable = runnerUp.cost.perRequestUSD * requests
        if bestVariable > 0 {
            let factor = (runnerUp.cost.totalUSD - best.cost.oneOffUSD) / bestVariable
            if factor > 1 && factor.isFinite {
                flips.append("Price: \(runnerUp.name) wins if \(best.name)'s per-request cost rises \(String(format: "%.2f", factor))x (to \(usd(best.cost.per1kRequestsUSD * factor)) per 1k requests).")
            }
        }
        if runnerVariable > 0 {
            let factor = (best.cost.totalUSD - runnerUp.cost.oneOffUSD) / runnerVariable
            if factor > 0 && factor < 1 {
                flips.append("Price: \(runnerUp.name) wins if its per-request cost falls to \(String(format: "%.2f", factor))x of today's (\(usd(runnerUp.cost.per1kRequestsUSD * factor)) per 1k requests).")
            }
        }
        return flips
    }

    /// Infeasible strategies that would beat `best` on cost if a constraint were relaxed.
    static func relaxations(infeasible: [InfeasibleStrategy], candidates: [DecisionCandidate], constraints: Constraints, best: DecisionCandidate?) -> [String] {
        var flips: [String] = []
        for entry in infeasible {
            guard let candidate = candidates.first(where: { $0.name == entry.name }), candidate.evaluated > 0 else { continue }
            if let best, candidate.cost.totalUSD >= best.cost.totalUSD { continue }
            var changes: [String] = []
            if let minimum = constraints.minAccuracy, candidate.accuracy.value < minimum {
                changes.append("min_accuracy were at most \(percent(candidate.accuracy.value))")
            }
            if let maximum = constraints.maxForgetting, candidate.maxForgetting > maximum {
                changes.append("max_forgetting were at least \(decimal(candidate.maxForgetting))")
            }
            if let maximum = constraints.maxLatencyMs, let p95 = candidate.latencyP95Ms, p95 > maximum {
                changes.append("max_latency_ms were at least \(Int(p95.rounded(.up)))")
            }
            if let budget = constraints.budgetUSD, candidate.cost.oneOffUSD > budget {
                changes.append("budget_usd were at least \(usd(candidate.cost.oneOffUSD))")
            }
            guard !changes.isEmpty else { continue }
            let verb = best == nil ? "would qualify" : "would win (\(usd(candidate.cost.totalUSD)) in total)"
            flips.append("Constraints: \(candidate.name) \(verb) if \(changes.joined(separator: " and ")).")
        }
        return flips
    }

    static func describe(_ test: PairedComparison) -> String {
        let method = switch test.method {
        case "mcnemar-exact": "exact McNemar"
        case "mcnemar-continuity": "McNemar with continuity correction"
        case "paired-bootstrap-seeds": "paired bootstrap over examples and seeds"
        default: "paired bootstrap"
        }
        return "\(method) p = \(String(format: "%.3g", test.pValue)), n = \(test.n)"
    }

    static func percent(_ value: Double) -> String { String(format: "%.1f%%", value * 100) }
    static func decimal(_ value: Double) -> String { String(format: "%.3g", value) }
    /// Dollars with enough precision for small amounts.
    public static func usd(_ value: Double) -> String {
        if value == 0 { return "$0" }
        if abs(value) >= 100 { return String(format: "$%.0f", value) }
        if abs(value) >= 1 { return String(format: "$%.2f", value) }
        if abs(value) >= 0.01 { return String(format: "$%.3f", value) }
        return String(format: "$%.2g", value)
    }
}

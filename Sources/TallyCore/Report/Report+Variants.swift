import Foundation

/// The variants of one strategy entry (`variants:` in the recipe), compared: which is the
/// most accurate, which comes next, and whether the best really beats the runner-up on this
/// test set (a paired test on the examples both answered).
public struct VariantGroupReport: Codable, Sendable, Hashable {
    /// The entry's name (`StrategySpec.group`).
    public let name: String
    /// Its variants' strategy names (`<name>/<variant>`), in recipe order.
    public let strategies: [String]
    /// The most accurate variant (ties: the cheaper per request, then the first listed); nil
    /// when no variant answered anything.
    public let best: String?
    /// The next one in that order; nil with fewer than two evaluated variants.
    public let runnerUp: String?
    /// Best vs runner-up, paired on the examples both answered.
    public let pairedTest: PairedComparison?

    enum CodingKeys: String, CodingKey {
        case name, strategies, best
        case runnerUp = "runner_up"
        case pairedTest = "paired_test"
    }

    /// One group per entry with variants, in recipe order; empty when there are none.
    /// - Parameters:
    ///   - rows: the report's strategy rows.
    ///   - compare: the report's paired comparison of two strategies by name.
    static func groups(_ rows: [StrategyReport], compare: (String, String) -> PairedComparison?) -> [VariantGroupReport] {
        var order: [String] = []
        var members: [String: [(index: Int, row: StrategyReport)]] = [:]
        for (index, row) in rows.enumerated() {
            guard let group = row.group else { continue }
            if members[group] == nil { order.append(group) }
            members[group, default: []].append((index, row))
        }
        return order.map { name in
            let all = members[name] ?? []
            let ranked = all.filter { $0.row.accuracy.n > 0 }.sorted { a, b in
                if a.row.accuracy.value != b.row.accuracy.value { return a.row.accuracy.value > b.row.accuracy.value }
                if a.row.cost.per1kRequestsUSD != b.row.cost.per1kRequestsUSD { return a.row.cost.per1kRequestsUSD < b.row.cost.per1kRequestsUSD }
                return a.index < b.index
            }.map(\.row.name)
            let best = ranked.first
            let runnerUp = ranked.count > 1 ? ranked[1] : nil
            let test = best.flatMap { best in runnerUp.flatMap { compare(best, $0) } }
            return VariantGroupReport(name: name, strategies: all.map(\.row.name), best: best, runnerUp: runnerUp, pairedTest: test)
        }
    }

    /// One sentence on the best variant against the runner-up, for every renderer.
    public var verdict: String {
        guard let best else { return "No variant of \(name) was evaluated." }
        guard let runnerUp else { return "\(best) is the only evaluated variant of \(name)." }
        guard let test = pairedTest, test.n > 0 else {
            return "Best variant of \(name): \(best); it shares no test example with the runner-up, \(runnerUp), so they cannot be compared."
        }
        let points = { (value: Double) in String(format: "%+.1f", value * 100) }
        let difference = "\(points(test.difference.value)) points [\(points(test.difference.low)), \(points(test.difference.high))]"
        let outcome = test.significant
            ? "the best really beats the next (significant at the 5% level)"
            : "not significantly better: on this test set the best cannot be told apart from the next"
        return "Best variant of \(name): \(best); against the runner-up \(runnerUp): \(difference), \(DecisionMaker.describe(test)): \(outcome)."
    }
}

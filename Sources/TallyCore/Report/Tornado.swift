import Foundation

/// One-at-a-time sensitivity of the recommendation: how the recommended strategy's cost
/// advantage over its rival moves when each cost input alone goes from a low to a high
/// value, and where along the way the recommendation changes. Drawn as a tornado chart.
///
/// Every point reruns the cost model (`CostModel.cost`) and the decision
/// (`DecisionMaker.decide`, constraints included); nothing here re-derives a cost formula.
public struct Tornado: Sendable, Hashable {
    /// A cost input of the recipe.
    public enum Input: String, Sendable, Hashable, CaseIterable {
        /// `costs.requests_per_month`.
        case requestsPerMonth = "requests_per_month"
        /// `costs.horizon_months`.
        case horizonMonths = "horizon_months"
        /// Every per-million-token price of every backend, as one factor (1 = as measured).
        case tokenPrices = "token_prices"
        /// `costs.compute_usd_per_hour`.
        case computePrice = "compute_usd_per_hour"

        /// The input in words.
        public var label: String {
            switch self {
            case .requestsPerMonth: "Monthly requests"
            case .horizonMonths: "Horizon"
            case .tokenPrices: "Token prices"
            case .computePrice: "Compute price"
            }
        }

        /// A value of this input for prose and tick labels: `12k/month`, `24 months`,
        /// `x1.37`, `$0.073/h`.
        public func format(_ value: Double) -> String {
            switch self {
            case .requestsPerMonth: TickFormat.volume(value) + "/month"
            case .horizonMonths: TickFormat.compact(value) + (value == 1 ? " month" : " months")
            case .tokenPrices: "x" + TickFormat.compact(value)
            case .computePrice: "$" + TickFormat.compact(value) + "/h"
            }
        }
    }

    /// A change of the recommendation on the way from the recipe's value to one end.
    public struct Flip: Sendable, Hashable {
        /// The input value where the recommendation changes (bisected to 1e-6 relative).
        public let value: Double
        /// The advantage there (0 when the change is to the rival by cost).
        public let advantage: Double
        /// The recommendation beyond `value`; nil when no strategy qualifies there.
        public let to: String?
    }

    /// One input's bar.
    public struct Bar: Sendable, Hashable {
        public let input: Input
        /// The recipe's value (for token prices: 1).
        public let base: Double
        /// The input's value at the low and the high end.
        public let low: Double
        public let high: Double
        /// Rival's total minus the recommended strategy's total, at each end.
        public let advantageAtLow: Double
        public let advantageAtHigh: Double
        /// The recommendation at each end.
        public let winnerAtLow: String?
        public let winnerAtHigh: String?
        /// The first change of recommendation from the recipe's value towards each end.
        public let flipBelow: Flip?
        public let flipAbove: Flip?

        /// How far the advantage moves over the range: the bar's length.
        public var width: Double { abs(advantageAtHigh - advantageAtLow) }
        /// The changes of recommendation, low side first.
        public var flips: [Flip] { [flipBelow, flipAbove].compactMap { $0 } }
    }

    /// The recommended strategy.
    public let recommended: String
    /// What it is compared with: the runner-up, or the cheapest other evaluated strategy
    /// when no other strategy meets the constraints.
    public let rival: String
    /// True when `rival` is the runner-up of the decision.
    public let rivalIsRunnerUp: Bool
    /// Rival's total minus the recommended strategy's total at the recipe's inputs.
    public let baseAdvantage: Double
    /// Inputs that move the advantage or the recommendation, widest bar first.
    public let bars: [Bar]
    /// Inputs that were varied but changed neither.
    public let unaffected: [Input]
    /// Inputs that could not be varied, with the reason.
    public let skipped: [Skipped]

    /// An input left out, and why.
    public struct Skipped: Sendable, Hashable {
        public let input: Input
        /// Why, in words that follow the input's name ("needs the run's measurements").
        public let reason: String
    }

    /// Every bar's flips, as `(input, flip)`, widest bar first.
    public var flips: [(input: Input, flip: Flip)] { bars.flatMap { bar in bar.flips.map { (bar.input, $0) } } }
}

extension Sensitivity {
    /// Default ranges, as factors of the recipe's value: traffic /10 to x10, horizon /4
    /// to x4, token prices x0.5 to x2, compute price x0.5 to x4.
    public static let tornadoRanges: [Tornado.Input: ClosedRange<Double>] = [
        .requestsPerMonth: 0.1...10, .horizonMonths: 0.25...4, .tokenPrices: 0.5...2, .computePrice: 0.5...4,
    ]

    /// The one-at-a-time sensitivity of the report's recommendation.
    ///
    /// Each input moves alone over its range (factors of the recipe's value); at both ends
    /// the cost model gives the recommended strategy's and its rival's totals, and the
    /// decision is rerun along the way (24 log-spaced steps per side, then bisection) to
    /// find where the recommendation first changes. Token prices and the compute price
    /// need the run's measurements; without them only traffic and horizon vary.
    ///
    /// ```swift
    /// if let tornado = Sensitivity.tornado(report: report, measurements: measurements) {
    ///     for (input, flip) in tornado.flips { print(input.label, input.format(flip.value), flip.to ?? "none") }
    /// }
    /// ```
    /// - Parameters:
    ///   - report: the report (its decision names the recommended strategy and runner-up).
    ///   - measurements: the run's raw measurements, for the price inputs.
    ///   - ranges: factor ranges per input (default `tornadoRanges`); inputs missing here
    ///     are not varied.
    /// - Returns: nil when nothing is recommended or there is no other evaluated strategy.
    public static func tornado(report: Report, measurements: RunMeasurements?, ranges: [Tornado.Input: ClosedRange<Double>] = tornadoRanges) -> Tornado? {
        guard let recommended = report.decision.recommended,
              let best = report.strategies.firstIndex(where: { $0.name == recommended })
        else { return nil }
        let measured = measuredByName(measurements)
        let base = CostScenario(report: report)
        let baseCosts = costs(report: report, measured: measured, scenario: base)
        let runnerUp = report.decision.ranking.dropFirst().first
        let others = report.strategies.indices.filter { report.strategies[$0].name != recommended && report.strategies[$0].accuracy.n > 0 }
        guard let rival = others.first(where: { report.strategies[$0].name == runnerUp })
                ?? others.min(by: { baseCosts[$0].totalUSD < baseCosts[$1].totalUSD })
        else { return nil }

        func advantage(_ totals: [StrategyCost]) -> Double { totals[rival].totalUSD - totals[best].totalUSD }
        func evaluate(_ input: Tornado.Input, _ value: Double) -> (advantage: Double, winner: String?) {
            let scenario = base.with(input, value)
            let totals = costs(report: report, measured: measured, scenario: scenario)
            return (advantage(totals), decide(report: report, costs: totals, spec: scenario.spec(report.costs)).recommended)
        }

        var bars: [Tornado.Bar] = [], unaffected: [Tornado.Input] = [], skipped: [Tornado.Skipped] = []
        let baseAdvantage = advantage(baseCosts)
        let baseWinner = decide(report: report, costs: baseCosts, spec: base.spec(report.costs)).recommended
        for input in Tornado.Input.allCases {
            guard let range = ranges[input] else { continue }
            if (input == .tokenPrices || input == .computePrice) && measurements == nil {
                skipped.append(Tornado.Skipped(input: input, reason: "needs the run's measurements"))
                continue
            }
            let center = base.value(of: input)
            guard center > 0, range.lowerBound > 0 else {
                skipped.append(Tornado.Skipped(input: input, reason: "is 0 in the recipe, so it cannot be scaled"))
                continue
            }
            let low = center * range.lowerBound, high = center * range.upperBound
            let atLow = evaluate(input, low), atHigh = evaluate(input, high)
            let below = firstFlip(from: center, to: low, winner: baseWinner) { evaluate(input, $0) }
            let above = firstFlip(from: center, to: high, winner: baseWinner) { evaluate(input, $0) }
            let bar = Tornado.Bar(
                input: input, base: center, low: low, high: high, advantageAtLow: atLow.advantage, advantageAtHigh: atHigh.advantage,
                winnerAtLow: atLow.winner, winnerAtHigh: atHigh.winner, flipBelow: below, flipAbove: above)
            let tolerance = 1e-9 * max(1, abs(baseAdvantage))
            if bar.width <= tolerance && below == nil && above == nil { unaffected.append(input) } else { bars.append(bar) }
        }
        // Widest first; a bar that flips the choice outranks an equally wide one that does not.
        bars.sort { a, b in a.width != b.width ? a.width > b.width : a.flips.count > b.flips.count }
        return Tornado(
            recommended: recommended, rival: report.strategies[rival].name, rivalIsRunnerUp: report.strategies[rival].name == runnerUp,
            baseAdvantage: baseAdvantage, bars: bars, unaffected: unaffected, skipped: skipped)
    }

    /// The first value between `start` and `end` (log-spaced steps, then bisection) where
    /// the recommendation differs from `winner`; nil when it never does.
    static func firstFlip(from start: Double, to end: Double, winner: String?, steps: Int = 24, evaluate: (Double) -> (advantage: Double, winner: String?)) -> Tornado.Flip? {
        let path = logSpaced(from: start, to: end, count: steps + 1)
        var previous = start
        for value in path.dropFirst() {
            guard evaluate(value).winner != winner else {
                previous = value
                continue
            }
            // Bisect (in log space) between the last value with the old winner and this one.
            var same = previous, changed = value
            while abs(log(changed / same)) > 1e-6 {
                let middle = (same * changed).squareRoot()
                if evaluate(middle).winner == winner { same = middle } else { changed = middle }
            }
            let at = evaluate(changed)
            return Tornado.Flip(value: changed, advantage: at.advantage, to: at.winner)
        }
        return nil
    }
}

extension CostScenario {
    func value(of input: Tornado.Input) -> Double {
        switch input {
        case .requestsPerMonth: requestsPerMonth
        case .horizonMonths: horizonMonths
        case .tokenPrices: tokenPriceFactor
        case .computePrice: computeUSDPerHour
        }
    }

    /// This scenario with `input` set to `value`.
    func with(_ input: Tornado.Input, _ value: Double) -> CostScenario {
        var copy = self
        switch input {
        case .requestsPerMonth: copy.requestsPerMonth = value
        case .horizonMonths: copy.horizonMonths = value
        case .tokenPrices: copy.tokenPriceFactor = value
        case .computePrice: copy.computeUSDPerHour = value
        }
        return copy
    }
}

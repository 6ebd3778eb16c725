import Foundation

/// Which strategy the decision would recommend over a grid of traffic volumes and token
/// price multipliers: the "region map" of a report.
///
/// Every cell reruns the real cost model (`CostModel.cost`, `CostModel.total`) and the real
/// decision (`DecisionMaker.decide`, constraints included) with the changed inputs; nothing
/// here re-derives a cost formula.
public struct SensitivityMap: Codable, Sendable, Hashable {
    /// Requests per month of each column (ascending, log-spaced).
    public let volumes: [Double]
    /// Token price multipliers of each row (ascending, log-spaced; 1 = the recipe's prices).
    /// A single row `[1]` when only the traffic was varied.
    public let multipliers: [Double]
    /// `winners[row][column]`: the recommended strategy, nil when none meets the constraints.
    public let winners: [[String?]]
    /// The recipe's own traffic (where the report's numbers were computed).
    public let currentVolume: Double
    /// Strategies in report order (for stable colours).
    public let strategies: [String]
    /// False when the run's raw measurements were unavailable, so only traffic varies.
    public let pricesVaried: Bool

    enum CodingKeys: String, CodingKey {
        case volumes, multipliers, winners, strategies
        case currentVolume = "current_volume"
        case pricesVaried = "prices_varied"
    }

    /// The winner at the recipe's traffic and prices (the cell nearest to them).
    public var currentWinner: String? {
        guard let row = multipliers.indices.min(by: { abs(log(multipliers[$0])) < abs(log(multipliers[$1])) }),
              let column = volumes.indices.min(by: { abs(log(volumes[$0] / currentVolume)) < abs(log(volumes[$1] / currentVolume)) })
        else { return nil }
        return winners[row][column]
    }

    /// Share of grid cells each strategy wins (`"none"` for cells where nothing qualifies).
    public var shares: [(name: String, share: Double)] {
        var counts: [String: Int] = [:]
        var total = 0
        for row in winners {
            for cell in row {
                counts[cell ?? "none", default: 0] += 1
                total += 1
            }
        }
        let order = strategies + ["none"]
        return order.compactMap { name in counts[name].map { (name, Double($0) / Double(max(total, 1))) } }
    }
}

/// Computes a `SensitivityMap`.
public enum Sensitivity {
    /// Which strategy wins as monthly traffic and token prices vary.
    ///
    /// Token prices are every per-million-token price of a strategy's backend (input,
    /// cached input, output, fine-tuned and training prices) multiplied by the row's
    /// factor; compute dollars per hour and provider-billed training stay as measured.
    /// Accuracy, forgetting and latency come from the report; the constraints still apply
    /// (a higher training price can push a strategy over `budget_usd`).
    ///
    /// ```swift
    /// let map = Sensitivity.map(report: report, measurements: measurements)
    /// print(map.currentWinner ?? "none")
    /// ```
    /// - Parameters:
    ///   - report: the report (accuracy, forgetting, latency, costs and constraints).
    ///   - measurements: the run's raw measurements; without them only traffic varies.
    ///   - volumes: requests/month columns; default: 41 log-spaced values spanning two
    ///     decades either side of the recipe's traffic and every break-even point.
    ///   - multipliers: token price rows; default: 25 log-spaced values from 0.1x to 10x.
    public static func map(report: Report, measurements: RunMeasurements?, volumes: [Double]? = nil, multipliers: [Double]? = nil) -> SensitivityMap {
        let columns = volumes ?? defaultVolumes(report: report)
        let pricesVaried = measurements != nil
        let rows = pricesVaried ? (multipliers ?? logSpaced(from: 0.1, to: 10, count: 25)) : [1]
        // A strategy run once per seed has one measurement per seed: its cost is their mean.
        let byName = Dictionary(grouping: measurements?.strategies ?? [], by: \.name)

        var winners: [[String?]] = []
        for multiplier in rows {
            // Costs at this price level, computed once; totals per volume below.
            let priced: [(report: StrategyReport, cost: StrategyCost)] = report.strategies.map { row in
                guard let repetitions = byName[row.name], !repetitions.isEmpty else { return (row, row.cost) }
                let scaled = repetitions.map { measured in
                    StrategyMeasurement(
                        name: measured.name, kind: measured.kind, backend: measured.backend, model: measured.model,
                        dataLeavesMachine: measured.dataLeavesMachine, adaptsWeights: measured.adaptsWeights,
                        pricing: scale(measured.pricing, by: multiplier), predictions: measured.predictions,
                        training: measured.training, probes: measured.probes, seed: measured.seed)
                }
                return (row, CostModel.cost(ofRepetitions: scaled, costs: report.costs))
            }
            var line: [String?] = []
            for volume in columns {
                let costs = CostSpec(
                    computeUSDPerHour: report.costs.computeUSDPerHour, requestsPerMonth: volume,
                    horizonMonths: report.costs.horizonMonths, gpuUSDPerHour: report.costs.gpuUSDPerHour)
                let candidates = priced.map { entry in
                    DecisionCandidate(
                        name: entry.report.name,
                        accuracy: ConfidenceInterval(value: entry.report.accuracy.value, low: entry.report.accuracy.ciLow, high: entry.report.accuracy.ciHigh),
                        cost: atVolume(entry.cost, volume: volume, horizonMonths: costs.horizonMonths),
                        maxForgetting: entry.report.maxForgetting, latencyP95Ms: entry.report.latencyMs.p95)
                }
                let usable = candidates.filter { candidate in report.strategy(named: candidate.name).map { $0.accuracy.n > 0 } ?? false }
                let decision = DecisionMaker.decide(candidates: usable, costs: costs, constraints: report.constraints, compare: { _, _ in nil })
                line.append(decision.recommended)
            }
            winners.append(line)
        }
        return SensitivityMap(
            volumes: columns, multipliers: rows, winners: winners, currentVolume: report.costs.requestsPerMonth,
            strategies: report.strategies.map(\.name), pricesVaried: pricesVaried)
    }

    /// The volume range a report's charts span: two decades either side of the recipe's
    /// traffic, widened to include every break-even volume.
    public static func volumeRange(report: Report) -> (low: Double, high: Double) {
        let current = max(report.costs.requestsPerMonth, 1)
        var low = current / 100, high = current * 100
        for pair in report.decision.breakEven {
            if let volume = pair.requestsPerMonth, volume.isFinite, volume > 0 {
                low = min(low, volume / 3)
                high = max(high, volume * 3)
            }
        }
        low = max(1, pow(10, floor(log10(low))))
        high = max(low * 10, pow(10, ceil(log10(high))))
        return (low, high)
    }

    static func defaultVolumes(report: Report) -> [Double] {
        let range = volumeRange(report: report)
        return logSpaced(from: range.low, to: range.high, count: 41)
    }

    /// `count` values from `low` to `high`, evenly spaced on a log scale.
    static func logSpaced(from low: Double, to high: Double, count: Int) -> [Double] {
        guard count > 1 else { return [low] }
        let a = log10(low), b = log10(high)
        return (0..<count).map { i in pow(10, a + (b - a) * Double(i) / Double(count - 1)) }
    }

    /// Every per-million-token price multiplied by `factor`.
    static func scale(_ price: Pricing, by factor: Double) -> Pricing {
        Pricing(
            inputPerMTok: price.inputPerMTok * factor, outputPerMTok: price.outputPerMTok * factor,
            cachedInputPerMTok: price.cachedInputPerMTok.map { $0 * factor },
            fineTunedInputPerMTok: price.fineTunedInputPerMTok.map { $0 * factor },
            fineTunedOutputPerMTok: price.fineTunedOutputPerMTok.map { $0 * factor },
            trainingPerMTok: price.trainingPerMTok.map { $0 * factor })
    }

    /// `cost` with its total recomputed by the cost model for another traffic volume.
    static func atVolume(_ cost: StrategyCost, volume: Double, horizonMonths: Double) -> StrategyCost {
        StrategyCost(
            oneOffUSD: cost.oneOffUSD, oneOffBasis: cost.oneOffBasis, oneOffUnknown: cost.oneOffUnknown, per1kRequestsUSD: cost.per1kRequestsUSD,
            totalUSD: CostModel.total(cost, requestsPerMonth: volume, horizonMonths: horizonMonths),
            evaluationUSD: cost.evaluationUSD, meanPromptTokens: cost.meanPromptTokens,
            meanCachedPromptTokens: cost.meanCachedPromptTokens, meanCompletionTokens: cost.meanCompletionTokens,
            meanComputeSeconds: cost.meanComputeSeconds, gpuEstimate: cost.gpuEstimate)
    }
}

import Foundation

/// Which strategy the decision would recommend over a grid of traffic volumes and price
/// multipliers: the "region map" of a report.
///
/// Every cell reruns the real cost model (`CostModel.cost`, `CostModel.total`) and the real
/// decision (`DecisionMaker.decide`, constraints included) with the changed inputs; nothing
/// here re-derives a cost formula.
public struct SensitivityMap: Codable, Sendable, Hashable {
    /// Which price the map's vertical axis multiplies.
    public enum PriceAxis: String, Codable, Sendable, Hashable {
        /// Every per-million-token price of every backend (input, cached, output,
        /// fine-tuned and training prices).
        case tokenPrices = "token_prices"
        /// The recipe's `costs.compute_usd_per_hour` (local inference and training time).
        case computePrice = "compute_price"
        /// No price: only traffic varies (the run's measurements were not at hand, or no
        /// price is set).
        case trafficOnly = "traffic_only"
    }

    /// Requests per month of each column (ascending, log-spaced).
    public let volumes: [Double]
    /// Price multipliers of each row (ascending, log-spaced; 1 = the recipe's prices).
    /// A single row `[1]` when only the traffic was varied, or when no row differed.
    public let multipliers: [Double]
    /// `winners[row][column]`: the recommended strategy, nil when none meets the constraints.
    public let winners: [[String?]]
    /// The recipe's own traffic (where the report's numbers were computed).
    public let currentVolume: Double
    /// Strategies in report order (for stable colours).
    public let strategies: [String]
    /// The price the rows multiply.
    public let axis: PriceAxis
    /// The multipliers that were tried along `axis`, lowest and highest (1...1 when none).
    public let axisRange: ClosedRange<Double>
    /// True when prices were varied but no row differed from the others, so the rows were
    /// merged into the single row at the recipe's prices.
    public let flatAlongAxis: Bool

    enum CodingKeys: String, CodingKey {
        case volumes, multipliers, winners, strategies, axis
        case currentVolume = "current_volume"
        case axisRange = "axis_range"
        case flatAlongAxis = "flat_along_axis"
    }

    /// False when only traffic varies (no measurements, or no price to scale).
    public var pricesVaried: Bool { axis != .trafficOnly }

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

/// Computes a `SensitivityMap` (and, in `Tornado.swift`, a `Tornado`).
public enum Sensitivity {
    /// Which strategy wins as monthly traffic and a price vary.
    ///
    /// The price axis is chosen by `axis`, or automatically: token prices when any strategy
    /// has one, else the compute price (an all-local recipe, where only
    /// `compute_usd_per_hour` prices anything). Token prices are every per-million-token
    /// price of a strategy's backend multiplied by the row's factor, with compute dollars
    /// per hour and provider-billed training as measured; the compute price multiplies
    /// `compute_usd_per_hour` (measured inference seconds and training wall time), with
    /// token prices as measured. Accuracy, forgetting and latency come from the report;
    /// the constraints still apply (a higher training price can push a strategy over
    /// `budget_usd`). When no row differs from the others, they are merged into one.
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
    ///   - multipliers: price rows; default: 25 log-spaced values from 0.1x to 10x.
    ///   - axis: the price to vary; nil chooses as described above.
    public static func map(report: Report, measurements: RunMeasurements?, volumes: [Double]? = nil, multipliers: [Double]? = nil, axis: SensitivityMap.PriceAxis? = nil) -> SensitivityMap {
        let columns = volumes ?? defaultVolumes(report: report)
        let measured = measuredByName(measurements)
        let axis: SensitivityMap.PriceAxis = measurements == nil ? .trafficOnly : (axis ?? defaultAxis(report: report, measured: measured))
        let rows = axis == .trafficOnly ? [1] : (multipliers ?? logSpaced(from: 0.1, to: 10, count: 25))

        var winners: [[String?]] = []
        for multiplier in rows {
            var scenario = CostScenario(report: report)
            switch axis {
            case .tokenPrices: scenario.tokenPriceFactor = multiplier
            case .computePrice: scenario.computeUSDPerHour *= multiplier
            case .trafficOnly: break
            }
            // Costs at this price level, computed once; totals per volume below.
            let priced = costs(report: report, measured: measured, scenario: scenario)
            var line: [String?] = []
            for volume in columns {
                var atTraffic = scenario
                atTraffic.requestsPerMonth = volume
                let totals = priced.map { atVolume($0, volume: volume, horizonMonths: scenario.horizonMonths) }
                line.append(decide(report: report, costs: totals, spec: atTraffic.spec(report.costs)).recommended)
            }
            winners.append(line)
        }
        let range = (rows.min() ?? 1)...(rows.max() ?? 1)
        var flat = false
        if rows.count > 1, winners.allSatisfy({ $0 == winners[0] }) {
            // Nothing changes along the price axis: one row says it all.
            flat = true
            let at1 = rows.indices.min { abs(log(rows[$0])) < abs(log(rows[$1])) } ?? 0
            winners = [winners[at1]]
        }
        return SensitivityMap(
            volumes: columns, multipliers: flat ? [1] : rows, winners: winners, currentVolume: report.costs.requestsPerMonth,
            strategies: report.strategies.map(\.name), axis: axis, axisRange: range, flatAlongAxis: flat)
    }

    /// Token prices when any measured strategy has a non-zero one; else the compute price
    /// when it is set; else nothing.
    static func defaultAxis(report: Report, measured: [String: [StrategyMeasurement]]) -> SensitivityMap.PriceAxis {
        if measured.values.joined().contains(where: { hasTokenPrice($0.pricing) }) { return .tokenPrices }
        return report.costs.computeUSDPerHour > 0 ? .computePrice : .trafficOnly
    }

    /// Whether any per-million-token price is above zero.
    static func hasTokenPrice(_ price: Pricing) -> Bool {
        let all = [price.inputPerMTok, price.outputPerMTok] + [price.cachedInputPerMTok, price.fineTunedInputPerMTok, price.fineTunedOutputPerMTok, price.trainingPerMTok].compactMap { $0 }
        return all.contains { $0 > 0 }
    }

    /// The run's measurements by strategy name (empty without measurements): one per seed
    /// for a strategy run once per seed, else one.
    static func measuredByName(_ measurements: RunMeasurements?) -> [String: [StrategyMeasurement]] {
        Dictionary(grouping: measurements?.strategies ?? [], by: \.name)
    }

    /// Every strategy's cost (in report order) under `scenario`, from the cost model. A
    /// strategy without measurements keeps its reported per-request and one-off cost, with
    /// the total recomputed for the scenario's traffic and horizon.
    static func costs(report: Report, measured: [String: [StrategyMeasurement]], scenario: CostScenario) -> [StrategyCost] {
        let spec = scenario.spec(report.costs)
        return report.strategies.map { row in
            guard let runs = measured[row.name], !runs.isEmpty else {
                return atVolume(row.cost, volume: spec.requestsPerMonth, horizonMonths: spec.horizonMonths)
            }
            // A strategy run once per seed costs the mean over its seeds.
            let scaled = runs.map { m in
                StrategyMeasurement(
                    name: m.name, kind: m.kind, backend: m.backend, model: m.model,
                    dataLeavesMachine: m.dataLeavesMachine, adaptsWeights: m.adaptsWeights, usesLanguageModel: m.usesLanguageModel, trainingMethod: m.trainingMethod,
                    pricing: scenario.tokenPriceFactor == 1 ? m.pricing : scale(m.pricing, by: scenario.tokenPriceFactor),
                    predictions: m.predictions, training: m.training, probes: m.probes, seed: m.seed, group: m.group, variant: m.variant)
            }
            return CostModel.cost(ofRepetitions: scaled, costs: spec)
        }
    }

    /// The decision with `costs` (one per report row, in order) in place of the reported
    /// ones: accuracy, forgetting, latency and the constraints as in the report; strategies
    /// that answered nothing are left out.
    static func decide(report: Report, costs: [StrategyCost], spec: CostSpec) -> Decision {
        var candidates: [DecisionCandidate] = []
        for (row, cost) in zip(report.strategies, costs) where row.accuracy.n > 0 {
            candidates.append(DecisionCandidate(
                name: row.name,
                accuracy: ConfidenceInterval(value: row.accuracy.value, low: row.accuracy.ciLow, high: row.accuracy.ciHigh),
                cost: cost, maxForgetting: row.maxForgetting, latencyP95Ms: row.latencyMs.p95, evaluated: row.accuracy.n, seeds: row.seeds?.runs.count ?? 1))
        }
        return DecisionMaker.decide(candidates: candidates, costs: spec, constraints: report.constraints, compare: { _, _ in nil })
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

/// The recipe's cost inputs with some of them changed: one point of a sensitivity analysis.
struct CostScenario: Sendable, Hashable {
    var requestsPerMonth: Double
    var horizonMonths: Double
    /// Factor on every per-million-token price (1 = as measured).
    var tokenPriceFactor: Double = 1
    var computeUSDPerHour: Double

    /// The recipe's own inputs.
    init(report: Report) {
        requestsPerMonth = report.costs.requestsPerMonth
        horizonMonths = report.costs.horizonMonths
        computeUSDPerHour = report.costs.computeUSDPerHour
    }

    /// The recipe's `costs` with this scenario's values.
    func spec(_ base: CostSpec) -> CostSpec {
        CostSpec(computeUSDPerHour: computeUSDPerHour, requestsPerMonth: requestsPerMonth, horizonMonths: horizonMonths, gpuUSDPerHour: base.gpuUSDPerHour, labelUSDPerExample: base.labelUSDPerExample, labelledExamples: base.labelledExamples)
    }
}

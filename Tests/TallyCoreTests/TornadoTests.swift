import Foundation
import Testing
import TallyTesting
@testable import TallyCore

/// The tornado: one cost input at a time, through the cost model and the decision.
///
/// The sample run's costs, worked out by hand from `SampleMeasurements` (not through the
/// cost model): zero-shot answers with 60 prompt + 2 completion tokens at $0.15 / $0.60 per
/// million, so 1.02e-5 USD per request; few-shot-4 with 260 + 2 tokens, 4.02e-5 USD; lora-r8
/// computes 0.5 s per request and trained for 1800 s, both at `compute_usd_per_hour`.
@Suite struct TornadoTests {
    static let zeroShotPerRequest = (60 * 0.15 + 2 * 0.60) / 1e6
    static func loraPerRequest(_ usdPerHour: Double) -> Double { 0.5 * usdPerHour / 3600 }
    static func loraOnce(_ usdPerHour: Double) -> Double { 1800 * usdPerHour / 3600 }

    /// `measurements` with other cost inputs.
    static func with(_ m: RunMeasurements, costs: CostSpec, strategies: [StrategyMeasurement]? = nil) -> RunMeasurements {
        RunMeasurements(
            runID: m.runID, recipeName: m.recipeName, recipePath: m.recipePath, startedAt: m.startedAt, finishedAt: m.finishedAt,
            costs: costs, constraints: m.constraints, metric: m.metric, seed: m.seed, bootstrapSamples: m.bootstrapSamples,
            strategies: strategies ?? m.strategies, baseProbes: m.baseProbes)
    }

    static func bar(_ tornado: Tornado, _ input: Tornado.Input) throws -> Tornado.Bar {
        try #require(tornado.bars.first { $0.input == input }, "no bar for \(input)")
    }

    static func close(_ a: Double, _ b: Double, relative: Double = 1e-6) -> Bool {
        abs(a - b) <= relative * max(abs(a), abs(b), 1e-12)
    }

    @Test func doublingTheTrafficFlipsTheDecision() throws {
        // At $0.05/h lora-r8 costs 6.944e-6 USD per request (less than zero-shot's 1.02e-5)
        // plus $0.025 once. Over 6 months the two break even at
        // 0.025 / ((1.02e-5 - 6.944e-6) x 6) = 1,280 requests/month: at the recipe's 1,000
        // zero-shot wins, at 2,000 lora-r8 does.
        let price = 0.05
        let base = SampleMeasurements.make(requestsPerMonth: 1000)
        let measurements = Self.with(base, costs: CostSpec(computeUSDPerHour: price, requestsPerMonth: 1000, horizonMonths: 6, gpuUSDPerHour: 4))
        let report = Report.build(from: measurements)
        #expect(report.decision.recommended == "zero-shot")
        #expect(report.decision.ranking.dropFirst().first == "lora-r8")
        let doubled = Report.build(from: Self.with(base, costs: CostSpec(computeUSDPerHour: price, requestsPerMonth: 2000, horizonMonths: 6, gpuUSDPerHour: 4)))
        #expect(doubled.decision.recommended == "lora-r8")

        let tornado = try #require(Sensitivity.tornado(report: report, measurements: measurements))
        #expect(tornado.recommended == "zero-shot" && tornado.rival == "lora-r8" && tornado.rivalIsRunnerUp)
        let traffic = try Self.bar(tornado, .requestsPerMonth)
        #expect(Self.close(traffic.low, 100) && Self.close(traffic.high, 10_000) && traffic.base == 1000)
        // lora-r8's total minus zero-shot's at 100 and at 10,000 requests/month (x 6 months).
        let margin = { (volume: Double) in Self.loraOnce(price) + (Self.loraPerRequest(price) - Self.zeroShotPerRequest) * volume * 6 }
        #expect(Self.close(traffic.advantageAtLow, margin(100)))        // +$0.0230
        #expect(Self.close(traffic.advantageAtHigh, margin(10_000)))    // -$0.170
        #expect(Self.close(tornado.baseAdvantage, margin(1000)))
        #expect(traffic.winnerAtLow == "zero-shot" && traffic.winnerAtHigh == "lora-r8")
        #expect(traffic.flipBelow == nil)
        let flip = try #require(traffic.flipAbove)
        let breakEven = Self.loraOnce(price) / ((Self.zeroShotPerRequest - Self.loraPerRequest(price)) * 6)
        #expect(abs(breakEven - 1279.9) < 0.1)
        #expect(Self.close(flip.value, breakEven, relative: 1e-5))
        #expect(flip.to == "lora-r8")
        #expect(abs(flip.advantage) < 1e-6, "the flip to the rival is where the two cost the same")
        // The flip is where the cost model's own break-even puts it.
        let pair = try #require(report.decision.breakEven.first { Set([$0.first, $0.second]) == ["zero-shot", "lora-r8"] })
        #expect(Self.close(flip.value, try #require(pair.requestsPerMonth), relative: 1e-5))
    }

    @Test func samplePricesFlipTheChoiceAndBarsAreSortedByWidth() throws {
        let measurements = SampleMeasurements.make()
        let report = Report.build(from: measurements)
        let tornado = try #require(Sensitivity.tornado(report: report, measurements: measurements))
        #expect(tornado.recommended == "zero-shot" && tornado.rival == "lora-r8")
        // Advantage (lora-r8's total minus zero-shot's) over 600,000 requests at $0.10/h:
        // 0.05 + 600,000 x (1.389e-5 - 1.02e-5) = $2.263.
        let requests = 600_000.0
        func margin(tokens: Double = 1, usdPerHour: Double = 0.10, requests: Double = 600_000) -> Double {
            Self.loraOnce(usdPerHour) + (Self.loraPerRequest(usdPerHour) - Self.zeroShotPerRequest * tokens) * requests
        }
        #expect(Self.close(tornado.baseAdvantage, margin()))
        // Widths: compute x0.5..x4 29.3, traffic /10..x10 21.9, tokens x0.5..x2 9.18, horizon /4..x4 8.30.
        #expect(tornado.bars.map(\.input) == [.computePrice, .requestsPerMonth, .tokenPrices, .horizonMonths])
        #expect(zip(tornado.bars, tornado.bars.dropFirst()).allSatisfy { $0.width >= $1.width })
        #expect(tornado.unaffected.isEmpty && tornado.skipped.isEmpty)

        let tokens = try Self.bar(tornado, .tokenPrices)
        #expect(Self.close(tokens.advantageAtLow, margin(tokens: 0.5)) && Self.close(tokens.advantageAtHigh, margin(tokens: 2)))
        // lora-r8 wins once zero-shot's tokens cost more than lora-r8 per request:
        // x = (1.389e-5 + 0.05 / 600,000) / 1.02e-5 = 1.3698.
        let tokenFlip = try #require(tokens.flipAbove)
        #expect(Self.close(tokenFlip.value, (Self.loraPerRequest(0.10) + Self.loraOnce(0.10) / requests) / Self.zeroShotPerRequest, relative: 1e-5))
        #expect(tokenFlip.to == "lora-r8" && tokens.flipBelow == nil && tokens.winnerAtHigh == "lora-r8")

        let compute = try Self.bar(tornado, .computePrice)
        #expect(Self.close(compute.advantageAtLow, margin(usdPerHour: 0.05)) && Self.close(compute.advantageAtHigh, margin(usdPerHour: 0.40)))
        // Cheaper compute makes lora-r8 win below 1.02e-5 / (0.5 / 3600 + 0.5 / 600,000) = $0.0730/h.
        let computeFlip = try #require(compute.flipBelow)
        #expect(Self.close(computeFlip.value, Self.zeroShotPerRequest / (0.5 / 3600 + 0.5 / requests), relative: 1e-5))
        #expect(computeFlip.to == "lora-r8" && compute.flipAbove == nil)

        // Traffic and horizon scale both totals' variable parts: lora-r8 stays dearer per request.
        let traffic = try Self.bar(tornado, .requestsPerMonth)
        #expect(Self.close(traffic.advantageAtLow, margin(requests: 60_000)) && Self.close(traffic.advantageAtHigh, margin(requests: 6_000_000)))
        #expect(traffic.flips.isEmpty)
        let horizon = try Self.bar(tornado, .horizonMonths)
        #expect(Self.close(horizon.low, 1.5) && Self.close(horizon.high, 24))
        #expect(Self.close(horizon.advantageAtHigh, margin(requests: 2_400_000)) && horizon.flips.isEmpty)
        #expect(tornado.flips.map(\.input) == [.computePrice, .tokenPrices])
    }

    @Test func withoutMeasurementsOnlyTrafficAndHorizonVary() throws {
        let measurements = SampleMeasurements.make()
        let report = Report.build(from: measurements)
        let tornado = try #require(Sensitivity.tornado(report: report, measurements: nil))
        #expect(tornado.bars.map(\.input) == [.requestsPerMonth, .horizonMonths])
        #expect(tornado.skipped.map(\.input) == [.tokenPrices, .computePrice])
        let full = try #require(Sensitivity.tornado(report: report, measurements: measurements))
        #expect(Self.close(try Self.bar(tornado, .requestsPerMonth).advantageAtHigh, try Self.bar(full, .requestsPerMonth).advantageAtHigh))
    }

    @Test func ruledOutRivalIsComparedButNeverWins() throws {
        // min_accuracy 0.85 leaves only lora-r8 (90%); zero-shot is the cheapest other one.
        let measurements = SampleMeasurements.make(constraints: Constraints(minAccuracy: 0.85, maxForgetting: 0.2))
        let report = Report.build(from: measurements)
        let tornado = try #require(Sensitivity.tornado(report: report, measurements: measurements))
        #expect(tornado.recommended == "lora-r8" && tornado.rival == "zero-shot" && !tornado.rivalIsRunnerUp)
        #expect(tornado.flips.isEmpty)
        #expect(tornado.baseAdvantage < 0, "zero-shot is cheaper, but ruled out")
        // Nothing recommended: no tornado.
        let none = SampleMeasurements.make(constraints: Constraints(minAccuracy: 0.99))
        #expect(Sensitivity.tornado(report: Report.build(from: none), measurements: none) == nil)
    }

    @Test func chartNamesTheFlipsAndHasATextAlternative() throws {
        let measurements = SampleMeasurements.make()
        let report = Report.build(from: measurements)
        let tornado = try #require(Sensitivity.tornado(report: report, measurements: measurements))
        let chart = try #require(ReportCharts.tornado(report, tornado))
        #expect(chart.id == "tornado")
        #expect(chart.description.contains("compute price at $0.073/h (to lora-r8)"))
        #expect(chart.description.contains("token prices at x1.37 (to lora-r8)"))
        #expect(chart.table.rows.count == 4)
        #expect(chart.table.rows.map { $0[0] } == ["Compute price", "Monthly requests", "Token prices", "Horizon"])
        #expect(chart.table.rows[0][5] == "to lora-r8 at $0.073/h")
        #expect(chart.table.rows[1][5] == "no")
        // One flip diamond per flip (two), drawn in the SVG with its label.
        #expect(chart.body.markup.contains(">lora-r8 at x1.37</text>"))
        #expect(chart.body.markup.contains(">lora-r8 at $0.073/h</text>"))
        try HTMLStructure.checkBalanced(chart.svg(standalone: true))

        let html = try HTMLRenderer(measurements: measurements).render(report)
        #expect(html.contains("<section id=\"tornado\""))
        #expect(html.contains("<svg role=\"img\" aria-labelledby=\"tornado-title tornado-desc\""))
        #expect(html.contains("<caption>lora-r8&#39;s total minus zero-shot&#39;s at each end of each input&#39;s range</caption>"))
        #expect(html.contains("One input at a time, against lora-r8: The recommendation changes with compute price at $0.073/h (to lora-r8); token prices at x1.37 (to lora-r8)."))
        #expect(html.contains("<a href=\"#tornado\">"))

        let markdown = try MarkdownRenderer(chartsDirectory: "charts", measurements: measurements).render(report)
        #expect(markdown.contains("![What moves the choice, one input at a time](charts/tornado.svg)"))
        #expect(markdown.contains("token prices at x1.37 (to lora-r8)"))
    }
}

/// The region map when nothing has a token price: the compute price is the price axis.
@Suite struct SensitivityComputeAxisTests {
    /// The sample with every strategy local: no token prices; prompting computes 0.8 s
    /// (zero-shot) and 2 s (few-shot) per request, lora-r8 0.5 s after 1800 s of training.
    static func allLocal(budget: Double) -> RunMeasurements {
        let base = SampleMeasurements.make(constraints: Constraints(minAccuracy: 0.6, maxForgetting: 0.2, budgetUSD: budget))
        let seconds = ["zero-shot": 0.8, "few-shot-4": 2.0, "lora-r8": 0.5]
        let strategies = base.strategies.map { s in
            StrategyMeasurement(
                name: s.name, kind: s.kind, backend: "local", model: s.model, dataLeavesMachine: false, adaptsWeights: s.adaptsWeights,
                pricing: Pricing(),
                predictions: s.predictions.map { p in
                    Prediction(exampleID: p.exampleID, input: p.input, expected: p.expected, output: p.output, answer: p.answer, score: p.score,
                               usage: p.usage, latencySeconds: p.latencySeconds, computeSeconds: seconds[s.name], cached: p.cached)
                },
                training: s.training, probes: s.probes)
        }
        return TornadoTests.with(base, costs: base.costs, strategies: strategies)
    }

    @Test func computePriceIsTheAxisAndFlatWhenNoConstraintBites() throws {
        // Every cost is compute time x the price, so scaling the price never reorders them:
        // lora-r8's 1800 s of training pays off against zero-shot's extra 0.3 s per request
        // above 1800 / (0.3 x 6) = 1,000 requests/month, whatever the price.
        let measurements = Self.allLocal(budget: 20)
        let report = Report.build(from: measurements)
        let map = Sensitivity.map(report: report, measurements: measurements, volumes: [900, 1100, 100_000])
        #expect(map.axis == .computePrice)
        #expect(map.flatAlongAxis)
        #expect(map.multipliers == [1])
        #expect(TornadoTests.close(map.axisRange.lowerBound, 0.1) && TornadoTests.close(map.axisRange.upperBound, 10))
        #expect(map.winners == [["zero-shot", "lora-r8", "lora-r8"]])
        let chart = try #require(ReportCharts.sensitivityMap(report, map))
        #expect(chart.description.contains("No strategy has a token price, so the vertical axis is the compute price"))
        #expect(chart.description.contains("The compute price changes no winner in that range"))

        // The tornado: token prices change nothing; the compute price scales the advantage
        // in proportion (x4 the price, x4 the advantage) without flipping the choice.
        let tornado = try #require(Sensitivity.tornado(report: report, measurements: measurements))
        #expect(tornado.unaffected == [.tokenPrices])
        let compute = try TornadoTests.bar(tornado, .computePrice)
        #expect(TornadoTests.close(compute.advantageAtHigh, 4 * tornado.baseAdvantage))
        #expect(compute.flips.isEmpty)
    }

    @Test func budgetMakesTheComputePriceMatter() {
        // budget_usd 0.1: lora-r8's training (1800 s) fits up to $0.20/h, i.e. 2x the recipe's
        // price; above that only the prompting strategies qualify.
        let measurements = Self.allLocal(budget: 0.1)
        let report = Report.build(from: measurements)
        let map = Sensitivity.map(report: report, measurements: measurements, volumes: [100_000], multipliers: [1, 1.9, 2.1, 10])
        #expect(map.axis == .computePrice && !map.flatAlongAxis)
        #expect(map.winners == [["lora-r8"], ["lora-r8"], ["zero-shot"], ["zero-shot"]])
        // Asked for token prices explicitly: nothing has one, so every row is alike.
        let tokens = Sensitivity.map(report: report, measurements: measurements, volumes: [100_000], multipliers: [1, 10], axis: .tokenPrices)
        #expect(tokens.axis == .tokenPrices && tokens.flatAlongAxis)
    }
}

import Foundation
@testable import TallyCore
import TallyTesting
import Testing

@Suite("Learning curves")
struct LearningCurveTests {
    static let task = TaskSpec(instruction: "Sentiment?", input: "{text}", target: "label", labels: ["positive", "negative"], metric: "accuracy")

    /// 30 positive and 10 negative rows, mixed.
    static let rows: [Example] = (0..<40).map { i in
        Example(id: "r\(i)", fields: ["text": "row \(i)", "label": i % 4 == 3 ? "negative" : "positive"], location: SourceLocation(file: "train.jsonl", line: i + 1))
    }

    @Test("training sets are nested, balanced while both labels last, and seeded")
    func nestedBalancedSubsets() {
        let order = CurveSubsets.order(of: Self.rows, task: Self.task, seed: 7)
        #expect(order.sorted() == Array(0..<40))
        var previous: Set<String> = []
        for size in [2, 4, 8, 16, 20, 32, 40] {
            let subset = CurveSubsets.subset(of: Self.rows, order: order, size: size)
            let ids = Set(subset.map(\.id))
            #expect(subset.count == size)
            #expect(previous.isSubset(of: ids), "the set of \(size) contains every smaller set")
            // Returned in file order.
            #expect(subset.map(\.id) == Self.rows.filter { ids.contains($0.id) }.map(\.id))
            let negatives = subset.filter { $0["label"] == "negative" }.count
            #expect(negatives == min(size / 2, 10), "size \(size): \(negatives) negatives")
            previous = ids
        }
        #expect(CurveSubsets.order(of: Self.rows, task: Self.task, seed: 7) == order)
        #expect(CurveSubsets.order(of: Self.rows, task: Self.task, seed: 8) != order)
    }

    @Test("the inverse power law is recovered from a noise-free synthetic curve")
    func fitRecoversParameters() throws {
        for (a, b, c) in [(0.9, 0.5, 0.7), (0.8, 0.3, 0.35), (0.95, 1.2, 1.1)] {
            let sizes = [8.0, 16, 32, 64, 128, 256]
            let fit = try #require(PowerLawFit.fit(sizes: sizes, accuracies: sizes.map { a - b * pow($0, -c) }))
            #expect(abs(fit.a - a) < 1e-3 && abs(fit.b - b) < 1e-2 && abs(fit.c - c) < 1e-2, "\(fit)")
            #expect((fit.rSquared ?? 0) > 0.9999)
            let needed = try #require(fit.size(reaching: a - 0.05))
            #expect(abs(needed - pow(b / 0.05, 1 / c)) / needed < 0.02)
        }
        #expect(PowerLawFit.fit(sizes: [16, 32, 64], accuracies: [0.5, 0.6, 0.7]) == nil, "three sizes are too few")
        let flat = try #require(PowerLawFit.fit(sizes: [16, 32, 64, 128], accuracies: [0.7, 0.7, 0.7, 0.7]))
        #expect(flat.rSquared == nil)
        let falling = try #require(PowerLawFit.fit(sizes: [16, 32, 64, 128], accuracies: [0.8, 0.7, 0.6, 0.5]))
        #expect(falling.b == 0, "accuracy that falls gets no rising curve")
        let steep = try #require(PowerLawFit.fit(sizes: [1, 2, 4, 8], accuracies: [0.2, 0.6, 0.9, 1.0]))
        #expect(steep.a <= 1)
    }

    @Test("a nearly flat fit gives no absurd count of examples needed, only that the target is out of reach")
    func flatFitIsNotExtrapolatedFar() throws {
        // The TF-IDF curve of the movie-reviews run: 58.5% at 16 reviews to 61.5% at 256.
        let sizes = [16, 32, 64, 128, 256], values = [0.585, 0.58, 0.595, 0.585, 0.615]
        let fit = try #require(PowerLawFit.fit(sizes: sizes.map(Double.init), accuracies: values))
        let points = zip(sizes, values).map { size, value in
            CurvePointReport(size: size, accuracy: AccuracyReport(value: value, ciLow: value - 0.07, ciHigh: value + 0.07, n: 200, unparsed: 0), runs: 1, oneOffUSD: 0)
        }
        let curve = LearningCurveReport(
            strategy: "tfidf", kind: "baseline", axis: .trainExamples, trains: true, points: points,
            fit: fit, fitNote: nil, band: [], examplesNeeded: nil)
        let needed = curve.examplesNeeded(to: 0.8, resampled: [])
        #expect(needed.status == .notReached && needed.value == nil)
        #expect(needed.summary.contains("too flat"), "\(needed.summary)")
        #expect(!needed.summary.contains("projects"))
    }

    /// Connor's normal approximation computed independently with SciPy:
    /// `norm.cdf((d*sqrt(n) - norm.ppf(0.975)*sqrt(psi)) / sqrt(psi - d*d))` and
    /// `ceil((norm.ppf(0.975)*sqrt(psi) + norm.ppf(0.8)*sqrt(psi - d*d))**2 / d**2)`.
    @Test("power and test examples needed match a reference table", arguments: [
        (0.10, 0.05, 200, 0.446166, 469),
        (0.15, 0.05, 100, 0.611518, 155),
        (0.08, 0.02, 400, 0.969169, 216),
        (0.20, 0.10, 60, 0.289420, 234),
        (0.03, 0.01, 1000, 0.886548, 783),
    ])
    func powerTable(p10: Double, p01: Double, n: Int, power: Double, needed: Int) throws {
        let computed = try #require(PairedPower.power(onlyFirst: p10, onlySecond: p01, n: n))
        #expect(abs(computed - power) < 1e-5)
        #expect(PairedPower.sampleSize(onlyFirst: p10, onlySecond: p01, power: 0.8) == needed)
        #expect(PairedPower.sampleSize(onlyFirst: 0.05, onlySecond: 0.05) == nil)
    }

    @Test("a small test set is called too small, in words")
    func testSetTooSmall() throws {
        let report = Report.build(from: SampleMeasurements.make())
        let size = try #require(report.testSetSize)
        #expect(size.n == 40)
        #expect(size.enough == ((size.power ?? 0) >= 0.8))
        if !size.enough { #expect(size.summary.contains("too small")) }
    }

    /// How often `phrase` occurs in `text`, white space (line wrapping) collapsed.
    static func occurrences(of phrase: String, in text: String) -> Int {
        let flat = text.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        return flat.components(separatedBy: phrase).count - 1
    }

    @Test("the test-set-size verdict is said once in every report format, not again in the notes")
    func testSetVerdictOnce() throws {
        let report = Report.build(from: SampleMeasurements.make())
        let size = try #require(report.testSetSize)
        #expect(!size.enough, "the sample's 40 test examples are too few")
        #expect(!report.notes.contains(size.summary))
        let phrase = "The test set is too small to tell"
        #expect(Self.occurrences(of: phrase, in: try TerminalRenderer().render(report)) == 1)
        #expect(Self.occurrences(of: phrase, in: try MarkdownRenderer().render(report)) == 1)
        #expect(Self.occurrences(of: phrase, in: try HTMLRenderer().render(report)) == 1)
        #expect(Self.occurrences(of: phrase, in: try JSONRenderer().render(report)) == 1)
    }

    @Test("labelling cost enters the one-off cost, the total and the decision")
    func labellingCostFlowsIntoDecision() throws {
        // Few-shot (80%) and LoRA (90%) meet 75%; without labelling costs LoRA is cheaper.
        let m = SampleMeasurements.make(constraints: Constraints(minAccuracy: 0.75))
        func withLabels(_ price: Double) -> RunMeasurements {
            let labelled = m.strategies.map { s in
                StrategyMeasurement(
                    name: s.name, kind: s.kind, backend: s.backend, model: s.model, dataLeavesMachine: s.dataLeavesMachine,
                    adaptsWeights: s.adaptsWeights, pricing: s.pricing, predictions: s.predictions, training: s.training, probes: s.probes,
                    labelledExamples: s.adaptsWeights ? 4000 : (s.kind == "few-shot" ? 4 : 0))
            }
            let costs = CostSpec(computeUSDPerHour: m.costs.computeUSDPerHour, requestsPerMonth: m.costs.requestsPerMonth, horizonMonths: m.costs.horizonMonths, gpuUSDPerHour: m.costs.gpuUSDPerHour, labelUSDPerExample: price, labelledExamples: 400)
            return RunMeasurements(runID: m.runID, recipeName: m.recipeName, recipePath: m.recipePath, startedAt: m.startedAt, finishedAt: m.finishedAt, costs: costs, constraints: m.constraints, metric: m.metric, seed: m.seed, bootstrapSamples: m.bootstrapSamples, strategies: labelled, baseProbes: m.baseProbes)
        }
        let free = Report.build(from: withLabels(0))
        let paid = Report.build(from: withLabels(2))
        let freeLoRA = try #require(free.strategy(named: "lora-r8")), paidLoRA = try #require(paid.strategy(named: "lora-r8"))
        // 4000 needed, 400 already labelled: 3600 labels at $2.
        #expect(abs(paidLoRA.cost.oneOffUSD - freeLoRA.cost.oneOffUSD - 7200) < 1e-6)
        #expect(abs(paidLoRA.cost.totalUSD - freeLoRA.cost.totalUSD - 7200) < 1e-6)
        #expect(paidLoRA.cost.oneOffBasis.contains("3600 labels"))
        // Few-shot's 4 demonstrations are among the 400 already labelled: no labelling cost.
        #expect(paid.strategy(named: "few-shot-4")?.cost.oneOffUSD == free.strategy(named: "few-shot-4")?.cost.oneOffUSD)
        #expect(free.decision.recommended == "lora-r8")
        #expect(paid.decision.recommended == "few-shot-4")
        #expect(paid.decision.breakEven != free.decision.breakEven)
    }

    @Test("curve points are real runs: nested training sets, cached in the ledger, a rerun trains and calls nothing")
    func curvesRunAndRerunFromLedger() async throws {
        let edit: (String) -> String = {
            $0 + "curves:\n  lora-r4: {train_sizes: [2, 3, 4, 6]}\n  few-shot-2: {shots: [0, 1, 2]}\n"
        }
        let setup = try Setup(edit: edit)
        #expect(setup.recipe.curves.map(\.strategy) == ["lora-r4", "few-shot-2"])
        let first = try await setup.run()
        let points = try #require(first.curvePoints)
        #expect(points.map(\.size) == [2, 3, 4, 6, 0, 1, 2])
        #expect(points.allSatisfy { $0.measurement.predictions.count == 6 && $0.measurement.probes.isEmpty })
        #expect(points.prefix(4).map(\.measurement.labelledExamples) == [2, 3, 4, 6])
        // few-shot-2 picks BM25-similar demonstrations, so any training row may be shown: with
        // at least one shot it needs the whole pool (6 rows) labelled.
        #expect(points.suffix(3).map(\.measurement.labelledExamples) == [0, 6, 6])
        // Two strategies fine-tune, and the curve trains at 2, 3 and 4 examples; its set of 6
        // is the whole training split, the job the strategy itself ran, reused from the ledger.
        #expect(setup.log.fineTuneCount == 5)
        let fineTunes = setup.log.fineTuneCount, calls = setup.log.generationCount

        let again = try Setup(edit: edit, log: setup.log, home: setup.home)
        let second = try await again.run()
        #expect(setup.log.fineTuneCount == fineTunes, "a rerun trains nothing")
        #expect(setup.log.generationCount == calls, "a rerun calls no model")
        #expect(second.curvePoints?.allSatisfy { $0.measurement.predictions.allSatisfy(\.cached) } == true)

        let report = Report.build(from: second)
        let curves = try #require(report.learningCurves)
        #expect(curves.map(\.strategy) == ["lora-r4", "few-shot-2"])
        #expect(curves[0].points.map(\.size) == [2, 3, 4, 6] && curves[0].trains)
        #expect(curves[1].fit == nil && curves[1].fitNote?.contains("Too few sizes") == true)
        #expect(curves[0].examplesNeeded != nil, "min_accuracy is set")
        let json = try JSONRenderer().render(report)
        #expect(json.contains("\"learning_curves\"") && json.contains("\"test_set_size\""))
        let markdown = try MarkdownRenderer(chartsDirectory: "charts").render(report)
        #expect(markdown.contains("## Learning curves") && markdown.contains("charts/learning-curves.svg") && markdown.contains("charts/shot-curves.svg"))
        // A curve run's test-set verdict is printed once, in its section.
        let verdict = try #require(report.testSetSize?.summary)
        let terminal = try TerminalRenderer().render(report)
        #expect(terminal.contains("Learning curves"))
        #expect(Self.occurrences(of: verdict, in: terminal) == 1)
        #expect(Self.occurrences(of: verdict, in: markdown) == 1)
    }

    @Test("plan prices every curve point")
    func planPricesCurves() throws {
        let setup = try Setup(edit: { $0 + "curves:\n  lora-r4: {train_sizes: [2, 4]}\n  few-shot-2: {shots: [0, 2]}\n" })
        let plan = try Planner.estimate(recipe: setup.recipe)
        let names = plan.items.map(\.name)
        #expect(names.contains("lora-r4 @ 2 examples") && names.contains("lora-r4 @ 4 examples"))
        #expect(names.contains("few-shot-2 @ 0 shots") && names.contains("few-shot-2 @ 2 shots"))
        let small = try #require(plan.items.first { $0.name == "lora-r4 @ 2 examples" })
        let large = try #require(plan.items.first { $0.name == "lora-r4 @ 4 examples" })
        #expect(small.trainingTokens > 0 && small.trainingTokens < large.trainingTokens)
        let hosted = try #require(plan.items.first { $0.name == "few-shot-2 @ 2 shots" })
        #expect(hosted.estimatedUSD > (plan.items.first { $0.name == "few-shot-2 @ 0 shots" }?.estimatedUSD ?? .infinity))
        #expect(plan.assumptions.contains { $0.contains("learning curves") })
    }

    @Test("curve sections are checked with file:line:column")
    func validation() throws {
        let cases: [(String, String)] = [
            ("curves:\n  lora-r5: {train_sizes: [2, 4]}\n", "did you mean 'lora-r4'"),
            ("curves:\n  zero-shot: {train_sizes: [2, 4]}\n", "needs a strategy that trains"),
            ("curves:\n  lora-r4: {shots: [1, 2]}\n", "needs a strategy that shows demonstrations"),
            ("curves:\n  lora-r4: {train_sizes: [4, 2]}\n", "sizes must increase"),
            ("curves:\n  lora-r4: {train_sizes: [2, 400]}\n", "training split has 6 usable row"),
            ("curves:\n  lora-r4: {train_sizes: [2], shots: [1]}\n", "exactly one of"),
        ]
        for (section, expected) in cases {
            let workspace = try Fixtures.workspace()
            let text = try String(contentsOf: try Fixtures.resource("recipes/sentiment.yaml"), encoding: .utf8)
            try FileManager.default.createDirectory(at: workspace.appendingPathComponent("recipes"), withIntermediateDirectories: true)
            let url = workspace.appendingPathComponent("recipes/sentiment.yaml")
            try (text + section).write(to: url, atomically: true, encoding: .utf8)
            let diagnostics = RecipeLoader.validate(contentsOf: url, registry: Fixtures.registry(), environment: [:])
            let error = try #require(diagnostics.first { $0.severity == .error }, "\(section)")
            #expect(error.message.contains(expected) || (error.fix ?? "").contains(expected), "\(error)")
            #expect(error.location.line != nil && error.location.column != nil)
        }
    }
}

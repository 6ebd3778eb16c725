import Foundation

/// One learning curve of the report: the strategy's accuracy at each measured size with its
/// interval, the fitted inverse power law with a bootstrap band (beyond the largest measured
/// size marked as an extrapolation), and the examples needed to reach `min_accuracy`.
public struct LearningCurveReport: Codable, Sendable, Hashable {
    /// How the curve is fitted, in words (reports say it next to the chart).
    public static let fitMethod = "inverse power law accuracy = a - b * n^(-c) (a <= 1, b >= 0), fitted by least squares to the points' mean accuracies; the band is the 2.5-97.5% range of the curves refitted to bootstrap resamples of the test examples"
    /// Below this share of explained variance the fit is reported as poor (no numbers).
    public static let minRSquared = 0.5
    /// The fitted curve is drawn out to this multiple of the largest measured size.
    public static let extrapolationFactor = 4.0
    /// Beyond this multiple of the largest measured size the fitted curve gives no estimate of
    /// the examples needed: a nearly flat fit would otherwise "project" absurd counts.
    public static let extrapolationLimit = 100.0

    public let strategy: String
    public let kind: String
    /// `train_examples` or `shots`.
    public let axis: CurveSpec.Axis
    /// Whether the strategy fine-tunes (or trains a model of its own) rather than prompts.
    public let trains: Bool
    /// Sizes ascending.
    public let points: [CurvePointReport]
    /// The fit; nil when there are too few sizes, accuracy does not rise, or the fit is poor
    /// (`fitNote` says which).
    public let fit: PowerLawFit?
    /// Why there is no fit, or a caveat about it; nil for a good fit.
    public let fitNote: String?
    /// The fitted curve and its bootstrap band on a grid of sizes from the smallest measured
    /// (above 0) to `extrapolationFactor` x the largest; empty without a fit.
    public let band: [CurveBandPoint]
    /// Examples needed to reach `constraints.min_accuracy`; nil when none is set.
    public let examplesNeeded: ExamplesNeeded?

    enum CodingKeys: String, CodingKey {
        case strategy, kind, axis, trains, points, fit, band
        case fitNote = "fit_note"
        case examplesNeeded = "examples_needed"
    }

    /// "training examples" or "demonstrations".
    public var unit: String { axis == .shots ? "demonstrations" : "training examples" }
    public var largestSize: Int { points.last?.size ?? 0 }
}

/// One measured size of a curve.
public struct CurvePointReport: Codable, Sendable, Hashable {
    public let size: Int
    /// Mean accuracy with its 95% bootstrap interval (over seeds too when repeated).
    public let accuracy: AccuracyReport
    /// Runs at this size (seeds).
    public let runs: Int
    /// Mean training cost of one run at this size (0 for prompting), by the cost model.
    public let oneOffUSD: Double

    enum CodingKeys: String, CodingKey {
        case size, accuracy, runs
        case oneOffUSD = "one_off_usd"
    }
}

/// The fitted accuracy at one size, with its bootstrap band.
public struct CurveBandPoint: Codable, Sendable, Hashable {
    public let size: Double
    public let value: Double
    public let low: Double?
    public let high: Double?
    /// Beyond the largest measured size.
    public let extrapolated: Bool
}

/// How many examples a strategy needs to reach an accuracy.
public struct ExamplesNeeded: Codable, Sendable, Hashable {
    public enum Status: String, Codable, Sendable, Hashable {
        /// The fit reaches it within the measured sizes.
        case withinRange = "within_range"
        /// Already reached at (or below) the smallest measured size.
        case belowRange = "below_range"
        /// The fit reaches it only beyond the largest measured size: an extrapolation.
        case beyondRange = "beyond_range"
        /// Neither the points nor the fitted ceiling reach it.
        case notReached = "not_reached"
        /// No fit: the first measured size whose mean reaches it.
        case measured
    }
    /// The accuracy to reach.
    public let target: Double
    public let status: Status
    /// The estimate (a fitted size, or a measured one); nil when not reached.
    public let value: Double?
    /// 95% bootstrap interval of the fitted size; `high` nil when some resampled curves never
    /// reach the target (no upper bound).
    public let low: Double?
    public let high: Double?
    /// The estimate in words.
    public let summary: String
}

/// Where a fine-tuning strategy's curve overtakes the best prompting strategy.
public struct CurveCrossing: Codable, Sendable, Hashable {
    public let fineTuning: String
    public let prompting: String
    /// The prompting strategy's accuracy (the level to overtake).
    public let promptingAccuracy: Double
    public let examplesNeeded: ExamplesNeeded

    enum CodingKeys: String, CodingKey {
        case prompting
        case fineTuning = "fine_tuning"
        case promptingAccuracy = "prompting_accuracy"
        case examplesNeeded = "examples_needed"
    }

    public var summary: String { "\(fineTuning) overtakes \(prompting) (\(Cells.percent(promptingAccuracy))): \(examplesNeeded.summary)" }
}

extension Report {
    /// The learning curves of a run, in recipe order, each with its bootstrap refits.
    static func learningCurves(_ m: RunMeasurements) -> [(curve: LearningCurveReport, resampled: [PowerLawFit?])] {
        guard let points = m.curvePoints, !points.isEmpty else { return [] }
        var order: [String] = []
        for point in points where !order.contains(point.strategy) { order.append(point.strategy) }
        return order.compactMap { name in
            LearningCurveReport.build(points.filter { $0.strategy == name }, measurements: m)
        }
    }

    /// Crossings of every fine-tuning curve with the most accurate prompting strategy.
    static func crossings(_ curves: [(curve: LearningCurveReport, resampled: [PowerLawFit?])], rows: [StrategyReport]) -> [CurveCrossing] {
        guard let prompting = rows.filter({ $0.usesLanguageModel && !$0.adaptsWeights && $0.accuracy.n > 0 }).max(by: { $0.accuracy.value < $1.accuracy.value }) else { return [] }
        return curves.filter(\.curve.trains).map { entry in
            CurveCrossing(
                fineTuning: entry.curve.strategy, prompting: prompting.name, promptingAccuracy: prompting.accuracy.value,
                examplesNeeded: entry.curve.examplesNeeded(to: prompting.accuracy.value, resampled: entry.resampled))
        }
    }
}

extension Report {
    /// "few-shot now; lora pays off after about N more labels and M requests a month": when
    /// the recommended strategy prompts and a training curve overtakes the best prompting
    /// strategy at a fitted size, what that fine-tune would cost once at that size (training
    /// scaled from its largest measured point, plus the labels beyond those already labelled)
    /// and the monthly volume above which it is then cheaper than the recommendation. Nil
    /// when the curves do not support such a statement.
    static func labelOutlook(crossings: [CurveCrossing], curves: [LearningCurveReport], rows: [StrategyReport], decision: Decision, costs: CostSpec) -> String? {
        guard let recommended = decision.recommended, let now = rows.first(where: { $0.name == recommended }),
              now.usesLanguageModel, !now.adaptsWeights else { return nil }
        for crossing in crossings {
            guard let needed = crossing.examplesNeeded.value, needed > 0,
                  crossing.examplesNeeded.status == .withinRange || crossing.examplesNeeded.status == .beyondRange,
                  let curve = curves.first(where: { $0.strategy == crossing.fineTuning }), let largest = curve.points.last, largest.size > 0,
                  let tuned = rows.first(where: { $0.name == crossing.fineTuning }), !tuned.cost.oneOffUnknown else { continue }
            let examples = Int(needed.rounded(.up))
            let training = max(0, largest.oneOffUSD - costs.labellingUSD(examples: largest.size)) * Double(examples) / Double(largest.size)
            let labels = max(0, examples - costs.labelledExamples)
            let oneOff = training + costs.labellingUSD(examples: examples)
            // Break-even needs only the one-off and per-request costs of the projected fine-tune.
            let future = StrategyCost(
                oneOffUSD: oneOff, oneOffBasis: "projected at \(examples) training examples", per1kRequestsUSD: tuned.cost.per1kRequestsUSD,
                totalUSD: 0, evaluationUSD: 0, meanPromptTokens: tuned.cost.meanPromptTokens, meanCachedPromptTokens: tuned.cost.meanCachedPromptTokens,
                meanCompletionTokens: tuned.cost.meanCompletionTokens, meanComputeSeconds: tuned.cost.meanComputeSeconds, gpuEstimate: nil)
            let even = CostModel.breakEven((recommended, now.cost), (tuned.name, future), horizonMonths: costs.horizonMonths)
            let labelText = labels == 0 ? "with the \(costs.labelledExamples) examples already labelled" : "after about \(CostModel.formatVolume(Double(labels))) more labels (\(DecisionMaker.usd(costs.labellingUSD(examples: examples))) of labelling)"
            let reach = "(its curve reaches \(crossing.prompting)'s \(Cells.percent(crossing.promptingAccuracy)) at about \(CostModel.formatVolume(needed)) training examples\(crossing.examplesNeeded.status == .beyondRange ? ", an extrapolation" : ""))"
            if let volume = even.requestsPerMonth, even.cheaperAbove == tuned.name {
                return "\(recommended) now; \(tuned.name) pays off \(labelText) and above \(CostModel.formatVolume(volume)) requests a month \(reach)."
            }
            if even.requestsPerMonth == nil, even.cheaperBelow == tuned.name {
                return "\(recommended) now; \(tuned.name) pays off \(labelText), at any traffic \(reach)."
            }
            return "\(recommended) now; \(tuned.name) would match the best prompting accuracy \(labelText) \(reach), but would not be cheaper than \(recommended) at any traffic."
        }
        return nil
    }
}

extension LearningCurveReport {
    /// Builds one curve from its points (one strategy, any sizes and seeds).
    static func build(_ points: [CurvePointMeasurement], measurements m: RunMeasurements) -> (curve: LearningCurveReport, resampled: [PowerLawFit?])? {
        guard let first = points.first else { return nil }
        let sizes = Array(Set(points.map(\.size))).sorted()
        var reports: [CurvePointReport] = []
        for size in sizes {
            let runs = points.filter { $0.size == size }.map(\.measurement)
            let rows = runs.map { $0.predictions.map(\.score) }
            let seed = Report.derivedSeed(m.seed, "curve", first.strategy, String(size))
            let ci = runs.count > 1 ? SeedBootstrap.meanInterval(rows, samples: m.bootstrapSamples, seed: seed) : Bootstrap.meanInterval(rows.first ?? [], samples: m.bootstrapSamples, seed: seed)
            let all = runs.flatMap(\.predictions)
            let cost = CostModel.cost(ofRepetitions: runs, costs: m.costs)
            reports.append(CurvePointReport(
                size: size, accuracy: AccuracyReport(value: ci.value, ciLow: ci.low, ciHigh: ci.high, n: all.count, unparsed: all.filter { !$0.parsed }.count),
                runs: runs.count, oneOffUSD: cost.oneOffUSD))
        }
        let measurement = first.measurement
        let trains = measurement.adaptsWeights || !measurement.usesLanguageModel
        var curve = LearningCurveReport(
            strategy: first.strategy, kind: measurement.kind, axis: first.axis, trains: trains, points: reports,
            fit: nil, fitNote: nil, band: [], examplesNeeded: nil)
        let fitted = curve.fitted()
        let resampled = fitted == nil ? [] : Self.resampledFits(points, sizes: sizes, samples: m.bootstrapSamples, seed: Report.derivedSeed(m.seed, "curve fit", first.strategy))
        curve = LearningCurveReport(
            strategy: curve.strategy, kind: curve.kind, axis: curve.axis, trains: trains, points: reports,
            fit: fitted, fitNote: curve.fitProblem(fitted), band: fitted.map { curve.band($0, resampled: resampled) } ?? [],
            examplesNeeded: nil)
        guard let target = m.constraints.minAccuracy else { return (curve, resampled) }
        let withTarget = LearningCurveReport(
            strategy: curve.strategy, kind: curve.kind, axis: curve.axis, trains: trains, points: reports,
            fit: curve.fit, fitNote: curve.fitNote, band: curve.band, examplesNeeded: curve.examplesNeeded(to: target, resampled: resampled))
        return (withTarget, resampled)
    }

    /// The points the curve is fitted to: sizes above 0 (a power law has no value at 0).
    var fittedPoints: [CurvePointReport] { points.filter { $0.size > 0 } }

    /// The fit when it is usable: enough sizes, rising accuracy, R² of at least `minRSquared`.
    func fitted() -> PowerLawFit? {
        guard let fit = PowerLawFit.fit(sizes: fittedPoints.map { Double($0.size) }, accuracies: fittedPoints.map(\.accuracy.value)) else { return nil }
        guard fit.b > 0, let r2 = fit.rSquared, r2 >= Self.minRSquared else { return nil }
        return fit
    }

    /// Why `fit` is nil (or nil when there is one).
    func fitProblem(_ fit: PowerLawFit?) -> String? {
        guard fit == nil else { return nil }
        let count = Set(fittedPoints.map(\.size)).count
        if count < RecipeLoader.minFittedCurveSizes {
            return "Too few sizes to fit a curve: \(count) measured\(axis == .shots ? " above 0" : ""), at least \(RecipeLoader.minFittedCurveSizes) are needed (the curve has three parameters); only the measured points are shown."
        }
        guard let raw = PowerLawFit.fit(sizes: fittedPoints.map { Double($0.size) }, accuracies: fittedPoints.map(\.accuracy.value)) else { return nil }
        if raw.b <= 0 || raw.rSquared == nil {
            return "Accuracy does not rise with the number of \(unit) over the measured sizes, so no saturating curve is fitted; only the measured points are shown."
        }
        return "The inverse power law fits these points poorly (R² = \(String(format: "%.2f", raw.rSquared ?? 0)), below \(String(format: "%.1f", Self.minRSquared))), so no curve or estimate is given; only the measured points are shown."
    }

    /// The curves refitted to bootstrap resamples of the test examples (each resample draws
    /// example indices once for every size, keeping the pairing; seeds are averaged per
    /// example). A resample whose fit fails is nil.
    static func resampledFits(_ points: [CurvePointMeasurement], sizes: [Int], samples: Int, seed: UInt64) -> [PowerLawFit?] {
        let fittedSizes = sizes.filter { $0 > 0 }
        // Per size, per example (by id, in the order of the first run), the mean over seeds.
        guard let reference = points.first?.measurement.predictions.map(\.exampleID), !reference.isEmpty else { return [] }
        var table: [[Double]] = []
        for size in fittedSizes {
            let runs = points.filter { $0.size == size }.map(\.measurement)
            var row: [Double] = []
            for id in reference {
                let scores = runs.compactMap { run in run.predictions.first { $0.exampleID == id }?.score }
                guard !scores.isEmpty else { return [] }
                row.append(Statistics.mean(scores))
            }
            table.append(row)
        }
        var generator = Statistics.SplitMix64(seed: seed)
        let n = reference.count
        let count = min(max(samples, 0), 2000)
        var fits: [PowerLawFit?] = []
        fits.reserveCapacity(count)
        for _ in 0..<count {
            let draw = (0..<n).map { _ in generator.index(below: n) }
            let means = table.map { row in draw.reduce(0) { $0 + row[$1] } / Double(n) }
            let fit = PowerLawFit.fit(sizes: fittedSizes.map(Double.init), accuracies: means)
            fits.append(fit.flatMap { $0.b > 0 ? $0 : nil })
        }
        return fits
    }

    /// The fitted curve on a log-spaced grid out to `extrapolationFactor` x the largest size.
    func band(_ fit: PowerLawFit, resampled: [PowerLawFit?]) -> [CurveBandPoint] {
        guard let smallest = fittedPoints.first?.size, largestSize > 0 else { return [] }
        let low = log(Double(smallest)), high = log(Double(largestSize) * Self.extrapolationFactor)
        let steps = 40
        let valid = resampled.compactMap { $0 }
        return (0...steps).map { step in
            let size = exp(low + (high - low) * Double(step) / Double(steps))
            let values = valid.map { min(1, max(0, $0.predict(size))) }.sorted()
            let enough = values.count >= 20
            return CurveBandPoint(
                size: size, value: min(1, max(0, fit.predict(size))),
                low: enough ? Statistics.quantile(sorted: values, 0.025) : nil, high: enough ? Statistics.quantile(sorted: values, 0.975) : nil,
                extrapolated: size > Double(largestSize) * (1 + 1e-9))
        }
    }

    /// The examples needed to reach `target`, from the fit when there is one (with a
    /// bootstrap interval), else from the measured points.
    func examplesNeeded(to target: Double, resampled: [PowerLawFit?]) -> ExamplesNeeded {
        let smallest = fittedPoints.first?.size ?? points.first?.size ?? 0
        let largest = largestSize
        let what = "\(Cells.percent(target))"
        guard let fit else {
            if let reached = points.first(where: { $0.accuracy.value >= target }) {
                return ExamplesNeeded(target: target, status: .measured, value: Double(reached.size), low: nil, high: nil,
                    summary: "\(what) is first reached at \(reached.size) \(unit) (measured; no fitted curve, so no finer estimate or interval).")
            }
            return ExamplesNeeded(target: target, status: .notReached, value: nil, low: nil, high: nil,
                summary: "\(what) is not reached within the measured range (up to \(largest) \(unit); no fitted curve to extrapolate).")
        }
        let estimates = resampled.map { $0.flatMap { $0.size(reaching: target) } ?? .infinity }.sorted()
        let interval: (Double?, Double?) = estimates.count >= 20
            ? (Statistics.quantile(sorted: estimates, 0.025), Statistics.quantile(sorted: estimates, 0.975))
            : (nil, nil)
        let low = interval.0.flatMap { $0.isFinite ? $0 : nil }
        let high = interval.1.flatMap { $0.isFinite ? $0 : nil }
        let range = Self.intervalText(low: low, high: high, hasInterval: low != nil)
        guard let needed = fit.size(reaching: target) else {
            return ExamplesNeeded(target: target, status: .notReached, value: nil, low: nil, high: nil,
                summary: "\(what) is not reached within the measured range (up to \(largest) \(unit)), and the fitted ceiling (\(Cells.percent(fit.a))) is below it.")
        }
        if needed <= Double(smallest) {
            return ExamplesNeeded(target: target, status: .belowRange, value: needed, low: low, high: high,
                summary: "\(what) is already reached at the smallest measured size (\(smallest) \(unit)).")
        }
        if needed <= Double(largest) {
            return ExamplesNeeded(target: target, status: .withinRange, value: needed, low: low, high: high,
                summary: "\(what) needs about \(Self.count(needed)) \(unit)\(range).")
        }
        if needed > Double(largest) * Self.extrapolationLimit {
            return ExamplesNeeded(target: target, status: .notReached, value: nil, low: nil, high: nil,
                summary: "\(what) is not reached within the measured range (up to \(largest) \(unit)), and the fitted curve is too flat to say when: it gets there only beyond \(Self.count(Double(largest) * Self.extrapolationLimit)) \(unit), over \(Int(Self.extrapolationLimit)) times the largest measured size.")
        }
        return ExamplesNeeded(target: target, status: .beyondRange, value: needed, low: low, high: high,
            summary: "\(what) is not reached within the measured range (up to \(largest) \(unit)); the fitted curve projects about \(Self.count(needed))\(range), an extrapolation.")
    }

    static func count(_ value: Double) -> String { CostModel.formatVolume(value) }

    static func intervalText(low: Double?, high: Double?, hasInterval: Bool) -> String {
        guard hasInterval else { return "" }
        return " [95% interval \(low.map(count) ?? "?") to \(high.map(count) ?? "no upper bound")]"
    }
}

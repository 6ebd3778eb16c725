import Foundation

/// McNemar's test for two classifiers scored on the same examples.
public enum McNemar {
    /// The result of a McNemar test.
    public struct Result: Codable, Sendable, Hashable {
        /// Examples the first strategy got right and the second wrong.
        public let onlyFirstCorrect: Int
        /// Examples the second strategy got right and the first wrong.
        public let onlySecondCorrect: Int
        /// Two-sided p-value.
        public let pValue: Double
        /// `exact` (binomial) or `chi-square with continuity correction`.
        public let method: String

        enum CodingKeys: String, CodingKey {
            case onlyFirstCorrect = "only_first_correct"
            case onlySecondCorrect = "only_second_correct"
            case pValue = "p_value"
            case method
        }
    }

    /// Exact McNemar test: a two-sided binomial test of `b` successes in `b + c` trials with
    /// probability 1/2. `p = min(1, 2 * P(X <= min(b, c)))`.
    /// - Parameters:
    ///   - b: discordant pairs where only the first is correct.
    ///   - c: discordant pairs where only the second is correct.
    public static func exact(b: Int, c: Int) -> Result {
        let n = b + c
        guard n > 0 else { return Result(onlyFirstCorrect: b, onlySecondCorrect: c, pValue: 1, method: "exact") }
        let k = min(b, c)
        // Sum binomial probabilities in log space so large n stays finite.
        var tail = 0.0
        for i in 0...k {
            tail += exp(logChoose(n, i) - Double(n) * log(2.0))
        }
        return Result(onlyFirstCorrect: b, onlySecondCorrect: c, pValue: min(1, 2 * tail), method: "exact")
    }

    /// McNemar's chi-square test with Edwards' continuity correction:
    /// `chi2 = (|b - c| - 1)^2 / (b + c)` with one degree of freedom.
    public static func continuityCorrected(b: Int, c: Int) -> Result {
        let n = b + c
        guard n > 0 else {
            return Result(onlyFirstCorrect: b, onlySecondCorrect: c, pValue: 1, method: "chi-square with continuity correction")
        }
        let diff = max(0, Double(abs(b - c)) - 1)
        let chi2 = diff * diff / Double(n)
        // Survival function of chi-square with 1 df: P(X > x) = erfc(sqrt(x / 2)).
        let p = erfc((chi2 / 2).squareRoot())
        return Result(onlyFirstCorrect: b, onlySecondCorrect: c, pValue: min(1, p), method: "chi-square with continuity correction")
    }

    /// Counts discordant pairs of two binary score lists (a score >= 0.5 counts as correct).
    public static func discordant(_ first: [Double], _ second: [Double]) -> (b: Int, c: Int) {
        var b = 0, c = 0
        for (x, y) in zip(first, second) {
            let xr = x >= 0.5, yr = y >= 0.5
            if xr && !yr { b += 1 }
            if !xr && yr { c += 1 }
        }
        return (b, c)
    }

    static func logChoose(_ n: Int, _ k: Int) -> Double {
        lgamma(Double(n + 1)) - lgamma(Double(k + 1)) - lgamma(Double(n - k + 1))
    }
}

/// Paired bootstrap of the mean difference between two strategies scored on the same examples.
public enum PairedBootstrap {
    /// The result of a paired bootstrap.
    public struct Result: Codable, Sendable, Hashable {
        /// Mean of `first - second` with its percentile interval.
        public let difference: ConfidenceInterval
        /// Two-sided p-value: twice the smaller share of resampled differences on either
        /// side of zero (capped at 1).
        public let pValue: Double
    }

    /// Resamples example indices (the same indices for both strategies) and recomputes the
    /// mean difference.
    /// - Parameters:
    ///   - first: scores of the first strategy, one per example.
    ///   - second: scores of the second strategy on the same examples, in the same order.
    ///   - samples: bootstrap resamples.
    ///   - seed: generator seed.
    public static func test(_ first: [Double], _ second: [Double], samples: Int, seed: UInt64, level: Double = 0.95) -> Result {
        let diffs = zip(first, second).map { $0 - $1 }
        let value = Statistics.mean(diffs)
        guard diffs.count > 1, samples > 0 else {
            return Result(difference: ConfidenceInterval(value: value, low: value, high: value), pValue: 1)
        }
        var generator = Statistics.SplitMix64(seed: seed)
        var means: [Double] = []
        means.reserveCapacity(samples)
        var atOrBelowZero = 0, atOrAboveZero = 0
        for _ in 0..<samples {
            var sum = 0.0
            for _ in 0..<diffs.count { sum += diffs[generator.index(below: diffs.count)] }
            let mean = sum / Double(diffs.count)
            means.append(mean)
            if mean <= 0 { atOrBelowZero += 1 }
            if mean >= 0 { atOrAboveZero += 1 }
        }
        means.sort()
        let alpha = (1 - level) / 2
        let p = min(1, 2 * Double(min(atOrBelowZero, atOrAboveZero)) / Double(samples))
        return Result(
            difference: ConfidenceInterval(
                value: value, low: Statistics.quantile(sorted: means, alpha),
                high: Statistics.quantile(sorted: means, 1 - alpha)),
            pValue: p)
    }
}

/// The paired comparison of two strategies on the examples both answered.
public struct PairedComparison: Codable, Sendable, Hashable {
    public let first: String
    public let second: String
    /// Examples both strategies were scored on.
    public let n: Int
    /// `mcnemar-exact`, `mcnemar-continuity`, `paired-bootstrap`, or
    /// `paired-bootstrap-seeds` when a strategy ran once per seed.
    public let method: String
    /// Mean score difference `first - second` with a paired bootstrap 95% interval.
    public let difference: ConfidenceInterval
    public let pValue: Double
    /// `pValue < 0.05`.
    public let significant: Bool
    /// Discordant counts, for McNemar.
    public let onlyFirstCorrect: Int?
    public let onlySecondCorrect: Int?

    enum CodingKeys: String, CodingKey {
        case first, second, n, method, difference, significant
        case pValue = "p_value"
        case onlyFirstCorrect = "only_first_correct"
        case onlySecondCorrect = "only_second_correct"
    }

    /// Compares two strategies' per-example scores, matched by example id.
    ///
    /// Binary scores (every score 0 or 1) get McNemar's test: exact when there are fewer
    /// than 25 discordant pairs, otherwise chi-square with continuity correction. Other
    /// scores get a paired bootstrap. The difference interval is always a paired bootstrap.
    /// - Parameters:
    ///   - first: `(name, [exampleID: score])` of the first strategy.
    ///   - second: the same for the second strategy.
    ///   - samples: bootstrap resamples.
    ///   - seed: generator seed.
    public static func compare(
        first: (name: String, scores: [(id: String, score: Double)]),
        second: (name: String, scores: [(id: String, score: Double)]),
        samples: Int, seed: UInt64
    ) -> PairedComparison {
        var secondByID: [String: Double] = [:]
        for item in second.scores { secondByID[item.id] = item.score }
        var a: [Double] = [], b: [Double] = []
        for item in first.scores {
            if let other = secondByID[item.id] {
                a.append(item.score)
                b.append(other)
            }
        }
        let bootstrap = PairedBootstrap.test(a, b, samples: samples, seed: seed)
        let binary = (a + b).allSatisfy { $0 == 0 || $0 == 1 }
        if binary {
            let (onlyA, onlyB) = McNemar.discordant(a, b)
            let result = onlyA + onlyB < 25 ? McNemar.exact(b: onlyA, c: onlyB) : McNemar.continuityCorrected(b: onlyA, c: onlyB)
            return PairedComparison(
                first: first.name, second: second.name, n: a.count,
                method: onlyA + onlyB < 25 ? "mcnemar-exact" : "mcnemar-continuity",
                difference: bootstrap.difference, pValue: result.pValue, significant: result.pValue < 0.05,
                onlyFirstCorrect: onlyA, onlySecondCorrect: onlyB)
        }
        return PairedComparison(
            first: first.name, second: second.name, n: a.count, method: "paired-bootstrap",
            difference: bootstrap.difference, pValue: bootstrap.pValue, significant: bootstrap.pValue < 0.05,
            onlyFirstCorrect: nil, onlySecondCorrect: nil)
    }

    /// Compares two strategies when at least one of them ran once per seed: a two-level
    /// paired bootstrap (`SeedBootstrap.pairedTest`) over the examples every run of both
    /// answered, drawing the examples once for both and each strategy's seeds on their own,
    /// so the p-value and the interval account for seed variation as well as the test
    /// sample. With one run each it is `compare(first:second:samples:seed:)`.
    /// - Parameters:
    ///   - first: `(name, runs)`: the first strategy's scores by example id, one list per seed.
    ///   - second: the same for the second strategy.
    ///   - samples: bootstrap resamples.
    ///   - seed: generator seed.
    public static func compareAcrossSeeds(
        first: (name: String, runs: [[(id: String, score: Double)]]),
        second: (name: String, runs: [[(id: String, score: Double)]]),
        samples: Int, seed: UInt64
    ) -> PairedComparison {
        if first.runs.count == 1, second.runs.count == 1 {
            return compare(first: (first.name, first.runs[0]), second: (second.name, second.runs[0]), samples: samples, seed: seed)
        }
        let tables = (first.runs + second.runs).map { run in Dictionary(run.map { ($0.id, $0.score) }, uniquingKeysWith: { a, _ in a }) }
        let ids = (first.runs.first ?? []).map(\.id).filter { id in tables.allSatisfy { $0[id] != nil } }
        let matrix = tables.map { table in ids.map { table[$0] ?? 0 } }
        let a = Array(matrix.prefix(first.runs.count)), b = Array(matrix.dropFirst(first.runs.count))
        let result = SeedBootstrap.pairedTest(a, b, samples: samples, seed: seed)
        return PairedComparison(
            first: first.name, second: second.name, n: ids.count, method: "paired-bootstrap-seeds",
            difference: result.difference, pValue: result.pValue, significant: result.pValue < 0.05,
            onlyFirstCorrect: nil, onlySecondCorrect: nil)
    }
}

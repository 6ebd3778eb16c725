import Foundation

/// Intervals for strategies run once per seed: a two-level (hierarchical) percentile
/// bootstrap that accounts for both sources of variation in a result, which test examples
/// happened to be drawn and which seeds.
///
/// Each resample draws the seeds with replacement and, independently, the test examples
/// with replacement; because every seed answers the same test examples, one draw of example
/// indices serves all seeds (paired), which keeps the correlation between seeds that share
/// easy and hard examples. The statistic is the mean over the drawn seeds of each seed's
/// mean over the drawn examples. With few seeds the seed part is coarse (three seeds give
/// ten distinct seed multisets), and, like any bootstrap, it understates the between-seed
/// variance by a factor (k-1)/k; reports show the standard deviation across seeds beside it.
///
/// ```swift
/// let ci = SeedBootstrap.meanInterval([[1, 0, 1], [1, 1, 1]], samples: 1000, seed: 7)
/// ```
public enum SeedBootstrap {
    /// The mean over seeds of each seed's mean score, with a two-level bootstrap interval.
    /// - Parameters:
    ///   - scores: `scores[s][i]`, the score of seed `s` on example `i`. When every seed has
    ///     the same number of scores they are taken as answers to the same examples, in the
    ///     same order (paired); otherwise each seed's examples are resampled on their own.
    ///   - samples: bootstrap resamples.
    ///   - seed: the generator seed; equal inputs and seeds give equal intervals.
    ///   - level: coverage of the interval.
    /// - Returns: the mean of the per-seed means and the `(1-level)/2` and `(1+level)/2`
    ///   quantiles of the resampled statistic. Seeds with no score are left out.
    public static func meanInterval(_ scores: [[Double]], samples: Int, seed: UInt64, level: Double = 0.95) -> ConfidenceInterval {
        let rows = scores.filter { !$0.isEmpty }
        let value = Statistics.mean(rows.map(Statistics.mean))
        guard !rows.isEmpty, samples > 0, rows.count > 1 || rows[0].count > 1 else {
            return ConfidenceInterval(value: value, low: value, high: value)
        }
        var generator = Statistics.SplitMix64(seed: seed)
        var statistics: [Double] = []
        statistics.reserveCapacity(samples)
        for _ in 0..<samples {
            let means = resampledMeans(rows, generator: &generator)
            statistics.append(drawSeeds(means, generator: &generator))
        }
        return interval(value: value, sorted: statistics.sorted(), level: level)
    }

    /// The difference `first - second` of two strategies' across-seed means on the same
    /// examples, with a two-level paired bootstrap: each resample draws one set of example
    /// indices for both strategies and, independently for each strategy, its seeds.
    /// - Parameters:
    ///   - first: `first[s][i]`, seed `s` of the first strategy on example `i`.
    ///   - second: the same for the second strategy; every row of both has the same length
    ///     and order of examples.
    ///   - samples: bootstrap resamples.
    ///   - seed: generator seed.
    /// - Returns: the difference with its interval, and a two-sided p-value: twice the
    ///   smaller share of resampled differences on either side of zero (capped at 1).
    public static func pairedTest(_ first: [[Double]], _ second: [[Double]], samples: Int, seed: UInt64, level: Double = 0.95) -> PairedBootstrap.Result {
        let value = Statistics.mean(first.map(Statistics.mean)) - Statistics.mean(second.map(Statistics.mean))
        let n = first.first?.count ?? 0
        guard n > 0, !second.isEmpty, (first + second).allSatisfy({ $0.count == n }), samples > 0,
              n > 1 || first.count > 1 || second.count > 1 else {
            return PairedBootstrap.Result(difference: ConfidenceInterval(value: value, low: value, high: value), pValue: 1)
        }
        var generator = Statistics.SplitMix64(seed: seed)
        var differences: [Double] = []
        differences.reserveCapacity(samples)
        var atOrBelowZero = 0, atOrAboveZero = 0
        var indices = [Int](repeating: 0, count: n)
        for _ in 0..<samples {
            for i in 0..<n { indices[i] = generator.index(below: n) }
            let a = drawSeeds(first.map { mean($0, at: indices) }, generator: &generator)
            let b = drawSeeds(second.map { mean($0, at: indices) }, generator: &generator)
            let difference = a - b
            differences.append(difference)
            if difference <= 0 { atOrBelowZero += 1 }
            if difference >= 0 { atOrAboveZero += 1 }
        }
        let p = min(1, 2 * Double(min(atOrBelowZero, atOrAboveZero)) / Double(samples))
        return PairedBootstrap.Result(difference: interval(value: value, sorted: differences.sorted(), level: level), pValue: p)
    }

    /// The sample standard deviation (n - 1 in the denominator); nil for fewer than two values.
    public static func standardDeviation(_ values: [Double]) -> Double? {
        guard values.count > 1 else { return nil }
        let mean = Statistics.mean(values)
        let squares = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) }
        return (squares / Double(values.count - 1)).squareRoot()
    }

    // MARK: helpers

    /// Each row's mean over one draw of example indices (shared when rows are equally long).
    static func resampledMeans(_ rows: [[Double]], generator: inout Statistics.SplitMix64) -> [Double] {
        let n = rows[0].count
        if rows.allSatisfy({ $0.count == n }) {
            let indices = (0..<n).map { _ in generator.index(below: n) }
            return rows.map { mean($0, at: indices) }
        }
        return rows.map { row in
            var sum = 0.0
            for _ in 0..<row.count { sum += row[generator.index(below: row.count)] }
            return sum / Double(row.count)
        }
    }

    /// The mean of `values` drawn with replacement, as many times as there are values.
    static func drawSeeds(_ values: [Double], generator: inout Statistics.SplitMix64) -> Double {
        guard values.count > 1 else { return values.first ?? 0 }
        var sum = 0.0
        for _ in 0..<values.count { sum += values[generator.index(below: values.count)] }
        return sum / Double(values.count)
    }

    static func mean(_ row: [Double], at indices: [Int]) -> Double {
        var sum = 0.0
        for index in indices { sum += row[index] }
        return sum / Double(indices.count)
    }

    static func interval(value: Double, sorted: [Double], level: Double) -> ConfidenceInterval {
        let alpha = (1 - level) / 2
        return ConfidenceInterval(value: value, low: Statistics.quantile(sorted: sorted, alpha), high: Statistics.quantile(sorted: sorted, 1 - alpha))
    }
}

import Foundation

/// Statistics used by reports: seeded bootstrap intervals and paired tests between two
/// strategies' per-example scores. Everything here is deterministic for a given seed.
public enum Statistics {
    /// The seeded generator of every interval in a report (Tally's one generator,
    /// ``SeededRandom``), so each is reproducible from the recipe's seed.
    public typealias SplitMix64 = SeededRandom

    /// Arithmetic mean; 0 for an empty sample.
    public static func mean(_ values: [Double]) -> Double {
        values.isEmpty ? 0 : values.reduce(0, +) / Double(values.count)
    }

    /// The `p` quantile (0...1) of `values` by linear interpolation between order statistics
    /// (the "type 7" definition used by R and NumPy's default). Nil for an empty sample.
    public static func quantile(_ values: [Double], _ p: Double) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        return quantile(sorted: sorted, p)
    }

    static func quantile(sorted: [Double], _ p: Double) -> Double {
        let clamped = min(max(p, 0), 1)
        let position = clamped * Double(sorted.count - 1)
        let lower = Int(position.rounded(.down))
        let upper = min(lower + 1, sorted.count - 1)
        let fraction = position - Double(lower)
        return sorted[lower] + (sorted[upper] - sorted[lower]) * fraction
    }
}

/// A point estimate with a confidence interval.
public struct ConfidenceInterval: Codable, Sendable, Hashable {
    public let value: Double
    public let low: Double
    public let high: Double

    public init(value: Double, low: Double, high: Double) {
        self.value = value
        self.low = low
        self.high = high
    }

    /// Whether `x` lies inside the interval (inclusive).
    public func contains(_ x: Double) -> Bool { low <= x && x <= high }
}

/// Percentile bootstrap intervals.
public enum Bootstrap {
    /// The mean of `scores` with a percentile bootstrap interval.
    ///
    /// ```swift
    /// let ci = Bootstrap.meanInterval([1, 0, 1, 1], samples: 1000, seed: 7)
    /// ```
    /// - Parameters:
    ///   - scores: one score per example.
    ///   - samples: bootstrap resamples (at least 1; 1000 is usual).
    ///   - seed: the generator seed; equal inputs and seeds give equal intervals.
    ///   - level: coverage of the interval (0.95 for a 95% interval).
    /// - Returns: the sample mean and the `(1-level)/2` and `(1+level)/2` quantiles of the
    ///   resampled means. An empty sample gives `0 [0, 0]`.
    public static func meanInterval(_ scores: [Double], samples: Int, seed: UInt64, level: Double = 0.95) -> ConfidenceInterval {
        let value = Statistics.mean(scores)
        guard scores.count > 1, samples > 0 else { return ConfidenceInterval(value: value, low: value, high: value) }
        var generator = Statistics.SplitMix64(seed: seed)
        var means: [Double] = []
        means.reserveCapacity(samples)
        let n = scores.count
        for _ in 0..<samples {
            var sum = 0.0
            for _ in 0..<n { sum += scores[generator.index(below: n)] }
            means.append(sum / Double(n))
        }
        means.sort()
        let alpha = (1 - level) / 2
        return ConfidenceInterval(
            value: value,
            low: Statistics.quantile(sorted: means, alpha),
            high: Statistics.quantile(sorted: means, 1 - alpha))
    }

    /// The difference of two independent means (`a - b`) with a percentile bootstrap interval,
    /// resampling each sample separately. Used when the two samples are not paired item by item.
    public static func differenceInterval(_ a: [Double], _ b: [Double], samples: Int, seed: UInt64, level: Double = 0.95) -> ConfidenceInterval {
        let value = Statistics.mean(a) - Statistics.mean(b)
        guard !a.isEmpty, !b.isEmpty, samples > 0, a.count + b.count > 2 else {
            return ConfidenceInterval(value: value, low: value, high: value)
        }
        var generator = Statistics.SplitMix64(seed: seed)
        var differences: [Double] = []
        differences.reserveCapacity(samples)
        for _ in 0..<samples {
            var sumA = 0.0, sumB = 0.0
            for _ in 0..<a.count { sumA += a[generator.index(below: a.count)] }
            for _ in 0..<b.count { sumB += b[generator.index(below: b.count)] }
            differences.append(sumA / Double(a.count) - sumB / Double(b.count))
        }
        differences.sort()
        let alpha = (1 - level) / 2
        return ConfidenceInterval(
            value: value,
            low: Statistics.quantile(sorted: differences, alpha),
            high: Statistics.quantile(sorted: differences, 1 - alpha))
    }
}

import Foundation

/// An inverse power law fitted to a learning curve: accuracy = a - b * n^(-c), with the
/// ceiling `a` at most 1, `b` at least 0 (accuracy does not fall as n grows) and `c` in
/// `exponentRange`, by least squares on the points' mean accuracies.
///
/// For each exponent c the model is linear in (a, b), solved in closed form (with the bounds
/// applied); c is chosen by a grid on a log scale refined by golden-section search, so the
/// fit is deterministic and needs no starting values.
///
/// ```swift
/// let fit = PowerLawFit.fit(sizes: [16, 32, 64, 128], accuracies: [0.61, 0.70, 0.76, 0.80])
/// fit?.predict(256)
/// ```
public struct PowerLawFit: Codable, Sendable, Hashable {
    /// The ceiling: accuracy as n grows without bound.
    public let a: Double
    /// How far below the ceiling accuracy is at n = 1.
    public let b: Double
    /// How fast the gap closes.
    public let c: Double
    /// Share of the points' variance the curve explains (1 - SSE/SST); nil when the points
    /// do not vary.
    public let rSquared: Double?
    /// Root mean squared residual, in accuracy units.
    public let rmse: Double

    enum CodingKeys: String, CodingKey {
        case a, b, c, rmse
        case rSquared = "r_squared"
    }

    /// The exponents searched.
    public static let exponentRange: ClosedRange<Double> = 0.01...4

    /// The fitted accuracy at `n` (n > 0).
    public func predict(_ n: Double) -> Double { a - b * pow(n, -c) }

    /// The smallest n at which the curve reaches `target`: `(b / (a - target))^(1/c)`; nil
    /// when the ceiling `a` is not above `target` (never reached), 0 when `b` is 0 and the
    /// ceiling is above it (reached at every size).
    public func size(reaching target: Double) -> Double? {
        guard a > target else { return nil }
        guard b > 0 else { return 0 }
        let n = pow(b / (a - target), 1 / c)
        return n.isFinite ? n : nil
    }

    /// Fits the curve to points with sizes above 0 (others are ignored).
    /// - Returns: nil with fewer than `RecipeLoader.minFittedCurveSizes` distinct sizes.
    public static func fit(sizes: [Double], accuracies: [Double]) -> PowerLawFit? {
        let points = zip(sizes, accuracies).filter { $0.0 > 0 && $0.1.isFinite }
        guard Set(points.map(\.0)).count >= RecipeLoader.minFittedCurveSizes else { return nil }
        let n = points.map(\.0)
        let y = points.map(\.1)
        let logLow = log(exponentRange.lowerBound), logHigh = log(exponentRange.upperBound)
        let gridCount = 64
        var best = (logC: logLow, fit: solve(n: n, y: y, c: exponentRange.lowerBound))
        for step in 0...gridCount {
            let logC = logLow + (logHigh - logLow) * Double(step) / Double(gridCount)
            let candidate = solve(n: n, y: y, c: exp(logC))
            if candidate.sse < best.fit.sse { best = (logC, candidate) }
        }
        // Golden-section search in the grid cell on either side of the best grid point.
        let width = (logHigh - logLow) / Double(gridCount)
        var lo = max(logLow, best.logC - width), hi = min(logHigh, best.logC + width)
        let ratio = (sqrt(5.0) - 1) / 2
        var x1 = hi - ratio * (hi - lo), x2 = lo + ratio * (hi - lo)
        var f1 = solve(n: n, y: y, c: exp(x1)), f2 = solve(n: n, y: y, c: exp(x2))
        for _ in 0..<60 {
            if f1.sse <= f2.sse {
                hi = x2; x2 = x1; f2 = f1
                x1 = hi - ratio * (hi - lo); f1 = solve(n: n, y: y, c: exp(x1))
            } else {
                lo = x1; x1 = x2; f1 = f2
                x2 = lo + ratio * (hi - lo); f2 = solve(n: n, y: y, c: exp(x2))
            }
        }
        for candidate in [(x1, f1), (x2, f2)] where candidate.1.sse < best.fit.sse { best = (candidate.0, candidate.1) }
        let mean = Statistics.mean(y)
        let sst = y.reduce(0) { $0 + ($1 - mean) * ($1 - mean) }
        return PowerLawFit(
            a: best.fit.a, b: best.fit.b, c: exp(best.logC),
            rSquared: sst > 1e-12 ? 1 - best.fit.sse / sst : nil, rmse: (best.fit.sse / Double(y.count)).squareRoot())
    }

    /// The least-squares (a, b) for a fixed exponent, with a <= 1 and b >= 0, and its sum of
    /// squared residuals.
    static func solve(n: [Double], y: [Double], c: Double) -> (a: Double, b: Double, sse: Double) {
        let x = n.map { pow($0, -c) }
        let count = Double(x.count)
        let mx = x.reduce(0, +) / count, my = y.reduce(0, +) / count
        var sxx = 0.0, sxy = 0.0
        for (xi, yi) in zip(x, y) {
            sxx += (xi - mx) * (xi - mx)
            sxy += (xi - mx) * (yi - my)
        }
        // y = a - b x: the slope on x is -b.
        var b = sxx > 0 ? max(0, -sxy / sxx) : 0
        var a = my + b * mx
        if a > 1 {
            // The ceiling is bounded by 1: fit b alone with a = 1.
            a = 1
            let sxx0 = x.reduce(0) { $0 + $1 * $1 }
            let sxy0 = zip(x, y).reduce(0) { $0 + $1.0 * (1 - $1.1) }
            b = sxx0 > 0 ? max(0, sxy0 / sxx0) : 0
        }
        let sse = zip(x, y).reduce(0) { sum, point in
            let residual = point.1 - (a - b * point.0)
            return sum + residual * residual
        }
        return (a, b, sse)
    }
}

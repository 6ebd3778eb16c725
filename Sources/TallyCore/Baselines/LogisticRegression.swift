import Foundation

/// L2-regularised logistic regression on sparse features, trained by L-BFGS from zero
/// weights (deterministic). Two classes: one weight vector and a sigmoid; more: multinomial
/// (softmax) with one weight vector per class. The intercepts are not penalised.
///
/// It minimises scikit-learn's `LogisticRegression` objective (its `lbfgs` solver) scaled by
/// 1/n, which has the same minimiser:
///
///     (1/n) sum_i loss_i + ||W||^2 / (2 C n)
///
/// ```swift
/// let model = LogisticRegression(c: 10).fit(vectors, labels: [0, 1, 1, 0], classCount: 2, featureCount: width)
/// model.predict(vectors[0])   // 0
/// ```
public struct LogisticRegression: Sendable, Hashable {
    /// Inverse regularisation strength (larger: weaker penalty).
    public let c: Double
    public let maxIterations: Int
    /// Largest allowed |gradient component| of the scaled objective at the solution.
    public let tolerance: Double

    public init(c: Double = 1, maxIterations: Int = 1000, tolerance: Double = 1e-6) {
        self.c = c
        self.maxIterations = maxIterations
        self.tolerance = tolerance
    }

    /// Trains on `x` with class indices `labels` (each in `0..<classCount`).
    /// - Parameters:
    ///   - featureCount: the width of the feature space (every index of `x` is below it).
    /// - Precondition: `x` and `labels` have the same length.
    public func fit(_ x: [SparseVector], labels: [Int], classCount: Int, featureCount: Int) -> LogisticModel {
        precondition(x.count == labels.count, "one label per row")
        let d = featureCount
        guard classCount >= 2, !x.isEmpty else {
            // One class (or no data): nothing to separate; the model always answers class 0.
            return LogisticModel(classCount: max(1, classCount), featureCount: d, weights: [], intercepts: [], iterations: 0, stop: .gradientSmall, objectiveTrace: [])
        }
        let rows = classCount == 2 ? 1 : classCount
        let n = Double(x.count)
        let penalty = 1 / (c * n)
        let objective: ([Double]) -> (value: Double, gradient: [Double])
        if rows == 1 {
            objective = { theta in
                var gradient = [Double](repeating: 0, count: d + 1)
                var loss = 0.0
                for (row, label) in zip(x, labels) {
                    let z = row.dot(theta) + theta[d]
                    let y = label == 1 ? 1.0 : 0.0
                    loss += Self.softplus(z) - y * z
                    let r = Self.sigmoid(z) - y
                    row.add(scaledBy: r / n, to: &gradient)
                    gradient[d] += r / n
                }
                let norm = Self.addPenalty(penalty, weights: theta, count: d, to: &gradient)
                return (loss / n + 0.5 * penalty * norm, gradient)
            }
        } else {
            let k = classCount
            objective = { theta in
                var gradient = [Double](repeating: 0, count: k * d + k)
                var loss = 0.0
                var z = [Double](repeating: 0, count: k)
                for (row, label) in zip(x, labels) {
                    for c in 0..<k { z[c] = row.dot(theta, offset: c * d) + theta[k * d + c] }
                    let top = z.max() ?? 0
                    var total = 0.0
                    for c in 0..<k { total += exp(z[c] - top) }
                    let logSum = top + log(total)
                    loss += logSum - z[label]
                    for c in 0..<k {
                        let r = exp(z[c] - logSum) - (c == label ? 1 : 0)
                        row.add(scaledBy: r / n, to: &gradient, offset: c * d)
                        gradient[k * d + c] += r / n
                    }
                }
                let norm = Self.addPenalty(penalty, weights: theta, count: k * d, to: &gradient)
                return (loss / n + 0.5 * penalty * norm, gradient)
            }
        }
        let solver = LBFGS(maxIterations: maxIterations, gradientTolerance: tolerance)
        let result = solver.minimize(start: [Double](repeating: 0, count: rows * d + rows), objective)
        return LogisticModel(
            classCount: classCount, featureCount: d, weights: Array(result.x[0..<(rows * d)]), intercepts: Array(result.x[(rows * d)...]),
            iterations: result.iterations, stop: result.stop, objectiveTrace: result.trace)
    }

    /// Adds `penalty` times the first `count` weights to the gradient; returns their squared norm.
    static func addPenalty(_ penalty: Double, weights: [Double], count: Int, to gradient: inout [Double]) -> Double {
        precondition(count <= weights.count && count <= gradient.count, "penalty over more weights than exist")
        return weights.withUnsafeBufferPointer { w in
            gradient.withUnsafeMutableBufferPointer { g in
                var norm = 0.0
                for j in 0..<count {
                    norm += w[j] * w[j]
                    g[j] += penalty * w[j]
                }
                return norm
            }
        }
    }

    static func sigmoid(_ z: Double) -> Double {
        z >= 0 ? 1 / (1 + exp(-z)) : exp(z) / (1 + exp(z))
    }

    /// ln(1 + e^z) without overflow.
    static func softplus(_ z: Double) -> Double {
        max(z, 0) + log1p(exp(-abs(z)))
    }
}

/// A trained logistic regression: its weights, and how the optimiser finished.
public struct LogisticModel: Sendable, Hashable {
    public let classCount: Int
    public let featureCount: Int
    /// Row-major: one row of `featureCount` weights for two classes (class 1 against 0), one
    /// row per class otherwise; empty for a single class.
    public let weights: [Double]
    /// One per weight row.
    public let intercepts: [Double]
    /// L-BFGS iterations taken.
    public let iterations: Int
    public let stop: LBFGS.Stop
    /// The objective at the start and after each iteration.
    public let objectiveTrace: [Double]

    public init(classCount: Int, featureCount: Int, weights: [Double], intercepts: [Double], iterations: Int, stop: LBFGS.Stop, objectiveTrace: [Double]) {
        self.classCount = classCount
        self.featureCount = featureCount
        self.weights = weights
        self.intercepts = intercepts
        self.iterations = iterations
        self.stop = stop
        self.objectiveTrace = objectiveTrace
    }

    /// Whether the optimiser reached a minimum rather than its iteration limit.
    public var converged: Bool { stop == .gradientSmall || stop == .noProgress }

    /// Class probabilities of `x`.
    public func probabilities(_ x: SparseVector) -> [Double] {
        guard !intercepts.isEmpty else { return [1] + [Double](repeating: 0, count: classCount - 1) }
        if intercepts.count == 1 {
            let p = LogisticRegression.sigmoid(x.dot(weights) + intercepts[0])
            return [1 - p, p]
        }
        let z = intercepts.indices.map { x.dot(weights, offset: $0 * featureCount) + intercepts[$0] }
        let top = z.max() ?? 0
        let e = z.map { exp($0 - top) }
        let total = e.reduce(0, +)
        return e.map { $0 / total }
    }

    /// The most probable class of `x` (the lower index on a tie).
    public func predict(_ x: SparseVector) -> Int {
        guard !intercepts.isEmpty else { return 0 }
        if intercepts.count == 1 { return x.dot(weights) + intercepts[0] > 0 ? 1 : 0 }
        var best = 0
        var bestScore = -Double.infinity
        for c in intercepts.indices {
            let score = x.dot(weights, offset: c * featureCount) + intercepts[c]
            if score > bestScore { (best, bestScore) = (c, score) }
        }
        return best
    }

    /// Mean negative log-likelihood of `labels` given `x` (the log loss).
    public func logLoss(_ x: [SparseVector], labels: [Int]) -> Double {
        guard !x.isEmpty else { return 0 }
        var total = 0.0
        for (row, label) in zip(x, labels) {
            let p = probabilities(row)
            total -= log(max(p[min(label, p.count - 1)], 1e-300))
        }
        return total / Double(x.count)
    }
}

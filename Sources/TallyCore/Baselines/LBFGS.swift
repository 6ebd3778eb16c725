import Foundation

/// Limited-memory BFGS for smooth unconstrained minimisation, with a backtracking (Armijo)
/// line search. Deterministic: the same function and start give the same iterates.
///
/// It stops when the largest gradient component is at most `gradientTolerance` (converged),
/// when an iteration lowers the objective by less than `relativeTolerance` of its size
/// (converged: no further progress is possible in floating point), when the line search
/// finds no decrease, or after `maxIterations` iterations.
///
/// ```swift
/// let result = LBFGS(maxIterations: 100).minimize(start: [3, -2]) { x in
///     (x[0] * x[0] + 10 * x[1] * x[1], [2 * x[0], 20 * x[1]])
/// }
/// ```
public struct LBFGS: Sendable, Hashable {
    /// Why the minimiser stopped.
    public enum Stop: String, Sendable, Hashable, Codable {
        case gradientSmall = "gradient below tolerance"
        case noProgress = "objective no longer decreasing"
        case lineSearchFailed = "line search found no decrease"
        case iterationLimit = "iteration limit"
    }

    /// What `minimize` found.
    public struct Result: Sendable, Hashable {
        public let x: [Double]
        public let value: Double
        public let gradientNorm: Double
        public let iterations: Int
        public let stop: Stop
        /// The objective at the start and after each iteration.
        public let trace: [Double]

        /// Whether it stopped at a minimum (small gradient or no possible progress).
        public var converged: Bool { stop == .gradientSmall || stop == .noProgress }
    }

    public let maxIterations: Int
    /// Largest allowed |gradient component| at the solution.
    public let gradientTolerance: Double
    /// Smallest relative decrease of the objective per iteration.
    public let relativeTolerance: Double
    /// Correction pairs kept.
    public let memory: Int

    public init(maxIterations: Int = 1000, gradientTolerance: Double = 1e-6, relativeTolerance: Double = 64 * Double.ulpOfOne, memory: Int = 10) {
        self.maxIterations = max(0, maxIterations)
        self.gradientTolerance = gradientTolerance
        self.relativeTolerance = relativeTolerance
        self.memory = max(1, memory)
    }

    /// Minimises `f` from `start`; `f` returns the value and the gradient at a point.
    public func minimize(start: [Double], _ f: ([Double]) -> (value: Double, gradient: [Double])) -> Result {
        var x = start
        var (value, gradient) = f(x)
        var trace = [value]
        var s: [[Double]] = []
        var y: [[Double]] = []
        var rho: [Double] = []
        var iterations = 0
        var stop = Stop.iterationLimit
        if Self.maxAbs(gradient) <= gradientTolerance {
            return Result(x: x, value: value, gradientNorm: Self.maxAbs(gradient), iterations: 0, stop: .gradientSmall, trace: trace)
        }
        while iterations < maxIterations {
            // Direction: minus the inverse-Hessian estimate times the gradient (two loops).
            var direction = gradient.map { -$0 }
            var alphas = [Double](repeating: 0, count: s.count)
            for i in stride(from: s.count - 1, through: 0, by: -1) {
                alphas[i] = rho[i] * Self.dot(s[i], direction)
                Self.axpy(-alphas[i], y[i], &direction)
            }
            if let lastS = s.last, let lastY = y.last {
                let gamma = Self.dot(lastS, lastY) / Self.dot(lastY, lastY)
                direction = direction.map { $0 * gamma }
            }
            for i in s.indices {
                let beta = rho[i] * Self.dot(y[i], direction)
                Self.axpy(alphas[i] - beta, s[i], &direction)
            }
            var slope = Self.dot(gradient, direction)
            if !(slope < 0) {
                // Not a descent direction (numerical trouble): restart from steepest descent.
                s.removeAll(); y.removeAll(); rho.removeAll()
                direction = gradient.map { -$0 }
                slope = Self.dot(gradient, direction)
            }
            // First step without curvature information: unit length in the gradient's direction.
            var step = s.isEmpty ? min(1, 1 / Self.dot(gradient, gradient).squareRoot()) : 1
            var accepted: (x: [Double], value: Double, gradient: [Double])?
            for _ in 0..<60 {
                var candidate = x
                Self.axpy(step, direction, &candidate)
                let (newValue, newGradient) = f(candidate)
                if newValue.isFinite, newValue <= value + 1e-4 * step * slope {
                    accepted = (candidate, newValue, newGradient)
                    break
                }
                step *= 0.5
            }
            guard let next = accepted else {
                stop = .lineSearchFailed
                break
            }
            iterations += 1
            let sk = Self.difference(next.x, x)
            let yk = Self.difference(next.gradient, gradient)
            let curvature = Self.dot(sk, yk)
            let previous = value
            (x, value, gradient) = (next.x, next.value, next.gradient)
            trace.append(value)
            if curvature > 1e-12 * Self.dot(yk, yk) {
                s.append(sk); y.append(yk); rho.append(1 / curvature)
                if s.count > memory { s.removeFirst(); y.removeFirst(); rho.removeFirst() }
            }
            if Self.maxAbs(gradient) <= gradientTolerance {
                stop = .gradientSmall
                break
            }
            if (previous - value) <= relativeTolerance * max(abs(previous), abs(value), 1) {
                stop = .noProgress
                break
            }
        }
        return Result(x: x, value: value, gradientNorm: Self.maxAbs(gradient), iterations: iterations, stop: stop, trace: trace)
    }

    // Vector kernels through buffer pointers, fast in unoptimised builds too.

    static func dot(_ a: [Double], _ b: [Double]) -> Double {
        precondition(a.count == b.count, "vectors of different lengths")
        return a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                var sum = 0.0
                for i in 0..<a.count { sum += a[i] * b[i] }
                return sum
            }
        }
    }

    /// y += alpha x
    static func axpy(_ alpha: Double, _ x: [Double], _ y: inout [Double]) {
        precondition(x.count == y.count, "vectors of different lengths")
        x.withUnsafeBufferPointer { x in
            y.withUnsafeMutableBufferPointer { y in
                for i in 0..<y.count { y[i] += alpha * x[i] }
            }
        }
    }

    /// a - b
    static func difference(_ a: [Double], _ b: [Double]) -> [Double] {
        var out = a
        axpy(-1, b, &out)
        return out
    }

    static func maxAbs(_ v: [Double]) -> Double {
        v.withUnsafeBufferPointer { v in
            var top = 0.0
            for i in 0..<v.count { top = max(top, abs(v[i])) }
            return top
        }
    }
}

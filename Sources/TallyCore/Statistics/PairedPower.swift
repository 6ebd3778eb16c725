import Foundation

/// Power and sample size of McNemar's paired test (two strategies scored right/wrong on the
/// same examples), by Connor's normal approximation (Connor 1987, Biometrics 43:207-211).
///
/// With p10 the share of examples only the first strategy gets right, p01 the share only the
/// second gets right, ψ = p10 + p01 and δ = p10 - p01, at two-sided level α:
///
///     power(n) = Φ((|δ|·√n − z(1−α/2)·√ψ) / √(ψ − δ²))
///     n(power) = (z(1−α/2)·√ψ + z(power)·√(ψ − δ²))² / δ²
///
/// ```swift
/// let power = PairedPower.power(onlyFirst: 0.10, onlySecond: 0.05, n: 200)
/// let needed = PairedPower.sampleSize(onlyFirst: 0.10, onlySecond: 0.05, power: 0.8)
/// ```
public enum PairedPower {
    /// The power of a two-sided test at level `alpha` on `n` examples; nil when the shares
    /// are not a valid pair (each in 0...1, summing to at most 1) or the strategies never
    /// disagree.
    public static func power(onlyFirst p10: Double, onlySecond p01: Double, n: Int, alpha: Double = 0.05) -> Double? {
        guard valid(p10, p01), n > 0 else { return nil }
        let psi = p10 + p01, delta = abs(p10 - p01)
        let spread = psi - delta * delta
        guard psi > 0, spread > 0 else { return nil }
        let z = normalQuantile(1 - alpha / 2)
        return normalCDF((delta * Double(n).squareRoot() - z * psi.squareRoot()) / spread.squareRoot())
    }

    /// The examples needed for `power` at level `alpha` (rounded up); nil when no number of
    /// examples can separate the two (no difference, or never any disagreement).
    public static func sampleSize(onlyFirst p10: Double, onlySecond p01: Double, power: Double = 0.8, alpha: Double = 0.05) -> Int? {
        guard valid(p10, p01), power > 0, power < 1 else { return nil }
        let psi = p10 + p01, delta = abs(p10 - p01)
        let spread = psi - delta * delta
        guard delta > 0, spread >= 0 else { return nil }
        let root = normalQuantile(1 - alpha / 2) * psi.squareRoot() + normalQuantile(power) * spread.squareRoot()
        let n = (root * root / (delta * delta)).rounded(.up)
        return n.isFinite && n < Double(Int.max / 2) ? Int(n) : nil
    }

    static func valid(_ p10: Double, _ p01: Double) -> Bool {
        p10 >= 0 && p01 >= 0 && p10 + p01 <= 1 + 1e-12 && p10.isFinite && p01.isFinite
    }

    /// The standard normal distribution function Φ.
    public static func normalCDF(_ x: Double) -> Double { 0.5 * erfc(-x / 2.0.squareRoot()) }

    /// The standard normal quantile Φ⁻¹(p) for p in (0, 1), by bisection on Φ (to 1e-12).
    public static func normalQuantile(_ p: Double) -> Double {
        guard p > 0 else { return -.infinity }
        guard p < 1 else { return .infinity }
        var lo = -40.0, hi = 40.0
        for _ in 0..<200 {
            let mid = (lo + hi) / 2
            if normalCDF(mid) < p { lo = mid } else { hi = mid }
            if hi - lo < 1e-12 { break }
        }
        return (lo + hi) / 2
    }
}

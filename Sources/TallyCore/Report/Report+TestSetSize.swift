import Foundation

/// Is the test set big enough to tell the recommended strategy from the runner-up? The power
/// of McNemar's paired test at the observed difference, and the test examples that would give
/// 80% power (`PairedPower`, Connor's normal approximation, two-sided 5% level).
public struct TestSetSizeReport: Codable, Sendable, Hashable {
    /// The power the "test examples needed" figure aims at.
    public static let targetPower = 0.8
    /// The test's two-sided level.
    public static let level = 0.05

    public let first: String
    public let second: String
    /// Test examples both answered.
    public let n: Int
    /// Examples only `first` got right, and only `second` got right (for a strategy run once
    /// per seed, an example counts as right when its mean score over seeds is at least 0.5).
    public let onlyFirstCorrect: Int
    public let onlySecondCorrect: Int
    /// Power at the observed difference on `n` examples; nil when the two never disagree.
    public let power: Double?
    /// Test examples needed for `targetPower`; nil when no size would do (no difference).
    public let examplesFor80: Int?
    /// Whether `power` reaches `targetPower`.
    public let enough: Bool
    public let summary: String

    enum CodingKeys: String, CodingKey {
        case first, second, n, power, enough, summary
        case onlyFirstCorrect = "only_first_correct"
        case onlySecondCorrect = "only_second_correct"
        case examplesFor80 = "examples_for_80_power"
    }

    /// The power of the test between `first` and `second`, from their per-example scores
    /// (each strategy's runs: one per seed).
    static func build(first: (name: String, runs: [[(id: String, score: Double)]]), second: (name: String, runs: [[(id: String, score: Double)]])) -> TestSetSizeReport? {
        func correct(_ runs: [[(id: String, score: Double)]]) -> [String: Bool] {
            var sums: [String: (Double, Int)] = [:]
            for run in runs { for item in run { let old = sums[item.id] ?? (0, 0); sums[item.id] = (old.0 + item.score, old.1 + 1) } }
            return sums.mapValues { $0.0 / Double(max(1, $0.1)) >= 0.5 }
        }
        let a = correct(first.runs), b = correct(second.runs)
        let ids = a.keys.filter { b[$0] != nil }
        guard !ids.isEmpty else { return nil }
        let onlyFirst = ids.filter { a[$0] == true && b[$0] == false }.count
        let onlySecond = ids.filter { a[$0] == false && b[$0] == true }.count
        let n = ids.count
        let p10 = Double(onlyFirst) / Double(n), p01 = Double(onlySecond) / Double(n)
        let power = PairedPower.power(onlyFirst: p10, onlySecond: p01, n: n, alpha: level)
        let needed = PairedPower.sampleSize(onlyFirst: p10, onlySecond: p01, power: targetPower, alpha: level)
        let enough = (power ?? 0) >= targetPower
        let difference = abs(p10 - p01) * 100
        let better = p10 >= p01 ? first.name : second.name
        let summary: String
        if onlyFirst + onlySecond == 0 {
            summary = "\(first.name) and \(second.name) are right and wrong on exactly the same \(n) test examples: no test set of this kind can tell them apart."
        } else if onlyFirst == onlySecond {
            summary = "\(first.name) and \(second.name) got the same number of the \(n) test examples right (they disagree on \(onlyFirst + onlySecond)); at no difference, no test-set size separates them."
        } else if enough {
            summary = String(format: "The test set (%d examples) is large enough to tell %@ from %@: at the observed difference (%@ %.1f points better) a paired test has %.0f%% power%@.", n, first.name, second.name, better, difference, (power ?? 0) * 100, needed.map { " (80% needs about \(CostModel.formatVolume(Double($0))))" } ?? "")
        } else {
            summary = String(format: "The test set is too small to tell %@ from %@ reliably: at the observed difference (%@ %.1f points better, disagreeing on %d of %d examples) a paired test has only %.0f%% power; about %@ test examples would give 80%%.", first.name, second.name, better, difference, onlyFirst + onlySecond, n, (power ?? 0) * 100, needed.map { CostModel.formatVolume(Double($0)) } ?? "?")
        }
        return TestSetSizeReport(first: first.name, second: second.name, n: n, onlyFirstCorrect: onlyFirst, onlySecondCorrect: onlySecond, power: power, examplesFor80: needed, enough: enough, summary: summary)
    }
}

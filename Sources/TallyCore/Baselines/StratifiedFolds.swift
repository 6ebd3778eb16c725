import Foundation

/// k-fold splits that keep each class's share in every fold, without shuffling: the same
/// folds as scikit-learn's `StratifiedKFold(n_splits=k)` (`shuffle=False`).
///
/// Classes are numbered by first appearance; the sorted labels are dealt round-robin to the
/// folds to decide how many of each class every test fold gets, and each class's rows, in
/// order, fill fold 0 first, then fold 1, and so on.
///
/// ```swift
/// let folds = StratifiedFolds.split(labels: ["a", "b", "a", "b"], folds: 2)
/// folds[0].test   // [0, 1]  (one "a" and one "b"); folds[0].train: [2, 3]
/// folds[1].test   // [2, 3]
/// ```
public enum StratifiedFolds {
    /// One split: row indices for training and for testing, each increasing.
    public struct Fold: Sendable, Hashable {
        public let train: [Int]
        public let test: [Int]
    }

    /// The `folds` splits of rows with these labels (`folds` at least 2 and at most the row
    /// count; fewer rows give fewer folds).
    public static func split<Label: Hashable>(labels: [Label], folds: Int) -> [Fold] {
        let k = min(max(2, folds), labels.count)
        guard k >= 2 else { return [] }
        var order: [Label: Int] = [:]
        let encoded = labels.map { label in
            if let index = order[label] { return index }
            order[label] = order.count
            return order.count - 1
        }
        let classes = order.count
        let sorted = encoded.sorted()
        // allocation[f][c]: rows of class c in test fold f.
        var allocation = [[Int]](repeating: [Int](repeating: 0, count: classes), count: k)
        for (position, label) in sorted.enumerated() { allocation[position % k][label] += 1 }
        var testFold = [Int](repeating: 0, count: labels.count)
        for c in 0..<classes {
            var assignments: [Int] = []
            for f in 0..<k { assignments += [Int](repeating: f, count: allocation[f][c]) }
            var next = 0
            for row in labels.indices where encoded[row] == c {
                testFold[row] = assignments[next]
                next += 1
            }
        }
        return (0..<k).map { f in
            Fold(train: labels.indices.filter { testFold[$0] != f }, test: labels.indices.filter { testFold[$0] == f })
        }
    }
}

import Foundation

/// The training sets of a learning curve: nested (the set of n examples is a subset of the set
/// of every larger size) and, for labelled tasks, balanced across `task.labels` as far as the
/// rows allow.
///
/// Rows join in one seeded order: each label's rows are shuffled (SplitMix64 seeded by the
/// repetition seed), then taken round-robin across the labels in `task.labels` order; rows
/// whose target is not a label come last. The set of size n is the first n rows of that order,
/// returned in file order.
///
/// ```swift
/// let order = CurveSubsets.order(of: train, task: task, seed: 7)
/// let sixteen = CurveSubsets.subset(of: train, order: order, size: 16)
/// ```
public enum CurveSubsets {
    /// The order in which rows of `examples` join the curve's training sets (indices into
    /// `examples`, each once).
    /// - Parameters:
    ///   - examples: the usable training rows.
    ///   - task: its `labels` and `target` decide the balance; without labels, one seeded shuffle.
    ///   - seed: the repetition's seed; each seed draws its own nested sets.
    public static func order(of examples: [Example], task: TaskSpec, seed: UInt64) -> [Int] {
        var rng = SeededRandom.derived(seed: seed, label: "curve subsets")
        guard let labels = task.labels, !labels.isEmpty else {
            return rng.shuffled(Array(examples.indices))
        }
        let keys = labels.map(TextNormalizer.normalize)
        var buckets = Array(repeating: [Int](), count: keys.count)
        var others: [Int] = []
        for (index, example) in examples.enumerated() {
            let target = TextNormalizer.normalize(example[task.target] ?? "")
            if let bucket = keys.firstIndex(of: target) { buckets[bucket].append(index) } else { others.append(index) }
        }
        buckets = buckets.map { rng.shuffled($0) }
        var order: [Int] = []
        order.reserveCapacity(examples.count)
        var position = 0
        while order.count + others.count < examples.count {
            for bucket in buckets where position < bucket.count { order.append(bucket[position]) }
            position += 1
        }
        return order + rng.shuffled(others)
    }

    /// The first `size` rows of `order`, in file order (all rows when there are fewer).
    public static func subset(of examples: [Example], order: [Int], size: Int) -> [Example] {
        order.prefix(max(0, size)).sorted().map { examples[$0] }
    }
}

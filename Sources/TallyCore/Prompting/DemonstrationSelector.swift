import Foundation

/// Picks the k demonstrations shown to the model for one test example.
///
/// - `first`: the first k training rows in file order.
/// - `random`: k rows from one seeded shuffle of the training rows (seeded by `run.seed`
///   and the strategy name), the same rows for every test example.
/// - `similar`: the k rows whose input is most similar to the test input by BM25, shown in
///   increasing similarity so the closest demonstration sits next to the question.
/// A row whose rendered input equals the test example's is never selected. With
/// `balanced`, rows are taken round-robin across the task's labels in the order above.
public struct DemonstrationSelector: Sendable {
    public enum Selection: String, Sendable, CaseIterable {
        case first, random, similar
    }

    let pool: [Example]
    let inputs: [String]
    let task: TaskSpec
    let shots: Int
    let selection: Selection
    let balanced: Bool
    let order: [Int]
    let index: BM25?

    /// - Parameters:
    ///   - pool: candidate demonstrations (the training rows).
    ///   - shots: how many to pick.
    ///   - seed: seeds the `random` order.
    ///   - label: mixes into the seed (the strategy name), so two strategies differ.
    public init(pool: [Example], task: TaskSpec, shots: Int, selection: Selection, balanced: Bool, seed: UInt64, label: String) {
        self.pool = pool
        self.task = task
        self.shots = shots
        self.selection = selection
        self.balanced = balanced && !(task.labels ?? []).isEmpty
        self.inputs = pool.map { PromptBuilder.inputText(task: task, example: $0) }
        switch selection {
        case .random:
            var rng = SeededRandom.derived(seed: seed, label: "demonstrations:" + label)
            order = rng.shuffled(Array(pool.indices))
        case .first, .similar:
            order = Array(pool.indices)
        }
        index = selection == .similar ? BM25(documents: inputs) : nil
    }

    /// The demonstrations for `example`, in the order they are shown.
    public func select(for example: Example) -> [Example] {
        guard shots > 0, !pool.isEmpty else { return [] }
        let query = PromptBuilder.inputText(task: task, example: example)
        var candidates = order.filter { inputs[$0] != query }
        var scores: [Double] = []
        if let index {
            scores = index.scores(for: query)
            candidates.sort { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }
        }
        var chosen: [Int]
        if balanced, let labels = task.labels {
            var buckets: [[Int]] = labels.map { label in
                candidates.filter { TextNormalizer.normalize(pool[$0][task.target] ?? "") == TextNormalizer.normalize(label) }
            }
            chosen = []
            var progressed = true
            while chosen.count < shots && progressed {
                progressed = false
                for bucket in buckets.indices where chosen.count < shots && !buckets[bucket].isEmpty {
                    chosen.append(buckets[bucket].removeFirst())
                    progressed = true
                }
            }
        } else {
            chosen = Array(candidates.prefix(shots))
        }
        if index != nil {
            chosen.sort { scores[$0] != scores[$1] ? scores[$0] < scores[$1] : $0 > $1 }
        }
        return chosen.map { pool[$0] }
    }
}

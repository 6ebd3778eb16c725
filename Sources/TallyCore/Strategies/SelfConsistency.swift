import Foundation

/// One of several answers sampled for a test example: the reply and the answer extracted
/// from it (nil when it named none).
public struct SampledAnswer: Sendable, Hashable {
    public let output: String
    public let answer: String?

    public init(output: String, answer: String?) {
        self.output = output
        self.answer = answer
    }
}

/// Self-consistency: sample several answers to one question and keep the most frequent.
/// The default of `Strategy.choose(among:)`, and the seeds of the sampled requests.
///
/// ```swift
/// let answers = [SampledAnswer(output: "…Answer: yes", answer: "yes"), SampledAnswer(output: "…Answer: no", answer: "no"),
///                SampledAnswer(output: "…Answer: no", answer: "no")]
/// SelfConsistency.majority(answers)  // 1: the first sample answering "no"
/// ```
public enum SelfConsistency {
    /// The index of the sample whose answer wins the vote: answers are compared after
    /// normalisation (case, punctuation and articles ignored), unparsed samples do not vote,
    /// a tie goes to the answer that appeared first, and the first sample giving the winning
    /// answer stands for it. With no parsed answer at all: sample 0.
    public static func majority(_ answers: [SampledAnswer]) -> Int {
        var counts: [String: (count: Int, first: Int)] = [:]
        for (index, sample) in answers.enumerated() {
            guard let key = sample.answer.map(TextNormalizer.normalize) else { continue }
            let current = counts[key] ?? (0, index)
            counts[key] = (current.count + 1, current.first)
        }
        let winner = counts.values.max { a, b in a.count != b.count ? a.count < b.count : a.first > b.first }
        return winner?.first ?? 0
    }

    /// The fraction of `answers` whose answer equals that of sample `chosen` (normalised;
    /// an unparsed choice agrees with the other unparsed samples).
    public static func agreement(_ answers: [SampledAnswer], chosen: Int) -> Double {
        guard answers.indices.contains(chosen) else { return 0 }
        let key = answers[chosen].answer.map(TextNormalizer.normalize)
        let agreeing = answers.filter { $0.answer.map(TextNormalizer.normalize) == key }.count
        return Double(agreeing) / Double(answers.count)
    }

    /// The sampling seed of sample `sample` of a strategy run with `seed`: distinct per
    /// sample, so each sample is its own call (and its own cache entry).
    public static func seed(_ seed: UInt64, sample: Int) -> UInt64 {
        var generator = SeededRandom.derived(seed: seed, label: "self-consistency sample \(sample)")
        return generator.next()
    }
}

import Foundation

/// A strategy that samples several answers per question and keeps the majority
/// (self-consistency): how many samples, and how often they agreed with the majority.
public struct SelfConsistencyReport: Codable, Sendable, Hashable {
    /// Samples per question (the largest, should they differ).
    public let samples: Int
    /// Fraction of samples agreeing with the chosen answer, averaged over the questions.
    public let agreement: Double

    /// The summary of `predictions`, or nil when none of them was sampled several times.
    static func summarize(_ predictions: [Prediction]) -> SelfConsistencyReport? {
        let sampled = predictions.filter { ($0.samples ?? 1) > 1 }
        guard !sampled.isEmpty else { return nil }
        let agreement = Statistics.mean(sampled.map { $0.agreement ?? 1 })
        return SelfConsistencyReport(samples: sampled.compactMap(\.samples).max() ?? 1, agreement: agreement)
    }

    /// One sentence for the report's notes.
    func note(strategy: String) -> String {
        "\(strategy) samples \(samples) answers per question and keeps the majority (self-consistency); on average \(String(format: "%.1f", agreement * 100))% of the samples agree with it. Its cost and latency count all \(samples) calls per question."
    }
}

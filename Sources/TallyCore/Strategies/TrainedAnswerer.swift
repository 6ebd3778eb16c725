import Foundation

/// A model a strategy trained itself and answers with, instead of a backend's language model:
/// a classic classifier, a lookup table, a rule set. Strategies of kinds whose
/// `usesLanguageModel` is false return one from `Strategy.trainAnswerer(progress:)`.
///
/// The runner treats it like any model: every answer goes through the ledger, cached under
/// the generator's `identity` (which must name the trained model's content, so that retraining
/// on other data or settings never reuses old answers); the training is recorded like a
/// fine-tuning job, and its wall time is its one-off cost at `costs.compute_usd_per_hour`;
/// each answer's `computeSeconds` prices requests.
///
/// ```swift
/// func trainAnswerer(progress: @escaping @Sendable (ProgressEvent) -> Void) async throws -> TrainedAnswerer? {
///     let started = ContinuousClock.now
///     let table = LookupTable(train)                    // a TextGenerator
///     let seconds = (ContinuousClock.now - started) / .seconds(1)
///     return TrainedAnswerer(generator: table, training: FineTuneOutcome(
///         artifact: table.identity, wallSeconds: seconds, trainedTokens: 0, steps: 1, trainLoss: [], validationLoss: []))
/// }
/// ```
public struct TrainedAnswerer: Sendable {
    /// Answers requests; its `identity` is part of every cache key of its answers.
    public let generator: any TextGenerator
    /// The training: wall time (the one-off cost), steps, loss curves and notes for the report.
    public let training: FineTuneOutcome
    /// Whether answering sends data off this machine (a report column). Default: false.
    public let dataLeavesMachine: Bool

    public init(generator: any TextGenerator, training: FineTuneOutcome, dataLeavesMachine: Bool = false) {
        self.generator = generator
        self.training = training
        self.dataLeavesMachine = dataLeavesMachine
    }
}

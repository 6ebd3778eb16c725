import Foundation
import TallyCore
import TallyTensor

extension SwiftTrainer {
    /// Fine-tunes a loaded model (LoRA, prompt tuning or every weight) on chat-formatted examples and writes
    /// the result into the request's work directory.
    ///
    /// Entry point for the `swift-trainer` fine-tuner:
    ///
    /// ```swift
    /// let outcome = try await SwiftTrainer.Trainer.run(
    ///     model: model, tokenizer: tokenizer, template: template, request: request,
    ///     progress: { event in print(event) })
    /// // outcome.artifact: <workDirectory>/adapter (PEFT layout) or <workDirectory>/model (HF directory)
    /// ```
    ///
    /// The run is repeatable from `request.options.seed`, checkpoints into
    /// `<workDirectory>/checkpoint` (atomically) and resumes from there when called again with
    /// the same job; a finished job returns its recorded outcome without training again.
    public enum Trainer {
        /// Knobs that are not part of a recipe's training options.
        public struct Settings: Sendable {
            /// `base_model_name_or_path` written into the adapter config (a model name or path).
            public var baseModelName: String?
            /// Tokenizer files copied into a saved model directory (`tokenizer.json`, ...).
            public var tokenizerFiles: [URL]
            /// Written into a saved model directory where `tokenizerFiles` provide no
            /// tokenizer (a GGUF base model), with the chat template and stop tokens.
            public var exportTokenizer: ExportTokenizer?
            /// Examples are cut to this many tokens.
            public var maxSequenceLength: Int
            /// Write a checkpoint every this many optimiser steps (0: only at evaluations, on
            /// cancellation and at the end).
            public var checkpointEvery: Int
            /// The pad id in batches (never attended to or scored).
            public var padID: Int

            /// Makes settings.
            public init(baseModelName: String? = nil, tokenizerFiles: [URL] = [], maxSequenceLength: Int = 512, checkpointEvery: Int = 50, padID: Int = 0) {
                self.baseModelName = baseModelName
                self.tokenizerFiles = tokenizerFiles
                self.maxSequenceLength = maxSequenceLength
                self.checkpointEvery = checkpointEvery
                self.padID = padID
            }
        }

        /// Fine-tunes `model` as `request` says and writes the artifact into
        /// `request.workDirectory` (`adapter/` for LoRA and prompt tuning in PEFT's layout,
        /// `model/` for a full fine-tune as a Hugging Face directory).
        /// - Parameters:
        ///   - model: the base model, loaded trainable or not (the trainer sets what trains);
        ///     it is modified in place (adapters or a soft prompt attached, or weights updated).
        ///   - tokenizer: the model's tokenizer.
        ///   - template: the model's chat template.
        ///   - request: method, options, examples, work directory and job key.
        ///   - settings: sequence length, checkpoint interval, what to record in the artifact.
        ///   - progress: `.started`, `.advanced` (step, loss, tokens/s, ETA), `.note`, `.finished`.
        /// - Returns: the artifact's path, losses, wall time, tokens, peak memory and notes
        ///   (including a labelled estimate of the same job on a rented H100).
        /// - Throws: `TallyError` (`invalid-recipe`, `invalid-data`, `io`), or
        ///   `CancellationError` after checkpointing when the task is cancelled.
        public static func run(
            model: any CausalLanguageModel, tokenizer: any Tokenizer, template: any ChatPromptFormatter,
            request: FineTuneRequest, settings: Settings = Settings(),
            progress: @escaping @Sendable (ProgressEvent) -> Void = { _ in }
        ) async throws -> FineTuneOutcome {
            let train = try request.train.enumerated().map { i, e in
                do {
                    return try TokenizedExample(e, tokenizer: tokenizer, template: template, maxLength: settings.maxSequenceLength)
                } catch {
                    throw TallyError(code: .invalidData, message: "training example \(i + 1): the chat template cannot render it: \(error)", underlying: error)
                }
            }
            let validation = try request.validation.enumerated().map { i, e in
                do {
                    return try TokenizedExample(e, tokenizer: tokenizer, template: template, maxLength: settings.maxSequenceLength)
                } catch {
                    throw TallyError(code: .invalidData, message: "validation example \(i + 1): the chat template cannot render it: \(error)", underlying: error)
                }
            }
            let job = try TrainingJob(model: model, method: request.method, options: request.options, train: train, validation: validation,
                                      workDirectory: request.workDirectory, jobKey: request.jobKey, settings: settings, tokenizer: tokenizer)
            return try job.run(progress: progress)
        }
    }
}

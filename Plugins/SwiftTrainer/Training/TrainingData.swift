import Foundation
import TallyCore
import TallyTensor

/// Renders a chat as the model's prompt text (the chat template). The formats helper's
/// `ChatTemplate` satisfies it with a one-line conformance.
public protocol ChatPromptFormatter {
    /// The text of `messages`, ending with the assistant's turn header when
    /// `addGenerationPrompt` is true.
    /// - Throws: when the template cannot render the messages.
    func render(messages: [ChatMessage], addGenerationPrompt: Bool) throws -> String
}

/// One tokenised training example: the ids and, per position, the label (the id itself on
/// answer tokens, -100 on prompt tokens).
public struct TokenizedExample: Sendable, Hashable {
    /// The prompt and answer ids.
    public let ids: [Int]
    /// `ids` with prompt positions replaced by -100.
    public let labels: [Int]
    /// The number of scored (answer) tokens.
    public var scoredCount: Int { labels.lazy.filter { $0 != Tape.ignoreIndex }.count }

    /// Makes an example from ids and labels of equal length.
    public init(ids: [Int], labels: [Int]) {
        precondition(ids.count == labels.count, "TokenizedExample: \(ids.count) ids but \(labels.count) labels")
        self.ids = ids
        self.labels = labels
    }

    /// Tokenises a chat-formatted example: the prompt is the chat rendered with the
    /// generation prompt; the answer is the rest of the chat rendered with the completion as
    /// the assistant's message (so it ends with the template's end-of-turn marker), or the
    /// completion followed by EOS when the template does not extend the prompt. Prompt
    /// tokens are masked; a too-long example loses prompt tokens from the start, then answer
    /// tokens from the end.
    /// - Parameters:
    ///   - example: the messages and completion.
    ///   - tokenizer: the model's tokenizer.
    ///   - template: the model's chat template.
    ///   - maxLength: the longest sequence kept.
    /// - Throws: what the template throws.
    public init(_ example: TrainingExample, tokenizer: any Tokenizer, template: any ChatPromptFormatter, maxLength: Int) throws {
        let prompt = try template.render(messages: example.messages, addGenerationPrompt: true)
        let full = try template.render(messages: example.messages + [.assistant(example.completion)], addGenerationPrompt: false)
        var promptIDs = tokenizer.encode(prompt, addSpecialTokens: false)
        var answerIDs: [Int]
        if full.hasPrefix(prompt), full.count > prompt.count {
            answerIDs = tokenizer.encode(String(full.dropFirst(prompt.count)), addSpecialTokens: false)
        } else {
            answerIDs = tokenizer.encode(example.completion, addSpecialTokens: false)
            if let eos = tokenizer.eosTokenIDs.first { answerIDs.append(eos) }
        }
        let limit = max(2, maxLength)
        if answerIDs.count >= limit { answerIDs = Array(answerIDs.prefix(limit - 1)) }
        if promptIDs.count + answerIDs.count > limit { promptIDs = Array(promptIDs.suffix(limit - answerIDs.count)) }
        self.init(ids: promptIDs + answerIDs, labels: [Int](repeating: Tape.ignoreIndex, count: promptIDs.count) + answerIDs)
    }
}

/// A padded batch ready for ``CausalLanguageModel/loss(_:labels:tape:)``.
public struct TrainingBatch {
    /// The right-padded tokens and mask.
    public let tokens: TokenBatch
    /// Labels per position (-100 on prompt and padding).
    public let labels: [Int]
    /// Scored positions (labels that are not -100 after the first column).
    public let scoredCount: Int
    /// Real (non-padding) tokens.
    public let tokenCount: Int

    /// Pads `examples` on the right.
    /// - Parameters:
    ///   - examples: at least one example.
    ///   - padID: the id stored at padded positions.
    public init(_ examples: [TokenizedExample], padID: Int = 0) {
        let tokens = TokenBatch(rows: examples.map(\.ids), padding: .right, padID: padID)
        var labels = [Int](repeating: Tape.ignoreIndex, count: tokens.ids.count)
        var scored = 0
        for (b, e) in examples.enumerated() {
            for (t, y) in e.labels.enumerated() {
                labels[b * tokens.length + t] = y
                if t > 0 && y != Tape.ignoreIndex { scored += 1 }
            }
        }
        self.tokens = tokens
        self.labels = labels
        self.scoredCount = scored
        self.tokenCount = examples.reduce(0) { $0 + $1.ids.count }
    }
}

/// The seeded order in which a run visits its examples: epoch `e` uses its own permutation,
/// derived only from the seed and `e`, so a resumed run sees exactly the batches an
/// uninterrupted one would.
public struct DataOrder: Sendable, Hashable {
    /// The run's seed.
    public let seed: UInt64
    /// Training examples.
    public let exampleCount: Int
    /// Examples per micro-batch.
    public let batchSize: Int
    /// Micro-batches per optimiser step.
    public let accumulation: Int

    /// Makes an order.
    public init(seed: UInt64, exampleCount: Int, batchSize: Int, accumulation: Int) {
        self.seed = seed
        self.exampleCount = exampleCount
        self.batchSize = max(1, batchSize)
        self.accumulation = max(1, accumulation)
    }

    /// Micro-batches per epoch.
    public var batchesPerEpoch: Int { (exampleCount + batchSize - 1) / batchSize }
    /// Optimiser steps per epoch (the last may accumulate fewer micro-batches).
    public var stepsPerEpoch: Int { max(1, (batchesPerEpoch + accumulation - 1) / accumulation) }

    /// The permutation of example indices for `epoch`: Tally's one seeded shuffle
    /// (``SeededRandom/shuffled(_:)``) with a generator derived from the seed and the epoch.
    public func permutation(epoch: Int) -> [Int] {
        var rng = SeededRandom.derived(seed: seed, label: "tally-train-epoch-\(epoch)")
        return rng.shuffled(Array(0..<max(0, exampleCount)))
    }

    /// The micro-batches (example indices) of global optimiser step `step` (0-based).
    public func microBatches(step: Int) -> [[Int]] {
        let epoch = step / stepsPerEpoch
        let within = step % stepsPerEpoch
        let order = permutation(epoch: epoch)
        var out: [[Int]] = []
        for b in (within * accumulation)..<min((within + 1) * accumulation, batchesPerEpoch) {
            out.append(Array(order[(b * batchSize)..<min((b + 1) * batchSize, exampleCount)]))
        }
        return out
    }
}

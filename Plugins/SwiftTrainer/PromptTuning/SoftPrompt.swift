import TallyTensor

/// Trainable embeddings that a model puts before every sequence it reads: the virtual tokens
/// of prompt tuning (PEFT's `PromptEmbedding`).
///
/// Attached to a model through ``CausalLanguageModel/softPrompt``, the prompt takes part in
/// every pass that starts a sequence, as PEFT's `PeftModelForCausalLM` does: the virtual
/// tokens' embeddings come before the token embeddings (before any left padding), they are
/// always attended to, they take positions `0..<count` (the sequence's own tokens follow at
/// `count...`), and their labels are -100. A KV cache keeps them after the first pass.
///
/// ```swift
/// model.softPrompt = SoftPrompt(embeddings: Tensor.randomNormal([8, model.config.hiddenSize], std: 1, seed: 0, requiresGrad: true))
/// let logits = model.logits(batch)   // [batch * (8 + length), vocab]
/// ```
public final class SoftPrompt {
    /// `[count, hidden]`.
    public let embeddings: Tensor

    /// Wraps `[count, hidden]` embeddings.
    public init(embeddings: Tensor) {
        self.embeddings = embeddings
    }

    /// The number of virtual tokens.
    public var count: Int { embeddings.rows }
}

extension CausalLanguageModel {
    /// The rows that ``hiddenStates(_:tape:cache:)`` puts before each sequence's own: the
    /// soft prompt's length on a pass that starts the sequences (no cache, or an empty one),
    /// otherwise 0 (the cache already holds the prompt).
    public func prefixLength(cache: KVCache?) -> Int {
        guard let softPrompt, (cache?.length ?? 0) == 0 else { return 0 }
        return softPrompt.count
    }

    /// What a model's forward pass reads: the batch with the soft prompt's virtual tokens
    /// before each row (when this pass starts the sequences), and their embeddings before the
    /// token embeddings.
    /// - Parameters:
    ///   - batch: the tokens.
    ///   - cache: the KV cache of the pass, if any.
    ///   - tape: records the ops.
    ///   - tokenEmbeddings: the embedding rows of `batch.ids`.
    /// - Returns: the batch the layers see (its mask and positions cover the virtual tokens)
    ///   and its input embeddings `[batch * length, hidden]`.
    func inputs(_ batch: TokenBatch, cache: KVCache?, tape: Tape, tokenEmbeddings: Tensor) -> (batch: TokenBatch, embeddings: Tensor) {
        let prefix = prefixLength(cache: cache)
        guard prefix > 0, let softPrompt else { return (batch, tokenEmbeddings) }
        return (batch.prepending(prefix), tape.prependRows(softPrompt.embeddings, to: tokenEmbeddings, groups: batch.batch))
    }
}

extension TokenBatch {
    /// The batch with `count` real tokens (id `placeholder`) before every row, padding
    /// included: positions then count the added tokens first.
    public func prepending(_ count: Int, placeholder: Int = 0) -> TokenBatch {
        let newLength = length + count
        var newIDs = [Int](repeating: placeholder, count: batch * newLength)
        var newMask = [Bool](repeating: true, count: batch * newLength)
        for b in 0..<batch {
            for t in 0..<length {
                newIDs[b * newLength + count + t] = ids[b * length + t]
                newMask[b * newLength + count + t] = mask[b * length + t]
            }
        }
        return TokenBatch(ids: newIDs, mask: newMask, batch: batch, length: newLength)
    }
}

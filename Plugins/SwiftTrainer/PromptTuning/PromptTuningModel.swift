import Foundation
import TallyCore
import TallyTensor

/// Prompt-tuning settings as PEFT's `PromptTuningConfig` holds them.
public struct PromptTuningConfiguration: Sendable, Hashable, Codable {
    /// How the virtual tokens' embeddings start (`prompt_tuning_init`).
    public enum Initialization: Sendable, Hashable, Codable {
        /// `RANDOM`: standard normal values, as a fresh `torch.nn.Embedding`.
        case random
        /// `TEXT`: the embeddings of this text's tokens (with the tokenizer's special tokens,
        /// as `tokenizer(text)` gives them), repeated or cut to the number of virtual tokens.
        case text(String)
    }

    /// `num_virtual_tokens`.
    public var numVirtualTokens: Int
    /// `prompt_tuning_init` and `prompt_tuning_init_text`.
    public var initialization: Initialization

    /// Makes a configuration.
    public init(numVirtualTokens: Int = 8, initialization: Initialization = .random) {
        self.numVirtualTokens = numVirtualTokens
        self.initialization = initialization
    }

    /// The configuration a recipe's ``PromptTuningOptions`` describe.
    public init(_ options: PromptTuningOptions) {
        self.init(numVirtualTokens: options.numVirtualTokens, initialization: options.initText.map { .text($0) } ?? .random)
    }

    /// `prompt_tuning_init_text`, if any.
    public var initText: String? {
        if case .text(let text) = initialization { return text }
        return nil
    }

    /// Checks the values.
    /// - Throws: `TallyError` (`invalid-recipe`) naming the bad field.
    public func validate() throws {
        try PromptTuningOptions(numVirtualTokens: numVirtualTokens, initText: initText).validate()
    }

    /// PEFT's TEXT initialisation: `ids` repeated until there are enough, then cut to
    /// `count`.
    /// - Returns: `count` ids, or nil when `ids` is empty.
    public static func initialTokenIDs(_ ids: [Int], count: Int) -> [Int]? {
        guard !ids.isEmpty else { return nil }
        var out: [Int] = []
        out.reserveCapacity(count + ids.count)
        while out.count < count { out += ids }
        return Array(out.prefix(count))
    }
}

/// A model with a trainable soft prompt before every input: the PEFT `PeftModelForCausalLM`
/// with a `PROMPT_TUNING` config.
///
/// Attaching the prompt freezes every base parameter; only the `[numVirtualTokens, hidden]`
/// embeddings train.
///
/// ```swift
/// let tuning = try PromptTuningModel(base: model, configuration: .init(numVirtualTokens: 8, initialization: .text("Classify the review:")), tokenizer: tokenizer, seed: 0)
/// let loss = model.loss(batch, labels: labels, tape: tape)   // the virtual tokens take part
/// ```
public final class PromptTuningModel {
    /// PEFT's in-memory name of the prompt embeddings (`grads` dumps use it; on disk it is
    /// ``PEFTPromptTuning/weightKey``).
    public static let parameterName = "prompt_encoder.default.embedding.weight"

    /// The model the prompt is attached to.
    public let base: any CausalLanguageModel
    /// The settings.
    public let configuration: PromptTuningConfiguration
    /// The virtual tokens.
    public let prompt: SoftPrompt

    /// Attaches fresh virtual tokens to `base`.
    /// - Parameters:
    ///   - base: the model; its parameters are frozen.
    ///   - configuration: how many virtual tokens and how they start.
    ///   - tokenizer: the model's tokenizer (needed for `.text` initialisation).
    ///   - seed: seeds `.random` initialisation.
    /// - Throws: `TallyError` (`invalid-recipe`) for bad settings, an init text without a
    ///   tokenizer or with no tokens, or ids outside the vocabulary; (`invalid-model`) when
    ///   the model already carries a soft prompt.
    public convenience init(base: any CausalLanguageModel, configuration: PromptTuningConfiguration, tokenizer: (any Tokenizer)?, seed: UInt64) throws {
        try configuration.validate()
        let n = configuration.numVirtualTokens, d = base.config.hiddenSize
        let embeddings: Tensor
        switch configuration.initialization {
        case .random:
            embeddings = Tensor.randomNormal([n, d], std: 1, seed: seed, requiresGrad: true)
        case .text(let text):
            guard let tokenizer else {
                throw TallyError(code: .invalidRecipe, message: "prompt tuning from init_text needs the model's tokenizer")
            }
            guard let ids = PromptTuningConfiguration.initialTokenIDs(tokenizer.encode(text, addSpecialTokens: true), count: n) else {
                throw TallyError(code: .invalidRecipe, message: "init_text '\(text)' has no tokens; give a text that describes the task, or leave it out for a random start")
            }
            let table = base.tokenEmbedding
            var values = [Float](repeating: 0, count: n * d)
            for (i, id) in ids.enumerated() {
                guard id >= 0, id < table.rows else {
                    throw TallyError(code: .invalidRecipe, message: "init_text token id \(id) is outside the model's vocabulary of \(table.rows); is the tokenizer the model's own?")
                }
                for c in 0..<d { values[i * d + c] = table.data[id * d + c] }
            }
            embeddings = try Self.tensor([n, d], values)
        }
        try self.init(base: base, configuration: configuration, embeddings: embeddings)
    }

    /// Attaches the given embeddings (`[numVirtualTokens, hidden]`, trainable).
    init(base: any CausalLanguageModel, configuration: PromptTuningConfiguration, embeddings: Tensor) throws {
        guard base.softPrompt == nil else {
            throw TallyError(code: .invalidModel, message: "the model already carries a soft prompt; load the base model again before adding another")
        }
        base.setTrainable(false)
        embeddings.requiresGrad = true
        let prompt = SoftPrompt(embeddings: embeddings)
        base.softPrompt = prompt
        self.base = base
        self.configuration = configuration
        self.prompt = prompt
    }

    static func tensor(_ shape: [Int], _ values: [Float]) throws -> Tensor {
        do {
            return try Tensor(shape: shape, values: values, requiresGrad: true)
        } catch {
            throw TallyError(code: .invalidModel, message: "prompt embeddings: \(error)", underlying: error)
        }
    }

    /// The trainable tensor with PEFT's in-memory name.
    public var namedParameters: [(name: String, tensor: Tensor)] { [(Self.parameterName, prompt.embeddings)] }

    /// The number of trainable values.
    public var trainableParameterCount: Int { prompt.embeddings.count }

    /// Removes the prompt, restoring the base model.
    public func unload() {
        if base.softPrompt === prompt { base.softPrompt = nil }
    }
}

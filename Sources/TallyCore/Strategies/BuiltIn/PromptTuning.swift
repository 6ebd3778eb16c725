import Foundation

// The built-in `prompt-tuning` kind, written against the public `StrategyKind` API only: it
// trains soft-prompt embeddings on the training split through the backend's fine-tuner
// (training method `prompt-tuning`), then answers with the zero-shot prompt.

extension FineTuneMethod {
    /// The identifier of prompt tuning (PEFT's `PROMPT_TUNING`: trainable virtual-token
    /// embeddings before every input, the model frozen).
    public static let promptTuningName = "prompt-tuning"

    /// Prompt tuning with these options.
    public static func promptTuning(_ options: PromptTuningOptions) -> FineTuneMethod {
        FineTuneMethod(name: promptTuningName, parameters: options.parameters)
    }

    /// The prompt-tuning options of a `prompt-tuning` method, nil for any other method.
    /// - Throws: `TallyError(.invalidRecipe)` when a parameter has the wrong type or range.
    public func promptTuningOptions() throws -> PromptTuningOptions? {
        guard name == Self.promptTuningName else { return nil }
        return try PromptTuningOptions(parameters: parameters)
    }
}

/// Prompt-tuning settings with PEFT's meaning (`PromptTuningConfig`).
public struct PromptTuningOptions: Codable, Sendable, Hashable {
    /// The most virtual tokens a recipe may ask for: each one is a position of every
    /// training and inference pass.
    public static let maxVirtualTokens = 256

    /// `num_virtual_tokens`: trainable embeddings put before every input.
    public let numVirtualTokens: Int
    /// `prompt_tuning_init_text`: when set, the embeddings start as those of this text's
    /// tokens, repeated or cut to `numVirtualTokens` (PEFT's TEXT init); when nil they start
    /// random (PEFT's RANDOM init, standard normal).
    public let initText: String?

    public init(numVirtualTokens: Int = 8, initText: String? = nil) {
        self.numVirtualTokens = numVirtualTokens
        self.initText = initText
    }

    enum CodingKeys: String, CodingKey {
        case numVirtualTokens = "num_virtual_tokens"
        case initText = "init_text"
    }

    /// The recipe keys of prompt tuning (also the method's parameter names).
    public static let keys: [StrategyKey] = [
        .int("num_virtual_tokens", default: 8, min: 1, max: maxVirtualTokens, help: "trainable virtual tokens put before every input"),
        .string("init_text", help: "start the virtual tokens as the embeddings of this text (repeated or cut to num_virtual_tokens); random when left out"),
    ]

    /// The recipe keys of the `prompt-tuning` kind: its own and the training options, with a
    /// learning rate suited to soft prompts (PEFT's prompt-tuning guide trains with 3e-2).
    public static var kindKeys: [StrategyKey] {
        keys + TrainingOptions.keys.map { key in
            guard key.name == "learning_rate" else { return key }
            return .number("learning_rate", default: 3e-2, min: .init(0, exclusive: true), help: "peak learning rate (AdamW); soft prompts need a larger one than LoRA")
        }
    }

    /// The options as method parameters (the recipe keys' names and values).
    public var parameters: [String: SettingValue] {
        var out: [String: SettingValue] = ["num_virtual_tokens": .int(numVirtualTokens)]
        if let initText { out["init_text"] = .string(initText) }
        return out
    }

    /// Checks the values.
    /// - Throws: `TallyError(.invalidRecipe)` naming the bad value.
    public func validate() throws {
        guard (1...Self.maxVirtualTokens).contains(numVirtualTokens) else {
            throw TallyError(code: .invalidRecipe, message: "num_virtual_tokens must be between 1 and \(Self.maxVirtualTokens), got \(numVirtualTokens)")
        }
        if let initText, initText.isEmpty {
            throw TallyError(code: .invalidRecipe, message: "init_text is empty; give a text that describes the task, or leave it out for a random start")
        }
    }

    /// Reads options from method parameters or strategy settings; absent ones take defaults.
    /// - Throws: `TallyError(.invalidRecipe)` when a value has the wrong type or range.
    public init(parameters: [String: SettingValue]) throws {
        var count = PromptTuningOptions().numVirtualTokens
        if let value = parameters["num_virtual_tokens"] {
            guard let n = value.intValue else {
                throw TallyError(code: .invalidRecipe, message: "prompt-tuning parameter 'num_virtual_tokens' has the wrong type (\(value))")
            }
            count = n
        }
        var text: String?
        if let value = parameters["init_text"] {
            guard let t = value.stringValue else {
                throw TallyError(code: .invalidRecipe, message: "prompt-tuning parameter 'init_text' has the wrong type (\(value))")
            }
            text = t
        }
        self.init(numVirtualTokens: count, initText: text)
        try validate()
    }
}

/// `prompt-tuning`: soft-prompt embeddings trained on the training split via the backend's
/// fine-tuner (the model stays frozen), then zero-shot prompts.
public struct PromptTuningKind: StrategyKind {
    public let name = "prompt-tuning"
    public let summary = "prompt tuning (trainable virtual tokens, model frozen) on the training split via the backend's fine-tuner, then zero-shot prompts"
    public var keys: [StrategyKey] { PromptTuningOptions.kindKeys }
    public var trainingMethod: String? { FineTuneMethod.promptTuningName }

    public init() {}

    public func check(_ spec: StrategySpec, context: StrategyCheckContext) -> [ConfigIssue] {
        if let text = spec.settings.string("init_text"), text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            return [ConfigIssue(key: "init_text", "init_text is empty; give a text that describes the task, or leave it out for a random start")]
        }
        return []
    }

    public func makeStrategy(_ spec: StrategySpec, context: StrategyContext) throws -> any Strategy {
        let options = try PromptTuningOptions(parameters: spec.settings.values)
        return FineTuningStrategy(spec: spec, context: context, method: .promptTuning(options))
    }
}

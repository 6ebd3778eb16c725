import Foundation

// The built-in fine-tuning kinds, `lora` and `full-finetune`, written against the public
// `StrategyKind` API only. Both train on the training split with the zero-shot prompt as
// the chat and the target as the completion, then answer with the zero-shot prompt.

extension FineTuneMethod {
    /// The identifier of LoRA fine-tuning (PEFT's meaning of every parameter).
    public static let loraName = "lora"
    /// The identifier of full fine-tuning (every weight trained).
    public static let fullName = "full-finetune"

    /// LoRA with these options.
    public static func lora(_ options: LoRAOptions) -> FineTuneMethod {
        FineTuneMethod(name: loraName, parameters: options.parameters)
    }

    /// Full fine-tuning.
    public static let full = FineTuneMethod(name: fullName)

    /// The LoRA options of a `lora` method, nil for any other method.
    /// - Throws: `TallyError(.invalidRecipe)` when a parameter has the wrong type.
    public func loraOptions() throws -> LoRAOptions? {
        guard name == Self.loraName else { return nil }
        return try LoRAOptions(parameters: parameters)
    }
}

/// LoRA settings with PEFT's meaning.
public struct LoRAOptions: Codable, Sendable, Hashable {
    public let rank: Int
    public let alpha: Double
    public let dropout: Double
    /// Module names such as `q_proj`, or `["all-linear"]`.
    public let targets: [String]
    /// rsLoRA scaling alpha/sqrt(r) instead of alpha/r.
    public let useRSLoRA: Bool

    public init(rank: Int = 8, alpha: Double = 16, dropout: Double = 0, targets: [String] = ["all-linear"], useRSLoRA: Bool = false) {
        self.rank = rank
        self.alpha = alpha
        self.dropout = dropout
        self.targets = targets
        self.useRSLoRA = useRSLoRA
    }

    enum CodingKeys: String, CodingKey {
        case rank, alpha, dropout, targets
        case useRSLoRA = "use_rslora"
    }

    /// The recipe keys of LoRA settings (also the `lora` method's parameter names).
    public static let keys: [StrategyKey] = [
        .int("rank", default: 8, min: 1, help: "LoRA rank r of the low-rank update"),
        .number("alpha", default: 16, min: .init(0, exclusive: true), help: "LoRA scaling numerator (scale alpha/r, or alpha/sqrt(r) with use_rslora)"),
        .number("dropout", default: 0, min: .init(0), max: .init(1, exclusive: true), help: "dropout on the LoRA input during training"),
        .strings("targets", default: ["all-linear"], help: "module names to adapt (q_proj, v_proj, ...) or all-linear"),
        .bool("use_rslora", default: false, help: "rank-stabilised scaling alpha/sqrt(r)"),
    ]

    /// The options as method parameters (the recipe keys' names and values).
    public var parameters: [String: SettingValue] {
        ["rank": .int(rank), "alpha": .number(alpha), "dropout": .number(dropout), "targets": .list(targets), "use_rslora": .bool(useRSLoRA)]
    }

    /// Reads options from method parameters or strategy settings; absent ones take defaults.
    /// - Throws: `TallyError(.invalidRecipe)` when a value has the wrong type.
    public init(parameters: [String: SettingValue]) throws {
        let defaults = LoRAOptions()
        func read<T>(_ key: String, _ get: (SettingValue) -> T?, _ fallback: T) throws -> T {
            guard let value = parameters[key] else { return fallback }
            guard let typed = get(value) else {
                throw TallyError(code: .invalidRecipe, message: "LoRA parameter '\(key)' has the wrong type (\(value))")
            }
            return typed
        }
        self.init(
            rank: try read("rank", \.intValue, defaults.rank), alpha: try read("alpha", \.doubleValue, defaults.alpha),
            dropout: try read("dropout", \.doubleValue, defaults.dropout), targets: try read("targets", \.listValue, defaults.targets),
            useRSLoRA: try read("use_rslora", \.boolValue, defaults.useRSLoRA))
    }
}

extension TrainingOptions {
    /// The recipe keys of the optimiser and schedule, shared by the fine-tuning kinds.
    public static let keys: [StrategyKey] = {
        let d = TrainingOptions()
        return [
            .number("epochs", default: d.epochs, min: .init(0, exclusive: true), help: "passes over the training split"),
            .int("max_steps", min: 1, help: "stop after this many optimiser steps (overrides epochs)"),
            .number("learning_rate", default: d.learningRate, min: .init(0, exclusive: true), help: "peak learning rate (AdamW)"),
            .int("batch_size", default: d.batchSize, min: 1, help: "examples per micro-batch"),
            .int("gradient_accumulation", default: d.gradientAccumulation, min: 1, help: "micro-batches per optimiser step"),
            .number("weight_decay", default: d.weightDecay, min: .init(0), help: "AdamW weight decay"),
            .int("warmup_steps", default: d.warmupSteps, min: 0, help: "linear warm-up steps"),
            .choice("schedule", ["constant", "linear", "cosine"], default: d.schedule, help: "learning-rate schedule after warm-up"),
            .number("max_grad_norm", default: d.maxGradNorm, min: .init(0, exclusive: true), help: "gradient clipping norm"),
            .int("eval_every", default: d.evalEvery, min: 0, help: "validation loss every N steps (0: once per epoch)"),
            .int("early_stopping_patience", default: d.earlyStoppingPatience, min: 0, help: "stop after N evaluations without improvement (0: never)"),
            .number("learning_rate_multiplier", min: .init(0, exclusive: true), help: "hosted fine-tuning: multiplier on the provider's learning rate"),
        ]
    }()

    /// Options from a strategy's settings (the keys above), trained with `seed`.
    public init(settings: StrategySettings, seed: UInt64) {
        let d = TrainingOptions()
        self.init(
            epochs: settings.double("epochs") ?? d.epochs, maxSteps: settings.int("max_steps"),
            learningRate: settings.double("learning_rate") ?? d.learningRate, batchSize: settings.int("batch_size") ?? d.batchSize,
            gradientAccumulation: settings.int("gradient_accumulation") ?? d.gradientAccumulation,
            weightDecay: settings.double("weight_decay") ?? d.weightDecay, warmupSteps: settings.int("warmup_steps") ?? d.warmupSteps,
            schedule: settings.string("schedule") ?? d.schedule, maxGradNorm: settings.double("max_grad_norm") ?? d.maxGradNorm,
            evalEvery: settings.int("eval_every") ?? d.evalEvery, earlyStoppingPatience: settings.int("early_stopping_patience") ?? d.earlyStoppingPatience,
            seed: seed, learningRateMultiplier: settings.double("learning_rate_multiplier"))
    }
}

/// `lora`: a LoRA fine-tune through the backend's fine-tuner, then zero-shot prompts.
public struct LoRAKind: StrategyKind {
    public let name = "lora"
    public let summary = "LoRA fine-tune on the training split via the backend's fine-tuner, then zero-shot prompts"
    public var keys: [StrategyKey] { LoRAOptions.keys + TrainingOptions.keys }
    public var trainingMethod: String? { FineTuneMethod.loraName }

    public init() {}

    public func makeStrategy(_ spec: StrategySpec, context: StrategyContext) throws -> any Strategy {
        try FineTuningStrategy(spec: spec, context: context, method: .lora(LoRAOptions(parameters: spec.settings.values)))
    }
}

/// `full-finetune`: every weight trained through the backend's fine-tuner, then zero-shot prompts.
public struct FullFineTuneKind: StrategyKind {
    public let name = "full-finetune"
    public let summary = "full fine-tune on the training split via the backend's fine-tuner, then zero-shot prompts"
    public var keys: [StrategyKey] { TrainingOptions.keys }
    public var trainingMethod: String? { FineTuneMethod.fullName }

    public init() {}

    public func makeStrategy(_ spec: StrategySpec, context: StrategyContext) throws -> any Strategy {
        FineTuningStrategy(spec: spec, context: context, method: .full)
    }
}

/// A strategy that trains with `method` on the training split (the zero-shot chat as the
/// prompt, the target as the completion) and answers with the zero-shot prompt. Kinds from
/// outside Tally can reuse it with a method of their own.
public struct FineTuningStrategy: Strategy {
    public let spec: StrategySpec
    public let task: TaskSpec
    public let method: FineTuneMethod
    public let options: TrainingOptions
    let zeroShot: ZeroShotStrategy
    let train: [Example]
    let validation: [Example]

    /// - Parameters:
    ///   - context: the training rows, validation rows and seed (the training seed).
    ///   - method: what to ask the backend's fine-tuner for.
    public init(spec: StrategySpec, context: StrategyContext, method: FineTuneMethod) {
        self.spec = spec
        self.task = context.task
        self.method = method
        self.options = TrainingOptions(settings: spec.settings, seed: context.seed)
        self.zeroShot = ZeroShotStrategy(spec: spec, context: context)
        self.train = context.train
        self.validation = context.validation
    }

    public var maxTokens: Int { zeroShot.maxTokens }

    /// It trains on every training row.
    public var labelledExamples: Int { train.count }

    public func messages(for example: Example) -> [ChatMessage] { zeroShot.messages(for: example) }

    /// Supervised examples: the zero-shot chat and the target as completion.
    public func trainingExamples(from rows: [Example]) -> [TrainingExample] {
        rows.map { TrainingExample(messages: messages(for: $0), completion: $0[task.target] ?? "") }
    }

    public func fineTuneRequest(baseIdentity: String, workRoot: URL) throws -> FineTuneRequest? {
        let trainSet = trainingExamples(from: train)
        let validationSet = trainingExamples(from: validation)
        let key = try Self.jobKey(baseIdentity: baseIdentity, method: method, options: options, train: trainSet, validation: validationSet)
        return FineTuneRequest(
            method: method, options: options, train: trainSet, validation: validationSet,
            workDirectory: workRoot.appendingPathComponent(String(key.prefix(16)), isDirectory: true), jobKey: key)
    }

    struct JobIdentity: Encodable {
        let base: String
        let method: FineTuneMethod
        let options: TrainingOptions
        let train: [TrainingExample]
        let validation: [TrainingExample]
    }

    /// SHA-256 (hex) over the base model identity, method, options and data: equal keys
    /// mean the same job, so a finished one is never run again.
    public static func jobKey(baseIdentity: String, method: FineTuneMethod, options: TrainingOptions, train: [TrainingExample], validation: [TrainingExample]) throws -> String {
        let identity = JobIdentity(base: baseIdentity, method: method, options: options, train: train, validation: validation)
        return SHA256.hexDigest(of: Array(try CanonicalJSON.data(identity)))
    }
}

extension CostModel {
    /// Throughput of the Python stack (transformers + PEFT, bf16 autocast, sequence 512) on
    /// one H100, measured for the reference set shipped with the project brief
    /// (`gpu-throughput-h100.json`), for the built-in training methods. Used only for the
    /// labelled GPU estimate.
    public static let h100Throughput: [GPUThroughput] = [
        GPUThroughput(shape: "SmolLM2-135M", matches: ["135m"], method: FineTuneMethod.loraName, label: "LoRA", tokensPerSecond: 48_928),
        GPUThroughput(shape: "SmolLM2-135M", matches: ["135m"], method: FineTuneMethod.fullName, label: "full fine-tune", tokensPerSecond: 67_957),
        GPUThroughput(shape: "SmolLM2-360M", matches: ["360m"], method: FineTuneMethod.loraName, label: "LoRA", tokensPerSecond: 44_570),
        GPUThroughput(shape: "SmolLM2-360M", matches: ["360m"], method: FineTuneMethod.fullName, label: "full fine-tune", tokensPerSecond: 66_674),
        GPUThroughput(shape: "Llama-3.2-1B", matches: ["1b", "1.2b"], method: FineTuneMethod.loraName, label: "LoRA", tokensPerSecond: 35_132),
        GPUThroughput(shape: "Llama-3.2-1B", matches: ["1b", "1.2b"], method: FineTuneMethod.fullName, label: "full fine-tune", tokensPerSecond: 36_309),
    ]
}

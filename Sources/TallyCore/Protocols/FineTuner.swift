import Foundation

/// One supervised training example: the chat that precedes the answer, and the answer the
/// model should learn to give. Loss is computed on the answer tokens only.
public struct TrainingExample: Codable, Sendable, Hashable {
    public let messages: [ChatMessage]
    public let completion: String

    public init(messages: [ChatMessage], completion: String) {
        self.messages = messages
        self.completion = completion
    }
}

/// How to adapt the weights: an open identifier that a strategy kind asks a backend for
/// (`BackendPlugin.fineTuningMethods(for:)` lists the ones a backend can run), and the
/// method's parameters as the kind declared them.
///
/// The built-in kinds ask for `FineTuneMethod.lora(_:)` and `FineTuneMethod.full`; a
/// plugin may offer methods of its own under any other name.
public struct FineTuneMethod: Codable, Sendable, Hashable, CustomStringConvertible {
    /// The method's identifier (`lora`, `full-finetune`, or a plugin's own).
    public let name: String
    /// Its parameters (for LoRA: rank, alpha, dropout, targets, use_rslora).
    public let parameters: [String: SettingValue]

    public init(name: String, parameters: [String: SettingValue] = [:]) {
        self.name = name
        self.parameters = parameters
    }

    public var description: String { name }
}

/// Optimiser and schedule settings shared by every fine-tuner. Hosted fine-tuners use what
/// their service supports (epochs, batch size, learning-rate multiplier) and ignore the rest.
public struct TrainingOptions: Codable, Sendable, Hashable {
    public var epochs: Double
    /// Stops after this many optimiser steps when set (overrides epochs).
    public var maxSteps: Int?
    public var learningRate: Double
    public var batchSize: Int
    public var gradientAccumulation: Int
    public var weightDecay: Double
    public var warmupSteps: Int
    /// constant | linear | cosine
    public var schedule: String
    public var maxGradNorm: Double
    /// Evaluate validation loss every N steps (0: once per epoch).
    public var evalEvery: Int
    /// Stop after this many evaluations without improvement (0: never).
    public var earlyStoppingPatience: Int
    public var seed: UInt64
    /// Hosted services: multiplier on the provider's default learning rate.
    public var learningRateMultiplier: Double?

    public init(
        epochs: Double = 1, maxSteps: Int? = nil, learningRate: Double = 1e-4, batchSize: Int = 8,
        gradientAccumulation: Int = 1, weightDecay: Double = 0, warmupSteps: Int = 0,
        schedule: String = "linear", maxGradNorm: Double = 1.0, evalEvery: Int = 0,
        earlyStoppingPatience: Int = 0, seed: UInt64 = 0, learningRateMultiplier: Double? = nil
    ) {
        self.epochs = epochs
        self.maxSteps = maxSteps
        self.learningRate = learningRate
        self.batchSize = batchSize
        self.gradientAccumulation = gradientAccumulation
        self.weightDecay = weightDecay
        self.warmupSteps = warmupSteps
        self.schedule = schedule
        self.maxGradNorm = maxGradNorm
        self.evalEvery = evalEvery
        self.earlyStoppingPatience = earlyStoppingPatience
        self.seed = seed
        self.learningRateMultiplier = learningRateMultiplier
    }

    enum CodingKeys: String, CodingKey {
        case epochs, schedule, seed
        case maxSteps = "max_steps"
        case learningRate = "learning_rate"
        case batchSize = "batch_size"
        case gradientAccumulation = "gradient_accumulation"
        case weightDecay = "weight_decay"
        case warmupSteps = "warmup_steps"
        case maxGradNorm = "max_grad_norm"
        case evalEvery = "eval_every"
        case earlyStoppingPatience = "early_stopping_patience"
        case learningRateMultiplier = "learning_rate_multiplier"
    }
}

/// Everything a fine-tuner needs for one job.
public struct FineTuneRequest: Sendable {
    public let method: FineTuneMethod
    public let options: TrainingOptions
    public let train: [TrainingExample]
    public let validation: [TrainingExample]
    /// A directory the fine-tuner owns for this job: checkpoints, adapters, uploaded files.
    /// It is stable across reruns of the same job, so an interrupted job can resume from it.
    public let workDirectory: URL
    /// A stable hash of everything above; fine-tuners may use it to name artifacts.
    public let jobKey: String

    public init(method: FineTuneMethod, options: TrainingOptions, train: [TrainingExample], validation: [TrainingExample], workDirectory: URL, jobKey: String) {
        self.method = method
        self.options = options
        self.train = train
        self.validation = validation
        self.workDirectory = workDirectory
        self.jobKey = jobKey
    }
}

/// One point of a loss curve.
public struct LossPoint: Codable, Sendable, Hashable {
    public let step: Int
    public let loss: Double
    public init(step: Int, loss: Double) {
        self.step = step
        self.loss = loss
    }
}

/// What a finished fine-tuning job produced and what it cost to produce it.
public struct FineTuneOutcome: Codable, Sendable, Hashable {
    /// Where the trained artifact lives: a local directory (adapter or merged model) or a
    /// hosted model id. `FineTuner.generator(for:)` turns it back into a generator.
    public let artifact: String
    public let wallSeconds: Double
    public let trainedTokens: Int
    public let steps: Int
    public let trainLoss: [LossPoint]
    public let validationLoss: [LossPoint]
    public let peakMemoryBytes: Int?
    /// Cost the provider billed (hosted) or nil; local cost is wall time x compute price.
    public let billedUSD: Double?
    /// The provider host that ran the job (hosted fine-tuning: this machine only polled, so
    /// its compute time is no measure of the cost); nil when it ran on this machine.
    public let hostedOn: String?
    /// Free-form notes for the report (e.g. "early stopped at step 40",
    /// "estimated 0.02 USD on one rented H100").
    public let notes: [String]

    public init(artifact: String, wallSeconds: Double, trainedTokens: Int, steps: Int, trainLoss: [LossPoint], validationLoss: [LossPoint], peakMemoryBytes: Int? = nil, billedUSD: Double? = nil, hostedOn: String? = nil, notes: [String] = []) {
        self.artifact = artifact
        self.wallSeconds = wallSeconds
        self.trainedTokens = trainedTokens
        self.steps = steps
        self.trainLoss = trainLoss
        self.validationLoss = validationLoss
        self.peakMemoryBytes = peakMemoryBytes
        self.billedUSD = billedUSD
        self.hostedOn = hostedOn
        self.notes = notes
    }

    enum CodingKeys: String, CodingKey {
        case artifact, steps, notes
        case wallSeconds = "wall_s"
        case trainedTokens = "trained_tokens"
        case trainLoss = "train_loss"
        case validationLoss = "validation_loss"
        case peakMemoryBytes = "peak_memory_bytes"
        case billedUSD = "billed_usd"
        case hostedOn = "hosted_on"
    }
}

/// Adapts a base model to training data.
public protocol FineTuner: Sendable {
    /// Runs (or resumes) the job and reports progress as it goes.
    func fineTune(_ request: FineTuneRequest, progress: @escaping @Sendable (ProgressEvent) -> Void) async throws -> FineTuneOutcome

    /// Reopens a finished job's artifact as a generator, without training again.
    func generator(for outcome: FineTuneOutcome) async throws -> any TextGenerator
}

import Foundation

/// `lora` and `full-finetune`: train on the training split with the zero-shot prompt as
/// the chat and the target as the completion; at prediction time, the zero-shot prompt.
/// Training is delegated to the backend plugin's `FineTuner`.
public struct FineTuningStrategy: Strategy {
    public let spec: StrategySpec
    public let task: TaskSpec
    let zeroShot: ZeroShotStrategy
    let train: [Example]
    let validation: [Example]

    public init(spec: StrategySpec, context: StrategyContext) {
        self.spec = spec
        self.task = context.task
        self.zeroShot = ZeroShotStrategy(spec: spec, context: context)
        self.train = context.train
        self.validation = context.validation
    }

    public var maxTokens: Int { zeroShot.maxTokens }

    public func messages(for example: Example) -> [ChatMessage] { zeroShot.messages(for: example) }

    /// The fine-tuning method the spec asks for.
    public var method: FineTuneMethod {
        spec.kind == "lora" ? .lora(spec.lora ?? LoRAOptions()) : .full
    }

    /// Supervised examples: the zero-shot chat and the target as completion.
    public func trainingExamples(from rows: [Example]) -> [TrainingExample] {
        rows.map { TrainingExample(messages: messages(for: $0), completion: $0[task.target] ?? "") }
    }

    public func fineTuneRequest(baseIdentity: String, workRoot: URL) throws -> FineTuneRequest? {
        let trainSet = trainingExamples(from: train)
        let validationSet = trainingExamples(from: validation)
        let key = try Self.jobKey(baseIdentity: baseIdentity, method: method, options: spec.training, train: trainSet, validation: validationSet)
        return FineTuneRequest(
            method: method, options: spec.training, train: trainSet, validation: validationSet,
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

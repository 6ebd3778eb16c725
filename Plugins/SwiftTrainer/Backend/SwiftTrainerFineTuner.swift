import Foundation
import TallyCore
import TallyTensor

/// Fine-tunes the backend's base model with the built-in trainer (LoRA, prompt tuning or all
/// weights) and
/// reopens finished jobs as generators.
///
/// Training, loading tuned models and their generators run with the fine-tuner's own
/// thread count, not the caller's.
public struct SwiftTrainerFineTuner: FineTuner {
    /// The base model file or directory.
    public let baseModel: URL
    /// The base model's identity; fine-tuned identities extend it.
    public let baseIdentity: String
    /// How tuned models keep the base's weights for generation (training uses Float32).
    public let storage: WeightStorage
    /// Requests decoded together by generators of tuned models.
    public let maxBatch: Int
    /// Threads for training and for the tuned models' generators (at least 1).
    public let threads: Int
    /// Megabytes of prefix cache of each tuned model's generator (0: off).
    public let prefixCacheMB: Int
    /// Where digests of tuned files are remembered (their identities hash them).
    public let digests: FileDigestCache

    /// Makes a fine-tuner for one base model.
    /// - Parameters:
    ///   - baseModel: the base model file or directory.
    ///   - baseIdentity: the base model's identity.
    ///   - storage: how tuned models keep the base's weights for generation (training always
    ///     uses Float32): LoRA adapters stay unmerged on quantised layers.
    ///   - maxBatch: requests decoded together by generators of tuned models.
    ///   - threads: threads for training and for the tuned models' generators.
    ///   - prefixCacheMB: megabytes of prefix cache of each tuned model's generator (0: off).
    ///   - digests: where digests of tuned files are remembered (by default in memory).
    public init(
        baseModel: URL, baseIdentity: String, storage: WeightStorage = .f32, maxBatch: Int = 8, threads: Int = 2,
        prefixCacheMB: Int = LocalTextGenerator.defaultPrefixCacheMB, digests: FileDigestCache = FileDigestCache(store: nil)
    ) {
        self.baseModel = baseModel
        self.baseIdentity = baseIdentity
        self.storage = storage
        self.maxBatch = maxBatch
        self.threads = max(1, threads)
        self.prefixCacheMB = max(0, prefixCacheMB)
        self.digests = digests
    }

    public func fineTune(_ request: FineTuneRequest, progress: @escaping @Sendable (ProgressEvent) -> Void) async throws -> FineTuneOutcome {
        try await Threading.withThreadCount(threads) {
            let local = try LocalModel.load(baseModel, trainable: request.method == .full, identity: baseIdentity)
            var settings = SwiftTrainer.Trainer.Settings(baseModelName: baseModel.lastPathComponent)
            settings.tokenizerFiles = Self.tokenizerFiles(of: baseModel)
            settings.exportTokenizer = ExportTokenizer(local)
            return try await SwiftTrainer.Trainer.run(
                model: local.model, tokenizer: local.tokenizer, template: local.template, request: request,
                settings: settings, progress: progress)
        }
    }

    public func generator(for outcome: FineTuneOutcome) async throws -> any TextGenerator {
        try LocalTextGenerator(model: loadTuned(outcome), maxBatch: maxBatch, threads: threads, prefixCacheMB: prefixCacheMB)
    }

    /// The tuned model of a finished job: base + adapter merged for speed (LoRA), base + soft
    /// prompt (prompt tuning), or the saved model directory (full fine-tune). Runs with the fine-tuner's thread count.
    /// - Throws: `TallyError` when the artifact is missing or does not fit the base model.
    public func loadTuned(_ outcome: FineTuneOutcome) throws -> LocalModel {
        try Threading.withThreadCount(threads) { try loadTunedModel(outcome) }
    }

    /// ``loadTuned(_:)`` under the caller's thread count.
    func loadTunedModel(_ outcome: FineTuneOutcome) throws -> LocalModel {
        let artifact = URL(fileURLWithPath: outcome.artifact)
        let adapterConfig = artifact.appendingPathComponent(PEFTAdapter.configFile)
        if FileManager.default.fileExists(atPath: adapterConfig.path) {
            let base = try LocalModel.load(baseModel, storage: storage, identity: baseIdentity)
            let kind: String
            switch try PEFTAdapter.apply(from: artifact, to: base.model) {
            case .lora: kind = "lora"
            case .promptTuning: kind = "prompt-tuning"
            }
            return LocalModel(
                model: base.model, tokenizer: base.tokenizer, template: base.template, source: artifact,
                identity: try ModelIdentity.tuned(
                    base: baseIdentity, kind: kind,
                    files: [PEFTAdapter.configFile, PEFTAdapter.weightsFile].map { ($0, artifact.appendingPathComponent($0)) },
                    digests: digests))
        }
        guard FileManager.default.fileExists(atPath: artifact.appendingPathComponent("config.json").path) else {
            throw TallyError(code: .invalidModel, message: "the fine-tuned model at \(artifact.path) is missing (no adapter_config.json or config.json); delete the job's work directory and run again to retrain")
        }
        let base = try LocalModel.load(baseModel, identity: baseIdentity)
        let (config, weights) = try ModelLoader.huggingFaceDirectory(artifact)
        let model = try ModelLoader.model(config: config, weights: weights, source: artifact.path, trainable: false)
        return LocalModel(
            model: model, tokenizer: base.tokenizer, template: base.template, source: artifact,
            identity: try ModelIdentity.tuned(base: baseIdentity, kind: "full", files: ModelIdentity.directoryFiles(artifact), digests: digests))
    }

    /// Tokenizer files next to a Hugging Face base model, copied into saved model directories.
    static func tokenizerFiles(of model: URL) -> [URL] {
        ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]
            .map { model.appendingPathComponent($0) }
            .filter { FileManager.default.fileExists(atPath: $0.path) }
    }
}

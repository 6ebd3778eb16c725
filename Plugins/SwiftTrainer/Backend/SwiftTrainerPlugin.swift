import Foundation
import TallyCore
import TallyTensor

/// The built-in local backend, `plugin: swift-trainer`: runs GGUF or Hugging Face models on
/// the CPU and fine-tunes them with LoRA, prompt tuning or all weights.
///
/// Recipe settings (all optional): `threads` (BLAS and loop threads of this backend alone —
/// loading, generation, scoring and fine-tuning — default 2),
/// `max_batch` (requests decoded together, default 8), `max_concurrency` (requests the
/// runner keeps in flight, default `max_batch`), `weights` (`quantised`, the default: a GGUF
/// file's quantised matrices stay quantised for generation and scoring; `f32`: every weight
/// is converted to Float32, as fine-tuning always does), `prefix_cache_mb` (megabytes for the
/// keys and values of prompt prefixes that requests share, default 128; 0 turns it off).
///
/// ```yaml
/// backends:
///   local: {plugin: swift-trainer, model: smollm2-135m-instruct, threads: 2}
/// ```
public struct SwiftTrainerPlugin: BackendPlugin {
    public init() {}

    public var name: String { "swift-trainer" }
    public var summary: String { "built-in CPU backend: GGUF / Hugging Face Llama and GPT-2 models, LoRA, prompt tuning and full fine-tuning" }
    public var settingKeys: Set<String> { ["threads", "max_batch", "max_concurrency", "weights", "prefix_cache_mb"] }
    public var fineTuningMethods: Set<String> { [FineTuneMethod.loraName, FineTuneMethod.promptTuningName, FineTuneMethod.fullName] }

    /// The largest `prefix_cache_mb` accepted (1 TiB).
    static let maxPrefixCacheMB = 1 << 20

    public func validate(_ config: BackendConfig, environment: [String: String]) -> [ConfigIssue] {
        var problems: [ConfigIssue] = []
        for key in ["threads", "max_batch", "max_concurrency"] {
            if let text = config.settings[key], (Int(text) ?? 0) < 1 {
                problems.append(ConfigIssue(key: key, "\(key) must be a whole number of at least 1, not '\(text)'"))
            }
        }
        if let text = config.settings["weights"], WeightStorage(rawValue: text) == nil {
            problems.append(ConfigIssue(key: "weights", "weights must be \(WeightStorage.allCases.map(\.rawValue).joined(separator: " or ")), not '\(text)'"))
        }
        if let text = config.settings["prefix_cache_mb"], (Int(text) ?? -1) < 0 || (Int(text) ?? 0) > Self.maxPrefixCacheMB {
            problems.append(ConfigIssue(key: "prefix_cache_mb", "prefix_cache_mb must be a whole number of megabytes from 0 (off) to \(Self.maxPrefixCacheMB), not '\(text)'"))
        }
        do {
            _ = try AssetCatalog.resolveModel(config.model, relativeTo: config.recipeDirectory, environment: environment)
        } catch {
            problems.append(ConfigIssue(key: "model", String(describing: error)))
        }
        return problems
    }

    public func makeBackend(_ config: BackendConfig, environment: [String: String]) async throws -> Backend {
        let threads = config.settings["threads"].flatMap { Int($0) } ?? 2
        let maxBatch = config.settings["max_batch"].flatMap { Int($0) } ?? 8
        let concurrency = config.settings["max_concurrency"].flatMap { Int($0) } ?? maxBatch
        let storage = config.settings["weights"].flatMap { WeightStorage(rawValue: $0) } ?? .quantised
        let prefixCacheMB = config.settings["prefix_cache_mb"].flatMap { Int($0) } ?? LocalTextGenerator.defaultPrefixCacheMB
        let url = try AssetCatalog.resolveModel(config.model, relativeTo: config.recipeDirectory, environment: environment)
        let digests = FileDigestCache(environment: environment)
        let local = try Threading.withThreadCount(threads) { try LocalModel.load(url, storage: storage, digests: digests) }
        let generator = LocalTextGenerator(model: local, maxBatch: maxBatch, threads: threads, prefixCacheMB: prefixCacheMB)
        let tuner = SwiftTrainerFineTuner(
            baseModel: url, baseIdentity: local.identity, storage: storage, maxBatch: maxBatch, threads: threads,
            prefixCacheMB: prefixCacheMB, digests: digests)
        return Backend(generator: generator, fineTuner: tuner, dataLeavesMachine: false, maxConcurrency: max(1, concurrency))
    }
}

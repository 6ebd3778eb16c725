import Foundation

/// Prices a backend charges, per million tokens, as the recipe states them.
public struct Pricing: Codable, Sendable, Hashable {
    public var inputPerMTok: Double
    public var outputPerMTok: Double
    /// Price of prompt tokens served from the provider's cache; defaults to the input price.
    public var cachedInputPerMTok: Double?
    /// Prices for calling a model fine-tuned on this backend; default to the base prices.
    public var fineTunedInputPerMTok: Double?
    public var fineTunedOutputPerMTok: Double?
    /// Hosted fine-tuning: price per million trained tokens.
    public var trainingPerMTok: Double?

    public init(inputPerMTok: Double = 0, outputPerMTok: Double = 0, cachedInputPerMTok: Double? = nil, fineTunedInputPerMTok: Double? = nil, fineTunedOutputPerMTok: Double? = nil, trainingPerMTok: Double? = nil) {
        self.inputPerMTok = inputPerMTok
        self.outputPerMTok = outputPerMTok
        self.cachedInputPerMTok = cachedInputPerMTok
        self.fineTunedInputPerMTok = fineTunedInputPerMTok
        self.fineTunedOutputPerMTok = fineTunedOutputPerMTok
        self.trainingPerMTok = trainingPerMTok
    }

    enum CodingKeys: String, CodingKey {
        case inputPerMTok = "input_per_mtok"
        case outputPerMTok = "output_per_mtok"
        case cachedInputPerMTok = "cached_input_per_mtok"
        case fineTunedInputPerMTok = "finetuned_input_per_mtok"
        case fineTunedOutputPerMTok = "finetuned_output_per_mtok"
        case trainingPerMTok = "training_per_mtok"
    }
}

/// One entry under the recipe's `backends:` section, after validation.
public struct BackendConfig: Sendable, Hashable {
    /// The key the recipe gave this backend (`local`, `hosted`, …).
    public let name: String
    /// Which plugin serves it (`swift-trainer`, `openai`, `anthropic`, `exec`, …).
    public let plugin: String
    /// Model name or path, as the plugin understands it. Relative paths are resolved
    /// against `recipeDirectory` by the plugin.
    public let model: String
    /// Name of the environment variable holding the API key; never the key itself.
    public let apiKeyEnv: String?
    public let baseURL: String?
    public let price: Pricing
    /// Plugin-specific scalar settings (`threads`, `timeout_s`, `max_concurrency`,
    /// `requests_per_minute`, `command`, …), as strings; the plugin parses and validates them.
    public let settings: [String: String]
    /// Directory of the recipe file, for resolving relative paths.
    public let recipeDirectory: URL

    public init(name: String, plugin: String, model: String, apiKeyEnv: String? = nil, baseURL: String? = nil, price: Pricing = Pricing(), settings: [String: String] = [:], recipeDirectory: URL) {
        self.name = name
        self.plugin = plugin
        self.model = model
        self.apiKeyEnv = apiKeyEnv
        self.baseURL = baseURL
        self.price = price
        self.settings = settings
        self.recipeDirectory = recipeDirectory
    }
}

/// A ready-to-use backend: what a plugin makes from a `BackendConfig`.
public struct Backend: Sendable {
    public let generator: any TextGenerator
    /// Nil when the backend cannot fine-tune; a recipe asking it to is rejected by validation.
    public let fineTuner: (any FineTuner)?
    /// Whether prompts sent to this backend leave the machine (a report column).
    public let dataLeavesMachine: Bool
    /// How many requests the runner may have in flight at once on this backend.
    public let maxConcurrency: Int
    /// How many requests the runner hands to `generate(batch:)` at once (local models that
    /// decode a batch together); 1 means one `generate(_:)` call per request.
    public let preferredBatchSize: Int
    /// Nil when the backend cannot embed text; a `rag` strategy whose `embedder` names it is
    /// rejected by validation unless its plugin's `canEmbed(_:)` says yes.
    public let embedder: (any TextEmbedder)?

    public init(generator: any TextGenerator, fineTuner: (any FineTuner)?, dataLeavesMachine: Bool, maxConcurrency: Int, preferredBatchSize: Int = 1, embedder: (any TextEmbedder)? = nil) {
        self.generator = generator
        self.fineTuner = fineTuner
        self.dataLeavesMachine = dataLeavesMachine
        self.maxConcurrency = maxConcurrency
        self.preferredBatchSize = max(1, preferredBatchSize)
        self.embedder = embedder
    }
}

/// A backend plugin: turns a recipe's backend entry into a `Backend`.
///
/// Register plugins in a `PluginRegistry`; the recipe names them with `plugin:`.
public protocol BackendPlugin: Sendable {
    /// The name recipes use (`plugin: openai`).
    var name: String { get }
    /// One line for `tally plugins`.
    var summary: String { get }
    /// Keys of `BackendConfig.settings` this plugin understands; others are reported by
    /// `tally validate` with the nearest valid name.
    var settingKeys: Set<String> { get }
    /// The fine-tuning methods (`FineTuneMethod.name`) this plugin can run in general, for
    /// `tally plugins`. Default: none.
    var fineTuningMethods: Set<String> { get }
    /// The fine-tuning methods a backend configured as `config` can run; a strategy whose
    /// kind asks for another method is rejected by validation. Default: `fineTuningMethods`.
    /// Plugins whose methods depend on the configuration (an exec program that declares
    /// its own) override this.
    func fineTuningMethods(for config: BackendConfig) -> Set<String>
    /// Whether its fine-tuning jobs run on the provider's machines (hosted fine-tuning),
    /// so that their cost is the provider's bill or trained tokens x `training_per_mtok`,
    /// never this machine's compute time. Default: false.
    var fineTunesRemotely: Bool { get }
    /// Whether a backend configured as `config` can embed text (`Backend.embedder` is set),
    /// so that a `rag` strategy may name it as its `embedder`. Default: false.
    func canEmbed(_ config: BackendConfig) -> Bool
    /// Checks a config without side effects (no network, no model loading, nothing
    /// written). Returns problems as errors or warnings; `key` is a key of the backend entry.
    func validate(_ config: BackendConfig, environment: [String: String]) -> [ConfigIssue]
    /// Builds the backend. May load models or open connections; runs once per `tally run`.
    func makeBackend(_ config: BackendConfig, environment: [String: String]) async throws -> Backend
}

extension BackendPlugin {
    public var fineTuningMethods: Set<String> { [] }
    public func fineTuningMethods(for config: BackendConfig) -> Set<String> { fineTuningMethods }
    public var fineTunesRemotely: Bool { false }
    public func canEmbed(_ config: BackendConfig) -> Bool { false }
    public func validate(_ config: BackendConfig, environment: [String: String]) -> [ConfigIssue] { [] }
}

/// Progress reported by long work (runs, training, downloads); the CLI renders it.
public enum ProgressEvent: Sendable, Hashable {
    /// A phase with a known or unknown amount of work begins.
    case started(phase: String, total: Int?)
    /// `completed` units of `phase` are done; `detail` is a short status (loss, tokens/s, ETA).
    case advanced(phase: String, completed: Int, total: Int?, detail: String?)
    case finished(phase: String)
    /// A one-line note worth showing (a retry, a resume, a skipped row).
    case note(String)
}

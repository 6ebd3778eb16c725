import Foundation
import TallyCore

/// `plugin: openai` — Chat Completions at any OpenAI-compatible `base_url`, plus OpenAI's
/// hosted fine-tuning as the backend's fine-tuner and the Embeddings endpoint as its embedder
/// (a `rag` strategy's `embedder:` names such a backend, whose `model` is then the embedding model).
///
/// ```yaml
/// backends:
///   hosted: {plugin: openai, model: gpt-4o-mini-2024-07-18, api_key_env: OPENAI_API_KEY,
///            price: {input_per_mtok: 0.15, output_per_mtok: 0.60, training_per_mtok: 3.0}}
///   local-vllm: {plugin: openai, model: Qwen/Qwen2.5-7B-Instruct, base_url: "http://localhost:8000/v1"}
/// ```
public struct OpenAIPlugin: BackendPlugin {
    /// Where requests go when the recipe gives no `base_url` and `OPENAI_BASE_URL` is unset.
    public static let defaultBaseURL = "https://api.openai.com/v1"
    /// The variable that sets the base URL when the recipe gives no `base_url`.
    public static let baseURLVariable = "OPENAI_BASE_URL"
    /// The key variable assumed when the recipe names none and uses OpenAI itself.
    public static let defaultKeyVariable = "OPENAI_API_KEY"

    private let observer: (@Sendable (HTTPEvent) -> Void)?

    /// - Parameter observer: told about retries (used by tests and progress notes).
    public init(observer: (@Sendable (HTTPEvent) -> Void)? = nil) {
        self.observer = observer
    }

    public var name: String { "openai" }
    public var summary: String { "OpenAI Chat Completions at any compatible base_url (OpenAI, vLLM, Ollama, llama.cpp, Together, Groq, OpenRouter) and OpenAI hosted fine-tuning" }
    public var settingKeys: Set<String> { HostedSettings.commonKeys.union(["poll_interval_s", "token_limit_field"]) }
    public var fineTuningMethods: Set<String> { [FineTuneMethod.fullName] }
    public var fineTunesRemotely: Bool { true }
    public func canEmbed(_ config: BackendConfig) -> Bool { true }

    public func validate(_ config: BackendConfig, environment: [String: String]) -> [ConfigIssue] {
        validateHostedConfig(config, allowedKeys: settingKeys)
            + HostedEndpoint.environmentIssues(config, variable: Self.baseURLVariable, environment: environment)
    }

    public func makeBackend(_ config: BackendConfig, environment: [String: String]) async throws -> Backend {
        if let problem = validate(config, environment: environment).first(where: { $0.severity == .error }) {
            throw TallyError(code: .invalidRecipe, message: "backend '\(config.name)': \(problem)")
        }
        let settings = HostedSettings.parse(config.settings).settings
        let baseURL = try HostedEndpoint.baseURL(config, variable: Self.baseURLVariable, fallback: Self.defaultBaseURL, environment: environment)
        let headers = HostedEndpoint.openAIAccountHeaders(environment)
        let effective = Self.effectiveConfig(config)
        let key = try resolveKey(effective, environment: environment)
        let client = HTTPClient(provider: "openai", configuration: settings.clientConfiguration, key: key, environment: environment, observer: observer)
        let field = settings.tokenLimitField ?? (baseURL.host == "api.openai.com" ? "max_completion_tokens" : "max_tokens")
        let generator = OpenAIChatGenerator(model: config.model, baseURL: baseURL, key: key, client: client, tokenLimitField: field, headers: headers)
        let tuner = OpenAIFineTuner(
            client: client, baseURL: baseURL, key: key, baseModel: config.model, pricing: config.price,
            pollInterval: settings.pollInterval, tokenLimitField: field, headers: headers)
        let embedder = OpenAIEmbedder(model: config.model, baseURL: baseURL, key: key, client: client)
        return Backend(generator: generator, fineTuner: tuner, dataLeavesMachine: !isLoopback(baseURL), maxConcurrency: settings.maxConcurrency, embedder: embedder)
    }

    /// The config with `api_key_env` defaulted to `OPENAI_API_KEY` when it talks to OpenAI
    /// itself (no `base_url`) and names no variable.
    static func effectiveConfig(_ config: BackendConfig) -> BackendConfig {
        guard config.apiKeyEnv == nil, config.baseURL == nil else { return config }
        return BackendConfig(
            name: config.name, plugin: config.plugin, model: config.model, apiKeyEnv: defaultKeyVariable,
            baseURL: config.baseURL, price: config.price, settings: config.settings, recipeDirectory: config.recipeDirectory)
    }
}

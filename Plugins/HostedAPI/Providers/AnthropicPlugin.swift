import Foundation
import TallyCore

/// `plugin: anthropic` — Claude models through the Messages API.
///
/// ```yaml
/// backends:
///   claude: {plugin: anthropic, model: claude-3-5-haiku-latest, api_key_env: ANTHROPIC_API_KEY,
///            price: {input_per_mtok: 0.80, output_per_mtok: 4.00, cached_input_per_mtok: 0.08}}
/// ```
public struct AnthropicPlugin: BackendPlugin {
    /// Where requests go when the recipe gives no `base_url` and `ANTHROPIC_BASE_URL` is unset.
    public static let defaultBaseURL = "https://api.anthropic.com"
    /// The variable that sets the base URL when the recipe gives no `base_url`.
    public static let baseURLVariable = "ANTHROPIC_BASE_URL"
    /// The key variable assumed when the recipe names none and uses Anthropic itself.
    public static let defaultKeyVariable = "ANTHROPIC_API_KEY"

    private let observer: (@Sendable (HTTPEvent) -> Void)?

    /// - Parameter observer: told about retries (used by tests and progress notes).
    public init(observer: (@Sendable (HTTPEvent) -> Void)? = nil) {
        self.observer = observer
    }

    public var name: String { "anthropic" }
    public var summary: String { "Anthropic Messages API (Claude models)" }
    public var settingKeys: Set<String> { HostedSettings.commonKeys.union(["anthropic_version"]) }

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
        var effective = config
        if config.apiKeyEnv == nil, config.baseURL == nil {
            effective = BackendConfig(
                name: config.name, plugin: config.plugin, model: config.model, apiKeyEnv: Self.defaultKeyVariable,
                baseURL: config.baseURL, price: config.price, settings: config.settings, recipeDirectory: config.recipeDirectory)
        }
        let key = try resolveKey(effective, environment: environment)
        let client = HTTPClient(provider: "anthropic", configuration: settings.clientConfiguration, key: key, environment: environment, observer: observer)
        let generator = AnthropicGenerator(model: config.model, baseURL: baseURL, key: key, client: client, version: settings.anthropicVersion)
        return Backend(generator: generator, fineTuner: nil, dataLeavesMachine: !isLoopback(baseURL), maxConcurrency: settings.maxConcurrency)
    }
}

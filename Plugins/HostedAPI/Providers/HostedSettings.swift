import Foundation
import TallyCore

/// The scalar settings a hosted backend entry may carry, parsed and checked.
///
/// ```yaml
/// backends:
///   hosted: {plugin: openai, model: gpt-4o-mini, api_key_env: OPENAI_API_KEY,
///            max_concurrency: 8, requests_per_minute: 500, tokens_per_minute: 200000,
///            timeout_s: 60, max_retries: 5}
/// ```
public struct HostedSettings: Sendable, Hashable {
    /// Limit on one attempt, in seconds (`timeout_s`, default 120).
    public var timeout: Double = 120
    /// Limit on establishing a connection, in seconds (`connect_timeout_s`, default 10).
    public var connectTimeout: Double = 10
    /// Seconds without a byte once a response has begun before the attempt fails as stalled
    /// and is retried (`stall_timeout_s`, default 30; 0 turns the check off).
    public var stallTimeout: Double = 30
    /// Requests in flight at once (`max_concurrency`, default 4).
    public var maxConcurrency: Int = 4
    /// Requests started per minute (`requests_per_minute`; unlimited when absent).
    public var requestsPerMinute: Int?
    /// Tokens (prompt + completion) per minute (`tokens_per_minute`; unlimited when absent).
    public var tokensPerMinute: Int?
    /// Retries after the first attempt (`max_retries`, default 5).
    public var maxRetries: Int = 5
    /// First backoff delay in seconds, doubling per retry (`retry_base_s`, default 0.5).
    public var retryBase: Double = 0.5
    /// Largest response body accepted, in bytes (`max_response_bytes`, default 8 MiB).
    public var maxResponseBytes: Int = 8 << 20
    /// Seconds between polls of a hosted fine-tuning job (`poll_interval_s`, default 15).
    public var pollInterval: Double = 15
    /// OpenAI: the request field carrying the generated-token limit (`token_limit_field`:
    /// `max_tokens` or `max_completion_tokens`; default: `max_completion_tokens` at
    /// api.openai.com, `max_tokens` elsewhere, which compatible servers understand).
    public var tokenLimitField: String?
    /// Anthropic: the `anthropic-version` header (`anthropic_version`, default 2023-06-01).
    public var anthropicVersion: String = "2023-06-01"

    /// The defaults listed on each property.
    public init() {}

    /// Keys every hosted plugin understands, with what they mean (for docs and messages).
    static let commonKeys: Set<String> = [
        "timeout_s", "connect_timeout_s", "stall_timeout_s", "max_concurrency", "requests_per_minute", "tokens_per_minute",
        "max_retries", "retry_base_s", "max_response_bytes",
    ]

    /// Parses `settings`, collecting a `(field, message)` problem for each bad value.
    public static func parse(_ settings: [String: String]) -> (settings: HostedSettings, problems: [ConfigIssue]) {
        var result = HostedSettings()
        var problems: [ConfigIssue] = []

        func number(_ key: String, min lower: Double, max upper: Double, apply: (Double) -> Void) {
            guard let text = settings[key] else { return }
            guard let value = Double(text.trimmingCharacters(in: .whitespaces)), value.isFinite else {
                problems.append(ConfigIssue(key: key, "'\(text)' is not a number; write e.g. \(key): \(Int(lower.rounded(.up)) + 1)"))
                return
            }
            guard value >= lower, value <= upper else {
                problems.append(ConfigIssue(key: key, "\(text) is out of range; use a value from \(clean(lower)) to \(clean(upper))"))
                return
            }
            apply(value)
        }
        func integer(_ key: String, min lower: Int, max upper: Int, apply: (Int) -> Void) {
            guard let text = settings[key] else { return }
            guard let value = Int(text.trimmingCharacters(in: .whitespaces)) else {
                problems.append(ConfigIssue(key: key, "'\(text)' is not a whole number; write e.g. \(key): \(Swift.max(lower, 1))"))
                return
            }
            guard value >= lower, value <= upper else {
                problems.append(ConfigIssue(key: key, "\(value) is out of range; use a whole number from \(lower) to \(upper)"))
                return
            }
            apply(value)
        }

        number("timeout_s", min: 0.05, max: 86_400) { result.timeout = $0 }
        number("connect_timeout_s", min: 0.05, max: 600) { result.connectTimeout = $0 }
        number("stall_timeout_s", min: 0, max: 86_400) { result.stallTimeout = $0 }
        integer("max_concurrency", min: 1, max: 256) { result.maxConcurrency = $0 }
        integer("requests_per_minute", min: 1, max: 10_000_000) { result.requestsPerMinute = $0 }
        integer("tokens_per_minute", min: 1, max: 1_000_000_000) { result.tokensPerMinute = $0 }
        integer("max_retries", min: 0, max: 50) { result.maxRetries = $0 }
        number("retry_base_s", min: 0.001, max: 600) { result.retryBase = $0 }
        integer("max_response_bytes", min: 1024, max: 1 << 34) { result.maxResponseBytes = $0 }
        number("poll_interval_s", min: 0.01, max: 3600) { result.pollInterval = $0 }
        if let field = settings["token_limit_field"] {
            if ["max_tokens", "max_completion_tokens"].contains(field) {
                result.tokenLimitField = field
            } else {
                problems.append(ConfigIssue(key: "token_limit_field", "'\(field)' is not a token-limit field; use max_tokens or max_completion_tokens"))
            }
        }
        if let version = settings["anthropic_version"] {
            if version.range(of: "^[0-9]{4}-[0-9]{2}-[0-9]{2}$", options: .regularExpression) != nil {
                result.anthropicVersion = version
            } else {
                problems.append(ConfigIssue(key: "anthropic_version", "'\(version)' is not an API version date; use e.g. 2023-06-01"))
            }
        }
        return (result, problems)
    }

    /// The HTTP client configuration these settings describe.
    var clientConfiguration: HTTPClient.Configuration {
        HTTPClient.Configuration(
            connectTimeout: connectTimeout, totalTimeout: timeout, maxResponseBytes: maxResponseBytes, stallTimeout: stallTimeout,
            maxConcurrency: maxConcurrency, requestsPerMinute: requestsPerMinute, tokensPerMinute: tokensPerMinute,
            retry: RetryPolicy(maxRetries: maxRetries, baseDelay: retryBase, maxDelay: Swift.max(30, retryBase)))
    }
}

private func clean(_ value: Double) -> String {
    value == value.rounded() ? String(Int(value)) : String(value)
}

/// Checks a backend entry's `base_url`, `api_key_env` and settings without touching the
/// network or requiring the key to be set.
func validateHostedConfig(_ config: BackendConfig, allowedKeys: Set<String>) -> [ConfigIssue] {
    var problems: [ConfigIssue] = []
    if let base = config.baseURL {
        if let url = URL(string: base), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme), url.host?.isEmpty == false {
            if url.query != nil { problems.append(ConfigIssue(key: "base_url", "'\(base)' has a query string; give only scheme, host and path prefix (e.g. https://api.openai.com/v1)")) }
        } else {
            problems.append(ConfigIssue(key: "base_url", "'\(base)' is not an http(s) URL; write e.g. https://api.openai.com/v1 or http://localhost:8000/v1"))
        }
    }
    // Names with characters other than letters, digits and `_` are reported by the recipe
    // loader; here, names that are valid but look like a pasted key.
    if let variable = config.apiKeyEnv, variable.range(of: "^[A-Za-z_][A-Za-z0-9_]*$", options: .regularExpression) != nil, looksLikeSecret(variable) {
        problems.append(ConfigIssue(key: "api_key_env", "this looks like a key, not the name of an environment variable; put the key in an environment variable (e.g. OPENAI_API_KEY) and name that variable here"))
    }
    if config.model.trimmingCharacters(in: .whitespaces).isEmpty {
        problems.append(ConfigIssue(key: "model", "the model name is empty; write e.g. model: gpt-4o-mini"))
    }
    if let warning = ModelAlias.warning(for: config.model) {
        problems.append(ConfigIssue(.warning, key: "model", warning))
    }
    for key in config.settings.keys.sorted() where !allowedKeys.contains(key) {
        var message = "unknown setting '\(key)'"
        if let near = nearestName(to: key, among: allowedKeys.sorted()) { message += "; did you mean '\(near)'?" }
        problems.append(ConfigIssue(key: key, message))
    }
    let known = config.settings.filter { allowedKeys.contains($0.key) }
    problems += HostedSettings.parse(known).problems
    return problems
}

/// Whether `url` points at this machine (then prompts do not leave it).
public func isLoopback(_ url: URL) -> Bool {
    guard var host = url.host?.lowercased() else { return false }
    if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
    if host == "localhost" || host.hasSuffix(".localhost") || host == "::1" || host == "0:0:0:0:0:0:0:1" { return true }
    let parts = host.split(separator: ".")
    return parts.count == 4 && parts.first == "127" && parts.allSatisfy { UInt8($0) != nil }
}

/// `base` joined with `path` (`https://api.openai.com/v1` + `/chat/completions`).
func endpoint(_ base: URL, _ path: String) -> URL {
    var text = base.absoluteString
    while text.hasSuffix("/") { text.removeLast() }
    return URL(string: text + path) ?? base.appendingPathComponent(path)
}

/// Reads the key a backend names, or explains how to provide it.
func resolveKey(_ config: BackendConfig, environment: [String: String]) throws -> APIKey? {
    guard let variable = config.apiKeyEnv else { return nil }
    guard let key = APIKey(variable: variable, environment: environment) else {
        throw TallyError(
            code: .backend,
            message: "backend '\(config.name)' (\(config.plugin)): environment variable \(variable) is not set; export \(variable)=<your key> before `tally run` (validate and plan do not need it)")
    }
    return key
}

/// Rough token count of text (4 bytes per token), for the tokens-per-minute limit only.
func estimateTokens(_ text: String) -> Int { (text.utf8.count + 3) / 4 }

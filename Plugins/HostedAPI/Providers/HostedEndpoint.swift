import Foundation
import TallyCore

/// Where a hosted backend sends its requests, and the account headers it adds, from the
/// recipe and the environment, following the conventions of the providers' own SDKs.
///
/// Base URL precedence: the recipe's `base_url`, else the provider's variable
/// (`OPENAI_BASE_URL`, `ANTHROPIC_BASE_URL`) when it is set and not empty, else the
/// provider's public endpoint.
enum HostedEndpoint {
    /// The base URL text and where it came from (for messages).
    static func baseText(_ config: BackendConfig, variable: String, fallback: String, environment: [String: String]) -> (text: String, source: String) {
        if let base = config.baseURL { return (base, "base_url") }
        if let value = environment[variable]?.trimmingCharacters(in: .whitespaces), !value.isEmpty { return (value, variable) }
        return (fallback, "the default")
    }

    /// The base URL to use.
    /// - Throws: `TallyError` (`invalid-recipe`) when it is not an http(s) URL, naming where it came from.
    static func baseURL(_ config: BackendConfig, variable: String, fallback: String, environment: [String: String]) throws -> URL {
        let (text, source) = baseText(config, variable: variable, fallback: fallback, environment: environment)
        if let problem = problem(text) {
            throw TallyError(code: .invalidRecipe, message: "backend '\(config.name)': \(source) \(problem)")
        }
        guard let url = URL(string: text) else {
            throw TallyError(code: .invalidRecipe, message: "backend '\(config.name)': \(source) '\(text)' is not a URL")
        }
        return url
    }

    /// What is wrong with a base URL, or nil.
    static func problem(_ text: String) -> String? {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme), url.host?.isEmpty == false else {
            return "'\(text)' is not an http(s) URL; write e.g. https://api.openai.com/v1 or http://localhost:8000/v1"
        }
        if url.query != nil { return "'\(text)' has a query string; give only scheme, host and path prefix (e.g. https://api.openai.com/v1)" }
        return nil
    }

    /// The environment's base URL variable, checked when the recipe gives no `base_url`.
    static func environmentIssues(_ config: BackendConfig, variable: String, environment: [String: String]) -> [ConfigIssue] {
        guard config.baseURL == nil, let value = environment[variable]?.trimmingCharacters(in: .whitespaces), !value.isEmpty,
            let problem = problem(value)
        else { return [] }
        return [ConfigIssue(key: "base_url", "no base_url, and \(variable) \(problem)")]
    }

    /// OpenAI's organisation and project headers, from `OPENAI_ORG_ID` and `OPENAI_PROJECT_ID`
    /// when set (as OpenAI's SDKs send them).
    static func openAIAccountHeaders(_ environment: [String: String]) -> [(name: String, value: String)] {
        var headers: [(name: String, value: String)] = []
        for (variable, header) in [("OPENAI_ORG_ID", "OpenAI-Organization"), ("OPENAI_PROJECT_ID", "OpenAI-Project")] {
            if let value = environment[variable]?.trimmingCharacters(in: .whitespaces), !value.isEmpty { headers.append((header, value)) }
        }
        return headers
    }
}

import Foundation

/// An API key read from the environment variable a recipe names.
///
/// Its `description` never shows the key, so interpolating it into a message or log is safe;
/// `mask(_:)` removes the key from text that came from elsewhere (a server's error body).
public struct APIKey: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The environment variable the key came from (`OPENAI_API_KEY`).
    public let variable: String
    let value: String

    /// Reads the key from `environment[variable]`.
    /// - Returns: nil when the variable is unset or empty.
    public init?(variable: String, environment: [String: String]) {
        guard let value = environment[variable]?.trimmingCharacters(in: .whitespacesAndNewlines), !value.isEmpty else { return nil }
        self.variable = variable
        self.value = value
    }

    public var description: String { "<key from $\(variable)>" }
    public var debugDescription: String { description }

    /// `text` with every occurrence of the key replaced by a masked form (`sk-…(masked)`).
    public func mask(_ text: String) -> String {
        guard text.contains(value) else { return text }
        let prefix = value.count > 12 ? String(value.prefix(3)) : ""
        return text.replacingOccurrences(of: value, with: "\(prefix)…(masked)")
    }
}

/// Whether `text` looks like an API key rather than the name of an environment variable.
func looksLikeSecret(_ text: String) -> Bool {
    let isVariableName = text.range(of: "^[A-Za-z_][A-Za-z0-9_]*$", options: .regularExpression) != nil
    if isVariableName && text.uppercased() == text { return false }
    let keyPrefixes = ["sk-", "sk_", "sk-ant-", "gsk_", "xai-", "pk-", "Bearer "]
    if keyPrefixes.contains(where: { text.hasPrefix($0) }) { return true }
    return !isVariableName || text.count >= 32
}

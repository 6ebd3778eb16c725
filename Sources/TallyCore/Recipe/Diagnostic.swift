import Foundation

/// One problem found in a recipe or its data: where, what, and how to fix it.
public struct Diagnostic: Sendable, Hashable, CustomStringConvertible {
    public enum Severity: String, Sendable, Hashable, Codable {
        /// The recipe cannot run: `tally validate` exits 2.
        case error
        /// The recipe runs, but something is likely not what was meant (e.g. skipped rows).
        case warning
    }

    public let severity: Severity
    public let location: SourceLocation
    /// What is wrong.
    public let message: String
    /// What to do about it.
    public let fix: String?

    public init(_ severity: Severity = .error, at location: SourceLocation, _ message: String, fix: String? = nil) {
        self.severity = severity
        self.location = location
        self.message = message
        self.fix = fix
    }

    /// `file:line:column: error: message. Fix: …`
    public var description: String {
        var text = "\(location): \(severity.rawValue): \(message)"
        if let fix { text += " Fix: \(fix)" }
        return text
    }
}

/// A recipe that cannot be used: every problem found, not just the first.
public struct RecipeValidationError: Error, LocalizedError, Sendable, CustomStringConvertible {
    /// All diagnostics, errors and warnings, in file order of discovery.
    public let diagnostics: [Diagnostic]

    public init(diagnostics: [Diagnostic]) { self.diagnostics = diagnostics }

    /// Only the errors.
    public var errors: [Diagnostic] { diagnostics.filter { $0.severity == .error } }

    public var description: String {
        let errors = self.errors
        let head = "recipe has \(errors.count) error\(errors.count == 1 ? "" : "s")"
        return ([head] + diagnostics.map(\.description)).joined(separator: "\n")
    }

    public var errorDescription: String? { description }
}

import Foundation

/// A position in a user's file (recipe, data set), 1-based.
public struct SourceLocation: Codable, Sendable, Hashable, CustomStringConvertible {
    public let file: String
    public let line: Int?
    public let column: Int?

    public init(file: String, line: Int? = nil, column: Int? = nil) {
        self.file = file
        self.line = line
        self.column = column
    }

    /// `file:line:column`, omitting what is unknown.
    public var description: String {
        var text = file
        if let line { text += ":\(line)" }
        if let line, line > 0, let column { text += ":\(column)" }
        return text
    }
}

/// The error type of TallyCore: what failed, where, and how to fix it.
public struct TallyError: Error, LocalizedError, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, Codable {
        /// The recipe is malformed or inconsistent.
        case invalidRecipe = "invalid-recipe"
        /// A data file cannot be read or a row cannot be used.
        case invalidData = "invalid-data"
        /// A name (plugin, strategy kind, metric, backend) is not known.
        case unknownName = "unknown-name"
        /// A backend failed (network, authentication, model loading).
        case backend = "backend"
        /// A model or checkpoint file is malformed.
        case invalidModel = "invalid-model"
        /// The run would exceed `constraints.budget_usd`.
        case budgetExceeded = "budget-exceeded"
        /// The ledger (SQLite) failed.
        case ledger = "ledger"
        /// Input/output on the local file system failed.
        case io = "io"
        /// The user interrupted the run.
        case cancelled = "cancelled"
    }

    public let code: Code
    public let message: String
    public let location: SourceLocation?
    public let underlying: String?

    public init(code: Code, message: String, location: SourceLocation? = nil, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.location = location
        self.underlying = underlying.map { String(describing: $0) }
    }

    /// One line: `location: message (underlying)`; the underlying error is left out when
    /// the message already quotes it, so no text appears twice.
    public var description: String {
        var text = ""
        if let location { text += "\(location): " }
        text += message
        if let underlying, !underlying.isEmpty, !message.contains(underlying) { text += " (\(underlying))" }
        return text
    }

    public var errorDescription: String? { description }
}

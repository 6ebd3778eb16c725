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
    /// What kind of failure this is. A struct rather than an enum so that codes can be added
    /// (by Tally or by a plugin) without breaking anyone's `switch`: compare with `==` or
    /// match the static members in a `switch` that has a `default`.
    ///
    /// ```swift
    /// extension TallyError.Code {
    ///     static let quotaExhausted = TallyError.Code("quota-exhausted")
    /// }
    /// if error.code == .backend { … }
    /// ```
    ///
    /// Encoded as its raw string; any string decodes, so records written by a newer Tally or
    /// by a plugin with codes of its own still read back.
    public struct Code: Hashable, Sendable, Codable, CustomStringConvertible {
        /// The code as written in logs and records (`invalid-recipe`, `backend`, …).
        public let rawValue: String

        /// A code from its raw string; codes of Tally's own are the static members.
        public init(_ rawValue: String) {
            self.rawValue = rawValue
        }

        /// The recipe is malformed or inconsistent.
        public static let invalidRecipe = Code("invalid-recipe")
        /// A data file cannot be read or a row cannot be used.
        public static let invalidData = Code("invalid-data")
        /// A name (plugin, strategy kind, metric, backend) is not known.
        public static let unknownName = Code("unknown-name")
        /// A backend failed (network, authentication, model loading).
        public static let backend = Code("backend")
        /// A model or checkpoint file is malformed.
        public static let invalidModel = Code("invalid-model")
        /// The run would exceed `constraints.budget_usd`.
        public static let budgetExceeded = Code("budget-exceeded")
        /// The ledger (SQLite) failed.
        public static let ledger = Code("ledger")
        /// Input/output on the local file system failed.
        public static let io = Code("io")
        /// The user interrupted the run.
        public static let cancelled = Code("cancelled")

        public init(from decoder: any Decoder) throws {
            rawValue = try decoder.singleValueContainer().decode(String.self)
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode(rawValue)
        }

        public var description: String { rawValue }
    }

    public let code: Code
    public let message: String
    public let location: SourceLocation?
    /// The underlying error's description, when there is one.
    public let underlying: String?
    /// The underlying error itself, for callers (and plugins) that inspect the cause.
    public let underlyingError: (any Error)?

    /// - Parameters:
    ///   - code: what kind of failure.
    ///   - message: what failed and how to fix it.
    ///   - location: where in the user's files, when known.
    ///   - underlying: the error that caused this one; kept as is and described in ``underlying``.
    public init(code: Code, message: String, location: SourceLocation? = nil, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.location = location
        self.underlying = underlying.map { String(describing: $0) }
        self.underlyingError = underlying
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

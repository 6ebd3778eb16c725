import Foundation

/// A problem a plugin or strategy kind finds in its part of a recipe (a backend entry, a
/// strategy entry), beyond what the keys' types and ranges catch; `tally validate` shows it
/// at the named key's line with the core's own diagnostics, as an error or a warning.
public struct ConfigIssue: Sendable, Hashable, CustomStringConvertible {
    public let severity: Diagnostic.Severity
    /// The recipe key the problem is about (nil: the entry as a whole).
    public let key: String?
    public let message: String
    public let fix: String?

    public init(_ severity: Diagnostic.Severity = .error, key: String? = nil, _ message: String, fix: String? = nil) {
        self.severity = severity
        self.key = key
        self.message = message
        self.fix = fix
    }

    /// `key: message`, or the message alone.
    public var description: String { key.map { "\($0): \(message)" } ?? message }
}

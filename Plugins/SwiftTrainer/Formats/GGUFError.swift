import Foundation
import TallyCore

/// An error reading a GGUF file: what is wrong, in which file, at which tensor or key.
///
/// Every check the reader makes against the file (lengths, offsets, sizes, types, shapes)
/// throws this error rather than crashing, so a truncated download or an unsupported
/// quantisation reads as one actionable line.
public struct GGUFError: Error, LocalizedError, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// The file ends before a structure it declares.
        case truncated
        /// A field holds a value the format does not allow (bad magic, version, type, alignment).
        case malformed
        /// The file is valid GGUF but uses a feature Tally does not implement.
        case unsupported
        /// A metadata key or tensor the model needs is absent.
        case missing
        /// A tensor's shape disagrees with the model's configuration.
        case shapeMismatch = "shape-mismatch"
        /// The file cannot be opened or mapped.
        case io
    }

    public let code: Code
    /// The GGUF file's path.
    public let file: String
    /// What failed and what to do about it.
    public let message: String

    public init(_ code: Code, file: String, _ message: String) {
        self.code = code
        self.file = file
        self.message = message
    }

    public var description: String { "\(file): \(message)" }
    public var errorDescription: String? { description }

    /// The same failure as a `TallyError` (`invalid-model`, or `io`), for the CLI.
    public var tallyError: TallyError {
        TallyError(
            code: code == .io ? .io : .invalidModel, message: message,
            location: SourceLocation(file: file))
    }
}

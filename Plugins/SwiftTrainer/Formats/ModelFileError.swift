import Foundation
import TallyCore

/// Builds the `TallyError`s of model and checkpoint files, always naming the file.
enum ModelFileError {
    static func invalid(_ url: URL, _ message: String) -> TallyError {
        TallyError(code: .invalidModel, message: message, location: SourceLocation(file: url.path))
    }

    static func io(_ url: URL, _ message: String, underlying: (any Error)? = nil) -> TallyError {
        TallyError(code: .io, message: message, location: SourceLocation(file: url.path), underlying: underlying)
    }
}

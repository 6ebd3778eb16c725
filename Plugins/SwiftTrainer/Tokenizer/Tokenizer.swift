import Foundation
import TallyCore

/// Turns text into token ids and back, as the model it belongs to was trained to.
///
/// ```swift
/// let tokenizer = try BPETokenizer(tokenizerJSON: url)
/// let ids = tokenizer.encode("Hello world", addSpecialTokens: false)
/// let text = tokenizer.decode(ids, skipSpecialTokens: true)
/// ```
public protocol Tokenizer: Sendable {
    /// The ids of `text`.
    /// - Parameters:
    ///   - text: any string; special-token strings in it (such as `<|im_start|>`) become their ids.
    ///   - addSpecialTokens: whether to add what the tokenizer adds around a sequence
    ///     (for example a BOS token); Tally's chat prompts already contain them, so pass false.
    func encode(_ text: String, addSpecialTokens: Bool) -> [Int]
    /// The text of `ids`.
    /// - Parameters:
    ///   - ids: token ids; ids outside the vocabulary are ignored.
    ///   - skipSpecialTokens: whether to leave out special tokens (BOS, EOS, chat markers).
    func decode(_ ids: [Int], skipSpecialTokens: Bool) -> String
    /// Ids that end a generation.
    var eosTokenIDs: [Int] { get }
    /// The beginning-of-sequence id, if the model has one.
    var bosTokenID: Int? { get }
}

extension Tokenizer {
    /// The ids of `text` without added special tokens.
    public func encode(_ text: String) -> [Int] { encode(text, addSpecialTokens: false) }
    /// The text of `ids`, special tokens included.
    public func decode(_ ids: [Int]) -> String { decode(ids, skipSpecialTokens: false) }
}

/// An error loading a tokenizer: which file, and what in it is wrong or unsupported.
public struct TokenizerError: Error, LocalizedError, Sendable, CustomStringConvertible {
    /// The tokenizer's file (`tokenizer.json` or a `.gguf`).
    public let file: String
    /// What failed and what to do about it.
    public let message: String

    public init(file: String, _ message: String) {
        self.file = file
        self.message = message
    }

    public var description: String { "\(file): \(message)" }
    public var errorDescription: String? { description }

    /// The same failure as a `TallyError` (`invalid-model`), for the CLI.
    public var tallyError: TallyError {
        TallyError(code: .invalidModel, message: message, location: SourceLocation(file: file))
    }
}

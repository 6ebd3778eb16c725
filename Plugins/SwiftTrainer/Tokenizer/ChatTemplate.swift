import Foundation
import TallyCore

/// Renders a model's chat template — the Jinja template Hugging Face models and GGUF files
/// ship (`chat_template`, `tokenizer.chat_template`) — for the message lists Tally sends.
///
/// The template runs in a small interpreter of the Jinja subset chat templates use: text,
/// `{{ … }}`, `{% if/elif/else %}`, `{% for … in … [if …] %}` with `loop.*` and
/// `{% break/continue %}`, `{% set %}` (also `namespace()` attributes), comments, whitespace
/// control (`-`), and Hugging Face's settings `trim_blocks` and `lstrip_blocks`. Expressions:
/// literals, lists, dicts, attribute / item / slice access, `+ - * / // % ~`, comparisons,
/// `in`, `not in`, `and`, `or`, `not`, `x if c else y`, tests (`is defined`, `is none`, `is
/// string`, …), common filters (`trim`, `length`, `tojson`, `default`, `join`, `upper`, …) and
/// string / dict methods (`strip()`, `startswith()`, `items()`, `get()`, …), plus
/// `raise_exception()` and `range()`. Anything else is a `ChatTemplateError` naming the
/// template line and column.
///
/// ```swift
/// let template = ChatTemplate(source: tokenizer.chatTemplate)
/// let prompt = try template.render(messages: [.user("Hi")], addGenerationPrompt: true)
/// ```
public struct ChatTemplate: Sendable {
    /// The plain ChatML template used when a model ships none.
    public static let chatMLSource = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

    /// The Jinja source in use.
    public let source: String
    /// Whether `source` is the ChatML fallback because the model shipped no template.
    public let isFallback: Bool
    /// Values the template sees as `bos_token` and `eos_token`.
    public let bosToken: String
    public let eosToken: String

    /// A template from `source`, or ChatML when `source` is nil or empty.
    /// - Parameters:
    ///   - source: the model's Jinja chat template.
    ///   - bosToken: the text of the BOS token (templates may print `bos_token`).
    ///   - eosToken: the text of the EOS token.
    public init(source: String?, bosToken: String = "", eosToken: String = "") {
        if let source, !source.isEmpty {
            self.source = source
            isFallback = false
        } else {
            self.source = Self.chatMLSource
            isFallback = true
        }
        self.bosToken = bosToken
        self.eosToken = eosToken
    }

    /// The template a tokenizer's file ships (ChatML when none), with its BOS/EOS token texts.
    public init(tokenizer: BPETokenizer) {
        self.init(
            source: tokenizer.chatTemplate,
            bosToken: tokenizer.bosTokenID.flatMap(tokenizer.token(for:)) ?? "",
            eosToken: tokenizer.eosTokenIDs.first.flatMap(tokenizer.token(for:)) ?? "")
    }

    /// The prompt text for `messages`.
    /// - Parameters:
    ///   - messages: the conversation (system / user / assistant).
    ///   - addGenerationPrompt: whether to end with the assistant header the model continues.
    /// - Throws: `ChatTemplateError` for syntax outside the supported subset, or when the
    ///   template itself raises (`raise_exception`).
    public func render(messages: [ChatMessage], addGenerationPrompt: Bool) throws -> String {
        let program = try JinjaParser.parse(source)
        let messageValues: [JinjaValue] = messages.map { message in
            .dict(JinjaDict([("role", .string(message.role.rawValue)), ("content", .string(message.content))]))
        }
        var interpreter = JinjaInterpreter(globals: [
            "messages": .list(messageValues),
            "add_generation_prompt": .bool(addGenerationPrompt),
            "bos_token": .string(bosToken),
            "eos_token": .string(eosToken),
        ])
        return try interpreter.render(program)
    }

    /// Renders with ChatTemplate semantics; see `render(messages:addGenerationPrompt:)`.
    /// - Throws: `ChatTemplateError`.
    public static func render(source: String?, messages: [ChatMessage], addGenerationPrompt: Bool, bosToken: String = "", eosToken: String = "") throws -> String {
        try ChatTemplate(source: source, bosToken: bosToken, eosToken: eosToken).render(messages: messages, addGenerationPrompt: addGenerationPrompt)
    }
}

/// An error rendering a chat template: where in the template, and what.
public struct ChatTemplateError: Error, LocalizedError, Sendable, CustomStringConvertible {
    /// 1-based line and column in the template source, when known.
    public let line: Int?
    public let column: Int?
    public let message: String

    public init(_ message: String, line: Int? = nil, column: Int? = nil) {
        self.message = message
        self.line = line
        self.column = column
    }

    public var description: String {
        if let line, let column { return "chat template line \(line), column \(column): \(message)" }
        return "chat template: \(message)"
    }

    public var errorDescription: String? { description }
}

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
/// Templates come from model files, that is from strangers, so one rendering is bounded by
/// `Limits` (loop iterations, nesting depth, output and value size, time); exceeding one is a
/// `ChatTemplateError` naming the limit and the model file (`origin`), never a hang or a crash.
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
    /// The file the template came from (a `.gguf` file or `tokenizer_config.json`), named in
    /// every error; nil when it came from elsewhere.
    public let origin: String?
    /// The bounds on one rendering.
    public let limits: Limits

    /// A template from `source`, or ChatML when `source` is nil or empty.
    /// - Parameters:
    ///   - source: the model's Jinja chat template.
    ///   - bosToken: the text of the BOS token (templates may print `bos_token`).
    ///   - eosToken: the text of the EOS token.
    ///   - origin: the model file the template came from, named in errors.
    ///   - limits: the bounds on one rendering (`Limits.standard` by default).
    public init(source: String?, bosToken: String = "", eosToken: String = "", origin: String? = nil, limits: Limits = .standard) {
        if let source, !source.isEmpty {
            self.source = source
            isFallback = false
        } else {
            self.source = Self.chatMLSource
            isFallback = true
        }
        self.bosToken = bosToken
        self.eosToken = eosToken
        self.origin = origin
        self.limits = limits
    }

    /// The template a tokenizer's file ships (ChatML when none), with its BOS/EOS token texts.
    /// - Parameters:
    ///   - tokenizer: the model's tokenizer.
    ///   - origin: the model file the template came from, named in errors.
    public init(tokenizer: BPETokenizer, origin: String? = nil) {
        self.init(
            source: tokenizer.chatTemplate,
            bosToken: tokenizer.bosTokenID.flatMap(tokenizer.token(for:)) ?? "",
            eosToken: tokenizer.eosTokenIDs.first.flatMap(tokenizer.token(for:)) ?? "",
            origin: origin)
    }

    /// The prompt text for `messages`.
    /// - Parameters:
    ///   - messages: the conversation (system / user / assistant).
    ///   - addGenerationPrompt: whether to end with the assistant header the model continues.
    /// - Throws: `ChatTemplateError` (naming `origin`) for syntax outside the supported subset,
    ///   when the template itself raises (`raise_exception`), or when it exceeds a limit.
    public func render(messages: [ChatMessage], addGenerationPrompt: Bool) throws -> String {
        do {
            let program = try JinjaParser.parse(source, limits: limits)
            let messageValues: [JinjaValue] = messages.map { message in
                .dict(JinjaDict([("role", .string(message.role.rawValue)), ("content", .string(message.content))]))
            }
            var interpreter = JinjaInterpreter(
                globals: [
                    "messages": .list(messageValues),
                    "add_generation_prompt": .bool(addGenerationPrompt),
                    "bos_token": .string(bosToken),
                    "eos_token": .string(eosToken),
                ], limits: limits)
            return try interpreter.render(program)
        } catch let error as ChatTemplateError {
            throw error.from(origin)
        }
    }

    /// Renders with ChatTemplate semantics; see `render(messages:addGenerationPrompt:)`.
    /// - Throws: `ChatTemplateError`.
    public static func render(source: String?, messages: [ChatMessage], addGenerationPrompt: Bool, bosToken: String = "", eosToken: String = "") throws -> String {
        try ChatTemplate(source: source, bosToken: bosToken, eosToken: eosToken).render(messages: messages, addGenerationPrompt: addGenerationPrompt)
    }
}

extension ChatTemplate {
    /// Bounds on the work one rendering of a template may do. A template comes from a model
    /// file; these keep a hostile or broken one from hanging or exhausting Tally. The standard
    /// values are far above what real chat templates need (they loop over the messages once).
    public struct Limits: Sendable, Equatable {
        /// Loop iterations in one rendering, all loops and loop filters together.
        public var loopIterations: Int
        /// Nesting of blocks (`if`, `for`) and of expressions (operators, brackets, calls);
        /// also the nesting of lists and dicts a template builds.
        public var depth: Int
        /// Bytes of output, and of any one string, list or dict the template builds.
        public var outputBytes: Int
        /// Wall-clock time of one rendering, parsing included.
        public var duration: Duration

        /// - Parameters:
        ///   - loopIterations: loop iterations in one rendering.
        ///   - depth: nesting of blocks, expressions and values.
        ///   - outputBytes: bytes of output and of any one value.
        ///   - duration: time of one rendering.
        public init(loopIterations: Int, depth: Int, outputBytes: Int, duration: Duration) {
            self.loopIterations = loopIterations
            self.depth = depth
            self.outputBytes = outputBytes
            self.duration = duration
        }

        /// One million loop iterations, depth 100, 8 MiB, 10 seconds.
        public static let standard = Limits(loopIterations: 1_000_000, depth: 100, outputBytes: 8 << 20, duration: .seconds(10))
    }
}

/// An error rendering a chat template: which model file, where in the template, and what.
public struct ChatTemplateError: Error, LocalizedError, Sendable, CustomStringConvertible {
    /// 1-based line and column in the template source, when known.
    public let line: Int?
    public let column: Int?
    public let message: String
    /// The model file the template came from, when known.
    public let origin: String?

    public init(_ message: String, line: Int? = nil, column: Int? = nil, origin: String? = nil) {
        self.message = message
        self.line = line
        self.column = column
        self.origin = origin
    }

    /// This error, naming `origin` as the template's file unless it names one already.
    func from(_ origin: String?) -> ChatTemplateError {
        self.origin == nil ? ChatTemplateError(message, line: line, column: column, origin: origin) : self
    }

    public var description: String {
        let file = origin.map { "chat template of \($0)" } ?? "chat template"
        if let line, let column { return "\(file), line \(line), column \(column): \(message)" }
        return "\(file): \(message)"
    }

    public var errorDescription: String? { description }
}

import Foundation

/// Wire types of the `exec` plugin protocol (docs/plugins.md, "External programs: the exec
/// protocol"): JSON-RPC 2.0 messages, one per line, over an external program's stdin and
/// stdout.
///
/// Everything a plugin sends is untrusted input: `decodeMessage(_:)` and
/// `decodeReply(_:as:root:)` check it against the documented schema and throw a `Violation`
/// that names the member at fault. The golden messages in
/// `Tests/TallyCLITests/Resources/exec-protocol/` pin the encoding from both sides.
public enum ExecProtocol {
    /// The exec protocol version this Tally speaks, sent in `describe` params. A plugin that
    /// answers with another major version is refused; minor versions only add optional members.
    public static let version = Version(major: 1, minor: 1)
    /// The JSON-RPC version every message carries in `jsonrpc`.
    public static let jsonRPCVersion = "2.0"
    /// The longest line Tally reads from a plugin's stdout; a longer one stops the plugin.
    public static let maxMessageBytes = 8 * 1024 * 1024
    /// How every error about a message that breaks the protocol begins (`TallyError.message`),
    /// so that a conformance checker can tell them from a plugin's own errors.
    public static let violationPrefix = "exec protocol violation"

    /// The methods Tally calls, and the one notification a plugin may send.
    public enum Method {
        public static let describe = "describe"
        public static let generate = "generate"
        public static let score = "score"
        public static let finetune = "finetune"
        public static let openArtifact = "open_artifact"
        /// Optional (protocol 1.1): texts to vectors, for plugins whose `describe` declares `embeddings`.
        public static let embed = "embed"
        /// A notification from the plugin about a pending request.
        public static let progress = "progress"
    }

    // MARK: versions

    /// An exec protocol version, `MAJOR.MINOR`.
    public struct Version: Sendable, Hashable, CustomStringConvertible {
        public let major: Int
        public let minor: Int

        public init(major: Int, minor: Int) {
            self.major = major
            self.minor = minor
        }

        /// Parses `MAJOR.MINOR` (decimal digits only); nil for anything else.
        public init?(_ text: String) {
            let parts = text.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0.count <= 6 && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }),
                  let major = Int(parts[0]), let minor = Int(parts[1]) else { return nil }
            self.init(major: major, minor: minor)
        }

        public var description: String { "\(major).\(minor)" }
    }

    /// Why a plugin's declared `protocol_version` is unusable, as a sentence that names both
    /// versions and what to do; nil when Tally can talk to it (same major version).
    public static func versionProblem(declared: String?) -> String? {
        let ours = version
        guard let declared else {
            return "declares no `protocol_version` in its describe result, so it predates exec protocol 1.0 (JSON-RPC 2.0 framing); this Tally speaks \(ours): update the plugin to protocol \(ours.major).x (docs/plugins.md, \"Versions\")"
        }
        let shown = sanitized(declared, limit: 40)
        guard let theirs = Version(declared) else {
            return "declares protocol_version '\(shown)', which is not MAJOR.MINOR; this Tally speaks exec protocol \(ours): answer describe with \"protocol_version\": \"\(ours)\""
        }
        guard theirs.major == ours.major else {
            return "speaks exec protocol \(theirs), but this Tally speaks \(ours); use a release of the plugin for protocol \(ours.major).x, or a Tally that speaks \(theirs.major).x"
        }
        return nil
    }

    // MARK: JSON values

    /// A JSON value, for messages whose shape depends on the method.
    public enum Value: Codable, Sendable, Hashable {
        case null
        case bool(Bool)
        case number(Double)
        case string(String)
        case array([Value])
        case object([String: Value])

        public init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if container.decodeNil() { self = .null }
            else if let value = try? container.decode(Bool.self) { self = .bool(value) }
            else if let value = try? container.decode(Double.self) { self = .number(value) }
            else if let value = try? container.decode(String.self) { self = .string(value) }
            else if let value = try? container.decode([Value].self) { self = .array(value) }
            else { self = .object(try container.decode([String: Value].self)) }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .null: try container.encodeNil()
            case .bool(let value): try container.encode(value)
            case .number(let value): try container.encode(value)
            case .string(let value): try container.encode(value)
            case .array(let value): try container.encode(value)
            case .object(let value): try container.encode(value)
            }
        }

        /// The value as a whole number, when it is one (ids, codes).
        public var integer: Int? {
            guard case .number(let number) = self, number.rounded() == number, abs(number) < 9.0e15 else { return nil }
            return Int(number)
        }

        /// Compact JSON, cut to `limit` characters, for messages about it.
        func excerpt(limit: Int = 60) -> String {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let text = (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "?"
            return sanitized(text, limit: limit)
        }
    }

    // MARK: envelope

    /// `{"jsonrpc": "2.0", "id": 1, "method": "generate", "params": {...}}`
    public struct Request<Params: Encodable & Sendable>: Encodable, Sendable {
        public let jsonrpc: String
        public let id: Int
        public let method: String
        public let params: Params

        public init(id: Int, method: String, params: Params) {
            jsonrpc = ExecProtocol.jsonRPCVersion
            self.id = id
            self.method = method
            self.params = params
        }
    }

    /// One request as the line Tally writes (without the newline): keys sorted, slashes
    /// unescaped. The only encoder of requests, used by `ExecConnection` and the golden tests.
    public static func encodeRequest<Params: Encodable & Sendable>(id: Int, method: String, params: Params) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(Request(id: id, method: method, params: params))
    }

    /// JSON-RPC error codes. The standard ones where they fit; `-32000` to `-32099` are the
    /// exec protocol's own; a plugin may use any code outside `-32768...-32000` for errors of
    /// its own. A struct rather than an enum, so that new codes break no one's `switch`.
    public struct ErrorCode: Sendable, Hashable, CustomStringConvertible {
        public let rawValue: Int
        public init(_ rawValue: Int) { self.rawValue = rawValue }

        /// The plugin could not parse a line as JSON.
        public static let parseError = ErrorCode(-32700)
        /// The line is JSON but not a valid request (no `jsonrpc`, `method` or `id`).
        public static let invalidRequest = ErrorCode(-32600)
        /// The plugin does not implement the method (`score` is optional).
        public static let methodNotFound = ErrorCode(-32601)
        /// The params are missing a member or have one of the wrong type.
        public static let invalidParams = ErrorCode(-32602)
        /// The plugin failed in a way it did not foresee.
        public static let internalError = ErrorCode(-32603)
        /// The plugin tried and failed (model not found, out of memory, provider error).
        public static let failed = ErrorCode(-32000)
        /// `generate`, `score` or `open_artifact` named an artifact the plugin cannot open.
        public static let artifactNotFound = ErrorCode(-32001)
        /// `describe` named a protocol version whose major version the plugin does not speak.
        public static let unsupportedProtocolVersion = ErrorCode(-32002)

        public var description: String {
            switch rawValue {
            case -32700: "-32700 parse error"
            case -32600: "-32600 invalid request"
            case -32601: "-32601 method not found"
            case -32602: "-32602 invalid params"
            case -32603: "-32603 internal error"
            case -32000: "-32000 failed"
            case -32001: "-32001 artifact not found"
            case -32002: "-32002 unsupported protocol version"
            default: String(rawValue)
            }
        }
    }

    /// The `error` member of a reply.
    public struct RemoteError: Error, Sendable, Hashable, CustomStringConvertible {
        public let code: ErrorCode
        /// The plugin's message, as sent (show it through `description`, which bounds it).
        public let message: String
        public let data: Value?

        public init(code: ErrorCode, message: String, data: Value? = nil) {
            self.code = code
            self.message = message
            self.data = data
        }

        /// One line: the message (cut to 500 characters, control characters removed) and the code.
        public var description: String { "\(sanitized(message, limit: 500)) (JSON-RPC error \(code))" }
    }

    /// One message from a plugin's stdout, its envelope checked.
    public enum Message: Sendable, Hashable {
        /// A reply to Tally's request `id`: its `result`, or its `error`.
        case reply(id: Int, Result<Value, RemoteError>)
        /// An error reply with `"id": null`: the plugin could not tell which request it answers
        /// (JSON-RPC's answer to a line it cannot parse).
        case unidentifiedError(RemoteError)
        /// A notification (`method` and `params`, no `id`); `progress` is the only one.
        case notification(method: String, params: [String: Value])
    }

    /// A message that breaks the documented schema.
    public struct Violation: Error, Sendable, Hashable, CustomStringConvertible {
        /// The member at fault as a path into the message (`jsonrpc`, `id`,
        /// `result.usage.prompt_tokens`, `params.completed`); empty when the line as a whole is
        /// at fault (not JSON, too long).
        public let field: String
        /// What is wrong with it and what the protocol expects.
        public let problem: String
        /// The request the message concerns, when known.
        public var id: Int?
        /// That request's method, when known.
        public var method: String?
        /// The start of the offending line (at most 200 characters, control characters removed).
        public var excerpt: String

        public init(field: String, problem: String, id: Int? = nil, method: String? = nil, excerpt: String = "") {
            self.field = field
            self.problem = problem
            self.id = id
            self.method = method
            self.excerpt = excerpt
        }

        /// `the reply to `generate` (id 3): `result.usage.prompt_tokens` is -1; ...`
        public var description: String {
            var text = ""
            switch (method, id) {
            case let (method?, id?): text = "the reply to `\(method)` (id \(id)): "
            case let (nil, id?): text = "the message about request \(id): "
            default: text = "a message: "
            }
            text += field.isEmpty ? problem : "`\(field)` \(problem)"
            if !excerpt.isEmpty { text += " [line: \(excerpt)]" }
            return text
        }
    }

    /// Decodes one line from a plugin's stdout and checks its envelope: `jsonrpc` is `"2.0"`;
    /// a reply has an integer `id` and exactly one of `result` and `error` (`code`, `message`,
    /// optional `data`); a notification has `method` and `params` and no `id`; no other
    /// members.
    /// - Throws: `Violation` naming the member at fault (with the `id` when it could be read).
    public static func decodeMessage(_ line: Data) throws(Violation) -> Message {
        let excerpt = sanitized(String(decoding: line.prefix(400), as: UTF8.self), limit: 200)
        guard line.count <= maxMessageBytes else {
            throw Violation(field: "", problem: "is longer than \(maxMessageBytes / (1024 * 1024)) MiB; keep each message on one line and under that size", excerpt: excerpt)
        }
        let value: Value
        do {
            value = try JSONDecoder().decode(Value.self, from: line)
        } catch {
            throw Violation(field: "", problem: "is not JSON; stdout carries protocol messages only (write logs to stderr)", excerpt: excerpt)
        }
        guard case .object(let members) = value else {
            throw Violation(field: "", problem: "is \(kind(of: value)), not a JSON object", excerpt: excerpt)
        }
        // Read the id first, so that every later violation names the request it concerns
        // (an id sent back as a string of digits is still a violation, but an attributable one).
        var id = members["id"]?.integer
        if id == nil, case .string(let text)? = members["id"], text.count <= 18, text.allSatisfy({ $0.isASCII && $0.isNumber }) { id = Int(text) }
        func violation(_ field: String, _ problem: String) -> Violation {
            Violation(field: field, problem: problem, id: id, excerpt: excerpt)
        }
        switch members["jsonrpc"] {
        case nil:
            throw violation("jsonrpc", "is missing; every message carries \"jsonrpc\": \"2.0\" (a plugin written for the exec protocol before 1.0 must be updated)")
        case .string(jsonRPCVersion)?:
            break
        case let other?:
            throw violation("jsonrpc", "is \(other.excerpt()); it must be the string \"2.0\"")
        }

        if let method = members["method"] {
            guard case .string(let name) = method else { throw violation("method", "is \(kind(of: method)); it must be a string") }
            if members["id"] != nil {
                throw violation("id", "appears in a message with `method`: plugins send Tally no requests, only replies and `progress` notifications (which have no id)")
            }
            if let extra = members.keys.sorted().first(where: { !["jsonrpc", "method", "params"].contains($0) }) {
                throw violation(extra, "is not a member of a notification (allowed: jsonrpc, method, params)")
            }
            guard let params = members["params"] else { throw violation("params", "is missing; a notification carries its params object") }
            guard case .object(let object) = params else { throw violation("params", "is \(kind(of: params)); it must be an object") }
            return .notification(method: name, params: object)
        }

        guard let rawID = members["id"] else {
            throw violation("id", "is missing; a reply carries the id of the request it answers (and a notification carries `method`)")
        }
        if let extra = members.keys.sorted().first(where: { !["jsonrpc", "id", "result", "error"].contains($0) }) {
            throw violation(extra, "is not a member of a reply (allowed: jsonrpc, id, and one of result or error)")
        }
        let result = members["result"], error = members["error"]
        if result != nil, error != nil {
            throw violation("error", "appears together with `result`; a reply carries exactly one of them")
        }
        if result == nil, error == nil {
            throw violation("result", "is missing, and so is `error`; a reply carries exactly one of them")
        }
        if case .null = rawID {
            guard let error else { throw violation("id", "is null in a result; a result carries the id of the request it answers") }
            return .unidentifiedError(try remoteError(error, violation))
        }
        guard let id, id > 0, rawID.integer != nil else {
            throw violation("id", "is \(rawID.excerpt()); it must be the positive whole number Tally sent as the request's id")
        }
        if let result { return .reply(id: id, .success(result)) }
        return .reply(id: id, .failure(try remoteError(error ?? .null, violation)))
    }

    private static func remoteError(_ value: Value, _ violation: (String, String) -> Violation) throws(Violation) -> RemoteError {
        guard case .object(let members) = value else { throw violation("error", "is \(kind(of: value)); it must be an object with `code` and `message`") }
        if let extra = members.keys.sorted().first(where: { !["code", "message", "data"].contains($0) }) {
            throw violation("error.\(extra)", "is not a member of an error (allowed: code, message, data)")
        }
        guard let rawCode = members["code"] else { throw violation("error.code", "is missing; an error carries an integer code (docs/plugins.md lists them)") }
        guard let code = rawCode.integer else { throw violation("error.code", "is \(rawCode.excerpt()); it must be a whole number") }
        guard let rawMessage = members["message"] else { throw violation("error.message", "is missing; an error carries a message for the user") }
        guard case .string(let message) = rawMessage else { throw violation("error.message", "is \(kind(of: rawMessage)); it must be a string") }
        return RemoteError(code: ErrorCode(code), message: message, data: members["data"])
    }

    // MARK: replies

    /// A member of a reply that its type allows but the protocol does not (a negative count,
    /// an empty name): the path below the reply's root, and the problem.
    public struct FieldProblem: Sendable, Hashable {
        public let field: String
        public let problem: String

        public init(_ field: String, _ problem: String) {
            self.field = field
            self.problem = problem
        }
    }

    /// A `result` (or notification params) type Tally decodes from a plugin's message.
    public protocol Reply: Decodable, Sendable {
        /// The first value the type allows but the protocol does not, if any.
        func problem() -> FieldProblem?
    }

    /// Decodes a reply's `result` (or a notification's `params`) as `Body` and checks its values.
    /// - Parameters:
    ///   - value: the JSON value.
    ///   - root: the path the violation's field starts with (`result`, `params`).
    /// - Throws: `Violation` naming the member at fault (missing, wrong type, out of range);
    ///   the caller adds the request's id and method.
    public static func decodeReply<Body: Reply>(_ value: Value, as body: Body.Type, root: String = "result") throws(Violation) -> Body {
        let decoded: Body
        do {
            decoded = try JSONDecoder().decode(Body.self, from: JSONEncoder().encode(value))
        } catch let error as DecodingError {
            let (field, problem) = describe(error, root: root)
            throw Violation(field: field, problem: problem)
        } catch {
            throw Violation(field: root, problem: "cannot be read (\(error))")
        }
        if let problem = decoded.problem() {
            throw Violation(field: problem.field.isEmpty ? root : "\(root).\(problem.field)", problem: problem.problem)
        }
        return decoded
    }

    static func describe(_ error: DecodingError, root: String) -> (String, String) {
        func path(_ keys: [any CodingKey]) -> String {
            var text = root
            for key in keys {
                if let index = key.intValue, key.stringValue.hasPrefix("Index") {
                    text += "[\(index)]"
                } else {
                    text += text.isEmpty ? key.stringValue : ".\(key.stringValue)"
                }
            }
            return text
        }
        switch error {
        case .keyNotFound(let key, let context):
            return (path(context.codingPath + [key]), "is missing")
        case .typeMismatch(let type, let context):
            return (path(context.codingPath), "has the wrong type; it must be \(typeName(type))")
        case .valueNotFound(let type, let context):
            return (path(context.codingPath), "is null; it must be \(typeName(type))")
        case .dataCorrupted(let context):
            return (path(context.codingPath), "is invalid: \(sanitized(context.debugDescription, limit: 120))")
        @unknown default:
            return (root, "cannot be read")
        }
    }

    static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type, is Int64.Type, is UInt64.Type, is Int32.Type: return "a whole number"
        case is Double.Type, is Float.Type: return "a number"
        case is String.Type: return "a string"
        case is Bool.Type: return "true or false"
        default:
            let name = String(describing: type)
            if name.hasPrefix("Dictionary") || name.hasPrefix("[String") { return "an object" }
            if name.hasPrefix("Array") || name.hasPrefix("[") { return "an array" }
            return name
        }
    }

    static func kind(of value: Value) -> String {
        switch value {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }

    /// One line of untrusted text for a message: control characters become spaces, and it is
    /// cut to `limit` characters.
    public static func sanitized(_ text: String, limit: Int) -> String {
        var result = ""
        var count = 0
        for scalar in text.unicodeScalars {
            if count >= limit {
                result += "…"
                break
            }
            let isControl = scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || scalar.properties.generalCategory == .format
            result.unicodeScalars.append(isControl ? " " : scalar)
            count += 1
        }
        return result
    }

    // MARK: describe

    /// `describe` parameters: the protocol version Tally speaks, the model the recipe asked
    /// for and the backend entry's plugin settings.
    public struct DescribeParams: Codable, Sendable, Hashable {
        public let protocolVersion: String
        public let model: String
        public let settings: [String: String]

        public init(model: String, settings: [String: String], protocolVersion: String = ExecProtocol.version.description) {
            self.protocolVersion = protocolVersion
            self.model = model
            self.settings = settings
        }

        enum CodingKeys: String, CodingKey {
            case model, settings
            case protocolVersion = "protocol_version"
        }
    }

    /// `describe` result.
    public struct Description: Codable, Sendable, Hashable, Reply {
        /// The exec protocol version the plugin speaks (`MAJOR.MINOR`); checked with
        /// `versionProblem(declared:)`, so a missing one gets a message about versions.
        public let protocolVersion: String?
        public let name: String
        /// Part of every cache key: plugins change it whenever their outputs change.
        public let version: String
        public let dataLeavesMachine: Bool?
        public let fineTuningMethods: [String]?
        public let maxConcurrency: Int?
        /// Present when the plugin answers `embed` (protocol 1.1); absent: it cannot embed.
        public let embeddings: EmbeddingCapability?

        public init(protocolVersion: String?, name: String, version: String, dataLeavesMachine: Bool?, fineTuningMethods: [String]?, maxConcurrency: Int?, embeddings: EmbeddingCapability? = nil) {
            self.protocolVersion = protocolVersion
            self.name = name
            self.version = version
            self.dataLeavesMachine = dataLeavesMachine
            self.fineTuningMethods = fineTuningMethods
            self.maxConcurrency = maxConcurrency
            self.embeddings = embeddings
        }

        enum CodingKeys: String, CodingKey {
            case name, version, embeddings
            case protocolVersion = "protocol_version"
            case dataLeavesMachine = "data_leaves_machine"
            case fineTuningMethods = "fine_tuning_methods"
            case maxConcurrency = "max_concurrency"
        }

        public func problem() -> FieldProblem? {
            if name.isEmpty || name.count > 200 { return FieldProblem("name", "must be 1 to 200 characters") }
            if version.isEmpty || version.count > 200 { return FieldProblem("version", "must be 1 to 200 characters (it is part of every cache key)") }
            if let protocolVersion, protocolVersion.count > 40 { return FieldProblem("protocol_version", "must be MAJOR.MINOR") }
            if let methods = fineTuningMethods {
                if methods.count > 64 { return FieldProblem("fine_tuning_methods", "lists \(methods.count) methods; at most 64") }
                if let index = methods.firstIndex(where: { $0.isEmpty || $0.count > 100 }) {
                    return FieldProblem("fine_tuning_methods[\(index)]", "must be 1 to 100 characters")
                }
            }
            if let maxConcurrency, !(1...1024).contains(maxConcurrency) {
                return FieldProblem("max_concurrency", "is \(maxConcurrency); it must be 1 to 1024")
            }
            if let problem = embeddings?.problem() { return FieldProblem("embeddings.\(problem.field)", problem.problem) }
            return nil
        }
    }

    /// `describe`'s `embeddings` member: the plugin answers `embed`.
    public struct EmbeddingCapability: Codable, Sendable, Hashable, Reply {
        /// The most texts one `embed` request may carry (default 16).
        public let maxBatchSize: Int?

        public static let defaultBatchSize = 16
        /// The largest batch a plugin may ask for.
        public static let maxBatchSizeLimit = 2048

        public init(maxBatchSize: Int?) { self.maxBatchSize = maxBatchSize }

        enum CodingKeys: String, CodingKey {
            case maxBatchSize = "max_batch_size"
        }

        public func problem() -> FieldProblem? {
            if let maxBatchSize, !(1...Self.maxBatchSizeLimit).contains(maxBatchSize) {
                return FieldProblem("max_batch_size", "is \(maxBatchSize); it must be 1 to \(Self.maxBatchSizeLimit)")
            }
            return nil
        }
    }

    // MARK: generate

    /// `generate` parameters: a `GenerationRequest` plus the model and, for fine-tuned
    /// models, the artifact `finetune` returned (`null` for the base model).
    public struct GenerateParams: Codable, Sendable, Hashable {
        public let model: String
        public let artifact: String?
        public let messages: [ChatMessage]
        public let maxTokens: Int
        public let temperature: Double
        public let topP: Double
        public let stop: [String]
        public let seed: UInt64

        public init(model: String, artifact: String?, request: GenerationRequest) {
            self.model = model
            self.artifact = artifact
            messages = request.messages
            maxTokens = request.maxTokens
            temperature = request.temperature
            topP = request.topP
            stop = request.stop
            seed = request.seed
        }

        enum CodingKeys: String, CodingKey {
            case model, artifact, messages, temperature, stop, seed
            case maxTokens = "max_tokens"
            case topP = "top_p"
        }

        /// Writes `"artifact": null` for the base model rather than leaving the key out.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(model, forKey: .model)
            try container.encode(artifact, forKey: .artifact)
            try container.encode(messages, forKey: .messages)
            try container.encode(maxTokens, forKey: .maxTokens)
            try container.encode(temperature, forKey: .temperature)
            try container.encode(topP, forKey: .topP)
            try container.encode(stop, forKey: .stop)
            try container.encode(seed, forKey: .seed)
        }
    }

    /// `generate` result.
    public struct Generation: Codable, Sendable, Hashable, Reply {
        public let text: String
        public let usage: TokenUsageWire
        /// Local compute time, billed at the recipe's compute price; omitted for hosted calls.
        public let computeS: Double?

        public init(text: String, usage: TokenUsageWire, computeS: Double?) {
            self.text = text
            self.usage = usage
            self.computeS = computeS
        }

        enum CodingKeys: String, CodingKey {
            case text, usage
            case computeS = "compute_s"
        }

        public func problem() -> FieldProblem? {
            if let problem = usage.problem() { return FieldProblem("usage.\(problem.field)", problem.problem) }
            if let computeS, !(computeS.isFinite && computeS >= 0) { return FieldProblem("compute_s", "is \(computeS); it must be a number of seconds ≥ 0") }
            return nil
        }
    }

    /// Token usage: what the cost model multiplies by the recipe's prices.
    public struct TokenUsageWire: Codable, Sendable, Hashable, Reply {
        public let promptTokens: Int
        public let completionTokens: Int
        /// Prompt tokens served from a provider's cache (0 when absent).
        public let cachedPromptTokens: Int?

        public init(promptTokens: Int, completionTokens: Int, cachedPromptTokens: Int?) {
            self.promptTokens = promptTokens
            self.completionTokens = completionTokens
            self.cachedPromptTokens = cachedPromptTokens
        }

        enum CodingKeys: String, CodingKey {
            case promptTokens = "prompt_tokens"
            case completionTokens = "completion_tokens"
            case cachedPromptTokens = "cached_prompt_tokens"
        }

        public func problem() -> FieldProblem? {
            if promptTokens < 0 { return FieldProblem("prompt_tokens", "is \(promptTokens); token counts are whole numbers ≥ 0") }
            if completionTokens < 0 { return FieldProblem("completion_tokens", "is \(completionTokens); token counts are whole numbers ≥ 0") }
            if let cached = cachedPromptTokens, cached < 0 || cached > promptTokens {
                return FieldProblem("cached_prompt_tokens", "is \(cached); it must be between 0 and prompt_tokens (\(promptTokens))")
            }
            return nil
        }

        var usage: TokenUsage {
            TokenUsage(promptTokens: promptTokens, completionTokens: completionTokens, cachedPromptTokens: cachedPromptTokens ?? 0)
        }
    }

    // MARK: finetune

    /// `finetune` parameters.
    public struct FineTuneParams: Codable, Sendable, Hashable {
        public let model: String
        /// The training method's name (`FineTuneMethod.name`), e.g. `lora`.
        public let method: String
        /// The method's parameters (for `lora`: rank, alpha, dropout, targets, use_rslora).
        public let parameters: [String: SettingValue]
        public let options: TrainingOptions
        public let train: [TrainingExample]
        public let validation: [TrainingExample]
        public let workDirectory: String
        public let jobKey: String

        public init(model: String, method: String, parameters: [String: SettingValue], options: TrainingOptions, train: [TrainingExample], validation: [TrainingExample], workDirectory: String, jobKey: String) {
            self.model = model
            self.method = method
            self.parameters = parameters
            self.options = options
            self.train = train
            self.validation = validation
            self.workDirectory = workDirectory
            self.jobKey = jobKey
        }

        enum CodingKeys: String, CodingKey {
            case model, method, parameters, options, train, validation
            case workDirectory = "work_directory"
            case jobKey = "job_key"
        }
    }

    /// `finetune` result: `FineTuneOutcome` with optional fields.
    public struct FineTuneResult: Codable, Sendable, Hashable, Reply {
        public let artifact: String
        public let wallS: Double?
        public let trainedTokens: Int?
        public let steps: Int?
        public let trainLoss: [LossPoint]?
        public let validationLoss: [LossPoint]?
        public let peakMemoryBytes: Int?
        public let billedUSD: Double?
        public let notes: [String]?

        public init(artifact: String, wallS: Double?, trainedTokens: Int?, steps: Int?, trainLoss: [LossPoint]?, validationLoss: [LossPoint]?, peakMemoryBytes: Int?, billedUSD: Double?, notes: [String]?) {
            self.artifact = artifact
            self.wallS = wallS
            self.trainedTokens = trainedTokens
            self.steps = steps
            self.trainLoss = trainLoss
            self.validationLoss = validationLoss
            self.peakMemoryBytes = peakMemoryBytes
            self.billedUSD = billedUSD
            self.notes = notes
        }

        enum CodingKeys: String, CodingKey {
            case artifact, steps, notes
            case wallS = "wall_s"
            case trainedTokens = "trained_tokens"
            case trainLoss = "train_loss"
            case validationLoss = "validation_loss"
            case peakMemoryBytes = "peak_memory_bytes"
            case billedUSD = "billed_usd"
        }

        public func problem() -> FieldProblem? {
            if artifact.isEmpty || artifact.count > 4096 { return FieldProblem("artifact", "must be 1 to 4096 characters") }
            if let wallS, !(wallS.isFinite && wallS >= 0) { return FieldProblem("wall_s", "is \(wallS); it must be a number of seconds ≥ 0") }
            if let trainedTokens, trainedTokens < 0 { return FieldProblem("trained_tokens", "is \(trainedTokens); it must be ≥ 0") }
            if let steps, steps < 0 { return FieldProblem("steps", "is \(steps); it must be ≥ 0") }
            for (name, curve) in [("train_loss", trainLoss), ("validation_loss", validationLoss)] {
                guard let curve else { continue }
                if curve.count > 100_000 { return FieldProblem(name, "has \(curve.count) points; at most 100000") }
                if let index = curve.firstIndex(where: { !$0.loss.isFinite || $0.step < 0 }) {
                    return FieldProblem("\(name)[\(index)]", "must have a step ≥ 0 and a finite loss")
                }
            }
            if let peakMemoryBytes, peakMemoryBytes < 0 { return FieldProblem("peak_memory_bytes", "is \(peakMemoryBytes); it must be ≥ 0") }
            if let billedUSD, !(billedUSD.isFinite && billedUSD >= 0) { return FieldProblem("billed_usd", "is \(billedUSD); it must be ≥ 0") }
            if let notes {
                if notes.count > 100 { return FieldProblem("notes", "has \(notes.count) notes; at most 100") }
                if let index = notes.firstIndex(where: { $0.count > 1000 }) { return FieldProblem("notes[\(index)]", "is longer than 1000 characters") }
            }
            return nil
        }

        /// As the outcome Tally records (notes cleaned of control characters).
        var outcome: FineTuneOutcome {
            FineTuneOutcome(
                artifact: artifact, wallSeconds: wallS ?? 0, trainedTokens: trainedTokens ?? 0,
                steps: steps ?? 0, trainLoss: trainLoss ?? [], validationLoss: validationLoss ?? [],
                peakMemoryBytes: peakMemoryBytes, billedUSD: billedUSD,
                notes: (notes ?? []).map { ExecProtocol.sanitized($0, limit: 1000) })
        }
    }

    /// A `progress` notification's params: how far the pending request `id` has come.
    public struct ProgressParams: Codable, Sendable, Hashable, Reply {
        public let id: Int
        public let phase: String
        public let completed: Int
        public let total: Int?
        public let detail: String?

        public init(id: Int, phase: String, completed: Int, total: Int?, detail: String?) {
            self.id = id
            self.phase = phase
            self.completed = completed
            self.total = total
            self.detail = detail
        }

        public func problem() -> FieldProblem? {
            if phase.isEmpty { return FieldProblem("phase", "is empty; name the phase (e.g. \"training\")") }
            if completed < 0 { return FieldProblem("completed", "is \(completed); it must be ≥ 0") }
            if let total, total < 0 { return FieldProblem("total", "is \(total); it must be ≥ 0") }
            return nil
        }

        /// As a progress event (phase and detail cut to one short line).
        var event: ProgressEvent {
            .advanced(phase: ExecProtocol.sanitized(phase, limit: 64), completed: completed, total: total,
                      detail: detail.map { ExecProtocol.sanitized($0, limit: 200) })
        }
    }

    // MARK: open_artifact, score

    /// `open_artifact` parameters.
    public struct OpenArtifactParams: Codable, Sendable, Hashable {
        public let model: String
        public let artifact: String

        public init(model: String, artifact: String) {
            self.model = model
            self.artifact = artifact
        }
    }

    /// `open_artifact` result.
    public struct OpenedArtifact: Codable, Sendable, Hashable, Reply {
        /// A stable identity of the artifact (a content hash); part of cache keys.
        public let identity: String

        public init(identity: String) { self.identity = identity }

        public func problem() -> FieldProblem? {
            identity.isEmpty || identity.count > 1024 ? FieldProblem("identity", "must be 1 to 1024 characters (a content hash is ideal)") : nil
        }
    }

    /// `score` parameters (optional method, used by drift probes).
    public struct ScoreParams: Codable, Sendable, Hashable {
        public let model: String
        public let artifact: String?
        public let text: String

        public init(model: String, artifact: String?, text: String) {
            self.model = model
            self.artifact = artifact
            self.text = text
        }

        /// Writes `"artifact": null` for the base model rather than leaving the key out.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(model, forKey: .model)
            try container.encode(artifact, forKey: .artifact)
            try container.encode(text, forKey: .text)
        }
    }

    /// `score` result: the mean negative log-likelihood per token, and the token count.
    public struct Score: Codable, Sendable, Hashable, Reply {
        public let nats: Double
        public let tokens: Int

        public init(nats: Double, tokens: Int) {
            self.nats = nats
            self.tokens = tokens
        }

        public func problem() -> FieldProblem? {
            if !(nats.isFinite && nats >= 0) { return FieldProblem("nats", "is \(nats); it must be a finite number ≥ 0") }
            if tokens < 0 { return FieldProblem("tokens", "is \(tokens); it must be ≥ 0") }
            return nil
        }
    }
}

extension ExecProtocol {
    // MARK: embed

    /// `embed` parameters: the texts to turn into vectors, in order.
    public struct EmbedParams: Codable, Sendable, Hashable {
        public let model: String
        public let texts: [String]

        public init(model: String, texts: [String]) {
            self.model = model
            self.texts = texts
        }
    }

    /// `embed` result: one vector per text, all of one dimension, and the tokens the batch
    /// counted (what the embedder's price multiplies).
    public struct EmbeddingResult: Codable, Sendable, Hashable, Reply {
        public let vectors: [[Double]]
        public let promptTokens: Int

        /// The longest vector accepted.
        public static let maxDimension = 65_536

        public init(vectors: [[Double]], promptTokens: Int) {
            self.vectors = vectors
            self.promptTokens = promptTokens
        }

        enum CodingKeys: String, CodingKey {
            case vectors
            case promptTokens = "prompt_tokens"
        }

        public func problem() -> FieldProblem? {
            if promptTokens < 0 { return FieldProblem("prompt_tokens", "is \(promptTokens); token counts are whole numbers ≥ 0") }
            if vectors.count > EmbeddingCapability.maxBatchSizeLimit {
                return FieldProblem("vectors", "has \(vectors.count) vectors; at most \(EmbeddingCapability.maxBatchSizeLimit), one per text asked")
            }
            guard let dimension = vectors.first?.count else { return nil }
            if !(1...Self.maxDimension).contains(dimension) {
                return FieldProblem("vectors[0]", "has \(dimension) numbers; a vector has 1 to \(Self.maxDimension)")
            }
            for (index, vector) in vectors.enumerated() {
                if vector.count != dimension {
                    return FieldProblem("vectors[\(index)]", "has \(vector.count) numbers, vectors[0] has \(dimension); every vector of a reply has one dimension")
                }
                if let position = vector.firstIndex(where: { !$0.isFinite || abs($0) > Double(Float.greatestFiniteMagnitude) }) {
                    return FieldProblem("vectors[\(index)][\(position)]", "is not a finite number")
                }
            }
            return nil
        }

        /// Whether the reply answers a request of `texts` texts: one vector per text.
        public func problem(texts: Int) -> FieldProblem? {
            vectors.count == texts ? nil : FieldProblem("vectors", "has \(vectors.count) vectors for the \(texts) texts asked; answer one vector per text, in order")
        }
    }
}

extension ExecProtocol.Value: ExecProtocol.Reply {
    /// Any JSON value is acceptable as a raw result.
    public func problem() -> ExecProtocol.FieldProblem? { nil }
}

import Foundation

/// A parsed JSON document, for the free-form nested objects of `tokenizer.json`.
enum JSONValue: Decodable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let v = try? container.decode(Bool.self) {
            self = .bool(v)
        } else if let v = try? container.decode(Double.self) {
            self = .number(v)
        } else if let v = try? container.decode(String.self) {
            self = .string(v)
        } else if let v = try? container.decode([JSONValue].self) {
            self = .array(v)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    var string: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    var bool: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    var int: Int? {
        if case .number(let n) = self, n == n.rounded(), abs(n) < 1e15 { return Int(n) }
        return nil
    }

    var array: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    var object: [String: JSONValue]? {
        if case .object(let o) = self { return o }
        return nil
    }

    var isNull: Bool {
        if case .null = self { return true }
        return false
    }
}

extension BPETokenizer {
    /// Loads a byte-level BPE tokenizer from a Hugging Face `tokenizer.json`.
    ///
    /// Supported: model `BPE` (vocab; merges as `"a b"` strings or `["a", "b"]` pairs;
    /// `ignore_merges`; `unk_token`), `added_tokens`, normalizers `NFC`/`NFD`/`NFKC`/`NFKD`/
    /// `Lowercase`/`Prepend`/`Replace`/`Strip`/`Sequence`, pre-tokenizers `ByteLevel`, `Split`,
    /// `Digits`, `WhitespaceSplit`, `Sequence`, post-processors `ByteLevel`/`TemplateProcessing`/
    /// `Sequence`, decoder `ByteLevel`. Anything else is reported by name.
    /// - Parameters:
    ///   - url: the `tokenizer.json` file.
    ///   - eosTokens: token strings that end generation (from `generation_config.json` or
    ///     `tokenizer_config.json`); when empty, `<|endoftext|>`, `</s>`, `<|im_end|>` and
    ///     `<|eot_id|>` are used where present.
    ///   - bosToken: the beginning-of-sequence token string, if the model has one.
    ///   - chatTemplate: the model's chat template, if known.
    /// - Throws: `TokenizerError` naming the file and the unsupported or malformed part.
    public init(tokenizerJSON url: URL, eosTokens: [String] = [], bosToken: String? = nil, chatTemplate: String? = nil) throws {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw TokenizerError(file: url.path, "cannot read the tokenizer file (\(error.localizedDescription))")
        }
        try self.init(tokenizerJSONData: data, file: url.path, eosTokens: eosTokens, bosToken: bosToken, chatTemplate: chatTemplate)
    }

    /// Loads a tokenizer from the bytes of a `tokenizer.json`; `file` names it in errors.
    /// - Throws: `TokenizerError`.
    public init(tokenizerJSONData data: Data, file: String, eosTokens: [String] = [], bosToken: String? = nil, chatTemplate: String? = nil) throws {
        let root: JSONValue
        do {
            root = try JSONDecoder().decode(JSONValue.self, from: data)
        } catch {
            throw TokenizerError(file: file, "is not valid JSON (\(error)); download the tokenizer again")
        }
        guard let model = root["model"]?.object else {
            throw TokenizerError(file: file, "has no \"model\" object; it is not a Hugging Face tokenizer.json")
        }
        let type = model["type"]?.string ?? "BPE"
        guard type == "BPE" else {
            throw TokenizerError(file: file, "has a \(type) model; Tally reads byte-level BPE tokenizers only")
        }
        guard let vocabObject = model["vocab"]?.object else {
            throw TokenizerError(file: file, "has no model.vocab object")
        }
        var vocab: [String: Int] = [:]
        vocab.reserveCapacity(vocabObject.count)
        for (token, value) in vocabObject {
            guard let id = value.int else {
                throw TokenizerError(file: file, "model.vocab[\"\(token)\"] is not an integer id")
            }
            vocab[token] = id
        }
        var merges: [(String, String)] = []
        for (i, merge) in (model["merges"]?.array ?? []).enumerated() {
            if let text = merge.string {
                let parts = text.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2 else {
                    throw TokenizerError(file: file, "model.merges[\(i)] \"\(text)\" is not two tokens separated by one space")
                }
                merges.append((String(parts[0]), String(parts[1])))
            } else if let pair = merge.array, pair.count == 2, let a = pair[0].string, let b = pair[1].string {
                merges.append((a, b))
            } else {
                throw TokenizerError(file: file, "model.merges[\(i)] is neither \"a b\" nor [\"a\", \"b\"]")
            }
        }
        if model["byte_fallback"]?.bool == true {
            throw TokenizerError(file: file, "uses byte_fallback (a SentencePiece-style BPE); Tally reads byte-level BPE tokenizers only")
        }
        if let prefix = model["continuing_subword_prefix"]?.string, !prefix.isEmpty {
            throw TokenizerError(file: file, "uses continuing_subword_prefix '\(prefix)', which Tally does not support")
        }
        if let suffix = model["end_of_word_suffix"]?.string, !suffix.isEmpty {
            throw TokenizerError(file: file, "uses end_of_word_suffix '\(suffix)', which Tally does not support")
        }

        var added: [AddedToken] = []
        for (i, entry) in (root["added_tokens"]?.array ?? []).enumerated() {
            guard let id = entry["id"]?.int, let content = entry["content"]?.string else {
                throw TokenizerError(file: file, "added_tokens[\(i)] lacks an integer id or a content string")
            }
            added.append(AddedToken(
                id: id, content: content, special: entry["special"]?.bool ?? false,
                lstrip: entry["lstrip"]?.bool ?? false, rstrip: entry["rstrip"]?.bool ?? false,
                singleWord: entry["single_word"]?.bool ?? false))
        }

        let normalizer = try Self.parseNormalizer(root["normalizer"], file: file, path: "normalizer")
        let preTokenizer = try Self.parsePreTokenizer(root["pre_tokenizer"], file: file, path: "pre_tokenizer")
        let postProcessor = try Self.parsePostProcessor(root["post_processor"], file: file, path: "post_processor", vocab: vocab, added: added)
        let decoder: TokenDecoder
        switch root["decoder"] {
        case nil, .null?:
            decoder = .joinWithSpaces
        case let value?:
            let decoderType = value["type"]?.string ?? ""
            if decoderType == "ByteLevel" {
                decoder = .byteLevel
            } else if decoderType == "Sequence", let steps = value["decoders"]?.array, steps.count == 1, steps[0]["type"]?.string == "ByteLevel" {
                decoder = .byteLevel
            } else {
                throw TokenizerError(file: file, "has decoder '\(decoderType)'; Tally supports the ByteLevel decoder")
            }
        }

        func id(of token: String) -> Int? { added.first(where: { $0.content == token })?.id ?? vocab[token] }
        var eos: [Int] = []
        let eosCandidates = eosTokens.isEmpty ? ["<|endoftext|>", "</s>", "<|im_end|>", "<|eot_id|>"] : eosTokens
        for token in eosCandidates {
            if let i = id(of: token), !eos.contains(i) { eos.append(i) }
        }
        try self.init(
            file: file, vocab: vocab, merges: merges, addedTokens: added, normalizer: normalizer,
            preTokenizer: preTokenizer, postProcessor: postProcessor, decoder: decoder,
            ignoreMerges: model["ignore_merges"]?.bool ?? false,
            unknownToken: model["unk_token"]?.string, bosTokenID: bosToken.flatMap(id(of:)),
            eosTokenIDs: eos, chatTemplate: chatTemplate)
    }

    static func parsePattern(_ value: JSONValue?, file: String, path: String) throws -> SplitPattern {
        if let literal = value?["String"]?.string { return .literal(literal) }
        if let regex = value?["Regex"]?.string {
            if regex == gpt2Pattern { return .gpt2 }
            if regex == llama3Pattern { return .llama3 }
            do {
                return .regex(try CompiledRegex.compileFromFile(regex))
            } catch let refusal as RegexRefusal {
                throw TokenizerError(file: file, "\(path).pattern.Regex \(refusal.reason): \(regex.prefix(200))")
            } catch {
                throw TokenizerError(file: file, "\(path).pattern.Regex cannot be compiled (\(error)): \(regex.prefix(200))")
            }
        }
        throw TokenizerError(file: file, "\(path).pattern must be {\"String\": …} or {\"Regex\": …}")
    }

    static func parseNormalizer(_ value: JSONValue?, file: String, path: String) throws -> Normalizer? {
        guard let value, !value.isNull else { return nil }
        let type = value["type"]?.string ?? ""
        switch type {
        case "NFC": return .nfc
        case "NFD": return .nfd
        case "NFKC": return .nfkc
        case "NFKD": return .nfkd
        case "Lowercase": return .lowercase
        case "Prepend": return .prepend(value["prepend"]?.string ?? "")
        case "Strip": return .strip(left: value["strip_left"]?.bool ?? true, right: value["strip_right"]?.bool ?? true)
        case "Replace":
            return .replace(pattern: try parsePattern(value["pattern"], file: file, path: path), content: value["content"]?.string ?? "")
        case "Sequence":
            let steps = try (value["normalizers"]?.array ?? []).enumerated().compactMap { i, step in
                try parseNormalizer(step, file: file, path: "\(path).normalizers[\(i)]")
            }
            return .sequence(steps)
        default:
            throw TokenizerError(file: file, "\(path) has type '\(type)', which Tally does not support (supported: NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace, Strip, Sequence)")
        }
    }

    static func parsePreTokenizer(_ value: JSONValue?, file: String, path: String) throws -> PreTokenizer? {
        guard let value, !value.isNull else { return nil }
        let type = value["type"]?.string ?? ""
        switch type {
        case "ByteLevel":
            return .byteLevel(addPrefixSpace: value["add_prefix_space"]?.bool ?? true, useRegex: value["use_regex"]?.bool ?? true)
        case "Split":
            let behaviorName = value["behavior"]?.string ?? "Isolated"
            guard let behavior = SplitBehavior(rawValue: behaviorName) else {
                throw TokenizerError(file: file, "\(path).behavior '\(behaviorName)' is not one of Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous")
            }
            return .split(pattern: try parsePattern(value["pattern"], file: file, path: path), behavior: behavior, invert: value["invert"]?.bool ?? false)
        case "Digits":
            return .digits(individual: value["individual_digits"]?.bool ?? false)
        case "WhitespaceSplit":
            return .whitespaceSplit
        case "Sequence":
            let steps = try (value["pretokenizers"]?.array ?? []).enumerated().compactMap { i, step in
                try parsePreTokenizer(step, file: file, path: "\(path).pretokenizers[\(i)]")
            }
            return .sequence(steps)
        default:
            throw TokenizerError(file: file, "\(path) has type '\(type)', which Tally does not support (supported: ByteLevel, Split, Digits, WhitespaceSplit, Sequence)")
        }
    }

    static func parsePostProcessor(_ value: JSONValue?, file: String, path: String, vocab: [String: Int], added: [AddedToken]) throws -> PostProcessor? {
        guard let value, !value.isNull else { return nil }
        let type = value["type"]?.string ?? ""
        switch type {
        case "ByteLevel":
            return nil  // only adjusts offsets
        case "TemplateProcessing":
            var pieces: [PostProcessor.Piece] = []
            for (i, item) in (value["single"]?.array ?? []).enumerated() {
                if item["Sequence"] != nil {
                    pieces.append(.sequence)
                } else if let name = item["SpecialToken"]?["id"]?.string {
                    if let ids = value["special_tokens"]?[name]?["ids"]?.array?.compactMap(\.int) {
                        pieces.append(.special(ids))
                    } else if let id = added.first(where: { $0.content == name })?.id ?? vocab[name] {
                        pieces.append(.special([id]))
                    } else {
                        throw TokenizerError(file: file, "\(path).single[\(i)] names special token '\(name)', which the tokenizer does not define")
                    }
                } else {
                    throw TokenizerError(file: file, "\(path).single[\(i)] is neither a Sequence nor a SpecialToken")
                }
            }
            return .template(pieces)
        case "Sequence":
            let steps = try (value["processors"]?.array ?? []).enumerated().compactMap { i, step in
                try parsePostProcessor(step, file: file, path: "\(path).processors[\(i)]", vocab: vocab, added: added)
            }
            return .sequence(steps)
        default:
            throw TokenizerError(file: file, "\(path) has type '\(type)', which Tally does not support (supported: ByteLevel, TemplateProcessing, Sequence)")
        }
    }
}

extension BPETokenizer {
    /// Loads the tokenizer of a Hugging Face model directory: `tokenizer.json`, plus the BOS /
    /// EOS tokens and chat template from `tokenizer_config.json`, `chat_template.jinja` and
    /// `generation_config.json` when present.
    /// - Parameter directory: the model directory.
    /// - Throws: `TokenizerError` naming the file that is missing or malformed.
    public init(huggingFaceDirectory directory: URL) throws {
        let fm = FileManager.default
        func json(_ name: String) throws -> JSONValue? {
            let url = directory.appendingPathComponent(name)
            guard fm.fileExists(atPath: url.path) else { return nil }
            do {
                return try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: url))
            } catch {
                throw TokenizerError(file: url.path, "is not valid JSON (\(error))")
            }
        }
        func tokenText(_ value: JSONValue?) -> String? {
            value?.string ?? value?["content"]?.string
        }
        let config = try json("tokenizer_config.json")
        var template: String?
        let templateFile = directory.appendingPathComponent("chat_template.jinja")
        if fm.fileExists(atPath: templateFile.path) {
            do {
                template = try String(contentsOf: templateFile, encoding: .utf8)
            } catch {
                throw TokenizerError(file: templateFile.path, "cannot be read as UTF-8 text (\(error))")
            }
        } else if let value = config?["chat_template"] {
            if let text = value.string {
                template = text
            } else if let named = value.array {
                // A list of {name, template}: use the default one.
                template = named.first(where: { $0["name"]?.string == "default" })?["template"]?.string ?? named.first?["template"]?.string
            }
        }
        let eosText = tokenText(config?["eos_token"])
        try self.init(
            tokenizerJSON: directory.appendingPathComponent("tokenizer.json"),
            eosTokens: eosText.map { [$0] } ?? [], bosToken: tokenText(config?["bos_token"]), chatTemplate: template)
        // generation_config.json lists every id that ends generation (Llama 3: several).
        if let generation = try json("generation_config.json"), let value = generation["eos_token_id"] {
            let ids = value.int.map { [$0] } ?? value.array?.compactMap(\.int) ?? []
            var all = ids
            for id in eosTokenIDs where !all.contains(id) { all.append(id) }
            if !all.isEmpty { eosTokenIDs = all }
        }
    }
}

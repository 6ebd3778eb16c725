import Foundation

/// Writing a tokenizer back out: Hugging Face `tokenizer.json` / `tokenizer_config.json`
/// and GGUF `tokenizer.ggml.*` metadata, from whichever of the two it was read.
extension BPETokenizer {
    /// The merges in rank order, as token strings.
    public var orderedMerges: [(String, String)] {
        var ranked: [(rank: Int32, left: Int, right: Int)] = []
        ranked.reserveCapacity(merges.count)
        for (key, merge) in merges {
            ranked.append((merge.rank, Int(key >> 32), Int(key & 0xFFFF_FFFF)))
        }
        ranked.sort { $0.rank < $1.rank }
        return ranked.compactMap { entry in
            guard let left = token(for: entry.left), let right = token(for: entry.right) else { return nil }
            return (left, right)
        }
    }

    /// The text of a token id (for special tokens named by `tokenizer_config.json`).
    func tokenText(_ id: Int?) -> String? { id.flatMap(token(for:)) }

    /// The `tokenizer.json` object Hugging Face `tokenizers` (and ``init(tokenizerJSON:)``)
    /// read back to the same encoding and decoding.
    /// - Throws: `TokenizerError` for a part that has no `tokenizer.json` form.
    public func huggingFaceJSON() throws -> [String: Any] {
        var vocabObject: [String: Int] = [:]
        vocabObject.reserveCapacity(tokens.count)
        for (id, token) in tokens.enumerated() {
            if let token, vocabObject[token] == nil { vocabObject[token] = id }
        }
        let addedSpecial = Dictionary(addedTokens.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let added: [[String: Any]] = addedSpecial.keys.sorted().compactMap { id in
            guard let token = addedSpecial[id] else { return nil }
            return ["id": id, "content": token.content, "single_word": token.singleWord, "lstrip": token.lstrip,
                    "rstrip": token.rstrip, "normalized": false, "special": token.special]
        }
        var model: [String: Any] = [
            "type": "BPE", "dropout": NSNull(), "continuing_subword_prefix": NSNull(), "end_of_word_suffix": NSNull(),
            "fuse_unk": false, "byte_fallback": false, "ignore_merges": ignoreMerges,
            "vocab": vocabObject, "merges": orderedMerges.map { [$0.0, $0.1] },
        ]
        model["unk_token"] = tokenText(unknownID) ?? NSNull()
        return [
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(), "added_tokens": added,
            "normalizer": try normalizer.map(Self.json(_:)) ?? NSNull(),
            "pre_tokenizer": try preTokenizer.map(Self.json(_:)) ?? NSNull(),
            "post_processor": try postProcessor.map(json(_:)) ?? NSNull(),
            "decoder": decoder == .byteLevel
                ? ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true] as [String: Any] : NSNull(),
            "model": model,
        ]
    }

    /// `tokenizer_config.json`: the chat template, the special tokens, and the fast tokenizer
    /// class, so `AutoTokenizer.from_pretrained` needs no other file.
    /// - Parameter maxLength: the model's context length (`model_max_length`).
    public func huggingFaceConfigJSON(maxLength: Int) -> [String: Any] {
        var out: [String: Any] = [
            "tokenizer_class": "PreTrainedTokenizerFast", "clean_up_tokenization_spaces": false,
            "model_max_length": maxLength, "add_prefix_space": false,
        ]
        if let chatTemplate { out["chat_template"] = chatTemplate }
        if let bos = tokenText(bosTokenID) { out["bos_token"] = bos }
        if let eos = tokenText(eosTokenIDs.first) { out["eos_token"] = eos }
        if let unk = tokenText(unknownID) { out["unk_token"] = unk }
        var decoderTable: [String: Any] = [:]
        for token in addedTokens {
            decoderTable[String(token.id)] = ["content": token.content, "lstrip": token.lstrip, "rstrip": token.rstrip,
                                              "normalized": false, "single_word": token.singleWord, "special": token.special]
        }
        out["added_tokens_decoder"] = decoderTable
        return out
    }

    /// Writes `tokenizer.json` and `tokenizer_config.json` into `directory`.
    /// - Throws: `TokenizerError` for a part with no `tokenizer.json` form, or when a file
    ///   cannot be written.
    public func writeHuggingFaceFiles(to directory: URL, maxLength: Int) throws {
        let files: [(String, [String: Any])] = [
            ("tokenizer.json", try huggingFaceJSON()),
            ("tokenizer_config.json", huggingFaceConfigJSON(maxLength: maxLength)),
        ]
        for (name, object) in files {
            let url = directory.appendingPathComponent(name)
            do {
                let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
                try data.write(to: url, options: .atomic)
            } catch {
                throw TokenizerError(file: url.path, "cannot be written: \(error.localizedDescription)")
            }
        }
    }

    /// The GGUF `tokenizer.ggml.*` and `tokenizer.chat_template` metadata llama.cpp reads
    /// for a byte-level BPE tokenizer (`tokenizer.ggml.model` `gpt2`).
    /// - Parameter vocabularySize: the model's embedding rows; ids past the tokenizer's are
    ///   written as unused padding tokens so that the two agree, as llama.cpp requires.
    /// - Throws: `TokenizerError` when the pre-tokenizer has no llama.cpp name or the
    ///   tokenizer normalizes text (llama.cpp's BPE does not).
    public func ggufMetadata(vocabularySize: Int) throws -> [(String, GGUFValue)] {
        guard normalizer == nil else {
            throw TokenizerError(file: "tokenizer", "normalizes text before BPE, which llama.cpp's byte-level tokenizer cannot; export to the hf format instead")
        }
        guard let pre = preTokenizer.flatMap(Self.ggufPreName(_:)) else {
            throw TokenizerError(file: "tokenizer", "has a pre-tokenizer with no llama.cpp name (known: gpt2, smollm, llama-bpe, qwen2); export to the hf format instead")
        }
        let count = max(vocabularySize, tokens.count)
        var names: [GGUFValue] = []
        var types: [GGUFValue] = []
        names.reserveCapacity(count)
        types.reserveCapacity(count)
        let added = Dictionary(addedTokens.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        for id in 0..<count {
            let text = id < tokens.count ? tokens[id] : nil
            names.append(.string(text ?? "[PAD\(id)]"))
            // llama.cpp token types: 1 normal, 3 control, 4 user-defined, 5 unused.
            let type: Int32 = text == nil ? 5 : added[id].map { $0.special ? 3 : 4 } ?? 1
            types.append(.int32(type))
        }
        var out: [(String, GGUFValue)] = [
            ("tokenizer.ggml.model", .string("gpt2")),
            ("tokenizer.ggml.pre", .string(pre)),
            ("tokenizer.ggml.tokens", .array(names)),
            ("tokenizer.ggml.token_type", .array(types)),
            ("tokenizer.ggml.merges", .array(orderedMerges.map { .string("\($0.0) \($0.1)") })),
        ]
        if let bos = bosTokenID { out.append(("tokenizer.ggml.bos_token_id", .uint32(UInt32(bos)))) }
        if let eos = eosTokenIDs.first { out.append(("tokenizer.ggml.eos_token_id", .uint32(UInt32(eos)))) }
        if let unk = unknownID { out.append(("tokenizer.ggml.unknown_token_id", .uint32(UInt32(unk)))) }
        let (addBos, addEos) = postProcessor.map(Self.addsBosEos(_:)) ?? (false, false)
        out.append(("tokenizer.ggml.add_bos_token", .bool(addBos)))
        out.append(("tokenizer.ggml.add_eos_token", .bool(addEos)))
        if let chatTemplate { out.append(("tokenizer.chat_template", .string(chatTemplate))) }
        return out
    }

    /// Whether a post-processor puts a special token before / after the sequence.
    static func addsBosEos(_ post: PostProcessor) -> (Bool, Bool) {
        switch post {
        case .bosEos(let bos, let eos): return (bos != nil, eos != nil)
        case .template(let pieces):
            guard let sequence = pieces.firstIndex(where: { if case .sequence = $0 { true } else { false } }) else { return (false, false) }
            return (sequence > 0, sequence < pieces.count - 1)
        case .sequence(let steps):
            return steps.map(addsBosEos).reduce((false, false)) { ($0.0 || $1.0, $0.1 || $1.1) }
        }
    }

    /// The `tokenizer.ggml.pre` name of a pre-tokenizer: the inverse of
    /// ``preTokenizer(forGGUFPre:)`` for the pre-tokenizers llama.cpp knows.
    static func ggufPreName(_ pre: PreTokenizer) -> String? {
        for name in ["gpt2", "smollm", "llama-bpe", "qwen2"] {
            if let known = preTokenizer(forGGUFPre: name), let a = try? json(known), let b = try? json(pre),
                NSDictionary(dictionary: a).isEqual(to: b)
            {
                return name
            }
        }
        return nil
    }

    static func json(_ pattern: SplitPattern) -> [String: Any] {
        switch pattern {
        case .literal(let text): ["String": text]
        case .regex(let regex): ["Regex": regex.pattern]
        case .gpt2: ["Regex": gpt2Pattern]
        case .llama3: ["Regex": llama3Pattern]
        }
    }

    static func json(_ normalizer: Normalizer) throws -> [String: Any] {
        switch normalizer {
        case .nfc: ["type": "NFC"]
        case .nfd: ["type": "NFD"]
        case .nfkc: ["type": "NFKC"]
        case .nfkd: ["type": "NFKD"]
        case .lowercase: ["type": "Lowercase"]
        case .prepend(let text): ["type": "Prepend", "prepend": text]
        case .replace(let pattern, let content): ["type": "Replace", "pattern": json(pattern), "content": content]
        case .strip(let left, let right): ["type": "Strip", "strip_left": left, "strip_right": right]
        case .sequence(let steps): ["type": "Sequence", "normalizers": try steps.map(json(_:))]
        }
    }

    static func json(_ pre: PreTokenizer) throws -> [String: Any] {
        switch pre {
        case .byteLevel(let addPrefixSpace, let useRegex):
            ["type": "ByteLevel", "add_prefix_space": addPrefixSpace, "trim_offsets": true, "use_regex": useRegex]
        case .split(let pattern, let behavior, let invert):
            ["type": "Split", "pattern": json(pattern), "behavior": behavior.rawValue, "invert": invert]
        case .digits(let individual): ["type": "Digits", "individual_digits": individual]
        case .whitespaceSplit: ["type": "WhitespaceSplit"]
        case .sequence(let steps): ["type": "Sequence", "pretokenizers": try steps.map(json(_:))]
        }
    }

    func json(_ post: PostProcessor) throws -> [String: Any] {
        switch post {
        case .bosEos(let bos, let eos):
            var pieces: [PostProcessor.Piece] = []
            if let bos { pieces.append(.special([bos])) }
            pieces.append(.sequence)
            if let eos { pieces.append(.special([eos])) }
            return try json(.template(pieces))
        case .template(let pieces):
            var single: [[String: Any]] = []
            var pair: [[String: Any]] = []
            var special: [String: Any] = [:]
            for piece in pieces {
                switch piece {
                case .sequence:
                    single.append(["Sequence": ["id": "A", "type_id": 0]])
                    pair.append(["Sequence": ["id": "B", "type_id": 1]])
                case .special(let ids):
                    let texts = ids.compactMap(token(for:))
                    guard texts.count == ids.count, let name = texts.first else {
                        throw TokenizerError(file: "tokenizer", "its post-processor adds ids \(ids) that have no token")
                    }
                    single.append(["SpecialToken": ["id": name, "type_id": 0]])
                    pair.append(["SpecialToken": ["id": name, "type_id": 1]])
                    special[name] = ["id": name, "ids": ids, "tokens": texts]
                }
            }
            return ["type": "TemplateProcessing", "single": single, "pair": single + pair, "special_tokens": special]
        case .sequence(let steps):
            return ["type": "Sequence", "processors": try steps.map(json(_:))]
        }
    }
}

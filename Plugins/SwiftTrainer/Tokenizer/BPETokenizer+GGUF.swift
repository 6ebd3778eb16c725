import Foundation

extension BPETokenizer {
    /// The pre-tokenizer llama.cpp applies for a `tokenizer.ggml.pre` value, as the same
    /// model's `tokenizer.json` declares it; nil for an unknown value.
    static func preTokenizer(forGGUFPre pre: String) -> PreTokenizer? {
        let gpt2 = PreTokenizer.byteLevel(addPrefixSpace: false, useRegex: true)
        switch pre {
        case "default", "gpt2", "gpt-2", "olmo", "jais", "poro-chat", "viking", "bloom":
            return gpt2
        case "smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b":
            // Digits one by one, then the GPT-2 pattern.
            return .sequence([.digits(individual: true), gpt2])
        case "llama3", "llama-v3", "llama-bpe", "falcon3", "pixtral", "dbrx", "smaug-bpe":
            return .sequence([.split(pattern: .llama3, behavior: .isolated, invert: false), .byteLevel(addPrefixSpace: false, useRegex: false)])
        case "qwen2", "deepseek-r1-qwen", "megrez", "hunyuan":
            let pattern = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
            guard let regex = try? CompiledRegex.compile(pattern) else { return nil }
            return .sequence([.split(pattern: .regex(regex), behavior: .isolated, invert: false), .byteLevel(addPrefixSpace: false, useRegex: false)])
        default:
            return nil
        }
    }

    /// Builds the tokenizer embedded in a GGUF file's metadata (`tokenizer.ggml.*`).
    ///
    /// Uses `tokens`, `merges` (`"a b"` strings), `token_type` (3 = control → special added
    /// token, 4 = user-defined → added token), `bos_token_id`, `eos_token_id` (plus
    /// `eot_token_id`/`eom_token_id`), `add_bos_token`/`add_eos_token`, `pre` (the
    /// pre-tokenizer: `smollm`, `gpt2`, `llama-bpe`, `qwen2`, …) and `tokenizer.chat_template`.
    /// - Parameter file: an opened GGUF file.
    /// - Throws: `TokenizerError` naming the file when the tokenizer is missing, is not
    ///   byte-level BPE (`tokenizer.ggml.model` must be `gpt2`) or is malformed.
    public init(gguf file: GGUFFile) throws {
        let meta = file.metadata
        guard let model = meta["tokenizer.ggml.model"]?.string else {
            throw TokenizerError(file: file.path, "has no tokenizer.ggml.model metadata; the file carries no tokenizer")
        }
        guard model == "gpt2" else {
            throw TokenizerError(file: file.path, "has a '\(model)' tokenizer; Tally reads byte-level BPE ('gpt2') tokenizers only")
        }
        guard let tokens = meta["tokenizer.ggml.tokens"]?.strings else {
            throw TokenizerError(file: file.path, "has no tokenizer.ggml.tokens string array")
        }
        let types = meta["tokenizer.ggml.token_type"]?.ints
        if let types, types.count != tokens.count {
            throw TokenizerError(file: file.path, "tokenizer.ggml.token_type has \(types.count) entries but tokenizer.ggml.tokens has \(tokens.count)")
        }
        var merges: [(String, String)] = []
        if let mergeValue = meta["tokenizer.ggml.merges"] {
            guard let texts = mergeValue.strings else {
                throw TokenizerError(file: file.path, "tokenizer.ggml.merges is not a string array")
            }
            merges.reserveCapacity(texts.count)
            for (i, text) in texts.enumerated() {
                let parts = text.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2 else {
                    throw TokenizerError(file: file.path, "tokenizer.ggml.merges[\(i)] \"\(text)\" is not two tokens separated by one space")
                }
                merges.append((String(parts[0]), String(parts[1])))
            }
        }
        var vocab: [String: Int] = [:]
        vocab.reserveCapacity(tokens.count)
        var added: [AddedToken] = []
        for (id, token) in tokens.enumerated() {
            if vocab[token] == nil { vocab[token] = id }
            let type = types?[id] ?? 1
            if type == 3 || type == 4 {
                added.append(AddedToken(id: id, content: token, special: type == 3))
            }
        }
        let preName = meta["tokenizer.ggml.pre"]?.string ?? "default"
        guard let preTokenizer = Self.preTokenizer(forGGUFPre: preName) else {
            throw TokenizerError(file: file.path, "has tokenizer.ggml.pre '\(preName)', a pre-tokenizer Tally does not know; known: default, gpt2, smollm, starcoder, llama-bpe, llama3, qwen2")
        }
        func tokenID(_ key: String) throws -> Int? {
            guard let value = meta[key] else { return nil }
            guard let id = value.int, id >= 0, id < tokens.count else {
                throw TokenizerError(file: file.path, "\(key) is \(value), not an id below the vocabulary size \(tokens.count)")
            }
            return id
        }
        let bos = try tokenID("tokenizer.ggml.bos_token_id")
        var eos: [Int] = []
        for key in ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"] {
            if let id = try tokenID(key), !eos.contains(id) { eos.append(id) }
        }
        let addBos = meta["tokenizer.ggml.add_bos_token"]?.bool ?? false
        let addEos = meta["tokenizer.ggml.add_eos_token"]?.bool ?? false
        let post: PostProcessor? = (addBos && bos != nil) || (addEos && !eos.isEmpty)
            ? .bosEos(bos: addBos ? bos : nil, eos: addEos ? eos.first : nil) : nil
        let unknown = try tokenID("tokenizer.ggml.unknown_token_id").map { tokens[$0] }
        try self.init(
            file: file.path, vocab: vocab, merges: merges, addedTokens: added, normalizer: nil,
            preTokenizer: preTokenizer, postProcessor: post, decoder: .byteLevel, ignoreMerges: false,
            unknownToken: unknown, bosTokenID: bos, eosTokenIDs: eos,
            chatTemplate: meta["tokenizer.chat_template"]?.string)
    }
}

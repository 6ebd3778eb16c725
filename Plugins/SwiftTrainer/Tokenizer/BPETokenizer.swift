import Foundation
import Synchronization

/// A token that is matched in the raw text before pre-tokenization (Hugging Face
/// `added_tokens`), such as `<|im_start|>`.
public struct AddedToken: Sendable, Hashable {
    public let id: Int
    public let content: String
    /// Special tokens are left out by `decode(_:skipSpecialTokens: true)`.
    public let special: Bool
    /// Whether the match also takes the whitespace on its left / right.
    public let lstrip: Bool
    public let rstrip: Bool
    /// Whether the token only matches as a whole word.
    public let singleWord: Bool

    public init(id: Int, content: String, special: Bool, lstrip: Bool = false, rstrip: Bool = false, singleWord: Bool = false) {
        self.id = id
        self.content = content
        self.special = special
        self.lstrip = lstrip
        self.rstrip = rstrip
        self.singleWord = singleWord
    }
}

/// What `encode(_:addSpecialTokens: true)` adds around the ids.
enum PostProcessor: Sendable {
    enum Piece: Sendable {
        case special([Int])
        case sequence
    }
    /// Hugging Face `TemplateProcessing`'s single-sequence template.
    case template([Piece])
    /// GGUF `tokenizer.ggml.add_bos_token` / `add_eos_token`.
    case bosEos(bos: Int?, eos: Int?)
    case sequence([PostProcessor])

    func apply(_ ids: [Int]) -> [Int] {
        switch self {
        case .template(let pieces):
            return pieces.flatMap { piece -> [Int] in
                switch piece {
                case .special(let special): special
                case .sequence: ids
                }
            }
        case .bosEos(let bos, let eos):
            var out = ids
            if let bos { out.insert(bos, at: 0) }
            if let eos { out.append(eos) }
            return out
        case .sequence(let steps):
            return steps.reduce(ids) { $1.apply($0) }
        }
    }
}

/// How ids become text again.
enum TokenDecoder: Sendable {
    /// Byte-level characters back to bytes, then UTF-8 (invalid sequences become U+FFFD).
    case byteLevel
    /// Tokens joined with spaces (Hugging Face's behaviour without a decoder).
    case joinWithSpaces
}

/// Memo of BPE results per pre-tokenized piece, shared by all copies of a tokenizer.
final class BPECache: Sendable {
    private let storage = Mutex<[String: [Int]]>([:])
    static let capacity = 100_000

    func get(_ word: String) -> [Int]? { storage.withLock { $0[word] } }

    func set(_ word: String, _ ids: [Int]) {
        storage.withLock { cache in
            if cache.count >= Self.capacity { cache.removeAll(keepingCapacity: true) }
            cache[word] = ids
        }
    }
}

/// Byte-level BPE, as GPT-2, Llama 3, SmolLM and Qwen ship it, loaded from a Hugging Face
/// `tokenizer.json` (`init(tokenizerJSON:)`) or from GGUF metadata (`init(gguf:)`).
///
/// Encoding: added tokens are cut out of the text first; every other stretch is normalized,
/// pre-tokenized (regex split, digit split, byte-level mapping) and each piece is merged by
/// BPE, lowest merge rank first (leftmost on ties), as Hugging Face `tokenizers` does.
public struct BPETokenizer: Tokenizer {
    struct Merge: Sendable {
        let rank: Int32
        let id: Int32
    }

    /// `tokens[id]`, nil for ids with no token.
    let tokens: [String?]
    let vocab: [String: Int]
    let merges: [UInt64: Merge]
    let ignoreMerges: Bool
    let unknownID: Int?
    public let addedTokens: [AddedToken]
    /// Added tokens by the first scalar of their content, longest first.
    let addedByFirstScalar: [UInt32: [AddedToken]]
    let specialIDs: Set<Int>
    let normalizer: Normalizer?
    let preTokenizer: PreTokenizer?
    let postProcessor: PostProcessor?
    let decoder: TokenDecoder
    let cache = BPECache()

    public internal(set) var bosTokenID: Int?
    public internal(set) var eosTokenIDs: [Int]
    /// The chat template the model ships (`tokenizer.chat_template` in GGUF,
    /// `chat_template` in `tokenizer_config.json`), if any.
    public internal(set) var chatTemplate: String?

    /// Assembles a tokenizer; `file` names the source in errors.
    /// - Throws: `TokenizerError` when a merge names a token that is not in the vocabulary.
    init(file: String, vocab: [String: Int], merges: [(String, String)], addedTokens: [AddedToken], normalizer: Normalizer?, preTokenizer: PreTokenizer?, postProcessor: PostProcessor?, decoder: TokenDecoder, ignoreMerges: Bool, unknownToken: String?, bosTokenID: Int?, eosTokenIDs: [Int], chatTemplate: String?) throws {
        var maxID = -1
        for id in vocab.values { maxID = max(maxID, id) }
        for token in addedTokens { maxID = max(maxID, token.id) }
        // Ids index a table: a file may leave holes, but not claim an id far beyond its tokens
        // (a hostile id of 10^15 would otherwise allocate petabytes).
        let idLimit = vocab.count + addedTokens.count + Self.maxIDHoles
        guard maxID < idLimit, maxID < Int(Int32.max) else {
            throw TokenizerError(file: file, "declares token id \(maxID) but only \(vocab.count + addedTokens.count) tokens; ids must stay below the number of tokens plus \(Self.maxIDHoles); the tokenizer file is corrupt")
        }
        var tokens = [String?](repeating: nil, count: maxID + 1)
        for (token, id) in vocab {
            guard id >= 0 else { throw TokenizerError(file: file, "token '\(token)' has negative id \(id)") }
            tokens[id] = token
        }
        var fullVocab = vocab
        for token in addedTokens {
            guard token.id >= 0 else { throw TokenizerError(file: file, "added token '\(token.content)' has negative id \(token.id)") }
            tokens[token.id] = token.content
            if fullVocab[token.content] == nil { fullVocab[token.content] = token.id }
        }
        self.tokens = tokens
        self.vocab = fullVocab

        var table: [UInt64: Merge] = [:]
        table.reserveCapacity(merges.count)
        for (rank, (left, right)) in merges.enumerated() {
            guard let a = vocab[left], let b = vocab[right] else {
                throw TokenizerError(file: file, "merge \(rank) ('\(left)' '\(right)') uses a token that is not in the vocabulary; the tokenizer file is inconsistent")
            }
            guard let merged = vocab[left + right] else {
                throw TokenizerError(file: file, "merge \(rank) ('\(left)' '\(right)') makes '\(left + right)', which is not in the vocabulary; the tokenizer file is inconsistent")
            }
            let key = Self.pairKey(a, b)
            guard let rank32 = Int32(exactly: rank) else {
                throw TokenizerError(file: file, "has more than \(Int32.max) merges; the tokenizer file is corrupt")
            }
            if table[key] == nil { table[key] = Merge(rank: rank32, id: Int32(merged)) }
        }
        self.merges = table
        self.ignoreMerges = ignoreMerges
        self.unknownID = unknownToken.flatMap { vocab[$0] }

        self.addedTokens = addedTokens
        var byFirst: [UInt32: [AddedToken]] = [:]
        for token in addedTokens {
            guard let first = token.content.unicodeScalars.first else { continue }
            byFirst[first.value, default: []].append(token)
        }
        for key in byFirst.keys {
            byFirst[key]?.sort { $0.content.unicodeScalars.count > $1.content.unicodeScalars.count }
        }
        self.addedByFirstScalar = byFirst
        self.specialIDs = Set(addedTokens.filter(\.special).map(\.id))
        self.normalizer = normalizer
        self.preTokenizer = preTokenizer
        self.postProcessor = postProcessor
        self.decoder = decoder
        self.bosTokenID = bosTokenID
        self.eosTokenIDs = eosTokenIDs
        self.chatTemplate = chatTemplate
    }

    /// How far token ids may run past the number of tokens (unused ids between real ones).
    static let maxIDHoles = 65_536

    @inline(__always)
    static func pairKey(_ a: Int, _ b: Int) -> UInt64 { UInt64(UInt32(truncatingIfNeeded: a)) << 32 | UInt64(UInt32(truncatingIfNeeded: b)) }

    /// Number of ids (vocabulary plus added tokens).
    public var vocabularySize: Int { tokens.count }

    /// The token string of `id` (byte-level characters for BPE tokens), or nil.
    public func token(for id: Int) -> String? {
        id >= 0 && id < tokens.count ? tokens[id] : nil
    }

    /// The id of the token string `token`, or nil.
    public func id(for token: String) -> Int? { vocab[token] }

    /// The ids of `text`; see `Tokenizer.encode(_:addSpecialTokens:)`.
    public func encode(_ text: String, addSpecialTokens: Bool) -> [Int] {
        var ids: [Int] = []
        for segment in splitOnAddedTokens(text) {
            switch segment {
            case .token(let id):
                ids.append(id)
            case .text(let stretch):
                let normalized = normalizer?.apply(stretch) ?? stretch
                if normalized.isEmpty { continue }
                let pieces = preTokenizer?.apply([normalized]) ?? [normalized]
                for piece in pieces where !piece.isEmpty {
                    ids.append(contentsOf: bpe(piece))
                }
            }
        }
        if addSpecialTokens, let postProcessor { ids = postProcessor.apply(ids) }
        return ids
    }

    /// The token strings of `text` (what Hugging Face's `Encoding.tokens` lists).
    public func tokenize(_ text: String) -> [String] {
        encode(text, addSpecialTokens: false).map { token(for: $0) ?? "" }
    }

    /// The text of `ids`; see `Tokenizer.decode(_:skipSpecialTokens:)`.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool) -> String {
        switch decoder {
        case .byteLevel:
            var bytes: [UInt8] = []
            for id in ids {
                if skipSpecialTokens && specialIDs.contains(id) { continue }
                guard let token = token(for: id) else { continue }
                ByteLevel.decode(token: token, into: &bytes)
            }
            return String(decoding: bytes, as: UTF8.self)
        case .joinWithSpaces:
            return ids.compactMap { id in
                skipSpecialTokens && specialIDs.contains(id) ? nil : token(for: id)
            }.joined(separator: " ")
        }
    }

    enum Segment {
        case text(String)
        case token(Int)
    }

    /// `text` cut into stretches of ordinary text and added tokens (leftmost, then longest match).
    func splitOnAddedTokens(_ text: String) -> [Segment] {
        guard !addedByFirstScalar.isEmpty else { return text.isEmpty ? [] : [.text(text)] }
        let scalars = text.unicodeScalars
        var segments: [Segment] = []
        var textStart = scalars.startIndex
        var index = scalars.startIndex
        while index < scalars.endIndex {
            guard let candidates = addedByFirstScalar[scalars[index].value],
                let (token, end) = match(candidates, in: scalars, at: index)
            else {
                index = scalars.index(after: index)
                continue
            }
            var beforeEnd = index
            if token.lstrip {
                while beforeEnd > textStart, scalars[scalars.index(before: beforeEnd)].properties.isWhitespace {
                    beforeEnd = scalars.index(before: beforeEnd)
                }
            }
            // Slice by scalars: a token may start inside a grapheme cluster of the text.
            if textStart < beforeEnd { segments.append(.text(String(scalars[textStart..<beforeEnd]))) }
            segments.append(.token(token.id))
            var next = end
            if token.rstrip {
                while next < scalars.endIndex, scalars[next].properties.isWhitespace { next = scalars.index(after: next) }
            }
            index = next
            textStart = next
        }
        if textStart < scalars.endIndex { segments.append(.text(String(scalars[textStart...]))) }
        return segments
    }

    private func match(_ candidates: [AddedToken], in scalars: String.UnicodeScalarView, at index: String.Index) -> (AddedToken, String.Index)? {
        for token in candidates {
            var i = index
            var matched = true
            for scalar in token.content.unicodeScalars {
                guard i < scalars.endIndex, scalars[i] == scalar else {
                    matched = false
                    break
                }
                i = scalars.index(after: i)
            }
            guard matched else { continue }
            if token.singleWord {
                let isWord: (Unicode.Scalar) -> Bool = { $0.properties.isAlphabetic || $0.properties.numericType != nil || $0 == "_" }
                if index > scalars.startIndex, isWord(scalars[scalars.index(before: index)]) { continue }
                if i < scalars.endIndex, isWord(scalars[i]) { continue }
            }
            return (token, i)
        }
        return nil
    }

    /// BPE on one pre-tokenized piece: merge the adjacent pair with the lowest rank (leftmost
    /// on ties) until no pair has a merge.
    func bpe(_ word: String) -> [Int] {
        if ignoreMerges, let id = vocab[word] { return [id] }
        if let cached = cache.get(word) { return cached }
        var symbols: [Int32] = []
        symbols.reserveCapacity(word.unicodeScalars.count)
        for scalar in word.unicodeScalars {
            if let id = vocab[String(scalar)] {
                symbols.append(Int32(id))
            } else if let unknownID {
                symbols.append(Int32(unknownID))
            }
        }
        while symbols.count > 1 {
            var best = Int32.max
            var bestIndex = -1
            var bestID: Int32 = 0
            for i in 0..<(symbols.count - 1) {
                if let merge = merges[Self.pairKey(Int(symbols[i]), Int(symbols[i + 1]))], merge.rank < best {
                    best = merge.rank
                    bestIndex = i
                    bestID = merge.id
                }
            }
            if bestIndex < 0 { break }
            symbols[bestIndex] = bestID
            symbols.remove(at: bestIndex + 1)
        }
        let ids = symbols.map(Int.init)
        cache.set(word, ids)
        return ids
    }
}

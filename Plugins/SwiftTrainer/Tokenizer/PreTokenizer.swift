import Foundation
import Synchronization

/// A compiled ICU regular expression. `NSRegularExpression` is immutable and documented as
/// safe to use from several threads, which is what makes this small box `Sendable`.
final class CompiledRegex: @unchecked Sendable {
    let pattern: String
    let regex: NSRegularExpression

    private static let cache = Mutex<[String: CompiledRegex]>([:])

    private init(pattern: String, regex: NSRegularExpression) {
        self.pattern = pattern
        self.regex = regex
    }

    /// The compiled form of `pattern`, compiled once per process.
    ///
    /// `\s` and `\S` are widened to Unicode White_Space (ICU's `\s` leaves out U+000B and
    /// U+0085, which the Oniguruma engine of Hugging Face tokenizers includes).
    /// - Throws: the ICU compile error when the pattern is invalid.
    static func compile(_ pattern: String) throws -> CompiledRegex {
        if let cached = cache.withLock({ $0[pattern] }) { return cached }
        let translated = widenWhitespaceClasses(pattern)
        let regex = try NSRegularExpression(pattern: translated, options: [])
        let compiled = CompiledRegex(pattern: pattern, regex: regex)
        cache.withLock { $0[pattern] = compiled }
        return compiled
    }

    static func widenWhitespaceClasses(_ pattern: String) -> String {
        var out = ""
        var escaped = false
        for c in pattern {
            if escaped {
                switch c {
                case "s": out += "\\p{White_Space}"
                case "S": out += "\\P{White_Space}"
                default: out += "\\" + String(c)
                }
                escaped = false
            } else if c == "\\" {
                escaped = true
            } else {
                out.append(c)
            }
        }
        if escaped { out += "\\" }
        return out
    }

    /// The compiled form of a pattern that a model file brings, checked against
    /// ``RegexLimits`` first: a pattern that is too long, uses a back-reference, repeats a
    /// repeating group, or needs more than ``RegexLimits/probeBudget`` on its probe texts is
    /// refused.
    /// - Throws: ``RegexRefusal`` saying why; the ICU compile error when it is invalid.
    static func compileFromFile(_ pattern: String) throws -> CompiledRegex {
        if let reason = RegexLimits.staticRefusal(pattern) { throw RegexRefusal(reason: reason) }
        let compiled = try compile(pattern)
        for probe in RegexLimits.probes(for: pattern) where compiled.boundedMatches(in: probe, budget: RegexLimits.probeBudget).exhausted {
            let shown = probe.first.map { String($0).debugDescription } ?? "?"
            throw RegexRefusal(reason: "needs more than \(RegexLimits.probeBudget * 10_000) matching steps on \(RegexLimits.probeLength) × \(shown) (catastrophic backtracking); rewrite it so that no text can be matched in many ways")
        }
        return compiled
    }

    /// The ranges of all non-overlapping matches in `text`, left to right, found within the
    /// step budget ``RegexLimits/budget(forLength:)``. Patterns from files passed
    /// ``compileFromFile(_:)``, so the budget is a last guard: if a text still exhausts it,
    /// matching stops there, the rest of the text stays one piece, and a warning says so.
    func matches(in text: String) -> [Range<String.Index>] {
        let (ranges, exhausted) = boundedMatches(in: text, budget: RegexLimits.budget(forLength: text.utf16.count))
        if exhausted {
            FileHandle.standardError.write(Data("warning: the tokenizer pattern \(pattern.prefix(80).debugDescription) ran out of its step budget on a text of \(text.utf16.count) characters; the rest of that text was not split\n".utf8))
        }
        return ranges
    }

    /// The matches found before ICU's progress callback was called `budget` times (about
    /// 10 000 matching steps each), and whether the budget ran out.
    func boundedMatches(in text: String, budget: Int) -> (ranges: [Range<String.Index>], exhausted: Bool) {
        let ns = text as NSString
        var ranges: [Range<String.Index>] = []
        let utf16 = text.utf16
        var cursor = utf16.startIndex
        var cursorOffset = 0
        var callbacks = 0
        var exhausted = false
        // Walk forward through the UTF-16 view: matches may end inside a grapheme cluster
        // (before a combining mark), where `Range(_:in:)` would give up.
        regex.enumerateMatches(in: text, options: [.reportProgress], range: NSRange(location: 0, length: ns.length)) { match, _, stop in
            guard let match else {
                callbacks += 1
                if callbacks > budget {
                    exhausted = true
                    stop.pointee = true
                }
                return
            }
            guard match.range.length > 0 else { return }
            let lower = utf16.index(cursor, offsetBy: match.range.location - cursorOffset)
            let upper = utf16.index(lower, offsetBy: match.range.length)
            ranges.append(lower..<upper)
            cursor = upper
            cursorOffset = match.range.location + match.range.length
        }
        return (ranges, exhausted)
    }
}

/// Why a pattern from a model file is refused (``RegexLimits``).
struct RegexRefusal: Error, CustomStringConvertible {
    let reason: String
    var description: String { reason }
}

/// The GPT-2 pre-tokenizer pattern (`ByteLevel` with `use_regex`), also used by GGUF files
/// whose `tokenizer.ggml.pre` is `gpt2`, `smollm` and others.
let gpt2Pattern = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

/// The Llama 3 pre-tokenizer pattern (`Split` + `ByteLevel(use_regex: false)`).
let llama3Pattern = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

/// What a `Split` pre-tokenizer or `Replace` normalizer looks for.
enum SplitPattern: Sendable {
    case literal(String)
    case regex(CompiledRegex)
    /// The GPT-2 pattern, matched by a hand-written scanner that gives the same pieces as the
    /// regular expression (checked by the tests) about ten times faster.
    case gpt2
    /// The Llama 3 pattern, likewise.
    case llama3

    func matches(in text: String) -> [Range<String.Index>] {
        switch self {
        case .literal(let needle):
            guard !needle.isEmpty else { return [] }
            var ranges: [Range<String.Index>] = []
            var start = text.startIndex
            while let found = text.range(of: needle, range: start..<text.endIndex) {
                ranges.append(found)
                start = found.upperBound
            }
            return ranges
        case .regex(let regex):
            return regex.matches(in: text)
        case .gpt2:
            return GPT2Scanner.matches(in: text)
        case .llama3:
            return GPT2Scanner.matches(in: text, matchEnd: GPT2Scanner.llama3MatchEnd)
        }
    }
}

/// How `Split` treats the matched delimiters (Hugging Face `SplitDelimiterBehavior`).
enum SplitBehavior: String, Sendable {
    case removed = "Removed"
    case isolated = "Isolated"
    case mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext"
    case contiguous = "Contiguous"
}

/// Splits text into pieces before BPE runs on each piece separately.
indirect enum PreTokenizer: Sendable {
    /// Optionally prefixes a space, optionally splits with the GPT-2 pattern, then maps every
    /// byte to its byte-level character.
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
    case split(pattern: SplitPattern, behavior: SplitBehavior, invert: Bool)
    /// Isolates digits: each on its own when `individual`, else runs of digits.
    case digits(individual: Bool)
    /// Splits on whitespace, dropping it (`WhitespaceSplit`).
    case whitespaceSplit
    case sequence([PreTokenizer])

    /// Applies this pre-tokenizer to every piece.
    func apply(_ pieces: [String]) -> [String] {
        switch self {
        case .byteLevel(let addPrefixSpace, let useRegex):
            var out: [String] = []
            out.reserveCapacity(pieces.count)
            for piece in pieces {
                var text = piece
                if addPrefixSpace && !text.hasPrefix(" ") { text = " " + text }
                if useRegex {
                    for part in Self.split(text, at: SplitPattern.gpt2.matches(in: text), behavior: .isolated, invert: false) {
                        out.append(ByteLevel.encode(part[...]))
                    }
                } else if !text.isEmpty {
                    out.append(ByteLevel.encode(text[...]))
                }
            }
            return out
        case .split(let pattern, let behavior, let invert):
            return pieces.flatMap { Self.split($0, at: pattern.matches(in: $0), behavior: behavior, invert: invert) }
        case .digits(let individual):
            return pieces.flatMap { Self.splitDigits($0, individual: individual) }
        case .whitespaceSplit:
            return pieces.flatMap { piece in
                piece.split(whereSeparator: { $0.unicodeScalars.allSatisfy(\.properties.isWhitespace) }).map(String.init)
            }
        case .sequence(let steps):
            return steps.reduce(pieces) { $1.apply($0) }
        }
    }

    /// Splits `text` at `matches` the way Hugging Face's `split` with a delimiter behaviour does.
    static func split(_ text: String, at matches: [Range<String.Index>], behavior: SplitBehavior, invert: Bool) -> [String] {
        // (range, isDelimiter) covering the whole text.
        var parts: [(Range<String.Index>, Bool)] = []
        var cursor = text.startIndex
        for match in matches {
            if cursor < match.lowerBound { parts.append((cursor..<match.lowerBound, invert)) }
            parts.append((match, !invert))
            cursor = match.upperBound
        }
        if cursor < text.endIndex { parts.append((cursor..<text.endIndex, invert)) }

        var out: [Range<String.Index>] = []
        switch behavior {
        case .removed:
            out = parts.filter { !$0.1 }.map(\.0)
        case .isolated:
            out = parts.map(\.0)
        case .mergedWithPrevious:
            // A delimiter joins the piece before it, unless that piece is a delimiter too.
            var previousWasDelimiter = false
            for (range, isDelimiter) in parts {
                if isDelimiter && !previousWasDelimiter, let last = out.last {
                    out[out.count - 1] = last.lowerBound..<range.upperBound
                } else {
                    out.append(range)
                }
                previousWasDelimiter = isDelimiter
            }
        case .mergedWithNext:
            // A delimiter joins the piece after it, unless that piece is a delimiter too.
            var nextWasDelimiter = false
            for (range, isDelimiter) in parts.reversed() {
                if isDelimiter && !nextWasDelimiter, let last = out.last {
                    out[out.count - 1] = range.lowerBound..<last.upperBound
                } else {
                    out.append(range)
                }
                nextWasDelimiter = isDelimiter
            }
            out.reverse()
        case .contiguous:
            var previousWasDelimiter = false
            for (range, isDelimiter) in parts {
                if isDelimiter == previousWasDelimiter, let last = out.last {
                    out[out.count - 1] = last.lowerBound..<range.upperBound
                } else {
                    out.append(range)
                }
                previousWasDelimiter = isDelimiter
            }
        }
        // Slice by scalars: a match may end inside a grapheme cluster (a letter, then a combining mark).
        return out.filter { !$0.isEmpty }.map { String(text.unicodeScalars[$0]) }
    }

    static func isNumeric(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: true
        default: false
        }
    }

    static func splitDigits(_ text: String, individual: Bool) -> [String] {
        var out: [String] = []
        var current = String.UnicodeScalarView()
        var currentIsDigits = false
        for scalar in text.unicodeScalars {
            let digit = isNumeric(scalar)
            if digit && individual {
                if !current.isEmpty { out.append(String(current)) }
                out.append(String(scalar))
                current = String.UnicodeScalarView()
                currentIsDigits = false
                continue
            }
            if !current.isEmpty && digit != currentIsDigits {
                out.append(String(current))
                current = String.UnicodeScalarView()
            }
            current.append(scalar)
            currentIsDigits = digit
        }
        if !current.isEmpty { out.append(String(current)) }
        return out
    }
}

/// Matches the GPT-2 pattern
/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
/// by hand, trying the alternatives in order at each position as a backtracking engine does.
enum GPT2Scanner {
    enum Kind { case letter, number, space, other }

    @inline(__always)
    static func kind(_ scalar: Unicode.Scalar) -> Kind {
        if scalar.value < 0x80 {
            let v = scalar.value
            if (v >= 0x61 && v <= 0x7A) || (v >= 0x41 && v <= 0x5A) { return .letter }
            if v >= 0x30 && v <= 0x39 { return .number }
            if v == 0x20 || (v >= 0x09 && v <= 0x0D) { return .space }
            return .other
        }
        let properties = scalar.properties
        if properties.isWhitespace { return .space }
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return .letter
        case .decimalNumber, .letterNumber, .otherNumber: return .number
        default: return .other
        }
    }

    static func matches(in text: String) -> [Range<String.Index>] {
        matches(in: text, matchEnd: gpt2MatchEnd)
    }

    /// The matches of a pattern whose `matchEnd` gives, for a start position, where the
    /// match starting there ends (every position starts a match).
    static func matches(in text: String, matchEnd: (Int, [Unicode.Scalar], [Kind]) -> Int) -> [Range<String.Index>] {
        let view = text.unicodeScalars
        var indices: [String.Index] = []
        var scalars: [Unicode.Scalar] = []
        indices.reserveCapacity(view.count + 1)
        scalars.reserveCapacity(view.count)
        var index = view.startIndex
        while index < view.endIndex {
            indices.append(index)
            scalars.append(view[index])
            index = view.index(after: index)
        }
        indices.append(view.endIndex)
        let kinds = scalars.map(kind)
        let n = scalars.count
        var ranges: [Range<String.Index>] = []
        var i = 0
        while i < n {
            let end = max(matchEnd(i, scalars, kinds), i + 1)
            ranges.append(indices[i]..<indices[end])
            i = end
        }
        return ranges
    }

    /// The end of the match starting at `i` (every position starts a match of at least one scalar).
    static func gpt2MatchEnd(_ i: Int, _ scalars: [Unicode.Scalar], _ kinds: [Kind]) -> Int {
        let n = scalars.count
        func run(from start: Int, of kind: Kind) -> Int {
            var j = start
            while j < n && kinds[j] == kind { j += 1 }
            return j
        }
        // Contractions.
        if scalars[i] == "'" && i + 1 < n {
            let next = scalars[i + 1]
            if next == "s" || next == "t" || next == "m" || next == "d" { return i + 2 }
            if i + 2 < n {
                let third = scalars[i + 2]
                if (next == "r" && third == "e") || (next == "v" && third == "e") || (next == "l" && third == "l") {
                    return i + 3
                }
            }
        }
        // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`
        var start = i
        if scalars[i] == " " && i + 1 < n && kinds[i + 1] != .space { start = i + 1 }
        if kinds[start] != .space { return run(from: start, of: kinds[start]) }
        // `\s+(?!\S)|\s+`
        let end = run(from: i, of: .space)
        if end == n || end - i == 1 { return end }
        return end - 1
    }

    /// Matches the Llama 3 pattern
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`.
    static func llama3MatchEnd(_ i: Int, _ scalars: [Unicode.Scalar], _ kinds: [Kind]) -> Int {
        let n = scalars.count
        func run(from start: Int, of kind: Kind) -> Int {
            var j = start
            while j < n && kinds[j] == kind { j += 1 }
            return j
        }
        func isNewline(_ j: Int) -> Bool { scalars[j] == "\n" || scalars[j] == "\r" }
        func folded(_ j: Int) -> Unicode.Scalar? {
            guard j < n else { return nil }
            let v = scalars[j].value
            if v >= 0x41 && v <= 0x5A { return Unicode.Scalar(v + 0x20) }
            if v == 0x17F { return "s" }  // LATIN SMALL LETTER LONG S folds to s
            return scalars[j]
        }
        // Contractions, any case.
        if scalars[i] == "'", let a = folded(i + 1) {
            if a == "s" || a == "t" || a == "m" || a == "d" { return i + 2 }
            if let b = folded(i + 2), (a == "r" && b == "e") || (a == "v" && b == "e") || (a == "l" && b == "l") {
                return i + 3
            }
        }
        // `[^\r\n\p{L}\p{N}]?\p{L}+`
        if kinds[i] == .letter { return run(from: i, of: .letter) }
        if kinds[i] != .number && !isNewline(i) && i + 1 < n && kinds[i + 1] == .letter {
            return run(from: i + 1, of: .letter)
        }
        // `\p{N}{1,3}`
        if kinds[i] == .number { return min(run(from: i, of: .number), i + 3) }
        // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
        var start = i
        if scalars[i] == " " && i + 1 < n && kinds[i + 1] == .other { start = i + 1 }
        if kinds[start] == .other {
            var j = run(from: start, of: .other)
            while j < n && isNewline(j) { j += 1 }
            return j
        }
        // `\s*[\r\n]+`: up to the last line break of the whitespace run.
        let end = run(from: i, of: .space)
        var lastBreak = -1
        for j in i..<end where isNewline(j) { lastBreak = j }
        if lastBreak >= 0 { return lastBreak + 1 }
        // `\s+(?!\S)|\s+`
        if end == n || end - i == 1 { return end }
        return end - 1
    }
}

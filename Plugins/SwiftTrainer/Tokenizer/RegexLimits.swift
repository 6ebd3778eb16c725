import Foundation

/// Bounds on the regular expressions a `tokenizer.json` brings (its `Split` pre-tokenizers and
/// `Replace` normalizers): the file comes from strangers, and a backtracking engine (ICU)
/// can be driven into exponential work by a pattern such as `(a+)+$`.
///
/// Three guards, one per kind of attack:
/// - before compiling, a pattern longer than ``maximumLength``, with a back-reference, or
///   with a repeated group that itself repeats (`(a+)+`, `(\s*)*`, `(x{2,})+`) is refused;
/// - after compiling, the pattern is tried on long runs of its own characters under
///   ``probeBudget`` and refused when it needs more;
/// - every match of a text runs under a step budget that grows with the text's length
///   (``budget(forLength:)``), so no text makes matching run away.
enum RegexLimits {
    /// The longest pattern accepted, in UTF-16 units (the GPT-4o pattern is about 300).
    static let maximumLength = 2_048
    /// ICU calls back once about every 10 000 matching steps; budgets count those calls.
    /// Load-time probes: about 2 million steps each.
    static let probeBudget = 200
    /// How long each load-time probe text is.
    static let probeLength = 64

    /// The step budget (in ICU callbacks) for matching a text of `length` UTF-16 units:
    /// 10 million steps plus 2 500 per unit, far above what a tokenizer pattern needs
    /// (tens of steps per unit) and linear in the text.
    static func budget(forLength length: Int) -> Int {
        1_000 + length / 4
    }

    /// Why `pattern` is refused before compiling, or nil when it passes the static checks.
    static func staticRefusal(_ pattern: String) -> String? {
        let units = Array(pattern.unicodeScalars)
        if pattern.utf16.count > maximumLength {
            return "is \(pattern.utf16.count) characters long; Tally accepts at most \(maximumLength)"
        }
        // One entry per open group: whether its body holds an unbounded quantifier.
        var groups: [Bool] = []
        var classDepth = 0
        var index = 0
        func isUnboundedQuantifier(at position: Int) -> Bool {
            guard position < units.count else { return false }
            switch units[position] {
            case "*", "+": return true
            case "{":
                // `{n}` repeats a fixed number of times; `{n,}` and `{n,m}` with m > 1 repeat.
                var end = position + 1
                while end < units.count, units[end] != "}", end - position < 32 { end += 1 }
                guard end < units.count, units[end] == "}" else { return false }
                let body = String(String.UnicodeScalarView(units[(position + 1)..<end]))
                let parts = body.split(separator: ",", omittingEmptySubsequences: false)
                guard parts.allSatisfy({ $0.allSatisfy(\.isNumber) }), let first = parts.first, !first.isEmpty else { return false }
                if parts.count == 1 { return false }
                if parts.count == 2, let upper = Int(parts[1]) { return upper > 1 }
                return parts.count == 2
            default: return false
            }
        }
        while index < units.count {
            let character = units[index]
            if character == "\\" {
                guard index + 1 < units.count else { break }
                let next = units[index + 1]
                if classDepth == 0, next.properties.numericType != nil, next != "0" {
                    return "uses a back-reference (\\\(next)), which Tally does not accept"
                }
                if classDepth == 0, next == "k" {
                    return "uses a named back-reference (\\k), which Tally does not accept"
                }
                index += 2
                // `\p{…}`, `\P{…}`, `\x{…}`, `\N{…}`: the braces belong to the escape.
                if ["p", "P", "x", "N"].contains(next), index < units.count, units[index] == "{" {
                    while index < units.count, units[index] != "}" { index += 1 }
                    index += 1
                }
                continue
            }
            if classDepth > 0 {
                if character == "[" { classDepth += 1 }
                if character == "]" { classDepth -= 1 }
                index += 1
                continue
            }
            switch character {
            case "[":
                classDepth = 1
                // A `]` right after `[` or `[^` is a literal.
                if index + 1 < units.count, units[index + 1] == "^" { index += 1 }
                if index + 1 < units.count, units[index + 1] == "]" { index += 1 }
            case "(":
                groups.append(false)
            case ")":
                let repeats = groups.popLast() ?? false
                if repeats, isUnboundedQuantifier(at: index + 1) {
                    return "repeats a group that itself repeats (a nested quantifier, as in (a+)+), which can take exponential time; rewrite it without the nesting"
                }
                if repeats, !groups.isEmpty { groups[groups.count - 1] = true }
            default:
                if isUnboundedQuantifier(at: index), !groups.isEmpty {
                    groups[groups.count - 1] = true
                }
            }
            index += 1
        }
        return nil
    }

    /// Texts that drive a backtracking pattern into its worst case: long runs of each
    /// character the pattern names, and of a letter, a digit and a space, each followed by a
    /// character that rarely matches.
    static func probes(for pattern: String) -> [String] {
        var characters: [Character] = ["a", "1", " ", "\n"]
        var escaped = false
        for character in pattern {
            if escaped { escaped = false; continue }
            if character == "\\" { escaped = true; continue }
            if "()[]{}|*+?^$.,:-!=<>".contains(character) { continue }
            if !characters.contains(character) { characters.append(character) }
            if characters.count >= 16 { break }
        }
        return characters.map { String(repeating: $0, count: probeLength) + "\u{1}" }
    }
}

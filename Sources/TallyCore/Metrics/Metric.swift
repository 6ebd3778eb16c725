import Foundation

/// The task metrics a recipe can name in `task.metric`.
public enum MetricKind: String, CaseIterable, Sendable, Codable, Hashable {
    /// The normalised answer equals a reference.
    case exactMatch = "exact_match"
    /// The extracted label (or, without labels, the normalised answer) equals the reference.
    case accuracy
    /// Token-overlap F1 between answer and reference (best over references).
    case f1
    /// The answer's number equals the reference's (relative tolerance 1e-6).
    case numeric
    /// ROUGE-L F-measure (longest common token subsequence).
    case rougeL = "rouge_l"
    /// `task.answer_pattern` extracts the answer (first capture group), then exact match.
    case regex
    /// The normalised reference appears in the normalised answer as a run of whole words
    /// (for knowledge probes: small chat models answer in sentences, "The capital of France
    /// is Paris.").
    case contains

    /// One line for docs and `tally plugins`.
    public var summary: String {
        switch self {
        case .exactMatch: "normalised answer equals a reference (case, punctuation, articles ignored)"
        case .accuracy: "the label named by the reply equals the reference label"
        case .f1: "token-overlap F1 with the reference"
        case .numeric: "the number in the answer equals the reference number"
        case .rougeL: "ROUGE-L F-measure (longest common subsequence of words)"
        case .regex: "answer_pattern extracts the answer, then exact match"
        case .contains: "the reply contains the reference as whole words (case, punctuation, articles ignored)"
        }
    }
}

/// Pure scoring functions, each in [0, 1].
public enum Metrics {
    /// 1 when the normalised texts are equal.
    public static func exactMatch(_ answer: String, _ reference: String) -> Double {
        TextNormalizer.normalize(answer) == TextNormalizer.normalize(reference) ? 1 : 0
    }

    /// 1 when the normalised reference's words occur contiguously, in order, among the
    /// normalised answer's words (`"The capital is Paris."` contains `"paris"`, but
    /// `"Parisian"` does not). Numbers stay whole: `"2.25"` does not contain `"25"`, and
    /// `"1,000"` contains `"1000"`. An empty reference never matches.
    public static func containsMatch(_ answer: String, _ reference: String) -> Double {
        let a = TextNormalizer.tokens(keepingNumbersWhole(answer))
        let r = TextNormalizer.tokens(keepingNumbersWhole(reference))
        guard !r.isEmpty, a.count >= r.count else { return 0 }
        for start in 0...(a.count - r.count) where a[start..<(start + r.count)].elementsEqual(r) {
            return 1
        }
        return 0
    }

    /// Joins the parts of written numbers so that tokenising cannot split them: a comma
    /// between digits is dropped (`1,000` -> `1000`), a point between digits becomes the
    /// letter `p` (`2.25` -> `2p25`, one token).
    static func keepingNumbersWhole(_ text: String) -> String {
        let characters = Array(text)
        var out = ""
        out.reserveCapacity(characters.count)
        for (index, character) in characters.enumerated() {
            if (character == "," || character == "."), index > 0, index + 1 < characters.count,
               characters[index - 1].isASCII, characters[index - 1].isNumber,
               characters[index + 1].isASCII, characters[index + 1].isNumber {
                if character == "." { out.append("p") }
                continue
            }
            out.append(character)
        }
        return out
    }

    /// SQuAD-style token F1 (articles and punctuation ignored). Two empty texts score 1.
    public static func tokenF1(_ answer: String, _ reference: String) -> Double {
        let a = TextNormalizer.tokens(answer), r = TextNormalizer.tokens(reference)
        if a.isEmpty || r.isEmpty { return a.isEmpty && r.isEmpty ? 1 : 0 }
        var counts: [String: Int] = [:]
        for token in r { counts[token, default: 0] += 1 }
        var common = 0
        for token in a where (counts[token] ?? 0) > 0 {
            common += 1
            counts[token, default: 0] -= 1
        }
        if common == 0 { return 0 }
        let precision = Double(common) / Double(a.count)
        let recall = Double(common) / Double(r.count)
        return 2 * precision * recall / (precision + recall)
    }

    /// ROUGE-L F1: LCS over lower-cased words (articles kept).
    public static func rougeL(_ answer: String, _ reference: String) -> Double {
        let a = TextNormalizer.tokens(answer, keepArticles: true)
        let r = TextNormalizer.tokens(reference, keepArticles: true)
        if a.isEmpty || r.isEmpty { return a.isEmpty && r.isEmpty ? 1 : 0 }
        var previous = [Int](repeating: 0, count: r.count + 1)
        var current = previous
        for i in 1...a.count {
            for j in 1...r.count {
                current[j] = a[i - 1] == r[j - 1] ? previous[j - 1] + 1 : max(previous[j], current[j - 1])
            }
            swap(&previous, &current)
        }
        let lcs = Double(previous[r.count])
        if lcs == 0 { return 0 }
        let precision = lcs / Double(a.count), recall = lcs / Double(r.count)
        return 2 * precision * recall / (precision + recall)
    }

    /// Every number written in `text`, in order (`1,234.5` -> 1234.5; `-3` -> -3).
    public static func numbers(in text: String) -> [Double] {
        var found: [Double] = []
        let chars = Array(text)
        var i = 0
        while i < chars.count {
            let startsNumber = chars[i].isASCII && chars[i].isNumber
                || (chars[i] == "." && i + 1 < chars.count && chars[i + 1].isASCII && chars[i + 1].isNumber)
            if !startsNumber { i += 1; continue }
            let negative = i > 0 && chars[i - 1] == "-" && (i < 2 || !(chars[i - 2].isLetter || chars[i - 2].isNumber))
            var digits = ""
            var seenDot = false
            while i < chars.count {
                let c = chars[i]
                if c.isASCII && c.isNumber {
                    digits.append(c)
                } else if c == ",", !seenDot, isThousandsGroup(chars, after: i) {
                    // thousands separator ("1,234"): skip it
                } else if c == ".", !seenDot, i + 1 < chars.count, chars[i + 1].isASCII, chars[i + 1].isNumber {
                    seenDot = true
                    digits.append(c)
                } else {
                    break
                }
                i += 1
            }
            if let value = Double(digits.hasPrefix(".") ? "0" + digits : digits) { found.append(negative ? -value : value) }
        }
        return found
    }

    /// True when exactly three digits follow position `index` (and no fourth).
    static func isThousandsGroup(_ chars: [Character], after index: Int) -> Bool {
        guard index + 3 < chars.count else { return false }
        for k in 1...3 where !(chars[index + k].isASCII && chars[index + k].isNumber) { return false }
        if index + 4 < chars.count, chars[index + 4].isASCII, chars[index + 4].isNumber { return false }
        return true
    }

    /// 1 when the two numbers agree within a relative tolerance of 1e-6.
    public static func numericMatch(_ answer: Double, _ reference: Double) -> Double {
        abs(answer - reference) <= 1e-6 * max(1, abs(reference)) ? 1 : 0
    }
}

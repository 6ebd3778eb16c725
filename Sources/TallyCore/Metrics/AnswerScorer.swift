import Foundation

/// Turns a raw model reply into an answer and scores it against the expected output.
///
/// Extraction rules (documented in docs/recipe-format.md):
/// - **Labelled tasks** (`task.labels`): the label the reply mentions first, matching whole
///   words with case, punctuation and articles ignored; when two labels start at the same
///   word the longer wins. For chain-of-thought replies the text after the last
///   `Answer:` is searched first; without it, the label mentioned *last* in the reply.
///   No label found: the answer is nil ("unparsed") and scores 0.
/// - **regex**: the first capture group (or the whole match) of `task.answer_pattern`.
/// - **numeric**: the last number in the answer text.
/// - **otherwise**: the reply, trimmed (for chain-of-thought, the text after the last
///   `Answer:`, or the last non-empty line).
public struct AnswerScorer: Sendable {
    public let metric: MetricKind
    public let labels: [String]?
    public let answerPattern: String?

    /// - Parameters:
    ///   - metric: how answers are scored.
    ///   - labels: the closed label set, if any.
    ///   - answerPattern: the regular expression for the `regex` metric.
    public init(metric: MetricKind, labels: [String]? = nil, answerPattern: String? = nil) {
        self.metric = metric
        self.labels = labels.flatMap { $0.isEmpty ? nil : $0 }
        self.answerPattern = answerPattern
    }

    /// The scorer for a recipe's task.
    /// - Throws: `TallyError(.unknownName)` for an unknown metric name.
    public init(task: TaskSpec) throws {
        guard let metric = MetricKind(rawValue: task.metric) else {
            let near = nearestName(to: task.metric, among: MetricKind.allCases.map(\.rawValue))
            throw TallyError(code: .unknownName, message: "unknown metric '\(task.metric)'" + (near.map { "; did you mean '\($0)'?" } ?? ""))
        }
        self.init(metric: metric, labels: task.labels, answerPattern: task.answerPattern)
    }

    /// The answer in `output`, or nil when none can be found ("unparsed").
    /// - Parameter reasoning: the reply is a chain of thought ending in `Answer: …`.
    public func extractAnswer(from output: String, reasoning: Bool = false) -> String? {
        let finalSegment = reasoning ? Self.textAfterLastAnswerMarker(output) : nil
        if let labels {
            if let segment = finalSegment, let label = Self.firstLabel(in: segment, labels: labels) { return label }
            return reasoning ? Self.lastLabel(in: output, labels: labels) : Self.firstLabel(in: output, labels: labels)
        }
        let text: String
        if reasoning {
            text = finalSegment ?? output.split(whereSeparator: \.isNewline).last { !$0.trimmingCharacters(in: .whitespaces).isEmpty }.map(String.init) ?? ""
        } else {
            text = output
        }
        switch metric {
        case .regex:
            guard let pattern = answerPattern, let regex = try? NSRegularExpression(pattern: pattern) else { return nil }
            let range = NSRange(text.startIndex..., in: text)
            guard let match = regex.firstMatch(in: text, range: range) else { return nil }
            let group = match.numberOfRanges > 1 && match.range(at: 1).location != NSNotFound ? match.range(at: 1) : match.range
            return Range(group, in: text).map { String(text[$0]).trimmingCharacters(in: .whitespacesAndNewlines) }
        case .numeric:
            return Metrics.numbers(in: text).last.map(Self.format)
        default:
            let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
            return trimmed.isEmpty ? nil : trimmed
        }
    }

    /// The score in [0, 1] of `answer` against the accepted references (best over them);
    /// 0 for an unparsed (nil) answer.
    public func score(answer: String?, expected: [String]) -> Double {
        guard let answer else { return 0 }
        var best = 0.0
        for reference in expected {
            let value: Double
            switch metric {
            case .exactMatch, .accuracy, .regex:
                value = Metrics.exactMatch(answer, reference)
            case .f1:
                value = Metrics.tokenF1(answer, reference)
            case .rougeL:
                value = Metrics.rougeL(answer, reference)
            case .contains:
                value = Metrics.containsMatch(answer, reference)
            case .numeric:
                if let a = Metrics.numbers(in: answer).last, let r = Metrics.numbers(in: reference).last {
                    value = Metrics.numericMatch(a, r)
                } else {
                    value = 0
                }
            }
            best = max(best, value)
        }
        return best
    }

    /// Extracts and scores in one step.
    public func evaluate(output: String, expected: [String], reasoning: Bool = false) -> (answer: String?, score: Double) {
        let answer = extractAnswer(from: output, reasoning: reasoning)
        return (answer, score(answer: answer, expected: expected))
    }

    // MARK: helpers

    static func format(_ value: Double) -> String {
        if value == value.rounded(), abs(value) < 1e15 { return String(Int(value)) }
        return String(value)
    }

    /// The text after the last `Answer:` (case-insensitive) up to the end of its line.
    static func textAfterLastAnswerMarker(_ output: String) -> String? {
        guard let range = output.range(of: "answer:", options: [.caseInsensitive, .backwards]) else { return nil }
        let rest = output[range.upperBound...]
        let line = rest.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
        return trimmed.isEmpty ? nil : trimmed
    }

    /// Where each label occurs in `text` (word positions), for first/last matching.
    static func labelMatches(in text: String, labels: [String]) -> [(label: String, start: Int, length: Int)] {
        let words = TextNormalizer.tokens(text)
        var matches: [(String, Int, Int)] = []
        for label in labels {
            let labelWords = TextNormalizer.tokens(label)
            guard !labelWords.isEmpty, labelWords.count <= words.count else { continue }
            for start in 0...(words.count - labelWords.count) where Array(words[start..<(start + labelWords.count)]) == labelWords {
                matches.append((label, start, labelWords.count))
            }
        }
        return matches
    }

    /// The label mentioned first (ties: the longer label).
    static func firstLabel(in text: String, labels: [String]) -> String? {
        labelMatches(in: text, labels: labels).min { a, b in
            a.start != b.start ? a.start < b.start : a.length > b.length
        }?.label
    }

    /// The label mentioned last (by where it ends; ties: the longer label).
    static func lastLabel(in text: String, labels: [String]) -> String? {
        labelMatches(in: text, labels: labels).max { a, b in
            let endA = a.start + a.length, endB = b.start + b.length
            return endA != endB ? endA < endB : a.length < b.length
        }?.label
    }
}

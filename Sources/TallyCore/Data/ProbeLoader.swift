import Foundation

/// One item of a forgetting probe.
public struct ProbeItem: Sendable, Hashable {
    public let id: String
    /// The question (qa), the request (refusal) or the text to score (drift).
    public let input: String
    /// Accepted answers (qa); empty for refusal and drift.
    public let answers: [String]
    public let location: SourceLocation

    public init(id: String, input: String, answers: [String], location: SourceLocation) {
        self.id = id
        self.input = input
        self.answers = answers
        self.location = location
    }
}

/// Reads forgetting-probe files (JSONL): qa rows `{"input", "output"}` (`output` may be a
/// list of accepted answers), refusal rows `{"input"}`, drift rows `{"text"}`.
public enum ProbeLoader {
    /// At most `max` items, a seeded subset in file order (`run.max_examples`).
    public static func sample(_ items: [ProbeItem], max: Int?, seed: UInt64, probe: String) -> [ProbeItem] {
        guard let max, max < items.count else { return items }
        var rng = SeededRandom.derived(seed: seed, label: "probe:" + probe)
        return rng.subset(max, of: items.count).map { items[$0] }
    }

    /// Loads a probe file, returning its usable items and the rows it skipped.
    /// - Throws: `TallyError(.invalidData)` when the file cannot be read or has no usable item.
    public static func load(_ url: URL, kind: ProbeSpec.Kind, displayPath: String? = nil) throws -> (items: [ProbeItem], problems: [DataProblem]) {
        let shown = displayPath ?? url.path
        guard let data = try? Data(contentsOf: url) else {
            throw TallyError(code: .invalidData, message: "cannot read probe file \(shown): no such file or not readable. Check the path (relative to the recipe's directory).", location: SourceLocation(file: shown))
        }
        var items: [ProbeItem] = []
        var problems: [DataProblem] = []
        var lineNumber = 0
        for line in String(decoding: data, as: UTF8.self).split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            lineNumber += 1
            let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty { continue }
            let location = SourceLocation(file: shown, line: lineNumber)
            guard let value = try? JSONValue.parse(line: Substring(trimmed)), case .object(let object) = value else {
                problems.append(DataProblem(location: location, message: "row is not a JSON object; it is skipped."))
                continue
            }
            let id = object["id"]?.scalarText ?? "L\(lineNumber)"
            switch kind {
            case .qa:
                guard let input = object["input"]?.scalarText else {
                    problems.append(DataProblem(location: location, message: "qa probe row needs a string 'input'; it is skipped."))
                    continue
                }
                var answers: [String] = []
                switch object["output"] {
                case .array(let values)?: answers = values.compactMap(\.scalarText)
                case let value?: answers = value.scalarText.map { [$0] } ?? []
                case nil: break
                }
                guard !answers.isEmpty else {
                    problems.append(DataProblem(location: location, message: "qa probe row needs 'output': the answer, or a list of accepted answers; it is skipped."))
                    continue
                }
                items.append(ProbeItem(id: id, input: input, answers: answers, location: location))
            case .refusal:
                guard let input = object["input"]?.scalarText else {
                    problems.append(DataProblem(location: location, message: "refusal probe row needs a string 'input'; it is skipped."))
                    continue
                }
                items.append(ProbeItem(id: id, input: input, answers: [], location: location))
            case .drift:
                guard let text = object["text"]?.scalarText, !text.isEmpty else {
                    problems.append(DataProblem(location: location, message: "drift probe row needs a non-empty string 'text'; it is skipped."))
                    continue
                }
                items.append(ProbeItem(id: id, input: text, answers: [], location: location))
            }
        }
        if items.isEmpty {
            var message = "probe file \(shown) has no usable \(kind.rawValue) item"
            if let first = problems.first { message += " (first problem: \(first))" }
            throw TallyError(code: .invalidData, message: message + ".", location: SourceLocation(file: shown))
        }
        return (items, problems)
    }
}

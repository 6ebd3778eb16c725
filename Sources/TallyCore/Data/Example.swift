import Foundation

/// One usable row of a data set: named string fields and where the row came from.
///
/// Every supported format becomes the same shape: plain JSONL keeps its keys, Alpaca rows
/// give `instruction`, `input`, `output`, OpenAI chat rows give `system`, `input` and
/// `output` (see docs/recipe-format.md), CSV/TSV rows give one field per column.
public struct Example: Sendable, Hashable, Codable {
    /// The row's `id` field when it has one, otherwise `L<line>` (the row's line in its file).
    public let id: String
    public let fields: [String: String]
    public let location: SourceLocation

    public init(id: String, fields: [String: String], location: SourceLocation) {
        self.id = id
        self.fields = fields
        self.location = location
    }

    /// The value of `field`, or nil when the row lacks it.
    public subscript(field: String) -> String? { fields[field] }
}

/// A row that could not be used, and why.
public struct DataProblem: Sendable, Hashable, CustomStringConvertible {
    public let location: SourceLocation
    public let message: String

    public init(location: SourceLocation, message: String) {
        self.location = location
        self.message = message
    }

    public var description: String { "\(location): \(message)" }
}

/// A loaded data file: its usable rows in file order, and the rows it had to skip.
public struct Dataset: Sendable {
    /// How rows were read.
    public enum Format: String, Sendable, Hashable, Codable {
        case jsonl, csv, tsv
    }

    public let url: URL
    /// The path shown in messages (as the recipe wrote it, relative to the working directory).
    public let displayPath: String
    public let format: Format
    public let examples: [Example]
    public let problems: [DataProblem]

    public init(url: URL, displayPath: String, format: Format, examples: [Example], problems: [DataProblem]) {
        self.url = url
        self.displayPath = displayPath
        self.format = format
        self.examples = examples
        self.problems = problems
    }

    /// Every field name that occurs in at least one row, sorted.
    public var fieldNames: [String] {
        Set(examples.flatMap { $0.fields.keys }).sorted()
    }

    /// The same data set with rows lacking any of `fields` (or having them empty) moved to
    /// `problems`.
    /// - Parameter purposes: for each field, what needs it (shown in the problem message).
    public func requiring(_ fields: [String], purposes: [String: String] = [:]) -> Dataset {
        var kept: [Example] = []
        var problems = self.problems
        for example in examples {
            let missing = fields.filter { example[$0] == nil }
            if missing.isEmpty {
                kept.append(example)
            } else {
                let names = missing.map { name in
                    purposes[name].map { "'\(name)' (needed by \($0))" } ?? "'\(name)'"
                }
                problems.append(DataProblem(
                    location: example.location,
                    message: "row has no field \(names.joined(separator: ", ")); it is skipped. Add the field to the row or change the recipe's template."))
            }
        }
        return Dataset(url: url, displayPath: displayPath, format: format, examples: kept, problems: problems)
    }

    /// At most `count` rows, chosen by a seeded shuffle and returned in file order; all rows
    /// when there are no more than `count`.
    public func sample(_ count: Int?, seed: UInt64, label: String = "sample") -> Dataset {
        guard let count, count < examples.count else { return self }
        var rng = SeededRandom.derived(seed: seed, label: label)
        let chosen = rng.subset(count, of: examples.count)
        return Dataset(url: url, displayPath: displayPath, format: format, examples: chosen.map { examples[$0] }, problems: problems)
    }
}

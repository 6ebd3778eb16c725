import Foundation

/// How one data file fed a run: the rows it read, the rows it lost (malformed, or lacking a
/// field the task needs) and the rows it used. Every report shows one line per split, so an
/// evaluation never shrinks unnoticed.
public struct DataSplitSummary: Codable, Sendable, Hashable {
    /// `train`, `test`, `validation` or `probe NAME`.
    public let split: String
    /// The file, as the recipe names it.
    public let file: String
    /// Rows that could be used.
    public let usable: Int
    /// Rows skipped (malformed, repeated id, a needed field missing).
    public let skipped: Int
    /// Rows the run used: `usable`, or fewer when `run.max_examples` and its kin take a subset.
    public let used: Int
    /// The first skipped rows, as `file:line: why` (at most `DataSplitSummary.listed`).
    public let problems: [String]

    /// How many skipped rows a summary lists.
    public static let listed = 5

    /// - Parameters:
    ///   - split: the split's name.
    ///   - file: the file as the recipe names it.
    ///   - usable: rows that could be used.
    ///   - problems: the rows skipped, with file:line.
    ///   - used: rows the run used.
    public init(split: String, file: String, usable: Int, problems: [DataProblem], used: Int) {
        self.split = split
        self.file = file
        self.usable = usable
        self.skipped = problems.count
        self.used = used
        self.problems = problems.prefix(Self.listed).map(\.description)
    }

    /// One line for a report: `test (data/test.jsonl): 203 rows, 3 skipped (…), 100 used`.
    public var line: String {
        var text = "\(split) (\(file)): \(usable + skipped) rows, "
        text += skipped == 0 ? "none skipped" : "\(skipped) skipped as malformed or incomplete"
        text += used < usable ? ", \(used) used (a seeded subset)" : ", \(used) used"
        if !problems.isEmpty {
            text += "; skipped: " + problems.joined(separator: "; ")
            if skipped > problems.count { text += "; and \(skipped - problems.count) more (`tally validate` lists them)" }
        }
        return text
    }
}

extension Dataset {
    /// This data set's summary as `split`, given the rows the run used.
    public func summary(split: String, used: Int? = nil) -> DataSplitSummary {
        DataSplitSummary(split: split, file: displayPath, usable: examples.count, problems: problems, used: used ?? examples.count)
    }

    /// This data set, or an error when `strict` is set and it skipped any row
    /// (`data.strict: true` in a recipe).
    /// - Throws: `TallyError(.invalidData)` naming the first skipped rows with file:line.
    public func enforcing(strict: Bool, split: String) throws -> Dataset {
        guard strict, let first = problems.first else { return self }
        let more = problems.count > 1 ? " (and \(problems.count - 1) more; `tally validate` lists them)" : ""
        throw TallyError(
            code: .invalidData,
            message: "the \(split) data \(displayPath) has \(problems.count) unusable row(s) and the recipe sets data.strict: \(first.message)\(more) Fix the rows, or remove data.strict to skip them with a warning.",
            location: first.location)
    }
}

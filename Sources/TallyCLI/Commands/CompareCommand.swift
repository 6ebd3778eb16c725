import ArgumentParser
import Foundation
import TallyCore

/// `tally compare RUN_A RUN_B`: two runs side by side.
struct CompareCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Show two runs side by side: what changed, and by how much.",
        discussion: """
            Each RUN is a run id from the ledger ($TALLY_HOME/ledger.sqlite; see `tally runs`), \
            a run directory holding report.json, or a report.json file. Per strategy it prints \
            accuracy before and after with a paired test on the examples both runs scored, \
            total cost, p95 latency and forgetting, plus the recommendation and the recipe \
            settings that changed. --html writes the same as a self-contained page.
            """)

    @Argument(help: "The earlier (reference) run: run id, run directory or report.json.")
    var before: String

    @Argument(help: "The later run: run id, run directory or report.json.")
    var after: String

    @Option(help: "Directory holding the ledger and runs (default: $TALLY_HOME, else ./.tally).")
    var home: String?

    @Option(help: "Also write the comparison as a self-contained HTML page to this file.")
    var html: String?

    @Flag(help: "Print the comparison as JSON: both run ids, the changed settings, and per strategy both runs' report entries, the accuracy change and the paired test.")
    var json = false

    /// The comparison as `--json` prints it.
    struct ComparisonJSON: Encodable {
        struct Row: Encodable {
            let name: String
            let before: StrategyReport?
            let after: StrategyReport?
            let accuracyDeltaPoints: Double?
            let paired: PairedComparison?
            enum CodingKeys: String, CodingKey {
                case name, before, after, paired
                case accuracyDeltaPoints = "accuracy_delta_points"
            }
        }
        let before: String
        let after: String
        let settingsChanged: [String]
        let strategies: [Row]
        enum CodingKeys: String, CodingKey {
            case before, after, strategies
            case settingsChanged = "settings_changed"
        }

        init(_ c: RunComparison) {
            before = c.before.runID
            after = c.after.runID
            settingsChanged = c.settingChanges
            strategies = c.rows.map { Row(name: $0.name, before: $0.before, after: $0.after, accuracyDeltaPoints: $0.accuracyDelta, paired: $0.paired) }
        }
    }

    func run() async throws {
        try await reportingErrors {
            let root = tallyHome(home)
            let comparison = RunComparison(before: try RunLocator.report(before, home: root), after: try RunLocator.report(after, home: root))
            if json {
                try Console.json(ComparisonJSON(comparison))
            } else {
                Console.out(comparison.text())
            }
            if let html {
                let url = fileURL(html)
                do {
                    try comparison.html().write(to: url, atomically: true, encoding: .utf8)
                } catch {
                    throw TallyError(code: .io, message: "cannot write \(url.path): \(error.localizedDescription); check that the directory exists and is writable")
                }
                Console.err("wrote \(url.path)")
            }
        }
    }
}

/// Finds a run's report from what the user typed.
enum RunLocator {
    /// A run directory or report.json path, else a run id in the ledger (rebuilt from its
    /// measurements), else `runs/<id>/report.json` under `home`.
    /// - Throws: `TallyError(.invalidData)` for an unreadable report, `.unknownName` when
    ///   nothing matches.
    static func report(_ argument: String, home: URL) throws -> Report {
        let candidate = fileURL(argument)
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: candidate.path, isDirectory: &isDirectory) {
            let file = isDirectory.boolValue ? candidate.appending(path: "report.json") : candidate
            guard FileManager.default.fileExists(atPath: file.path) else {
                throw TallyError(code: .unknownName, message: "\(candidate.path) is a directory without report.json; pass a run directory written by `tally run`, or a run id")
            }
            return try decode(file)
        }
        let ledgerURL = home.appending(path: "ledger.sqlite")
        if FileManager.default.fileExists(atPath: ledgerURL.path) {
            let ledger = try Ledger(path: ledgerURL)
            if let measurements = try ledger.measurements(runID: argument) {
                return Report.build(from: measurements)
            }
        }
        let stored = home.appending(path: "runs").appending(path: argument).appending(path: "report.json")
        if FileManager.default.fileExists(atPath: stored.path) { return try decode(stored) }
        throw TallyError(code: .unknownName, message: "no run \(argument): not a run directory or report.json, and no run with that id in \(ledgerURL.path); list runs with `tally runs`")
    }

    static func decode(_ url: URL) throws -> Report {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw TallyError(code: .io, message: "cannot read \(url.path): \(error.localizedDescription)")
        }
        do {
            return try JSONRenderer.decode(data)
        } catch {
            throw TallyError(code: .invalidData, message: "\(url.path) is not a Tally report.json of schema \(Report.currentSchemaVersion) (\(error)); re-render it with `tally report RUN`")
        }
    }
}

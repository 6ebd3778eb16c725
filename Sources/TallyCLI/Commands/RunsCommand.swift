import ArgumentParser
import Foundation
import TallyCore

/// `tally runs`: past runs recorded in the ledger, newest first.
struct RunsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runs",
        abstract: "List past runs recorded in the ledger, newest first.")

    @Option(help: "Tally's home: ledger and run directories (default: $TALLY_HOME or ./.tally).")
    var home: String?

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func run() async throws {
        try await reportingErrors {
            let home = tallyHome(self.home)
            let ledgerURL = home.appending(path: "ledger.sqlite")
            guard FileManager.default.fileExists(atPath: ledgerURL.path) else {
                if json { Console.out("[]") } else { Console.out("No runs yet in \(displayPath(home)) (run `tally run RECIPE`, or pass --home).") }
                return
            }
            let runs = try Ledger(path: ledgerURL).runs().sorted { $0.startedAt > $1.startedAt }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                encoder.dateEncodingStrategy = .iso8601
                encoder.keyEncodingStrategy = .convertToSnakeCase
                Console.out(String(decoding: try encoder.encode(runs), as: UTF8.self))
                return
            }
            guard !runs.isEmpty else {
                Console.out("No runs yet in \(displayPath(home)).")
                return
            }
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withFullDate, .withTime, .withColonSeparatorInTime, .withSpaceBetweenDateAndTime]
            let header = ["run", "recipe", "started (UTC)", "status", "duration"]
            var rows: [[String]] = []
            for run in runs {
                let duration = run.finishedAt.map { String(format: "%.0f s", $0.timeIntervalSince(run.startedAt)) } ?? "-"
                rows.append([run.runID, run.recipeName, formatter.string(from: run.startedAt), run.status.rawValue, duration])
            }
            var widths = header.map(\.count)
            for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
            func line(_ cells: [String]) -> String {
                cells.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ")
                    .replacing(/\s+$/, with: "")
            }
            var text = line(header) + "\n" + line(widths.map { String(repeating: "-", count: $0) }) + "\n"
            for row in rows { text += line(row) + "\n" }
            text += "\nRe-render one with `tally report RUN`."
            Console.out(text)
        }
    }
}

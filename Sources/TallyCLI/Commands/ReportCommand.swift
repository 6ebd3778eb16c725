import ArgumentParser
import Foundation
import TallyCore

/// `tally report RUN`: re-renders a past run from the ledger.
struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Re-render a past run's report from the ledger.",
        discussion: "RUN is a run id from `tally runs`, or `latest`. Prints the report and rewrites the report files in the run's directory (or --out).")

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case terminal, markdown, json
    }

    @Argument(help: "A run id from `tally runs`, or `latest`.")
    var run: String

    @Option(help: "Tally's home: ledger and run directories (default: $TALLY_HOME or ./.tally).")
    var home: String?

    @Option(help: "Write the report files here instead of the run's directory.")
    var out: String?

    @Option(help: "What to print: terminal, markdown or json.")
    var format: Format = .terminal

    func run() async throws {
        try await reportingErrors {
            let home = tallyHome(self.home)
            let ledgerURL = home.appending(path: "ledger.sqlite")
            guard FileManager.default.fileExists(atPath: ledgerURL.path) else {
                throw TallyError(code: .io, message: "no ledger in \(displayPath(home)); pass --home or set TALLY_HOME to where `tally run` wrote it")
            }
            let ledger = try Ledger(path: ledgerURL)
            var runID = self.run
            if runID == "latest" {
                guard let latest = try ledger.latestRunID(recipeName: nil) else {
                    throw TallyError(code: .io, message: "the ledger in \(displayPath(home)) has no runs yet")
                }
                runID = latest
            }
            guard let measurements = try ledger.measurements(runID: runID) else {
                let known = try ledger.runs().map(\.runID)
                var message = "no measurements for run '\(runID)' in \(displayPath(home))"
                if let near = nearestName(to: runID, among: known) { message += "; did you mean '\(near)'?" }
                message += known.isEmpty ? " (the ledger has no runs)" : "; `tally runs` lists the runs"
                throw TallyError(code: .unknownName, message: message)
            }
            let report = Report.build(from: measurements)
            let directory = try writeReports(report, measurements: measurements, to: out.map(fileURL) ?? runDirectory(home: home, runID: runID))
            switch format {
            case .terminal:
                Console.out(try TerminalRenderer().render(report))
                Console.out("Reports: \(displayPath(directory))/")
            case .markdown: Console.out(try MarkdownRenderer().render(report))
            case .json: Console.out(try JSONRenderer().render(report))
            }
        }
    }
}

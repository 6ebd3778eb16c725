import ArgumentParser
import Foundation
import TallyCore

/// `tally report RUN`: re-renders a past run from the ledger.
struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Re-render a past run's report from the ledger.",
        discussion: "RUN is a run id from `tally runs`, or `latest`. Prints the report and rewrites the report files in the run's directory (or --out). --examples FILE writes every strategy's per-example results (input, expected, output, parsed answer, score, tokens, latency) as JSON Lines (.jsonl) or CSV (.csv).")

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

    @Flag(help: "Print report.json to stdout (the same as --format json).")
    var json = false

    @Option(help: "Also write the per-example results of every strategy to this file: JSON Lines (.jsonl) or CSV (.csv), by extension.")
    var examples: String?

    func validate() throws {
        if let examples, ExampleExport.Format(path: examples) == nil {
            throw ValidationError("--examples must name a .jsonl or .csv file, not '\(examples)'")
        }
    }

    func run() async throws {
        try await reportingErrors {
            let home = tallyHome(self.home)
            let measurements = try loadRun(self.run, home: home)
            let runID = measurements.runID
            let report = Report.build(from: measurements)
            let directory = try writeReports(report, measurements: measurements, to: out.map(fileURL) ?? runDirectory(home: home, runID: runID))
            if let examples {
                let url = fileURL(examples)
                try ExampleExport.write(measurements, to: url)
                Console.err("wrote \(displayPath(url))")
            }
            switch json ? .json : format {
            case .terminal:
                Console.out(try TerminalRenderer().render(report))
                Console.out("Reports: \(displayPath(directory))/")
            case .markdown: Console.out(try MarkdownRenderer().render(report))
            case .json: Console.out(try JSONRenderer().render(report))
            }
        }
    }
}

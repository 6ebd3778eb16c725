import Foundation
import Testing

/// The conventions users bring: `--json` everywhere, the report's URL at the end of a run,
/// per-example exports, `--limit`, `--refresh`, and `tally export --format prompt`, through
/// the real `tally` on the deterministic test backend.
@Suite struct ConventionsCLITests {
    static func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "not a JSON object: \(text)")
    }

    @Test func validateJSONGivesDiagnosticsAsObjects() async throws {
        let workspace = try CLITests.Workspace()
        let bad = try await workspace.run(["validate", "invalid.yaml", "--json"])
        #expect(bad.status == 2)
        let object = try Self.json(bad.stdout)
        #expect(object["ok"] as? Bool == false)
        let diagnostics = try #require(object["diagnostics"] as? [[String: Any]])
        #expect((object["errors"] as? Int ?? 0) >= 5)
        #expect(diagnostics.contains { $0["line"] as? Int == 14 && $0["severity"] as? String == "error" && ($0["message"] as? String ?? "").contains("zero-shoot") })
        let good = try await workspace.run(["validate", "sentiment.yaml", "--json"])
        #expect(good.status == 0, "\(good.stderr)")
        #expect(try Self.json(good.stdout)["ok"] as? Bool == true)
    }

    @Test func listsPrintJSON() async throws {
        let workspace = try CLITests.Workspace()
        for (command, key) in [(["models", "list", "--json"], "models"), (["data", "list", "--json"], "datasets")] {
            let result = try await workspace.run(command)
            #expect(result.status == 0, "\(result.stderr)")
            let items = try #require(try Self.json(result.stdout)[key] as? [[String: Any]])
            #expect(!items.isEmpty && items.allSatisfy { $0["name"] is String && $0["fetched"] is Bool })
        }
    }

    @Test func runLimitReportURLExamplesCompareRefreshAndPromptExport() async throws {
        let workspace = try CLITests.Workspace()
        let first = try await workspace.run(["run", "sentiment.yaml", "--limit", "4", "--quiet"])
        #expect(first.status == 0, "\(first.stderr)")
        let last = try #require(first.stdout.split(separator: "\n").last.map(String.init))
        #expect(last.hasPrefix("Report: file://") && last.hasSuffix("/report.html"), "\(last)")
        let page = try #require(URL(string: String(last.dropFirst("Report: ".count))))
        #expect(FileManager.default.fileExists(atPath: page.path))

        // Per-example results: 4 test examples per strategy (--limit 4).
        let jsonl = try await workspace.run(["report", "latest", "--examples", "examples.jsonl", "--json"])
        #expect(jsonl.status == 0, "\(jsonl.stderr)")
        #expect(try Self.json(jsonl.stdout)["run_id"] is String)
        let rows = try String(contentsOf: workspace.root.appending(path: "examples.jsonl"), encoding: .utf8).split(separator: "\n")
        #expect(rows.count == 4 * 5)
        let row = try Self.json(String(rows[0]))
        for column in ["strategy", "example_id", "input", "expected", "output", "score"] { #expect(row[column] != nil, "\(column)") }
        let csv = try await workspace.run(["report", "latest", "--examples", "examples.csv"])
        #expect(csv.status == 0, "\(csv.stderr)")
        let csvText = try String(contentsOf: workspace.root.appending(path: "examples.csv"), encoding: .utf8)
        #expect(csvText.hasPrefix("strategy,example_id,input,expected,output,answer,score,"))
        #expect(csvText.components(separatedBy: "\r\n").filter { !$0.isEmpty }.count == 1 + 4 * 5)

        // A rerun reads every call from the ledger; --refresh makes one strategy's calls again.
        let before = workspace.calls().count
        let cached = try await workspace.run(["run", "sentiment.yaml", "--limit", "4", "--quiet"])
        #expect(cached.status == 0, "\(cached.stderr)")
        #expect(workspace.calls().count == before)
        let refreshed = try await workspace.run(["run", "sentiment.yaml", "--limit", "4", "--quiet", "--refresh", "zero-shot"])
        #expect(refreshed.status == 0, "\(refreshed.stderr)")
        #expect(workspace.calls().count == before + 4, "\(workspace.calls().suffix(6))")
        let unknown = try await workspace.run(["run", "sentiment.yaml", "--refresh", "zero-shoot"])
        #expect(unknown.status != 0 && unknown.stderr.contains("zero-shot"))

        let runs = try await workspace.run(["runs", "--json"])
        let list = try #require(try JSONSerialization.jsonObject(with: Data(runs.stdout.utf8)) as? [[String: Any]])
        let ids = list.compactMap { ($0["run_id"] ?? $0["runID"] ?? $0["id"]) as? String }
        #expect(ids.count >= 2, "\(runs.stdout)")
        if ids.count >= 2 {
            let compared = try await workspace.run(["compare", ids[1], ids[0], "--json"])
            #expect(compared.status == 0, "\(compared.stderr)")
            #expect(try Self.json(compared.stdout)["strategies"] is [[String: Any]])
        }

        // The exact prompt of a few-shot strategy, with placeholders a program fills in.
        let exported = try await workspace.run(["export", "latest", "few-shot-4", "--format", "prompt", "--out", "ship"])
        #expect(exported.status == 0, "\(exported.stderr)")
        let prompt = try Self.json(String(contentsOf: workspace.root.appending(path: "ship/prompt.json"), encoding: .utf8))
        let messages = try #require(prompt["messages"] as? [[String: String]])
        #expect(messages.first?["role"] == "system")
        #expect(messages.last?["content"]?.contains("Review: {text}") == true)
        #expect(messages.count == 2 + 2 * 4, "system, 4 demonstrations (user + assistant), the input")
        #expect(prompt["fields"] as? [String] == ["text"])
        #expect(prompt["demonstrations_depend_on_input"] as? Bool == true, "selection: similar picks demonstrations per input")
        let yaml = try String(contentsOf: workspace.root.appending(path: "ship/promptfoo-prompt.yaml"), encoding: .utf8)
        #expect(yaml.contains("- role: system") && yaml.contains("{{text}}"))
        let notAModel = try await workspace.run(["export", "latest", "zero-shot", "--format", "hf", "--out", "ship2"])
        #expect(notAModel.status != 0 && notAModel.stderr.contains("prompting strategy"))
        let missing = try await workspace.run(["export", "latest", "zero-shoot", "--format", "prompt", "--out", "ship3"])
        #expect(missing.status != 0 && missing.stderr.contains("did you mean 'zero-shot'"))
    }
}

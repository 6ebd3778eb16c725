import Foundation
import Testing

/// End-to-end: prompt variants and self-consistency through the real `tally` binary and the
/// deterministic test backend (whose sampled answers depend on the seed).
@Suite(.serialized) struct VariantsCLITests {
    typealias Workspace = CLITests.Workspace

    static let strategies = """
    strategies:
      - name: wording
        kind: few-shot
        backend: local
        selection: similar
        variants:
          - {name: plain, instruction: "Is this movie review positive or negative?", shots: 4}
          - {name: terse, instruction: "Sentiment?", shots: 1}
          - {name: framed, input: "A viewer wrote: {text}", shots: 2}
      - {name: cot-sc, kind: chain-of-thought, backend: local, samples: 5, max_tokens: 32}
    """

    /// `sentiment.yaml` with `strategies` in place of its own, written as `name`.
    func write(_ name: String, strategies: String = Self.strategies, in workspace: Workspace) throws -> String {
        let text = try String(contentsOf: workspace.root.appending(path: "sentiment.yaml"), encoding: .utf8)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let start = try #require(lines.firstIndex(of: "strategies:"))
        let end = try #require(lines.firstIndex { $0.hasPrefix("costs:") })
        lines.replaceSubrange(start..<end, with: strategies.split(separator: "\n").map(String.init))
        let recipe = lines.joined(separator: "\n")
        try recipe.write(to: workspace.root.appending(path: name), atomically: true, encoding: .utf8)
        return recipe
    }

    @Test func variantsAndSelfConsistencyRunPlanValidateAndReport() async throws {
        let workspace = try Workspace()
        _ = try write("variants.yaml", in: workspace)

        let valid = try await workspace.run(["validate", "variants.yaml"])
        #expect(valid.status == 0, "\(valid.stderr)")

        let plan = try await workspace.run(["plan", "variants.yaml", "--json"])
        #expect(plan.status == 0, "\(plan.stderr)")
        let estimate = try #require(try JSONSerialization.jsonObject(with: Data(plan.stdout.utf8)) as? [String: Any])
        let items = try #require(estimate["items"] as? [[String: Any]])
        #expect(items.map { $0["name"] as? String } == ["wording/plain", "wording/terse", "wording/framed", "cot-sc"])
        #expect(items.map { $0["requests"] as? Int } == [10, 10, 10, 50])

        let out = workspace.root.appending(path: "out")
        let run = try await workspace.run(["run", "variants.yaml", "--out", out.path])
        #expect(run.status == 0, "\(run.stderr)")
        // 3 variants x 10 questions, and 5 sampled chains for each of the 10 questions.
        let calls = workspace.calls()
        let generated = calls.filter { $0.hasPrefix("generate") }.count
        #expect(generated == 80)
        #expect(calls.count == Set(calls).count, "a call was made twice")
        #expect(run.stdout.contains("Prompt variants (* best; the best is tested against the runner-up):\n  wording\n"))
        #expect(run.stdout.contains("Best variant of wording: wording/"))

        let report = try workspace.reportJSON(in: out)
        let groups = try #require(report["variant_groups"] as? [[String: Any]])
        let group = try #require(groups.first)
        #expect(groups.count == 1 && group["name"] as? String == "wording")
        #expect(group["strategies"] as? [String] == ["wording/plain", "wording/terse", "wording/framed"])
        let best = try #require(group["best"] as? String), runnerUp = try #require(group["runner_up"] as? String)
        let test = try #require(group["paired_test"] as? [String: Any])
        #expect(test["first"] as? String == best && test["second"] as? String == runnerUp && test["n"] as? Int == 10)
        let rows = try #require(report["strategies"] as? [[String: Any]])
        func accuracy(_ name: String) -> Double? { (rows.first { $0["name"] as? String == name }?["accuracy"] as? [String: Any])?["value"] as? Double }
        #expect((accuracy(best) ?? 0) >= (accuracy(runnerUp) ?? 1))
        #expect(rows.first { $0["name"] as? String == "wording/terse" }?["variant"] as? String == "terse")
        let sc = try #require(rows.first { $0["name"] as? String == "cot-sc" }?["self_consistency"] as? [String: Any])
        #expect(sc["samples"] as? Int == 5)
        let agreement = try #require(sc["agreement"] as? Double)
        #expect(agreement > 0.5 && agreement < 1, "agreement \(agreement): the test backend's samples should sometimes disagree")

        let markdown = try String(contentsOf: out.appending(path: "report.md"), encoding: .utf8)
        #expect(markdown.contains("## Prompt variants") && markdown.contains("### wording") && markdown.contains("(best) |"))
        let html = try String(contentsOf: out.appending(path: "report.html"), encoding: .utf8)
        #expect(html.contains("<section id=\"variants\"") && html.contains("5 samples; agreement "))

        // Rerun: every call (each sample included) comes from the ledger.
        let count = workspace.calls().count
        let again = try await workspace.run(["run", "variants.yaml", "--quiet"])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(workspace.calls().count == count, "the rerun called the backend")

        // --set reaches one variant by its full name: only that variant's calls are new.
        let changed = try await workspace.run(["run", "variants.yaml", "--quiet", "--set", "strategies.wording/terse.shots=3"])
        #expect(changed.status == 0, "\(changed.stderr)")
        #expect(workspace.calls().count == count + 10)
    }

    @Test func aBadVariantIsReportedAtItsOwnLine() async throws {
        let workspace = try Workspace()
        let cases = [
            ("{name: terse, instruction: \"Sentiment?\", shots: 1}", "{name: terse, instruction: \"Sentiment?\", shots: 0}", "0}",
             "error: 'strategies[0].variants[1].shots' is 0 but must be at least 1"),
            ("input: \"A viewer wrote: {text}\"", "input: \"A viewer wrote: {txt}\"", "\"A viewer",
             "error: strategy 'wording/framed': its input uses field 'txt', but no test row has it"),
        ]
        for (index, (good, bad, token, message)) in cases.enumerated() {
            let name = "bad\(index).yaml"
            let text = try write(name, strategies: Self.strategies.replacingOccurrences(of: good, with: bad), in: workspace)
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            let line = try #require(lines.firstIndex { $0.contains(bad) })
            let range = try #require(lines[line].range(of: token))
            let column = lines[line].distance(from: lines[line].startIndex, to: range.lowerBound) + 1
            let result = try await workspace.run(["validate", name])
            #expect(result.status == 2)
            #expect(result.stderr.contains("\(name):\(line + 1):\(column): \(message)"), "\(result.stderr)")
        }
    }
}

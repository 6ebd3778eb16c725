import Foundation
import Testing

/// End-to-end: repeated seeds and strategy failures through the real `tally` binary and the
/// deterministic test backend, whose fine-tuned models report one identity whatever the seed
/// (so only Tally's own cache keys keep two seeds' calls apart).
@Suite(.serialized) struct SeedsCLITests {
    typealias Workspace = CLITests.Workspace

    /// `sentiment.yaml` with `run.seeds: [7, 11]`, written as `seeded.yaml`.
    func writeSeeded(_ workspace: Workspace) throws {
        let text = try String(contentsOf: workspace.root.appending(path: "sentiment.yaml"), encoding: .utf8)
        let seeded = text.replacingOccurrences(of: "run: {seed: 7, concurrency: 2, bootstrap_samples: 200}", with: "run: {seed: 7, seeds: [7, 11], concurrency: 2, bootstrap_samples: 200}")
        #expect(seeded != text)
        try seeded.write(to: workspace.root.appending(path: "seeded.yaml"), atomically: true, encoding: .utf8)
    }

    func lines(_ file: String, in workspace: Workspace) throws -> Int {
        try String(contentsOf: workspace.root.appending(path: file), encoding: .utf8).split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }.count
    }

    @Test func seedsRepeatFineTuningReuseTheSingleRunAndRerunMakesNoCalls() async throws {
        let workspace = try Workspace()
        try writeSeeded(workspace)

        let plan = try await workspace.run(["plan", "seeded.yaml"])
        #expect(plan.status == 0, "\(plan.stderr)")
        #expect(plan.stdout.contains("lora-r8 (x2 seeds)") && plan.stdout.contains("full (x2 seeds)"))
        #expect(!plan.stdout.contains("few-shot-4 (x"))

        // A single-seed run first: the seeded run's seed-7 repetitions are the same work.
        let single = try await workspace.run(["run", "sentiment.yaml", "--quiet"])
        #expect(single.status == 0, "\(single.stderr)")
        let before = workspace.calls()

        let out = workspace.root.appending(path: "seeded-out")
        let seeded = try await workspace.run(["run", "seeded.yaml", "--out", out.path])
        #expect(seeded.status == 0, "\(seeded.stderr)")
        let added = Array(workspace.calls().dropFirst(before.count))
        // New work: seed 11 of lora-r8 and of full, each trained and fully evaluated
        // (10 test rows, every probe item), although its model's identity equals seed 7's.
        let probeItems = try lines("data/knowledge.jsonl", in: workspace) + lines("data/refusals.jsonl", in: workspace)
        #expect(added.filter { $0.hasPrefix("finetune") }.count == 2)
        #expect(added.filter { $0.hasPrefix("generate") }.count == 2 * (10 + probeItems))
        #expect(added.count == Set(added).count)
        #expect(seeded.stdout.contains("Across seeds"))

        let report = try workspace.reportJSON(in: out)
        let strategies = try #require(report["strategies"] as? [[String: Any]])
        #expect(strategies.map { $0["name"] as? String } == ["zero-shot", "few-shot-4", "cot", "lora-r8", "full"])
        let lora = try #require(strategies.first { $0["name"] as? String == "lora-r8" })
        let seeds = try #require(lora["seeds"] as? [String: Any])
        let runs = try #require(seeds["runs"] as? [[String: Any]])
        #expect(runs.map { $0["seed"] as? Int } == [7, 11])
        #expect((lora["accuracy"] as? [String: Any])?["n"] as? Int == 20)
        let perSeed = runs.compactMap { $0["accuracy"] as? Double }
        let mean = try #require((lora["accuracy"] as? [String: Any])?["value"] as? Double)
        #expect(perSeed.count == 2 && abs(mean - (perSeed[0] + perSeed[1]) / 2) < 1e-12)
        #expect(strategies.first { $0["name"] as? String == "zero-shot" }?["seeds"] == nil)
        let markdown = try String(contentsOf: out.appending(path: "report.md"), encoding: .utf8)
        #expect(markdown.contains("## Seeds") && markdown.contains("| lora-r8 (seed 11) |"))
        let html = try String(contentsOf: out.appending(path: "report.html"), encoding: .utf8)
        #expect(html.contains("seed 7: ") && html.contains("seed 11: "))

        // Rerun: every repetition comes from the ledger.
        let count = workspace.calls().count
        let again = try await workspace.run(["run", "seeded.yaml", "--quiet"])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(workspace.calls().count == count, "the rerun called the backend")
    }

    @Test func aFailingStrategyPrintsItsCauseOnceWithWhatToDo() async throws {
        let workspace = try Workspace()
        let result = try await workspace.run(["run", "sentiment.yaml", "--quiet"], environment: ["TALLY_TEST_BACKEND_FAIL": "finetune"])
        #expect(result.status != 0)
        let errors = result.stderr.split(separator: "\n").filter { $0.hasPrefix("error: ") }
        #expect(errors.count == 1, "\(result.stderr)")
        let line = String(try #require(errors.first))
        #expect(line.hasPrefix("error: sentiment.yaml:"))
        #expect(line.contains(": strategy 'lora-r8' failed: "))
        #expect(line.components(separatedBy: "configured to fail finetune").count == 2, "the cause is not printed exactly once: \(line)")
        #expect(line.contains("then run the recipe again"))
        #expect(!result.stderr.contains("Stack dump"))
    }
}

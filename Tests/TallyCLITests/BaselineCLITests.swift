import Foundation
import Testing

/// The `baseline` kind through the real `tally` binary: plugins, validate, plan, run and
/// report, beside zero-shot on the deterministic test backend (`recipes/baseline.yaml`).
@Suite(.serialized) struct BaselineCLITests {
    typealias Workspace = CLITests.Workspace

    static func object(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test func pluginsListTheKindAndItsKeys() async throws {
        let workspace = try Workspace()
        let text = try await workspace.run(["plugins"])
        #expect(text.status == 0)
        #expect(text.stdout.contains("baseline") && text.stdout.contains("no language model: trains its own model, needs no backend"))
        for key in ["method", "word_ngram_max", "char_ngram_max", "sublinear_tf", "c_grid", "cv_folds"] { #expect(text.stdout.contains(key), "\(key) is not listed") }
        let json = try await workspace.run(["plugins", "--json"])
        let kinds = try #require(try Self.object(json.stdout)["strategy_kinds"] as? [[String: Any]])
        let baseline = try #require(kinds.first { $0["kind"] as? String == "baseline" })
        #expect(baseline["uses_language_model"] as? Bool == false && baseline["adapts_weights"] as? Bool == false)
        #expect(kinds.first { $0["kind"] as? String == "zero-shot" }?["uses_language_model"] as? Bool == true)
    }

    @Test func validatePlanRunAndRerun() async throws {
        let workspace = try Workspace()
        let valid = try await workspace.run(["validate", "baseline.yaml"])
        #expect(valid.status == 0, "\(valid.stderr)")

        // The plan prices the baselines near zero: no tokens, a few milliseconds of compute.
        let plan = try await workspace.run(["plan", "baseline.yaml", "--json"])
        #expect(plan.status == 0, "\(plan.stderr)")
        let items = try #require(try Self.object(plan.stdout)["items"] as? [[String: Any]])
        let planned = try #require(items.first { $0["name"] as? String == "tfidf" })
        #expect(planned["backend"] == nil && planned["prompt_tokens"] as? Int == 0 && planned["requests"] as? Int == 10)
        let usd = try #require(planned["estimated_usd"] as? Double)
        #expect(usd > 0 && usd < 1e-4)
        let table = try await workspace.run(["plan", "baseline.yaml"])
        #expect(table.stdout.split(separator: "\n").contains { $0.hasPrefix("tfidf") && $0.contains(/baseline\s+-\s/) })

        let out = workspace.root.appending(path: "out")
        let run = try await workspace.run(["run", "baseline.yaml", "--out", out.path])
        #expect(run.status == 0, "\(run.stderr)")
        let generated = workspace.calls().filter { $0.hasPrefix("generate") }.count
        #expect(generated == 10, "only zero-shot calls the backend: \(workspace.calls())")
        #expect(run.stdout.split(separator: "\n").contains { $0.contains("tfidf") && $0.contains("n/a (no LLM)") }, "\(run.stdout)")

        let report = try workspace.reportJSON(in: out)
        let strategies = try #require(report["strategies"] as? [[String: Any]])
        let tfidf = try #require(strategies.first { $0["name"] as? String == "tfidf" })
        #expect(tfidf["uses_language_model"] as? Bool == false && tfidf["backend"] == nil)
        #expect((tfidf["forgetting"] as? [Any])?.isEmpty == true && (tfidf["forgetting_note"] as? String)?.hasPrefix("Not applicable") == true)
        #expect(tfidf["data_leaves_machine"] as? Bool == false)
        let cost = try #require(tfidf["cost"] as? [String: Any])
        #expect((cost["one_off_usd"] as? Double ?? 0) > 0 && (cost["per_1k_requests_usd"] as? Double ?? 1) < 1e-3)
        #expect((tfidf["training"] as? [String: Any])?["notes"] != nil)
        #expect(strategies.first { $0["name"] as? String == "zero-shot" }?["uses_language_model"] == nil)
        // The made-up words are learnt from the training rows: the classifier beats zero-shot.
        func accuracy(_ name: String) -> Double {
            ((strategies.first { $0["name"] as? String == name }?["accuracy"] as? [String: Any])?["value"] as? Double) ?? -1
        }
        #expect(accuracy("tfidf") > accuracy("zero-shot"), "tfidf \(accuracy("tfidf")), zero-shot \(accuracy("zero-shot"))")
        #expect(accuracy("majority") == 0.5)
        let markdown = try String(contentsOf: out.appending(path: "report.md"), encoding: .utf8)
        #expect(markdown.contains("n/a (no LLM)") && markdown.contains("answer without a language model"))
        let decision = try #require(report["decision"] as? [String: Any])
        #expect(decision["recommended"] as? String != nil)

        // Rerun: the baselines retrain (same models) and read their answers from the ledger.
        let again = try await workspace.run(["run", "baseline.yaml", "--quiet", "--json"])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(workspace.calls().filter { $0.hasPrefix("generate") }.count == generated)
        let rerun = try #require(try Self.object(again.stdout)["strategies"] as? [[String: Any]])
        #expect(rerun.first { $0["name"] as? String == "tfidf" }?["model"] as? String == tfidf["model"] as? String)
    }

    @Test func aRecipeOfBaselinesNeedsNoBackend() async throws {
        let workspace = try Workspace()
        let recipe = """
            name: baselines-only
            task: {instruction: "Positive or negative?", input: "{text}", target: label, labels: [positive, negative]}
            data: {train: data/train.jsonl, test: data/test.jsonl}
            strategies:
              - {name: tfidf, kind: baseline, cv_folds: 3}
            """
        try recipe.write(to: workspace.root.appending(path: "only.yaml"), atomically: true, encoding: .utf8)
        let valid = try await workspace.run(["validate", "only.yaml"])
        #expect(valid.status == 0, "\(valid.stderr)")
        let run = try await workspace.run(["run", "only.yaml", "--quiet", "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(workspace.calls().isEmpty)
        let strategies = try #require(try Self.object(run.stdout)["strategies"] as? [[String: Any]])
        let notes = ((strategies.first?["training"] as? [String: Any])?["notes"] as? [String]) ?? []
        #expect(notes.contains { $0.contains("3-fold stratified cross-validation on the 12 training rows") }, "\(notes)")
    }
}

import Foundation
import Testing
import TallyCore
import TallyTesting

/// `tally plugins check`: the conformance checks through the real binary, on a well-behaved
/// backend (passes, exit 0) and on misbehaving ones (the failing check is named, exit 1).
@Suite struct PluginsCheckTests {
    typealias Workspace = CLITests.Workspace

    /// The test backend logs every call to a file in the recipe's directory when
    /// TALLY_TEST_BACKEND_LOG is set, which the write checks would rightly report.
    static let unset = ["TALLY_TEST_BACKEND_LOG"]

    @Test func passesOnTheExecTestBackend() async throws {
        let workspace = try Workspace()
        let result = try await workspace.run(["plugins", "check", "sentiment.yaml", "--backend", "local"], unset: Self.unset, timeout: 120)
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        for name in ["validate has no side effects", "identity is stable", "greedy answers repeat", "usage is reported", "cancellation is prompt",
                     "fine-tune finishes", "reopened artifact keeps its identity", "rerun resumes", "writes only in its work directory"] {
            #expect(result.stdout.contains("PASS  \(name)"), "no pass for '\(name)':\n\(result.stdout)")
        }
        #expect(result.stdout.contains("0 failed"))
        #expect(result.stdout.contains("fine-tuning as strategy 'lora-r8'"))
    }

    /// The quickstart's shape (swift-trainer, zero-shot and LoRA) on the tiny Llama fixture of
    /// SwiftTrainerTests instead of SmolLM2, so it needs no downloaded model.
    @Test func passesOnSwiftTrainerWithATinyModel() async throws {
        let workspace = try Workspace()
        let resources = Repository.root.appending(path: "Tests/SwiftTrainerTests/Resources")
        let model = workspace.root.appending(path: "tiny-llama")
        try FileManager.default.createDirectory(at: model, withIntermediateDirectories: true)
        for file in ["tiny-llama/config.json", "tiny-llama/model.safetensors", "tokenizers/llama3-style/tokenizer.json"] {
            try FileManager.default.copyItem(at: resources.appending(path: file), to: model.appending(path: URL(fileURLWithPath: file).lastPathComponent))
        }
        let recipe = """
            name: tiny-check
            task:
              instruction: "Is this movie review positive or negative?"
              input: "Review: {text}"
              target: label
              labels: [positive, negative]
              max_tokens: 4
            data: {train: data/train.jsonl, test: data/test.jsonl}
            backends:
              local: {plugin: swift-trainer, model: tiny-llama, max_batch: 2}
            strategies:
              - {name: zero-shot, kind: zero-shot, backend: local}
              - {name: lora, kind: lora, backend: local, rank: 2, targets: [q_proj, v_proj], batch_size: 2, learning_rate: 1.0e-3}
            """
        try recipe.write(to: workspace.root.appending(path: "tiny.yaml"), atomically: true, encoding: .utf8)
        let result = try await workspace.run(["plugins", "check", "tiny.yaml", "--steps", "2"], unset: Self.unset, timeout: 300)
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        #expect(result.stdout.contains("PASS  rerun resumes"), "\(result.stdout)")
        #expect(result.stdout.contains("fine-tuning as strategy 'lora' does (lora), 2 steps on 4 rows"), "\(result.stdout)")
    }

    @Test func printsJSON() async throws {
        let workspace = try Workspace()
        let result = try await workspace.run(["plugins", "check", "sentiment.yaml", "--backend", "local", "--skip-fine-tuning", "--json"], unset: Self.unset, timeout: 120)
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(object["failed"] as? Int == 0)
        let checks = try #require(object["checks"] as? [[String: Any]])
        #expect(checks.contains { $0["name"] as? String == "generate answers" && $0["outcome"] as? String == "pass" })
        #expect(checks.contains { $0["name"] as? String == "fine-tuning" && $0["outcome"] as? String == "skip" })
    }

    @Test func namesTheRecipesBackends() async throws {
        let workspace = try Workspace()
        let result = try await workspace.run(["plugins", "check", "sentiment.yaml", "--backend", "locl"], unset: Self.unset)
        #expect(result.status == 2)
        #expect(result.stderr.contains("no backend 'locl'; did you mean 'local'?"), "\(result.stderr)")
    }

    @Test func pluginsStillListsWithoutASubcommand() async throws {
        let workspace = try Workspace()
        let text = try await workspace.run(["plugins"])
        #expect(text.status == 0 && text.stdout.contains("Backend plugins"))
        let json = try await workspace.run(["plugins", "--json"])
        #expect(json.status == 0 && json.stdout.contains("\"strategy_kinds\""), "\(json.stderr)")
    }

    /// A backend that misbehaves one way, and the check that must catch it.
    struct Misbehaviour: Sendable, CustomTestStringConvertible {
        let name: String
        /// The recipe (in the workspace) and backend to check.
        var recipe = "sentiment.yaml"
        var backend = "local"
        /// The backend's `command:` (the exec program) for this case, when not the recipe's;
        /// `{resources}` stands for this test target's resource folder (where broken plugin
        /// programs go).
        var command: String?
        /// More arguments (`--set`, `--timeout`) and environment for the program.
        var arguments: [String] = []
        var environment: [String: String] = [:]
        /// The check that must fail, and a phrase its line must contain; nil when the program
        /// is refused before the checks (by the recipe's validation: the phrase is on stderr).
        let failingCheck: String?
        let phrase: String
        /// The exit status: 1 for a failed check, 2 for a recipe that does not validate.
        var status: Int32 = 1

        var testDescription: String { name }

        /// `broken_plugin.py --break WHAT` (Resources/broken-plugins), checked with short time
        /// limits.
        static func broken(_ what: String, _ failingCheck: String?, _ phrase: String, status: Int32 = 1, skipFineTuning: Bool = false, timeout: Int = 20) -> Misbehaviour {
            Misbehaviour(
                name: "broken plugin: \(what)", recipe: "plugin-check.yaml", command: "python3 {resources}/broken-plugins/broken_plugin.py --break \(what)",
                arguments: ["--timeout", String(timeout)] + (skipFineTuning ? ["--skip-fine-tuning"] : []),
                failingCheck: failingCheck, phrase: phrase, status: status)
        }

        /// Misbehaviours of the test backend (switched on through its environment or its
        /// command line), then every break of the broken plugin program.
        static let all: [Misbehaviour] = [
            Misbehaviour(
                name: "generate answers with an error", environment: ["TALLY_TEST_BACKEND_FAIL": "generate"],
                failingCheck: "generate answers", phrase: "configured to fail generate"),
            Misbehaviour(
                name: "hangs in generate", arguments: ["--timeout", "1", "--skip-fine-tuning"], environment: ["TALLY_TEST_BACKEND_DELAY_MS": "10000"],
                failingCheck: "generate answers", phrase: "no answer within 1.0 s"),
            Misbehaviour(
                name: "exits in the middle of a request", command: "timeout -s KILL 2 tally-test-backend",
                arguments: ["--skip-fine-tuning"],
                environment: ["TALLY_TEST_BACKEND_DELAY_MS": "4000"],
                failingCheck: "generate answers", phrase: "killed by signal 9"),
            Misbehaviour(
                name: "fine-tuning fails", environment: ["TALLY_TEST_BACKEND_FAIL": "finetune"],
                failingCheck: "fine-tune finishes", phrase: "configured to fail finetune"),
            // Identity and determinism.
            .broken("describe-version-drift", "identity survives a restart", "a second backend from the same configuration has identity"),
            .broken("artifact-identity-drift", "reopened artifact keeps its identity", "two identities"),
            .broken("nondeterministic", "greedy answers repeat", "greedy decoding gave different texts"),
            .broken("finetune-identity", "rerun resumes", "the rerun's model has identity"),
            // Usage.
            .broken("negative-usage", "generate answers", "`result.usage.prompt_tokens` is -5"),
            .broken("missing-usage", "generate answers", "`result.usage` is missing"),
            // Schema.
            .broken("missing-jsonrpc", "generate answers", "`jsonrpc` is missing"),
            .broken("result-and-error", "generate answers", "`error` appears together with `result`"),
            .broken("wrong-type", "generate answers", "`result.text` has the wrong type"),
            .broken("string-id", "generate answers", "`id` is"),
            .broken("unknown-id", "messages follow the protocol", "names no pending request", skipFineTuning: true, timeout: 2),
            .broken("not-json", "messages follow the protocol", "is not JSON"),
            .broken("bad-progress", "fine-tune finishes", "params.completed"),
            .broken("huge-line", "generate answers", "8 MiB", skipFineTuning: true),
            // Versions: the recipe's validation already asks the program, and refuses it.
            .broken("protocol-2", nil, "speaks exec protocol 2.0", status: 2),
            .broken("no-protocol-version", nil, "protocol", status: 2),
            .broken("pre-1.0", nil, "protocol", status: 2),
            // Process.
            .broken("exit-mid-request", "generate answers", "exited with status 3", skipFineTuning: true),
            .broken("exit-after-describe", "generate answers", "exited", skipFineTuning: true),
            .broken("hang-mid-request", "generate answers", "no answer within 2.0 s", skipFineTuning: true, timeout: 2),
        ]
    }

    @Test(arguments: Misbehaviour.all)
    func catches(_ misbehaviour: Misbehaviour) async throws {
        let workspace = try Workspace()
        let clock = ContinuousClock()
        let start = clock.now
        var arguments = ["plugins", "check", misbehaviour.recipe, "--backend", misbehaviour.backend] + misbehaviour.arguments
        if let command = misbehaviour.command {
            let recipes = try #require(Bundle.module.url(forResource: "recipes", withExtension: nil, subdirectory: "Resources"))
            let resources = recipes.deletingLastPathComponent().path
            arguments += ["--set", "backends.\(misbehaviour.backend).command=" + command.replacingOccurrences(of: "{resources}", with: resources)]
        }
        let result = try await workspace.run(
            arguments,
            environment: misbehaviour.environment, unset: Self.unset, timeout: 120)
        #expect(result.status == misbehaviour.status, "\(result.stdout)\n\(result.stderr)")
        if let check = misbehaviour.failingCheck {
            let line = result.stdout.split(separator: "\n").first { $0.contains("FAIL  \(check)") }
            #expect(line?.contains(misbehaviour.phrase) == true, "expected '\(check)' to fail with '\(misbehaviour.phrase)':\n\(result.stdout)\n\(result.stderr)")
        } else {
            #expect(result.stderr.contains(misbehaviour.phrase), "expected stderr to say '\(misbehaviour.phrase)':\n\(result.stderr)")
        }
        #expect(!result.stderr.contains("Fatal error"))
        // A hung or dying program costs its time limits, not the command's whole budget.
        #expect(clock.now - start < .seconds(60))
    }
}

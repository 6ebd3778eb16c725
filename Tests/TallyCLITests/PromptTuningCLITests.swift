import Foundation
import Testing

/// Prompt tuning end to end with the real `tally` binary and the built-in trainer on the tiny
/// Llama of the trainer's fixtures: `tally finetune --method prompt-tuning` then
/// `tally generate --adapter`, and a recipe whose `prompt-tuning` strategy `tally run` trains,
/// evaluates and reports.
@Suite(.serialized) struct PromptTuningCLITests {
    /// A Hugging Face directory of the tiny Llama (config, weights, tokenizer) in `directory`.
    static func tinyModel(in directory: URL) throws -> URL {
        let resources = Repository.root.appending(path: "Tests/SwiftTrainerTests/Resources")
        let model = directory.appending(path: "tiny-llama")
        try FileManager.default.createDirectory(at: model, withIntermediateDirectories: true)
        for (name, source) in [("config.json", "tiny-llama/config.json"), ("model.safetensors", "tiny-llama/model.safetensors"), ("tokenizer.json", "tokenizers/llama3-style/tokenizer.json")] {
            try FileManager.default.copyItem(at: resources.appending(path: source), to: model.appending(path: name))
        }
        return model
    }

    @Test func finetuneWritesAPEFTPromptAdapterThatGenerateApplies() async throws {
        let workspace = try CLITests.Workspace()
        let model = try Self.tinyModel(in: workspace.root)
        let data = workspace.root.appending(path: "train.jsonl")
        let rows = ["a fine film": "positive", "dull and slow": "negative", "great acting": "positive", "boring plot": "negative"]
        try rows.map { "{\"input\": \"Review: \($0.key)\", \"output\": \"\($0.value)\"}" }.joined(separator: "\n").write(to: data, atomically: true, encoding: .utf8)
        let out = workspace.root.appending(path: "tuned")
        let tuned = try await workspace.run([
            "finetune", "--model", model.path, "--data", data.path, "--method", "prompt-tuning", "--virtual-tokens", "4",
            "--init-text", "Sentiment of the review:", "--max-steps", "3", "--batch-size", "2", "--out", out.path, "--threads", "1",
        ])
        #expect(tuned.status == 0, "\(tuned.stderr)")
        #expect(tuned.stdout.contains("steps: 3"))
        let adapter = out.appending(path: "adapter")
        let config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: adapter.appending(path: "adapter_config.json"))) as? [String: Any])
        #expect(config["peft_type"] as? String == "PROMPT_TUNING")
        #expect(config["task_type"] as? String == "CAUSAL_LM")
        #expect(config["num_virtual_tokens"] as? Int == 4)
        #expect(config["prompt_tuning_init"] as? String == "TEXT")
        #expect(config["prompt_tuning_init_text"] as? String == "Sentiment of the review:")
        #expect(config["base_model_name_or_path"] as? String == "tiny-llama")

        let reply = try await workspace.run(["generate", "--model", model.path, "--adapter", adapter.path, "--prompt", "Review: fine", "--max-tokens", "4", "--threads", "1"])
        #expect(reply.status == 0, "\(reply.stderr)")
        let plain = try await workspace.run(["generate", "--model", model.path, "--prompt", "Review: fine", "--max-tokens", "4", "--threads", "1"])
        #expect(plain.status == 0, "\(plain.stderr)")

        // The same directory with another number of virtual tokens trains a new prompt.
        let retuned = try await workspace.run([
            "finetune", "--model", model.path, "--data", data.path, "--method", "prompt-tuning", "--virtual-tokens", "3",
            "--max-steps", "2", "--batch-size", "2", "--out", out.path, "--threads", "1",
        ])
        #expect(retuned.status == 0, "\(retuned.stderr)")
        let reconfig = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: adapter.appending(path: "adapter_config.json"))) as? [String: Any])
        #expect(reconfig["num_virtual_tokens"] as? Int == 3)
        #expect(reconfig["prompt_tuning_init"] as? String == "RANDOM")

        let bad = try await workspace.run(["finetune", "--model", model.path, "--data", data.path, "--method", "prompt-tuning", "--virtual-tokens", "0", "--out", out.path])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("--virtual-tokens"))
    }

    @Test func aRecipeTrainsEvaluatesAndReportsAPromptTuningStrategy() async throws {
        let workspace = try CLITests.Workspace()
        let model = try Self.tinyModel(in: workspace.root)
        let recipe = """
            name: prompt-tuning-e2e
            task:
              instruction: "Is this movie review positive or negative?"
              input: "Review: {text}"
              target: label
              labels: [positive, negative]
              metric: accuracy
            data:
              train: data/train.jsonl
              test: data/test.jsonl
              validation: data/validation.jsonl
            backends:
              local: {plugin: swift-trainer, model: \(model.path), threads: 1}
            strategies:
              - {name: zero-shot, kind: zero-shot, backend: local, max_tokens: 2}
              - {name: soft-prompt, kind: prompt-tuning, backend: local, max_tokens: 2, num_virtual_tokens: 4, init_text: "Movie review sentiment:", max_steps: 3, batch_size: 4}
            costs: {compute_usd_per_hour: 0.10, requests_per_month: 1000, horizon_months: 1}
            run: {seed: 3, concurrency: 1, bootstrap_samples: 50}
            """
        try recipe.write(to: workspace.root.appending(path: "ptune.yaml"), atomically: true, encoding: .utf8)
        let validated = try await workspace.run(["validate", "ptune.yaml"])
        #expect(validated.status == 0, "\(validated.stderr)\(validated.stdout)")
        let out = workspace.root.appending(path: "out")
        let run = try await workspace.run(["run", "ptune.yaml", "--out", out.path, "--quiet"])
        #expect(run.status == 0, "\(run.stderr)")
        let report = try workspace.reportJSON(in: out)
        let strategies = try #require(report["strategies"] as? [[String: Any]])
        #expect(strategies.map { $0["name"] as? String } == ["zero-shot", "soft-prompt"])
        let tuned = try #require(strategies.first { $0["name"] as? String == "soft-prompt" })
        #expect(tuned["training"] != nil)
        #expect(((tuned["accuracy"] as? [String: Any])?["n"] as? Int) == 10)

        // A misspelt key and an out-of-range count are reported against the recipe.
        let wrong = recipe.replacingOccurrences(of: "num_virtual_tokens: 4", with: "num_virtual_token: 4").replacingOccurrences(of: "max_steps: 3", with: "max_steps: 3, num_virtual_tokens: 100000")
        try wrong.write(to: workspace.root.appending(path: "wrong.yaml"), atomically: true, encoding: .utf8)
        let refused = try await workspace.run(["validate", "wrong.yaml"])
        #expect(refused.status != 0)
        let text = refused.stderr + refused.stdout
        #expect(text.contains("num_virtual_token"))
        #expect(text.contains("num_virtual_tokens"))
    }
}

import Foundation
import Testing
import TallyCore
import TallyTesting
import SwiftTrainer

/// `swift-trainer` passes TallyTesting's conformance suites on the tiny Llama fixture (as a
/// Hugging Face directory with the llama3-style tokenizer), LoRA and full fine-tuning alike.
@Suite("swift-trainer passes the conformance suites")
struct ConformanceTests {
    @Test(arguments: [FineTuneMethod.lora(LoRAOptions(rank: 2, targets: ["q_proj", "v_proj"])), .full])
    func tinyLlama(method: FineTuneMethod) async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("tally-st-conformance-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let recipeDirectory = root.appendingPathComponent("recipe", isDirectory: true)
        let model = recipeDirectory.appendingPathComponent("tiny-llama")
        try FileManager.default.createDirectory(at: model, withIntermediateDirectories: true)
        for (folder, file) in [("tiny-llama", "config.json"), ("tiny-llama", "model.safetensors"), ("tokenizers", "llama3-style/tokenizer.json")] {
            try FileManager.default.copyItem(
                at: Fixtures.directory(folder).appendingPathComponent(file),
                to: model.appendingPathComponent(URL(fileURLWithPath: file).lastPathComponent))
        }
        let config = BackendConfig(name: "local", plugin: "swift-trainer", model: "tiny-llama", settings: ["max_batch": "2"], recipeDirectory: recipeDirectory)
        let train = ["good film", "bad film", "great cast", "dull plot"].enumerated().map { index, text in
            TrainingExample(messages: [.system("Positive or negative?"), .user("Review: \(text)")], completion: index.isMultiple(of: 2) ? "positive" : "negative")
        }
        let job = FineTuneRequest(
            method: method, options: TrainingOptions(maxSteps: 2, learningRate: 1e-3, batchSize: 2, seed: 3), train: train, validation: [],
            workDirectory: root.appendingPathComponent("jobs/job"), jobKey: "conformance-\(method.name)")
        let requests = [
            GenerationRequest(messages: [.system("Positive or negative?"), .user("Review: good film")], maxTokens: 6),
            GenerationRequest(messages: [.user("Review: dull plot")], maxTokens: 4),
        ]
        let checks = await BackendConformance.check(
            plugin: SwiftTrainerPlugin(), config: config, environment: ProcessInfo.processInfo.environment,
            requests: requests, fineTuneRequest: job)
        #expect(checks.failures.isEmpty, Comment(rawValue: checks.failureSummary ?? ""))
        #expect(checks.filter(\.skipped).isEmpty, "\(checks.filter(\.skipped))")
    }
}

import Foundation
import Synchronization
import Testing
import TallyCore
@testable import SwiftTrainer
import TallyTensor

/// Each `swift-trainer` backend runs with the `threads` of its own recipe entry, whatever
/// the other backends or the caller use.
@Suite struct BackendThreadsTests {
    /// A Hugging Face directory: tiny-llama's weights and the llama3-style tokenizer.
    func modelDirectory() throws -> URL {
        let directory = FormatsFixtures.temporaryFile("threads-llama")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        for name in ["tiny-llama/config.json", "tiny-llama/model.safetensors", "tokenizers/llama3-style/tokenizer.json"] {
            try FileManager.default.copyItem(
                at: FormatsFixtures.resource(name),
                to: directory.appendingPathComponent(URL(fileURLWithPath: name).lastPathComponent))
        }
        return directory
    }

    func backend(model: URL, threads: Int) async throws -> Backend {
        let config = BackendConfig(
            name: "local\(threads)", plugin: "swift-trainer", model: model.path, settings: ["threads": "\(threads)"],
            recipeDirectory: model.deletingLastPathComponent())
        return try await SwiftTrainerPlugin().makeBackend(config, environment: [:])
    }

    @Test func twoBackendsEachRunWithTheirOwnThreadCount() async throws {
        let model = try modelDirectory()
        defer { try? FileManager.default.removeItem(at: model) }
        // Both built before either is used: a process-wide count would hold the last one's.
        let one = try await backend(model: model, threads: 1)
        let three = try await backend(model: model, threads: 3)
        // The caller's own count (here 5) does not leak into the backends either.
        try await Threading.withThreadCount(5) {
            for (backend, threads) in [(one, 1), (three, 3)] {
                let generator = try #require(backend.generator as? LocalTextGenerator)
                #expect(generator.threads == threads)
                let inside = try await generator.worker.withModel { _ in Threading.threadCount }
                #expect(inside == threads, "generation and scoring run on the worker with its count")
                let score = try await generator.crossEntropy(of: "a fine film")
                #expect(score.tokens > 0 && score.nats.isFinite)

                let tuner = try #require(backend.fineTuner as? SwiftTrainerFineTuner)
                #expect(tuner.threads == threads)
                let work = FileManager.default.temporaryDirectory.appendingPathComponent("tally-threads-\(UUID().uuidString)")
                defer { try? FileManager.default.removeItem(at: work) }
                let request = FineTuneRequest(
                    method: .lora(LoRAOptions(rank: 2, alpha: 4, targets: ["q_proj"])),
                    options: TrainingOptions(maxSteps: 1, batchSize: 2, seed: 1),
                    train: [TrainingExample(messages: [.user("a fine film")], completion: "positive"),
                            TrainingExample(messages: [.user("dull")], completion: "negative")],
                    validation: [], workDirectory: work, jobKey: "threads-\(threads)")
                let during = SeenCounts()
                let outcome = try await tuner.fineTune(request) { _ in during.insert(Threading.threadCount) }
                #expect(during.all == [threads], "fine-tuning runs with the backend's count")
                let tuned = try #require(try await tuner.generator(for: outcome) as? LocalTextGenerator)
                let tunedInside = try await tuned.worker.withModel { _ in Threading.threadCount }
                #expect(tunedInside == threads)
            }
        }
    }
}

/// Thread counts observed from progress callbacks.
final class SeenCounts: Sendable {
    private let counts = Mutex<Set<Int>>([])
    func insert(_ count: Int) { counts.withLock { _ = $0.insert(count) } }
    var all: Set<Int> { counts.withLock { $0 } }
}

import Foundation
import Testing
import TallyCore
@testable import SwiftTrainer
import TallyTensor

/// A plain chat format for tests: `<|endoftext|>` ends each turn.
struct PlainChatFormat: ChatPromptFormatter {
    func render(messages: [ChatMessage], addGenerationPrompt: Bool) throws -> String {
        var s = ""
        for m in messages { s += "\(m.role.rawValue): \(m.content)<|endoftext|>" }
        if addGenerationPrompt { s += "assistant: " }
        return s
    }
}

/// The training loop: batches, masking, accumulation, validation and early stopping,
/// checkpoints and resumption, artifacts.
@Suite struct TrainingLoopTests {
    func tempDir() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("tally-train-\(UUID().uuidString)")
    }

    func tinyLlama() throws -> any CausalLanguageModel {
        try ModelLoader.load(huggingFaceDirectory: Fixtures.directory("tiny-llama"), trainable: false)
    }

    /// Synthetic tokenised examples: a prompt of 4-9 tokens and an answer of 2-4.
    func examples(_ n: Int, seed: UInt64) -> [TokenizedExample] {
        var rng = SeededGenerator(seed: seed)
        return (0..<n).map { _ in
            let p = 4 + Int(rng.next() % 6), a = 2 + Int(rng.next() % 3)
            let ids = (0..<(p + a)).map { _ in 2 + Int(rng.next() % 500) }
            return TokenizedExample(ids: ids, labels: [Int](repeating: -100, count: p) + ids.suffix(a))
        }
    }

    @Test func batchesMaskPromptsAndPadding() throws {
        let b = TrainingBatch([TokenizedExample(ids: [5, 6, 7, 8], labels: [-100, -100, 7, 8]), TokenizedExample(ids: [9, 10], labels: [-100, 10])], padID: 1)
        #expect(b.tokens.ids == [5, 6, 7, 8, 9, 10, 1, 1])
        #expect(b.tokens.mask == [true, true, true, true, true, true, false, false])
        #expect(b.labels == [-100, -100, 7, 8, -100, 10, -100, -100])
        #expect(b.scoredCount == 3)
        #expect(b.tokenCount == 6)
        // Padding changes nothing: the padded row's loss equals its loss alone.
        let model = try tinyLlama()
        let alone = TrainingBatch([TokenizedExample(ids: [9, 10], labels: [-100, 10])])
        let l1 = model.loss(alone.tokens, labels: alone.labels, tape: Tape(recording: false)).scalar
        let mixed = TrainingBatch([TokenizedExample(ids: [9, 10], labels: [-100, 10]), TokenizedExample(ids: [5, 6, 7, 8], labels: [-100, -100, -100, -100])])
        let l2 = model.loss(mixed.tokens, labels: mixed.labels, tape: Tape(recording: false)).scalar
        #expect(abs(l1 - l2) < 1e-5)
    }

    @Test func chatExamplesScoreOnlyTheAnswer() throws {
        let tok = try BPETokenizer(tokenizerJSON: Fixtures.directory("tokenizers").appendingPathComponent("llama3-style/tokenizer.json"), eosTokens: ["<|endoftext|>"])
        let e = TrainingExample(messages: [.system("Be brief."), .user("Is this good?")], completion: "yes")
        let t = try TokenizedExample(e, tokenizer: tok, template: PlainChatFormat(), maxLength: 512)
        let prompt = tok.encode("system: Be brief.<|endoftext|>user: Is this good?<|endoftext|>assistant: ", addSpecialTokens: false)
        #expect(Array(t.ids.prefix(prompt.count)) == prompt)
        #expect(t.labels.prefix(prompt.count).allSatisfy { $0 == -100 })
        let answer = Array(t.ids.dropFirst(prompt.count))
        #expect(Array(t.labels.dropFirst(prompt.count)) == answer)
        #expect(tok.decode(answer, skipSpecialTokens: false) == "yes<|endoftext|>")
        // Truncation keeps the answer and drops the start of the prompt.
        let short = try TokenizedExample(e, tokenizer: tok, template: PlainChatFormat(), maxLength: answer.count + 3)
        #expect(short.ids.count == answer.count + 3)
        #expect(Array(short.ids.suffix(answer.count)) == answer)
    }

    @Test func dataOrderIsSeededAndCoversEveryExampleEachEpoch() {
        let o = DataOrder(seed: 7, exampleCount: 10, batchSize: 3, accumulation: 2)
        #expect(o.batchesPerEpoch == 4)
        #expect(o.stepsPerEpoch == 2)
        let epoch0 = (0..<2).flatMap { o.microBatches(step: $0).flatMap { $0 } }
        #expect(epoch0.sorted() == Array(0..<10))
        #expect(o.microBatches(step: 1).count == 2)
        #expect(o.permutation(epoch: 0) == DataOrder(seed: 7, exampleCount: 10, batchSize: 3, accumulation: 2).permutation(epoch: 0))
        #expect(o.permutation(epoch: 0) != o.permutation(epoch: 1))
        #expect(o.permutation(epoch: 0) != DataOrder(seed: 8, exampleCount: 10, batchSize: 3, accumulation: 2).permutation(epoch: 0))
    }

    @Test func dataOrderIsTallysSeededShuffle() {
        // The trainer's epoch order is SeededRandom's shuffle (the one shuffle of the package)
        // under a generator derived from the seed and the epoch, for any seed and size.
        for seed: UInt64 in [0, 7, 0xDEAD_BEEF] {
            for count in [0, 1, 2, 10, 37] {
                let order = DataOrder(seed: seed, exampleCount: count, batchSize: 4, accumulation: 1)
                for epoch in 0..<3 {
                    var rng = SeededRandom.derived(seed: seed, label: "tally-train-epoch-\(epoch)")
                    #expect(order.permutation(epoch: epoch) == rng.shuffled(Array(0..<count)))
                }
            }
        }
        // Pinned, so a change of order (which changes every fine-tune) cannot pass unnoticed;
        // changing it needs a bump of ModelIdentity.answerCodeVersion.
        let pinned = DataOrder(seed: 7, exampleCount: 10, batchSize: 3, accumulation: 2)
        #expect(pinned.permutation(epoch: 0) == [9, 2, 8, 5, 4, 1, 3, 6, 7, 0])
        #expect(pinned.permutation(epoch: 1) == [2, 5, 4, 6, 9, 3, 8, 7, 1, 0])
    }

    @Test func accumulationEqualsOneBigBatch() throws {
        // Two micro-batches of 2 accumulate to the gradient of one batch of 4 (token-weighted mean).
        let data = examples(4, seed: 3)
        var opts = TrainingOptions(maxSteps: 1, learningRate: 1e-3, batchSize: 4, gradientAccumulation: 1, schedule: "constant", maxGradNorm: 0, seed: 1)
        let big = try TrainingJob(model: tinyLlama(), method: .full, options: opts, train: data, validation: [], workDirectory: tempDir(), jobKey: "a")
        let r1 = big.trainStep(0)
        opts.batchSize = 2
        opts.gradientAccumulation = 2
        let acc = try TrainingJob(model: tinyLlama(), method: .full, options: opts, train: data, validation: [], workDirectory: tempDir(), jobKey: "b")
        let r2 = acc.trainStep(0)
        #expect(abs(r1.loss - r2.loss) < 1e-5)
        #expect(abs(r1.norm - r2.norm) < 1e-4 * r1.norm)
        // Without clipping the gradients are left as accumulated: equal up to float rounding.
        for ((n, a), (_, b)) in zip(big.parameters, acc.parameters) {
            let ga = try #require(a.gradValues), gb = try #require(b.gradValues)
            let scale = ga.reduce(Float(0)) { max($0, abs($1)) }
            #expect(Fixtures.maxDifference(ga, gb) <= 1e-4 * max(scale, 1e-12), "\(n)")
        }
    }

    @Test func resumingFromACheckpointReproducesTheLossCurve() throws {
        let train = examples(10, seed: 11), val = examples(3, seed: 12)
        let opts = TrainingOptions(epochs: 2, learningRate: 5e-3, batchSize: 2, gradientAccumulation: 2, weightDecay: 0.01, warmupSteps: 1,
                                   schedule: "cosine", maxGradNorm: 1, evalEvery: 2, seed: 5)
        let method = FineTuneMethod.lora(LoRAOptions(rank: 4, alpha: 8, dropout: 0.1, targets: ["q_proj", "v_proj"]))
        let d1 = tempDir(), d2 = tempDir()
        defer { try? FileManager.default.removeItem(at: d1); try? FileManager.default.removeItem(at: d2) }
        let full = try TrainingJob(model: tinyLlama(), method: method, options: opts, train: train, validation: val, workDirectory: d1, jobKey: "job").run()
        #expect(full.steps == 6)
        #expect(full.validationLoss.map(\.step) == [2, 4, 6])

        let first = try TrainingJob(model: tinyLlama(), method: method, options: opts, train: train, validation: val, workDirectory: d2, jobKey: "job")
        let partial = try first.run(stopAfter: 3)
        #expect(partial.steps == 3)
        #expect(FileManager.default.fileExists(atPath: d2.appendingPathComponent("checkpoint/state.json").path))
        #expect(FileManager.default.fileExists(atPath: d2.appendingPathComponent("checkpoint/optimizer.safetensors").path))
        // A fresh process: new model, new job object, same work directory.
        let resumed = try TrainingJob(model: tinyLlama(), method: method, options: opts, train: train, validation: val, workDirectory: d2, jobKey: "job").run()
        #expect(resumed.steps == 6)
        #expect(resumed.trainLoss.map(\.step) == full.trainLoss.map(\.step))
        for (a, b) in zip(resumed.trainLoss, full.trainLoss) { #expect(abs(a.loss - b.loss) < 1e-6, "step \(a.step): \(a.loss) vs \(b.loss)") }
        for (a, b) in zip(resumed.validationLoss, full.validationLoss) { #expect(abs(a.loss - b.loss) < 1e-6) }
        let w1 = try SafeTensorsFile(contentsOf: URL(fileURLWithPath: full.artifact).appendingPathComponent("adapter_model.safetensors")).floatTensors()
        let w2 = try SafeTensorsFile(contentsOf: URL(fileURLWithPath: resumed.artifact).appendingPathComponent("adapter_model.safetensors")).floatTensors()
        for (k, v) in w1 { #expect(Fixtures.maxDifference(v.values, w2[k]?.values ?? []) < 1e-6, "\(k)") }
        // The checkpoint is gone, and a finished job is not trained again.
        #expect(!FileManager.default.fileExists(atPath: d1.appendingPathComponent("checkpoint").path))
        let again = try TrainingJob(model: tinyLlama(), method: method, options: opts, train: train, validation: val, workDirectory: d1, jobKey: "job").run()
        #expect(again == full)
    }

    @Test func earlyStoppingKeepsTheBestWeights() throws {
        // Validation on unrelated data with a high learning rate: it stops improving quickly.
        let train = examples(8, seed: 21), val = examples(4, seed: 22)
        let opts = TrainingOptions(epochs: 20, learningRate: 5e-2, batchSize: 4, schedule: "constant", maxGradNorm: 1, evalEvery: 1, earlyStoppingPatience: 2, seed: 2)
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let job = try TrainingJob(model: tinyLlama(), method: .full, options: opts, train: train, validation: val, workDirectory: dir, jobKey: "es")
        let out = try job.run()
        #expect(out.steps < 40)
        #expect(out.notes.contains { $0.contains("early stopped") })
        let losses = out.validationLoss.map(\.loss)
        let best = try #require(losses.min())
        // The two evaluations after the best did not improve on it.
        #expect(losses.suffix(2).allSatisfy { $0 >= best })
        #expect(abs((job.validationLoss() ?? 0) - best) < 1e-5)
        // Full fine-tune artifact: a Hugging Face directory that reopens with the same loss.
        let reopened = try ModelLoader.load(huggingFaceDirectory: URL(fileURLWithPath: out.artifact), trainable: false)
        #expect(reopened.parameterCount == job.model.parameterCount)
        #expect(out.notes.contains { $0.hasPrefix("estimate (not measured)") })
        #expect((out.peakMemoryBytes ?? 0) > 0)
    }

    @Test func trainerRunsFromChatExamplesAndReportsProgress() async throws {
        let tok = try BPETokenizer(tokenizerJSON: Fixtures.directory("tokenizers").appendingPathComponent("llama3-style/tokenizer.json"), eosTokens: ["<|endoftext|>"])
        let reviews = ["a fine film", "dull and slow", "great acting", "boring plot", "loved it", "hated it"]
        let labels = ["positive", "negative", "positive", "negative", "positive", "negative"]
        let data = zip(reviews, labels).map { TrainingExample(messages: [.user("Review: \($0)")], completion: $1) }
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let request = FineTuneRequest(
            method: .lora(LoRAOptions(rank: 4, alpha: 8, targets: ["all-linear"])),
            options: TrainingOptions(epochs: 2, learningRate: 1e-2, batchSize: 2, warmupSteps: 1, seed: 3),
            train: Array(data.prefix(4)), validation: Array(data.suffix(2)), workDirectory: dir, jobKey: "chat")
        let events = EventLog()
        let outcome = try await SwiftTrainer.Trainer.run(
            model: tinyLlama(), tokenizer: tok, template: PlainChatFormat(), request: request,
            settings: .init(baseModelName: "tiny-llama"), progress: { events.append($0) })
        #expect(outcome.steps == 4)
        #expect(outcome.trainLoss.count == 4)
        #expect(outcome.validationLoss.map(\.step) == [2, 4])
        #expect(outcome.trainedTokens > 0)
        #expect(outcome.artifact == dir.appendingPathComponent("adapter").path)
        let config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("adapter/adapter_config.json"))) as? [String: Any])
        #expect(Set(config["target_modules"] as? [String] ?? []) == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
        #expect(config["base_model_name_or_path"] as? String == "tiny-llama")
        let advanced = events.all.compactMap { e -> Int? in if case .advanced(_, let c, _, let d) = e, d?.contains("tok/s") == true, d?.contains("ETA") == true { return c }; return nil }
        #expect(advanced == [1, 2, 3, 4])
        // The saved adapter reopens on a fresh base.
        let fresh = try tinyLlama()
        let lora = try PEFTAdapter.load(from: URL(fileURLWithPath: outcome.artifact), into: fresh)
        #expect(lora.adapters.count == 14)
    }
}

final class EventLog: @unchecked Sendable {
    private let lock = NSLock()
    private var events: [ProgressEvent] = []
    func append(_ e: ProgressEvent) { lock.lock(); events.append(e); lock.unlock() }
    var all: [ProgressEvent] { lock.lock(); defer { lock.unlock() }; return events }
}

import Foundation
import Testing
import TallyCore
@testable import SwiftTrainer
import TallyTensor

/// Tally's prompt tuning against PEFT on the fixtures in Resources/tiny-llama-prompt-tuning
/// (written by scripts/reference/prompt_tuning_fixtures.py): PEFT's adapter files loaded as
/// they are, logits with the soft prompt, the prompt's gradient, greedy generation with the KV
/// cache, a 5-step AdamW trajectory, TEXT initialisation, and Tally's own files.
@Suite struct PromptTuningGoldenTests {
    static let fixture = "tiny-llama-prompt-tuning"

    struct Setup {
        let model: any CausalLanguageModel
        let tuning: PromptTuningModel
        let batch: TokenBatch
        let labels: [Int]
        let forward: SafeTensorsFile
        let expected: [String: Any]
    }

    func base() throws -> any CausalLanguageModel {
        try ModelLoader.load(huggingFaceDirectory: Fixtures.directory("tiny-llama"), trainable: false)
    }

    func setup(_ adapter: String = "adapter") throws -> Setup {
        let model = try base()
        let dir = try Fixtures.directory(Self.fixture)
        let tuning = try PEFTPromptTuning.load(from: dir.appendingPathComponent(adapter), into: model)
        let forward = try SafeTensorsFile(contentsOf: dir.appendingPathComponent("forward.safetensors"))
        let ids = try forward.integers("input_ids")
        let batch = TokenBatch(ids: ids.values.map { Int($0) }, batch: ids.shape[0], length: ids.shape[1])
        let labels = try forward.integers("labels").values.map { Int($0) }
        return Setup(model: model, tuning: tuning, batch: batch, labels: labels, forward: forward, expected: try Fixtures.expected(Self.fixture))
    }

    func tokenizer() throws -> BPETokenizer {
        try BPETokenizer(tokenizerJSON: Fixtures.directory("tokenizers").appendingPathComponent("llama3-style/tokenizer.json"), eosTokens: ["<|endoftext|>"])
    }

    @Test func loadsPEFTAdapterFilesAsTheyAre() throws {
        let s = try setup()
        #expect(s.tuning.configuration.numVirtualTokens == 6)
        #expect(s.tuning.configuration.initialization == .random)
        #expect(s.tuning.prompt.embeddings.shape == [6, 64])
        #expect(s.tuning.trainableParameterCount == (s.expected["trainable_params"] as? Int))
        #expect(s.model.softPrompt === s.tuning.prompt)
        #expect(s.model.namedParameters.allSatisfy { !$0.tensor.requiresGrad })
        #expect(s.tuning.prompt.embeddings.requiresGrad)
        // The TEXT-initialised adapter keeps its init text.
        let text = try PEFTPromptTuning.readConfiguration(Fixtures.directory(Self.fixture).appendingPathComponent("text-init"))
        #expect(text.initText == "Classify the sentiment of this review:")
        #expect(text.numVirtualTokens == 24)
    }

    @Test func logitsAndLossWithTheSoftPromptMatchPEFT() throws {
        let s = try setup()
        let want = try s.forward.tensor("logits")
        #expect(want.shape == [2, 6 + 16, 512])
        let got = s.model.logits(s.batch)
        #expect(got.shape == [2 * 22, 512])
        let diff = Fixtures.maxDifference(got.values, want.values)
        #expect(diff < 1e-4, "max logit difference \(diff)")
        let loss = s.model.loss(s.batch, labels: s.labels, tape: Tape(recording: false))
        let wantLoss = try #require(s.expected["loss_with_prompt"] as? Double)
        #expect(abs(Double(loss.scalar) - wantLoss) < 1e-4, "loss \(loss.scalar) vs \(wantLoss)")
    }

    @Test func promptGradientMatchesPEFT() throws {
        let s = try setup()
        let grads = try SafeTensorsFile(contentsOf: Fixtures.directory(Self.fixture).appendingPathComponent("grads.safetensors"))
        let tape = Tape()
        tape.backward(from: s.model.loss(s.batch, labels: s.labels, tape: tape))
        #expect(Set(s.tuning.namedParameters.map(\.name)) == Set(grads.names))
        let ref = try grads.tensor(PromptTuningModel.parameterName)
        let got = try #require(s.tuning.prompt.embeddings.gradValues)
        let scale = ref.values.reduce(Float(0)) { max($0, abs($1)) }
        let diff = Fixtures.maxDifference(got, ref.values)
        #expect(diff <= 1e-3 * max(scale, 1e-12), "max difference \(diff), largest magnitude \(scale)")
        // The frozen base gets no gradient at all.
        #expect(s.model.namedParameters.allSatisfy { $0.tensor.grad == nil })
    }

    @Test func cachedGreedyGenerationMatchesPEFT() throws {
        let s = try setup()
        let gen = try #require(s.expected["generate"] as? [String: Any])
        let prompt = try #require(gen["prompt_ids"] as? [Int])
        let want = try #require(gen["output_ids"] as? [Int])
        let out = try Generator(model: s.model).generate(prompts: [prompt], options: GenerationOptions(maxNewTokens: 12))
        #expect(prompt + out[0].tokens == want)
    }

    @Test func cachedDecodingWithThePrefixMatchesTheFullForward() throws {
        let s = try setup()
        let ids = [5, 17, 300, 2, 99, 41, 7, 250]
        let n = s.tuning.prompt.count, vocab = s.model.config.vocabSize
        let full = s.model.logits(TokenBatch(rows: [ids]))
        let cache = KVCache(config: s.model.config, batch: 1, capacity: n + ids.count)
        let first = s.model.nextTokenLogits(TokenBatch(rows: [Array(ids[0..<3])]), cache: cache)
        #expect(Fixtures.maxDifference(first.values, Array(full.values[(n + 2) * vocab..<(n + 3) * vocab])) < 1e-4)
        for t in 3..<ids.count {
            let step = s.model.nextTokenLogits(TokenBatch(rows: [[ids[t]]]), cache: cache)
            let want = Array(full.values[(n + t) * vocab..<(n + t + 1) * vocab])
            #expect(Fixtures.maxDifference(step.values, want) < 1e-4, "position \(t)")
        }
        // Left-padded batches give each prompt what it gets alone.
        let prompts = [[172, 47, 117, 192, 323, 251], [3, 9], [400, 401, 402, 403]]
        let together = try Generator(model: s.model).generate(prompts: prompts, options: GenerationOptions(maxNewTokens: 6))
        for (i, p) in prompts.enumerated() {
            let alone = try Generator(model: s.model).generate(prompts: [p], options: GenerationOptions(maxNewTokens: 6))
            #expect(together[i].tokens == alone[0].tokens, "prompt \(i)")
        }
    }

    @Test func fiveAdamWStepsFollowPEFT() throws {
        let s = try setup()
        let ref = try #require(s.expected["prompt_tuning_training"] as? [String: Any])
        let lr = try #require(ref["lr"] as? Double)
        let optimizer = AdamWOptimizer(parameters: s.tuning.namedParameters, weightDecay: 0.01, betas: (0.9, 0.999), eps: 1e-8)
        var losses: [Double] = [], norms: [Double] = []
        for _ in 0..<5 {
            s.tuning.prompt.embeddings.zeroGrad()
            let tape = Tape()
            let loss = s.model.loss(s.batch, labels: s.labels, tape: tape)
            losses.append(Double(loss.scalar))
            tape.backward(from: loss)
            norms.append(TrainingStep.apply(optimizer: optimizer, learningRate: lr, maxGradNorm: 1.0))
        }
        let final = Double(s.model.loss(s.batch, labels: s.labels, tape: Tape(recording: false)).scalar)
        let wantLosses = try #require(ref["loss_before_each_step"] as? [Double])
        let wantNorms = try #require(ref["grad_norm_before_clip"] as? [Double])
        let wantFinal = try #require(ref["loss_after_last_step"] as? Double)
        #expect(losses.count == wantLosses.count)
        for (g, w) in zip(losses, wantLosses) { #expect(abs(g - w) < 1e-3, "loss \(g) vs \(w)") }
        for (g, w) in zip(norms, wantNorms) { #expect(abs(g - w) < 1e-3, "grad norm \(g) vs \(w)") }
        #expect(abs(final - wantFinal) < 1e-3, "final loss \(final) vs \(wantFinal)")
        let trained = try SafeTensorsFile(contentsOf: Fixtures.directory(Self.fixture).appendingPathComponent("trained/adapter_model.safetensors"))
        let diff = Fixtures.maxDifference(s.tuning.prompt.embeddings.values, try trained.tensor(PEFTPromptTuning.weightKey).values)
        #expect(diff < 1e-3, "final embeddings: max difference \(diff)")
        // The base never moved.
        let fresh = try base()
        for ((n, t), (_, b)) in zip(s.model.namedParameters, fresh.namedParameters) { #expect(t.values == b.values, "\(n) changed") }
    }

    @Test func textInitialisationCopiesTheTextsEmbeddingsAsPEFTDoes() throws {
        let text = try #require(Fixtures.expected(Self.fixture)["text_init"] as? [String: Any])
        let initText = try #require(text["text"] as? String)
        let n = try #require(text["num_virtual_tokens"] as? Int)
        let wantIDs = try #require(text["text_token_ids"] as? [Int])
        let tok = try tokenizer()
        #expect(tok.encode(initText, addSpecialTokens: true) == wantIDs)
        let model = try base()
        let tuning = try PromptTuningModel(base: model, configuration: .init(numVirtualTokens: n, initialization: .text(initText)), tokenizer: tok, seed: 0)
        let peft = try SafeTensorsFile(contentsOf: Fixtures.directory(Self.fixture).appendingPathComponent("text-init/adapter_model.safetensors"))
        #expect(tuning.prompt.embeddings.values == (try peft.tensor(PEFTPromptTuning.weightKey).values))
        // Repeat, then cut.
        #expect(PromptTuningConfiguration.initialTokenIDs([1, 2, 3], count: 7) == [1, 2, 3, 1, 2, 3, 1])
        #expect(PromptTuningConfiguration.initialTokenIDs([1, 2, 3], count: 2) == [1, 2])
        #expect(PromptTuningConfiguration.initialTokenIDs([], count: 2) == nil)
    }

    @Test func randomInitialisationIsSeededStandardNormalAndLeavesNoMarkOnTheBase() throws {
        let model = try base()
        let batch = TokenBatch(rows: [[1, 5, 9, 30, 200]])
        let before = model.logits(batch).values
        let a = try PromptTuningModel(base: model, configuration: .init(numVirtualTokens: 16), tokenizer: nil, seed: 3)
        let values = a.prompt.embeddings.values
        let mean = values.reduce(0, +) / Float(values.count)
        let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Float(values.count)
        #expect(abs(mean) < 0.1)
        #expect(abs(variance - 1) < 0.15)
        #expect(model.logits(batch).values.count == (16 + 5) * 512)
        a.unload()
        #expect(model.logits(batch).values == before)
        let b = try PromptTuningModel(base: try base(), configuration: .init(numVirtualTokens: 16), tokenizer: nil, seed: 3)
        #expect(b.prompt.embeddings.values == values)
        // Bad settings and a second prompt are refused.
        #expect(throws: TallyError.self) { _ = try PromptTuningModel(base: try base(), configuration: .init(numVirtualTokens: 0), tokenizer: nil, seed: 0) }
        #expect(throws: TallyError.self) { _ = try PromptTuningModel(base: try base(), configuration: .init(numVirtualTokens: 4, initialization: .text("hi")), tokenizer: nil, seed: 0) }
        #expect(throws: TallyError.self) { _ = try PromptTuningModel(base: b.base, configuration: .init(numVirtualTokens: 4), tokenizer: nil, seed: 0) }
    }

    @Test func savedAdapterFollowsPEFTLayoutAndReloadsIdentically() throws {
        let s = try setup()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tally-prompt-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try PEFTPromptTuning.save(s.tuning, to: dir, baseModel: "tiny-llama")
        let fixture = try Fixtures.directory(Self.fixture).appendingPathComponent("adapter")
        let peftFile = try SafeTensorsFile(contentsOf: fixture.appendingPathComponent(PEFTAdapter.weightsFile))
        let ours = try SafeTensorsFile(contentsOf: dir.appendingPathComponent(PEFTAdapter.weightsFile))
        #expect(ours.names == peftFile.names)
        #expect(ours.entries[PEFTPromptTuning.weightKey]?.shape == [6, 64])
        #expect(ours.metadata["format"] == "pt")
        let peftConfig = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: fixture.appendingPathComponent(PEFTAdapter.configFile))) as? [String: Any])
        let ourConfig = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent(PEFTAdapter.configFile))) as? [String: Any])
        #expect(Set(ourConfig.keys) == Set(peftConfig.keys))
        for key in ["peft_type", "task_type", "prompt_tuning_init", "base_model_name_or_path"] {
            #expect(ourConfig[key] as? String == peftConfig[key] as? String, "\(key)")
        }
        for key in ["num_virtual_tokens", "token_dim", "num_transformer_submodules", "num_layers", "num_attention_heads"] {
            #expect((ourConfig[key] as? NSNumber)?.intValue == (peftConfig[key] as? NSNumber)?.intValue, "\(key)")
        }
        // Reloaded into a fresh base: identical logits; a generic apply finds the type itself.
        let before = s.model.logits(s.batch).values
        let fresh = try base()
        guard case .promptTuning(let reloaded) = try PEFTAdapter.apply(from: dir, to: fresh) else {
            Issue.record("a prompt-tuning adapter was applied as something else")
            return
        }
        #expect(reloaded.prompt.embeddings.values == s.tuning.prompt.embeddings.values)
        #expect(fresh.logits(s.batch).values == before)
        // TEXT init is recorded as PEFT records it.
        let text = try PromptTuningModel(base: try base(), configuration: .init(numVirtualTokens: 4, initialization: .text("Classify:")), tokenizer: tokenizer(), seed: 0)
        let textDir = dir.appendingPathComponent("text")
        try PEFTPromptTuning.save(text, to: textDir, baseModel: "tiny-llama")
        let textConfig = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: textDir.appendingPathComponent(PEFTAdapter.configFile))) as? [String: Any])
        #expect(textConfig["prompt_tuning_init"] as? String == "TEXT")
        #expect(textConfig["prompt_tuning_init_text"] as? String == "Classify:")
        #expect(textConfig["tokenizer_name_or_path"] as? String == "tiny-llama")
        #expect(try PEFTPromptTuning.readConfiguration(textDir).initialization == .text("Classify:"))
    }

    @Test func adaptersThatDoNotFitAreRefusedWithTheFileAndTensor() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tally-prompt-bad-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let fixture = try Fixtures.directory(Self.fixture).appendingPathComponent("adapter")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        // A config that claims more virtual tokens than the weights hold.
        var config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: fixture.appendingPathComponent(PEFTAdapter.configFile))) as? [String: Any])
        config["num_virtual_tokens"] = 7
        try JSONSerialization.data(withJSONObject: config).write(to: dir.appendingPathComponent(PEFTAdapter.configFile))
        try FileManager.default.copyItem(at: fixture.appendingPathComponent(PEFTAdapter.weightsFile), to: dir.appendingPathComponent(PEFTAdapter.weightsFile))
        do {
            _ = try PEFTPromptTuning.load(from: dir, into: base())
            Issue.record("a mismatched adapter loaded")
        } catch let e as TallyError {
            #expect(e.code == .invalidModel)
            #expect(e.message.contains("prompt_embeddings") && e.message.contains("[6, 64]"))
            #expect(e.location?.file.hasSuffix(PEFTAdapter.weightsFile) == true)
        }
        // Another PEFT type is named in the error.
        config["peft_type"] = "PREFIX_TUNING"
        try JSONSerialization.data(withJSONObject: config).write(to: dir.appendingPathComponent(PEFTAdapter.configFile))
        #expect(throws: TallyError.self) { try PEFTAdapter.apply(from: dir, to: try base()) }
        #expect(throws: TallyError.self) { _ = try PEFTPromptTuning.load(from: dir, into: try base()) }
    }
}

/// Prompt tuning through the trainer: checkpoints and resumption, artifacts, and the backend
/// that reopens the tuned model.
@Suite struct PromptTuningTrainingTests {
    /// The training-loop tests' temporary directories, tiny Llama and synthetic examples.
    let loop = TrainingLoopTests()

    func tempDir() -> URL { loop.tempDir() }
    func tinyLlama() throws -> any CausalLanguageModel { try loop.tinyLlama() }
    func examples(_ n: Int, seed: UInt64) -> [TokenizedExample] { loop.examples(n, seed: seed) }

    @Test func resumingFromACheckpointGivesTheUninterruptedResult() throws {
        let train = examples(10, seed: 31), val = examples(3, seed: 32)
        let opts = TrainingOptions(epochs: 2, learningRate: 3e-2, batchSize: 2, gradientAccumulation: 2, weightDecay: 0.01, warmupSteps: 1,
                                   schedule: "cosine", maxGradNorm: 1, evalEvery: 2, seed: 5)
        let method = FineTuneMethod.promptTuning(PromptTuningOptions(numVirtualTokens: 4))
        let d1 = tempDir(), d2 = tempDir()
        defer { try? FileManager.default.removeItem(at: d1); try? FileManager.default.removeItem(at: d2) }
        let full = try TrainingJob(model: tinyLlama(), method: method, options: opts, train: train, validation: val, workDirectory: d1, jobKey: "pt").run()
        #expect(full.steps == 6)
        #expect(full.validationLoss.map(\.step) == [2, 4, 6])
        #expect(full.artifact == d1.appendingPathComponent("adapter").path)
        #expect(!full.notes.contains { $0.hasPrefix("estimate (not measured)") })
        // The loss went down: each epoch visits all ten examples (in its own order), so the
        // second epoch's mean training loss is compared with the first's, not one batch's
        // loss with another batch's.
        let perEpoch = 3
        let epochMeans = [full.trainLoss.prefix(perEpoch), full.trainLoss.dropFirst(perEpoch)].map { $0.map(\.loss).reduce(0, +) / Double(max(1, $0.count)) }
        #expect(full.trainLoss.count == 2 * perEpoch)
        #expect(epochMeans[1] < epochMeans[0], "epoch mean losses \(epochMeans); steps \(full.trainLoss.map(\.loss))")

        let partial = try TrainingJob(model: tinyLlama(), method: method, options: opts, train: train, validation: val, workDirectory: d2, jobKey: "pt").run(stopAfter: 3)
        #expect(partial.steps == 3)
        let checkpoint = try SafeTensorsFile(contentsOf: d2.appendingPathComponent("checkpoint/trainable.safetensors"))
        #expect(checkpoint.names == [PromptTuningModel.parameterName])
        let resumed = try TrainingJob(model: tinyLlama(), method: method, options: opts, train: train, validation: val, workDirectory: d2, jobKey: "pt").run()
        #expect(resumed.steps == 6)
        for (a, b) in zip(resumed.trainLoss, full.trainLoss) { #expect(abs(a.loss - b.loss) < 1e-6, "step \(a.step): \(a.loss) vs \(b.loss)") }
        for (a, b) in zip(resumed.validationLoss, full.validationLoss) { #expect(abs(a.loss - b.loss) < 1e-6) }
        let w1 = try SafeTensorsFile(contentsOf: URL(fileURLWithPath: full.artifact).appendingPathComponent(PEFTAdapter.weightsFile)).floatTensors()
        let w2 = try SafeTensorsFile(contentsOf: URL(fileURLWithPath: resumed.artifact).appendingPathComponent(PEFTAdapter.weightsFile)).floatTensors()
        #expect(Set(w1.keys) == [PEFTPromptTuning.weightKey])
        for (k, v) in w1 { #expect(Fixtures.maxDifference(v.values, w2[k]?.values ?? []) < 1e-6, "\(k)") }
    }

    @Test func earlyStoppingKeepsTheBestPrompt() throws {
        let train = examples(8, seed: 41), val = examples(4, seed: 42)
        let opts = TrainingOptions(epochs: 30, learningRate: 0.5, batchSize: 4, schedule: "constant", maxGradNorm: 1, evalEvery: 1, earlyStoppingPatience: 2, seed: 2)
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let job = try TrainingJob(model: tinyLlama(), method: .promptTuning(PromptTuningOptions(numVirtualTokens: 4)), options: opts, train: train, validation: val, workDirectory: dir, jobKey: "es")
        let out = try job.run()
        #expect(out.steps < 60)
        #expect(out.notes.contains { $0.contains("early stopped") })
        let best = try #require(out.validationLoss.map(\.loss).min())
        #expect(abs((job.validationLoss() ?? 0) - best) < 1e-5)
    }

    @Test func trainerTunesAPromptFromTextAndTheBackendReopensIt() async throws {
        let tok = try BPETokenizer(tokenizerJSON: Fixtures.directory("tokenizers").appendingPathComponent("llama3-style/tokenizer.json"), eosTokens: ["<|endoftext|>"])
        let reviews = ["a fine film", "dull and slow", "great acting", "boring plot", "loved it", "hated it"]
        let labels = ["positive", "negative", "positive", "negative", "positive", "negative"]
        let data = zip(reviews, labels).map { TrainingExample(messages: [.user("Review: \($0)")], completion: $1) }
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let request = FineTuneRequest(
            method: .promptTuning(PromptTuningOptions(numVirtualTokens: 5, initText: "Sentiment:")),
            options: TrainingOptions(epochs: 2, learningRate: 3e-2, batchSize: 2, seed: 3),
            train: Array(data.prefix(4)), validation: Array(data.suffix(2)), workDirectory: dir, jobKey: "chat")
        let events = EventLog()
        let outcome = try await SwiftTrainer.Trainer.run(
            model: tinyLlama(), tokenizer: tok, template: PlainChatFormat(), request: request,
            settings: .init(baseModelName: "tiny-llama"), progress: { events.append($0) })
        #expect(outcome.steps == 4)
        #expect(outcome.validationLoss.map(\.step) == [2, 4])
        #expect(events.all.contains { if case .started("prompt tuning", _) = $0 { return true }; return false })
        let config = try PEFTPromptTuning.readConfiguration(URL(fileURLWithPath: outcome.artifact))
        #expect(config == PromptTuningConfiguration(numVirtualTokens: 5, initialization: .text("Sentiment:")))

        // The backend's fine-tuner reopens the job as base + soft prompt.
        let modelDir = try BackendThreadsTests().modelDirectory()
        defer { try? FileManager.default.removeItem(at: modelDir) }
        let tuner = SwiftTrainerFineTuner(baseModel: modelDir, baseIdentity: "tiny", threads: 1)
        let tuned = try tuner.loadTuned(outcome)
        // The tuned identity names the soft prompt's contents, not the job's directory.
        #expect(tuned.identity.hasPrefix("tiny+prompt-tuning:sha256:"))
        #expect(try tuner.loadTuned(outcome).identity == tuned.identity)
        #expect(tuned.model.softPrompt?.count == 5)
        let generator = try await tuner.generator(for: outcome)
        let reply = try await generator.generate(GenerationRequest(messages: [.user("Review: fine")], maxTokens: 3))
        #expect(reply.usage.completionTokens >= 1)
    }
}

import Foundation
import Testing
@testable import SwiftTrainer
import TallyTensor

/// Tally's LoRA against PEFT on the fixtures in Resources/tiny-llama-lora: PEFT's adapter
/// files loaded as they are, logits, gradients and merged logits.
@Suite struct LoRAGoldenTests {
    struct Setup {
        let model: any CausalLanguageModel
        let lora: LoRAModel
        let batch: TokenBatch
        let labels: [Int]
        let forward: SafeTensorsFile
        let expected: [String: Any]
    }

    func setup() throws -> Setup {
        let model = try ModelLoader.load(huggingFaceDirectory: Fixtures.directory("tiny-llama"))
        let dir = try Fixtures.directory("tiny-llama-lora")
        let lora = try PEFTAdapter.load(from: dir, into: model)
        let forward = try SafeTensorsFile(contentsOf: dir.appendingPathComponent("forward.safetensors"))
        let ids = try forward.integers("input_ids")
        let batch = TokenBatch(ids: ids.values.map { Int($0) }, batch: ids.shape[0], length: ids.shape[1])
        let labels = try forward.integers("labels").values.map { Int($0) }
        return Setup(model: model, lora: lora, batch: batch, labels: labels, forward: forward, expected: try Fixtures.expected("tiny-llama-lora"))
    }

    @Test func loadsPEFTAdapterFilesAsTheyAre() throws {
        let s = try setup()
        #expect(s.lora.configuration.rank == 4)
        #expect(s.lora.configuration.alpha == 8)
        #expect(abs(s.lora.configuration.scaling - 2) < 1e-12)
        #expect(s.lora.adapters.count == 6)
        #expect(Set(s.lora.adapters.map { $0.module.split(separator: ".").last.map(String.init) ?? "" }) == ["q_proj", "v_proj", "down_proj"])
        let trainable = try #require(s.expected["trainable_params"] as? Int)
        #expect(s.lora.trainableParameterCount == trainable)
        // The base is frozen.
        #expect(s.model.namedParameters.allSatisfy { !$0.tensor.requiresGrad })
    }

    @Test func logitsWithAdapterMatchPEFT() throws {
        let s = try setup()
        let want = try s.forward.tensor("logits").values
        let got = s.model.logits(s.batch).values
        #expect(Fixtures.maxDifference(got, want) < 1e-4)
        let loss = s.model.loss(s.batch, labels: s.labels, tape: Tape(recording: false))
        let wantLoss = try #require(s.expected["loss_with_adapter"] as? Double)
        #expect(abs(Double(loss.scalar) - wantLoss) < 1e-4)
    }

    @Test func loRAGradientsMatchPEFT() throws {
        let s = try setup()
        let grads = try SafeTensorsFile(contentsOf: Fixtures.directory("tiny-llama-lora").appendingPathComponent("grads.safetensors"))
        let tape = Tape()
        tape.backward(from: s.model.loss(s.batch, labels: s.labels, tape: tape))
        let params = s.lora.namedParameters
        #expect(Set(params.map(\.name)) == Set(grads.names))
        for (name, tensor) in params {
            let ref = try grads.tensor(name)
            let got = try #require(tensor.gradValues, "no gradient for \(name)")
            let scale = ref.values.reduce(Float(0)) { max($0, abs($1)) }
            let diff = Fixtures.maxDifference(got, ref.values)
            #expect(diff <= 1e-3 * max(scale, 1e-12), "\(name): max difference \(diff), largest magnitude \(scale)")
        }
        // Frozen base weights get no gradient at all.
        #expect(s.model.namedParameters.allSatisfy { $0.tensor.grad == nil })
    }

    @Test func mergedLogitsMatchPEFTAndUnmergeRestoresTheBase() throws {
        let s = try setup()
        let want = try SafeTensorsFile(contentsOf: Fixtures.directory("tiny-llama-lora").appendingPathComponent("merged_forward.safetensors")).tensor("logits").values
        let baseWeights = s.model.stateDict()
        s.lora.merge()
        #expect(Fixtures.maxDifference(s.model.logits(s.batch).values, want) < 1e-4)
        s.lora.unmerge()
        let restored = s.model.stateDict()
        for (name, w) in baseWeights {
            #expect(Fixtures.maxDifference(restored[name]?.values ?? [], w.values) < 1e-6, "\(name) not restored by unmerge")
        }
        // Merged-and-unloaded model, saved as a Hugging Face directory and reopened.
        s.lora.mergeAndUnload()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tally-merged-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try HuggingFaceExport.save(s.model, to: dir)
        let reopened = try ModelLoader.load(huggingFaceDirectory: dir, trainable: false)
        #expect(Fixtures.maxDifference(reopened.logits(s.batch).values, want) < 1e-4)
        #expect(reopened.namedLinears.allSatisfy { $0.layer.adapter == nil })
    }

    @Test func savedAdapterFollowsPEFTLayoutAndReloadsIdentically() throws {
        let s = try setup()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tally-adapter-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try PEFTAdapter.save(s.lora, to: dir, baseModel: "tiny-llama")
        // Keys exactly as PEFT writes them (no adapter name), same shapes as PEFT's file.
        let peftFile = try SafeTensorsFile(contentsOf: Fixtures.directory("tiny-llama-lora").appendingPathComponent("adapter_model.safetensors"))
        let ours = try SafeTensorsFile(contentsOf: dir.appendingPathComponent("adapter_model.safetensors"))
        #expect(ours.names == peftFile.names)
        for name in ours.names { #expect(ours.entries[name]?.shape == peftFile.entries[name]?.shape) }
        #expect(ours.metadata["format"] == "pt")
        // Config: every field PEFT writes, with our values.
        let peftConfig = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: Fixtures.directory("tiny-llama-lora").appendingPathComponent("adapter_config.json"))) as? [String: Any])
        let ourConfig = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("adapter_config.json"))) as? [String: Any])
        #expect(Set(ourConfig.keys) == Set(peftConfig.keys))
        #expect(ourConfig["peft_type"] as? String == "LORA")
        #expect(ourConfig["task_type"] as? String == "CAUSAL_LM")
        #expect((ourConfig["r"] as? NSNumber)?.intValue == 4)
        #expect((ourConfig["lora_alpha"] as? NSNumber)?.doubleValue == 8)
        #expect(Set(ourConfig["target_modules"] as? [String] ?? []) == ["q_proj", "v_proj", "down_proj"])
        // Reloaded into a fresh base: identical logits.
        let before = s.model.logits(s.batch).values
        let fresh = try ModelLoader.load(huggingFaceDirectory: Fixtures.directory("tiny-llama"))
        _ = try PEFTAdapter.load(from: dir, into: fresh)
        #expect(fresh.logits(s.batch).values == before)
    }

    @Test func freshAdapterIsPEFTInitialisedAndLeavesTheModelUnchanged() throws {
        let model = try ModelLoader.load(huggingFaceDirectory: Fixtures.directory("tiny-llama"))
        let batch = TokenBatch(rows: [[1, 5, 9, 30, 200]])
        let before = model.logits(batch).values
        let lora = try LoRAModel(base: model, configuration: LoRAConfiguration(rank: 8, alpha: 16, targets: ["all-linear"]), seed: 3)
        // all-linear: every linear layer except the (tied) output layer: 7 per layer.
        #expect(lora.adapters.count == 14)
        for m in lora.adapters {
            let bound = 1 / Float(m.layer.inFeatures).squareRoot()
            let a = m.adapter.a.values
            #expect(a.allSatisfy { abs($0) <= bound })
            #expect(a.contains { abs($0) > bound / 2 })
            #expect(m.adapter.b.values.allSatisfy { $0 == 0 })
        }
        #expect(model.logits(batch).values == before)
        let rs = LoRAConfiguration(rank: 16, alpha: 8, useRSLoRA: true)
        #expect(abs(rs.scaling - 2) < 1e-12)
        #expect(throws: (any Error).self) { _ = try LoRAModel(base: ModelLoader.load(huggingFaceDirectory: Fixtures.directory("tiny-llama")), configuration: LoRAConfiguration(targets: ["qkv_proj"]), seed: 0) }
    }

    @Test func dropoutIsSeededAndOffAtInference() throws {
        let model = try ModelLoader.load(huggingFaceDirectory: Fixtures.directory("tiny-llama"))
        let lora = try LoRAModel(base: model, configuration: LoRAConfiguration(rank: 4, alpha: 8, dropout: 0.5, targets: ["q_proj"]), seed: 1)
        for m in lora.adapters { for i in 0..<m.adapter.b.count { m.adapter.b.data[i] = 0.1 } }
        let batch = TokenBatch(rows: [[1, 5, 9, 30, 200]])
        let eval1 = model.logits(batch).values
        #expect(model.logits(batch).values == eval1)
        lora.setTraining(true)
        let train1 = model.logits(batch).values
        let train2 = model.logits(batch).values
        #expect(train1 != eval1)
        #expect(train1 != train2)  // a fresh mask each pass
        lora.setTraining(false)
        #expect(model.logits(batch).values == eval1)
    }
}

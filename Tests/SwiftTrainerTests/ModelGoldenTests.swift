import Foundation
import Testing
@testable import SwiftTrainer
import TallyTensor

/// Tally's Llama and GPT-2 against transformers on the same weights (Resources/tiny-*):
/// logits, loss, every parameter's gradient, and greedy generation.
@Suite struct ModelGoldenTests {
    struct Golden {
        let model: any CausalLanguageModel
        let batch: TokenBatch
        let labels: [Int]
        let logits: [Float]
        let grads: SafeTensorsFile
        let expected: [String: Any]
    }

    func load(_ name: String) throws -> Golden {
        let dir = try Fixtures.directory(name)
        let model = try ModelLoader.load(huggingFaceDirectory: dir)
        let forward = try SafeTensorsFile(contentsOf: dir.appendingPathComponent("forward.safetensors"))
        let ids = try forward.integers("input_ids")
        let labels = try forward.integers("labels")
        let batch = TokenBatch(ids: ids.values.map { Int($0) }, batch: ids.shape[0], length: ids.shape[1])
        return Golden(
            model: model, batch: batch, labels: labels.values.map { Int($0) }, logits: try forward.tensor("logits").values,
            grads: try SafeTensorsFile(contentsOf: dir.appendingPathComponent("grads.safetensors")),
            expected: try Fixtures.expected(name))
    }

    @Test(arguments: ["tiny-llama", "tiny-gpt2"])
    func logitsMatchTransformers(_ name: String) throws {
        let g = try load(name)
        let logits = g.model.logits(g.batch).values
        #expect(logits.count == g.logits.count)
        #expect(Fixtures.maxDifference(logits, g.logits) < 1e-4)
    }

    @Test(arguments: ["tiny-llama", "tiny-gpt2"])
    func lossAndEveryGradientMatchTransformers(_ name: String) throws {
        let g = try load(name)
        let tape = Tape()
        let loss = g.model.loss(g.batch, labels: g.labels, tape: tape)
        let want = try #require(g.expected["loss"] as? Double)
        #expect(abs(Double(loss.scalar) - want) < 1e-4)
        tape.backward(from: loss)
        let params = g.model.namedParameters
        #expect(Set(params.map(\.name)) == Set(g.grads.names))
        for (pname, tensor) in params {
            let ref = try g.grads.tensor(pname)
            let got = try #require(tensor.gradValues, "no gradient for \(pname)")
            let scale = ref.values.reduce(Float(0)) { max($0, abs($1)) }
            let diff = Fixtures.maxDifference(got, ref.values)
            #expect(diff <= 1e-3 * max(scale, 1e-12), "\(pname): max difference \(diff), largest magnitude \(scale)")
        }
    }

    @Test func tinyLlamaGreedyGenerationIsIdentical() throws {
        let g = try load("tiny-llama")
        let gen = try #require(g.expected["generate"] as? [String: Any])
        let prompt = try #require(gen["prompt_ids"] as? [Int])
        let full = try #require(gen["output_ids"] as? [Int])
        let newTokens = try #require(gen["max_new_tokens"] as? Int)
        var streamed: [Int] = []
        let out = try Generator(model: g.model).generate(
            prompts: [prompt], options: GenerationOptions(maxNewTokens: newTokens), onToken: { streamed.append($0.token) })
        #expect(prompt + out[0].tokens == full)
        #expect(streamed == out[0].tokens)
        #expect(out[0].finishReason == .length)
    }
}

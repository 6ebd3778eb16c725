import Foundation
import Testing
@testable import SwiftTrainer
import TallyTensor

/// KV-cached, batched generation and padding, checked against full (uncached, unpadded)
/// forward passes of the golden tiny models.
struct GenerationTests {
    func model(_ name: String) throws -> any CausalLanguageModel {
        try ModelLoader.load(huggingFaceDirectory: Fixtures.directory(name), trainable: false)
    }

    @Test(arguments: ["tiny-llama", "tiny-gpt2"])
    func cachedDecodingMatchesFullForward(_ name: String) throws {
        let m = try model(name)
        let ids = [5, 17, 300, 2, 99, 41, 7, 250]
        let full = m.logits(TokenBatch(rows: [ids]))
        let vocab = m.config.vocabSize
        let cache = KVCache(config: m.config, batch: 1, capacity: ids.count)
        _ = m.nextTokenLogits(TokenBatch(rows: [Array(ids[0..<5])]), cache: cache)
        for t in 5..<ids.count {
            let step = m.nextTokenLogits(TokenBatch(rows: [[ids[t]]]), cache: cache)
            let want = Array(full.values[t * vocab..<(t + 1) * vocab])
            #expect(Fixtures.maxDifference(step.values, want) < 1e-4, "position \(t)")
        }
    }

    @Test(arguments: ["tiny-llama", "tiny-gpt2"])
    func batchedGenerationEqualsOneByOne(_ name: String) throws {
        let m = try model(name)
        let prompts = [[172, 47, 117, 192, 323, 251], [3, 9], [400, 401, 402, 403]]
        let options = GenerationOptions(maxNewTokens: 7)
        let together = try Generator(model: m).generate(prompts: prompts, options: options)
        for (i, p) in prompts.enumerated() {
            let alone = try Generator(model: m).generate(prompts: [p], options: options)
            #expect(together[i].tokens == alone[0].tokens, "prompt \(i)")
        }
    }

    @Test func paddedTrainingBatchGivesTheSameLossAndGradients() throws {
        let m = try ModelLoader.load(huggingFaceDirectory: Fixtures.directory("tiny-llama"))
        let rows = [[5, 6, 7, 8, 9, 10], [11, 12, 13]]
        func run(_ batch: TokenBatch, _ labels: [Int]) -> (Float, [Float]) {
            m.zeroGrad()
            let tape = Tape()
            let loss = m.loss(batch, labels: labels, tape: tape)
            tape.backward(from: loss)
            return (loss.scalar, m.parameter(named: "model.layers.0.self_attn.k_proj.weight")?.gradValues ?? [])
        }
        // Padded batch: both rows together, the second padded on the right with -100 labels.
        let padded = TokenBatch(rows: rows, padding: .right, padID: 1)
        let labels = [5, 6, 7, 8, 9, 10, 11, 12, 13, -100, -100, -100]
        let (loss, grad) = run(padded, labels)
        // Reference: the same 7 scored tokens from the unpadded rows, weighted by their count.
        let (l0, g0) = run(TokenBatch(rows: [rows[0]]), rows[0])
        let (l1, g1) = run(TokenBatch(rows: [rows[1]]), rows[1])
        let want = (l0 * 5 + l1 * 2) / 7
        #expect(abs(loss - want) < 1e-5)
        let combined = zip(g0, g1).map { ($0 * 5 + $1 * 2) / 7 }
        #expect(Fixtures.maxDifference(grad, combined) < 1e-5)
    }

    @Test func seededSamplingIsRepeatableAndVaries() throws {
        let m = try model("tiny-llama")
        let options = GenerationOptions(maxNewTokens: 10, temperature: 1.5, topP: 0.9, seed: 42)
        let a = try Generator(model: m).generate(prompts: [[1, 2, 3]], options: options)
        let b = try Generator(model: m).generate(prompts: [[1, 2, 3]], options: options)
        #expect(a == b)
        var other = options
        other.seed = 43
        let c = try Generator(model: m).generate(prompts: [[1, 2, 3]], options: other)
        #expect(c[0].tokens != a[0].tokens)
    }

    @Test func topPKeepsOnlyTheNucleus() {
        // Probabilities ~ [0.66, 0.24, 0.09, 0.01]: top-p 0.7 keeps the two most likely.
        let logits: [Float] = [1, 0, -1, -3]
        var sampler = Sampler(temperature: 1, topP: 0.7, seed: 1)
        var seen = Set<Int>()
        logits.withUnsafeBufferPointer { p in
            guard let base = p.baseAddress else { return }
            for _ in 0..<300 { seen.insert(sampler.next(base, count: 4)) }
        }
        #expect(seen == [0, 1])
    }

    @Test func stopsOnTokensAndStrings() throws {
        let m = try model("tiny-llama")
        let greedy = try Generator(model: m).generate(prompts: [[172, 47, 117, 192, 323, 251]], options: GenerationOptions(maxNewTokens: 12))
        // Greedy continuation from the fixture: 450, 485, 485, ...
        #expect(greedy[0].tokens.prefix(2) == [450, 485])
        let stopped = try Generator(model: m).generate(
            prompts: [[172, 47, 117, 192, 323, 251]], options: GenerationOptions(maxNewTokens: 12, stopTokenIDs: [485]),
            decode: { $0.map { "<\($0)>" }.joined() })
        #expect(stopped[0].tokens == [450, 485])
        #expect(stopped[0].finishReason == .stopToken)
        #expect(stopped[0].text == "<450>")
        let byString = try Generator(model: m).generate(
            prompts: [[172, 47, 117, 192, 323, 251]], options: GenerationOptions(maxNewTokens: 12, stopStrings: ["<485><485>"]),
            decode: { $0.map { "<\($0)>" }.joined() })
        #expect(byString[0].finishReason == .stopString)
        #expect(byString[0].text == "<450>")
        #expect(byString[0].tokens == [450, 485, 485])
    }
}

import Foundation
import Testing

@testable import SwiftTrainer

/// What transformers computed from the same GGUF file (Resources/smollm2/expected.json).
enum SmolLM2Expected {
    static func root() throws -> [String: Any] {
        try #require(try FormatsFixtures.json("smollm2/expected.json") as? [String: Any])
    }

    static func config() throws -> [String: Any] {
        try #require(try root()["config"] as? [String: Any])
    }
}

/// The model, loaded once for all the tests that need it.
enum SmolLM2Model {
    static let loaded: Result<GGUFModel, any Error> = Result { try GGUFModel(url: FormatsFixtures.smolLM2) }
}

@Suite(
    "GGUF: SmolLM2-135M-Instruct from the real file",
    .enabled(if: FormatsFixtures.hasSmolLM2, "needs the model: run `tally models fetch smollm2-135m-instruct`"))
struct GGUFSmolLM2Tests {
    @Test("Config equals what transformers derives from the file")
    func config() throws {
        let file = try GGUFFile(url: FormatsFixtures.smolLM2)
        let config = try GGUFLlama.config(from: file)
        let expected = try SmolLM2Expected.config()
        #expect(config.architecture == .llama)
        #expect(config.vocabSize == expected["vocab_size"] as? Int)
        #expect(config.hiddenSize == expected["hidden_size"] as? Int)
        #expect(config.intermediateSize == expected["intermediate_size"] as? Int)
        #expect(config.numLayers == expected["num_hidden_layers"] as? Int)
        #expect(config.numHeads == expected["num_attention_heads"] as? Int)
        #expect(config.numKVHeads == expected["num_key_value_heads"] as? Int)
        #expect(config.headDim == expected["head_dim"] as? Int)
        #expect(config.maxPositions == expected["max_position_embeddings"] as? Int)
        #expect(config.normEps == expected["rms_norm_eps"] as? Double)
        let rope = try #require(expected["rope_parameters"] as? [String: Any])
        #expect(config.ropeTheta == rope["rope_theta"] as? Double)
        #expect(config.tieWordEmbeddings == expected["tie_word_embeddings"] as? Bool)
        #expect(config.attentionBias == expected["attention_bias"] as? Bool)
        #expect(config.mlpBias == expected["mlp_bias"] as? Bool)
        #expect(config.bosTokenID == expected["bos_token_id"] as? Int)
        #expect(config.eosTokenIDs == [try #require(expected["eos_token_id"] as? Int)])
    }

    @Test("Dequantized weight probes (shape, first 8 values, sum, absolute sum) equal transformers'")
    func weightProbes() async throws {
        let model = try await FormatsFixtures.offCooperativePool { try SmolLM2Model.loaded.get() }
        let probes = try #require(try SmolLM2Expected.root()["dequantized_probes"] as? [String: [String: Any]])
        #expect(probes.count == 5)
        for (name, probe) in probes {
            let weight = try #require(model.weights[name], "\(name) missing")
            #expect(weight.shape == probe["shape"] as? [Int], "\(name) shape")
            let first8 = try #require(probe["first8"] as? [Double])
            for (got, want) in zip(weight.values.prefix(8), first8) {
                #expect(abs(Double(got) - want) <= 1e-6, "\(name) first8: \(got) vs \(want)")
            }
            let sum = weight.values.reduce(0.0) { $0 + Double($1) }
            let absSum = weight.values.reduce(0.0) { $0 + abs(Double($1)) }
            let wantSum = try #require(probe["sum"] as? Double)
            let wantAbs = try #require(probe["abs_sum"] as? Double)
            #expect(abs(sum - wantSum) <= 1e-5 * wantAbs, "\(name) sum \(sum) vs \(wantSum)")
            #expect(abs(absSum - wantAbs) <= 1e-5 * wantAbs, "\(name) abs sum \(absSum) vs \(wantAbs)")
        }
        #expect(model.weights.count == 2 + 30 * 9)
        #expect(model.weights["lm_head.weight"] == nil)
    }

    @Test("The embedded tokenizer encodes and decodes every reference case as transformers does")
    func tokenizerCases() throws {
        let tokenizer = try BPETokenizer(gguf: try GGUFFile(url: FormatsFixtures.smolLM2))
        let cases = try TokenizerCase.load("smollm2/expected.json", key: "tokenizer_cases")
        #expect(cases.count >= 10)
        for c in cases {
            #expect(tokenizer.encode(c.text, addSpecialTokens: false) == c.ids, "ids of \(c.text.debugDescription)")
            #expect(tokenizer.decode(c.ids, skipSpecialTokens: false) == c.decoded, "decode of \(c.text.debugDescription)")
        }
        #expect(tokenizer.bosTokenID == 1)
        #expect(tokenizer.eosTokenIDs == [2])
        // add_bos_token is false in this file: nothing is added.
        #expect(tokenizer.encode("Hello world", addSpecialTokens: true) == [19556, 905])
        #expect(tokenizer.decode([1, 19556, 905, 2], skipSpecialTokens: true) == "Hello world")
    }
}

@Suite(
    "SmolLM2-135M-Instruct end to end: GGUF weights, tokenizer and chat template through the Llama model",
    .enabled(if: FormatsFixtures.hasSmolLM2, "needs the model: run `tally models fetch smollm2-135m-instruct`"))
struct SmolLM2EndToEndTests {
    struct ChatResult: Sendable {
        let prompt: [Int]
        let referenceIDs: [Int]
        let logitShapeOK: Bool
        let worstLogitDifference: Float
        let greedy: [Int]
    }

    @Test("Last-three-position logits match transformers (1e-3) and both 20-token greedy continuations are identical")
    func logitsAndGreedy() async throws {
        let chats = try ReferenceChat.load()
        let results = try await FormatsFixtures.offCooperativePool { () throws -> [ChatResult] in
            let loaded = try SmolLM2Model.loaded.get()
            let model = try ModelLoader.model(config: loaded.config, weights: loaded.weights, source: FormatsFixtures.smolLM2.path, trainable: false)
            let tokenizer = loaded.tokenizer
            let template = ChatTemplate(tokenizer: tokenizer)
            let vocab = loaded.config.vocabSize
            return try chats.enumerated().map { i, chat in
                let reference = try SafeTensorsFile(contentsOf: FormatsFixtures.resource("smollm2/chat\(i)-last3.safetensors"))
                let ids = try reference.integers("input_ids").values.map(Int.init)
                let prompt = tokenizer.encode(try template.render(messages: chat.messages, addGenerationPrompt: true), addSpecialTokens: false)
                let positions = try reference.integers("positions").values.map(Int.init)
                let expected = try reference.tensor("last_logits")
                let logits = model.logits(TokenBatch(rows: [prompt])).values
                var worst: Float = 0
                for (k, position) in positions.enumerated() where position < prompt.count {
                    for v in 0..<vocab {
                        worst = max(worst, abs(logits[position * vocab + v] - expected.values[k * vocab + v]))
                    }
                }
                let outputs = try Generator(model: model).generate(
                    prompts: [prompt], options: GenerationOptions(maxNewTokens: 20, stopTokenIDs: Set(tokenizer.eosTokenIDs)))
                return ChatResult(
                    prompt: prompt, referenceIDs: ids,
                    logitShapeOK: expected.shape == [positions.count, vocab] && positions.allSatisfy { $0 < prompt.count },
                    worstLogitDifference: worst, greedy: outputs.first?.tokens ?? [])
            }
        }
        let tokenizer = try SmolLM2Model.loaded.get().tokenizer
        #expect(results.count == 2)
        for (i, (result, chat)) in zip(results, chats).enumerated() {
            #expect(result.prompt == result.referenceIDs, "chat \(i) prompt ids")
            #expect(result.logitShapeOK)
            #expect(result.worstLogitDifference <= 1e-3, "chat \(i): largest logit difference \(result.worstLogitDifference)")
            #expect(result.greedy == chat.greedyIDs, "chat \(i) greedy ids")
            #expect(tokenizer.decode(result.greedy, skipSpecialTokens: false) == chat.greedyText)
        }
    }
}

import Foundation
import Testing
import TallyCore
@testable import SwiftTrainer

/// Hugging Face config.json parsing.
struct TransformerConfigTests {
    let url = URL(fileURLWithPath: "config.json")

    func parse(_ json: String) throws -> TransformerConfig {
        try TransformerConfig.huggingFace(configJSON: Data(json.utf8), url: url)
    }

    @Test func tinyLlamaFixture() throws {
        let c = try TransformerConfig.huggingFace(contentsOf: Fixtures.directory("tiny-llama").appendingPathComponent("config.json"))
        #expect(c.architecture == .llama)
        #expect(c.numHeads == 4 && c.numKVHeads == 2 && c.headDim == 16)
        #expect(c.ropeTheta == 10_000)
        #expect(c.tieWordEmbeddings)
        #expect(c.eosTokenIDs == [0])
    }

    @Test func tinyGPT2Fixture() throws {
        let c = try TransformerConfig.huggingFace(contentsOf: Fixtures.directory("tiny-gpt2").appendingPathComponent("config.json"))
        #expect(c.architecture == .gpt2)
        #expect(c.intermediateSize == 256)
        #expect(c.maxPositions == 64)
    }

    @Test func ropeThetaAtTopLevelAndQwen2Biases() throws {
        let c = try parse("""
            {"architectures":["Qwen2ForCausalLM"],"model_type":"qwen2","vocab_size":100,"hidden_size":32,
             "intermediate_size":64,"num_hidden_layers":1,"num_attention_heads":4,"num_key_value_heads":2,
             "rope_theta":1000000.0,"rms_norm_eps":1e-6,"tie_word_embeddings":false,"eos_token_id":[5,7]}
            """)
        #expect(c.ropeTheta == 1_000_000)
        #expect(c.attentionBias && !c.attentionOutputBias)
        #expect(!c.tieWordEmbeddings)
        #expect(c.eosTokenIDs == [5, 7])
    }

    @Test func missingFieldNamesIt() throws {
        let error = try #require(throws: TallyError.self) {
            try parse(#"{"architectures":["LlamaForCausalLM"],"vocab_size":10,"hidden_size":8}"#)
        }
        #expect(error.message.contains("num_attention_heads"))
        #expect(error.location?.file == url.path)
    }

    @Test func unsupportedArchitectureAndRopeAreClearErrors() throws {
        #expect(throws: TallyError.self) { try parse(#"{"architectures":["BertModel"]}"#) }
        let error = try #require(throws: TallyError.self) {
            try parse("""
                {"architectures":["LlamaForCausalLM"],"vocab_size":10,"hidden_size":8,"intermediate_size":8,
                 "num_hidden_layers":1,"num_attention_heads":2,"rope_scaling":{"rope_type":"llama3","factor":8.0}}
                """)
        }
        #expect(error.message.contains("llama3"))
    }

    @Test func wrongTypeIsAClearError() throws {
        let error = try #require(throws: TallyError.self) { try parse(#"{"hidden_size":"big"}"#) }
        #expect(error.message.contains("hidden_size"))
    }
}

import Foundation
import TallyCore

extension TransformerConfig {
    /// Parses a Hugging Face `config.json` of a `LlamaForCausalLM` (also `MistralForCausalLM`,
    /// `Qwen2ForCausalLM`: Llama-shaped, Qwen2 with q/k/v biases) or `GPT2LMHeadModel`.
    ///
    /// - Parameters:
    ///   - data: the file's bytes.
    ///   - url: the file, named in errors.
    /// - Throws: `TallyError` (`invalid-model`) naming the file and the missing or unsupported
    ///   field.
    public static func huggingFace(configJSON data: Data, url: URL) throws -> TransformerConfig {
        let raw: HFConfig
        do {
            raw = try JSONDecoder().decode(HFConfig.self, from: data)
        } catch {
            throw ModelFileError.invalid(url, "config.json cannot be read: \(describe(error))")
        }
        let archs = raw.architectures ?? []
        let modelType = raw.model_type ?? ""
        func need<T>(_ value: T?, _ field: String) throws -> T {
            guard let value else { throw ModelFileError.invalid(url, "config.json: missing field '\(field)' for \(archs.first ?? modelType)") }
            return value
        }
        let eos: [Int] = raw.eos_token_id?.values ?? []
        if archs.contains("GPT2LMHeadModel") || modelType == "gpt2" {
            if let act = raw.activation_function, !["gelu_new", "gelu_pytorch_tanh", "gelu_fast"].contains(act) {
                throw ModelFileError.invalid(url, "config.json: activation_function '\(act)' is not supported (the built-in GPT-2 supports gelu_new)")
            }
            if raw.scale_attn_weights == false || raw.scale_attn_by_inverse_layer_idx == true {
                throw ModelFileError.invalid(url, "config.json: only GPT-2 attention scaled by 1/sqrt(head_dim) is supported")
            }
            let d = try need(raw.n_embd, "n_embd")
            let heads = try need(raw.n_head, "n_head")
            guard heads > 0, d % heads == 0 else {
                throw ModelFileError.invalid(url, "config.json: n_embd \(d) is not a multiple of n_head \(heads)")
            }
            return TransformerConfig(
                architecture: .gpt2, vocabSize: try need(raw.vocab_size, "vocab_size"), hiddenSize: d,
                intermediateSize: raw.n_inner ?? 4 * d, numLayers: try need(raw.n_layer, "n_layer"),
                numHeads: heads, numKVHeads: heads, maxPositions: try need(raw.n_positions, "n_positions"),
                normEps: raw.layer_norm_epsilon ?? 1e-5, tieWordEmbeddings: raw.tie_word_embeddings ?? true,
                attentionBias: true, attentionOutputBias: true, mlpBias: true,
                bosTokenID: raw.bos_token_id, eosTokenIDs: eos)
        }
        let llamaLike = ["LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"]
        guard archs.contains(where: llamaLike.contains) || ["llama", "mistral", "qwen2"].contains(modelType) else {
            throw ModelFileError.invalid(url, "config.json: architecture \(archs) / model_type '\(modelType)' is not supported; the built-in trainer runs LlamaForCausalLM (and Qwen2/Mistral-shaped models) and GPT2LMHeadModel")
        }
        if let act = raw.hidden_act, act != "silu" {
            throw ModelFileError.invalid(url, "config.json: hidden_act '\(act)' is not supported (expected silu)")
        }
        let ropeType = raw.rope_parameters?.rope_type ?? raw.rope_scaling?.rope_type ?? raw.rope_scaling?.type ?? "default"
        guard ropeType == "default" else {
            throw ModelFileError.invalid(url, "config.json: rope type '\(ropeType)' is not supported (only default RoPE)")
        }
        if let window = raw.sliding_window, raw.use_sliding_window == true, window > 0 {
            throw ModelFileError.invalid(url, "config.json: sliding-window attention is not supported")
        }
        let d = try need(raw.hidden_size, "hidden_size")
        let heads = try need(raw.num_attention_heads, "num_attention_heads")
        let kvHeads = raw.num_key_value_heads ?? heads
        guard heads > 0, kvHeads > 0, heads % kvHeads == 0 else {
            throw ModelFileError.invalid(url, "config.json: num_attention_heads \(heads) is not a multiple of num_key_value_heads \(kvHeads)")
        }
        let headDim = raw.head_dim ?? d / heads
        guard headDim > 0, headDim % 2 == 0 else {
            throw ModelFileError.invalid(url, "config.json: head_dim \(headDim) must be a positive even number")
        }
        let isQwen2 = modelType == "qwen2" || archs.contains("Qwen2ForCausalLM")
        let attentionBias = isQwen2 ? true : (raw.attention_bias ?? false)
        return TransformerConfig(
            architecture: .llama, vocabSize: try need(raw.vocab_size, "vocab_size"), hiddenSize: d,
            intermediateSize: try need(raw.intermediate_size, "intermediate_size"),
            numLayers: try need(raw.num_hidden_layers, "num_hidden_layers"), numHeads: heads, numKVHeads: kvHeads,
            headDim: headDim, maxPositions: raw.max_position_embeddings ?? 2048,
            ropeTheta: raw.rope_parameters?.rope_theta ?? raw.rope_theta ?? 10_000,
            normEps: raw.rms_norm_eps ?? 1e-6, tieWordEmbeddings: raw.tie_word_embeddings ?? false,
            attentionBias: attentionBias, attentionOutputBias: isQwen2 ? false : attentionBias,
            mlpBias: raw.mlp_bias ?? false, bosTokenID: raw.bos_token_id, eosTokenIDs: eos)
    }

    /// Reads `config.json` from a file.
    /// - Throws: `TallyError` if the file is missing or invalid.
    public static func huggingFace(contentsOf url: URL) throws -> TransformerConfig {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw ModelFileError.io(url, "cannot read config.json", underlying: error)
        }
        return try huggingFace(configJSON: data, url: url)
    }

    private static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.typeMismatch(_, let c), DecodingError.valueNotFound(_, let c), DecodingError.dataCorrupted(let c):
            let path = c.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? c.debugDescription : "field '\(path)': \(c.debugDescription)"
        default:
            return "\(error)"
        }
    }
}

/// The subset of Hugging Face `config.json` fields the built-in models read.
private struct HFConfig: Decodable {
    struct RopeParameters: Decodable {
        var rope_theta: Double?
        var rope_type: String?
        var type: String?
    }
    /// `eos_token_id` is an integer or a list of integers.
    struct TokenIDs: Decodable {
        var values: [Int]
        init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let one = try? c.decode(Int.self) { values = [one] } else { values = try c.decode([Int].self) }
        }
    }
    var architectures: [String]?
    var model_type: String?
    var vocab_size: Int?
    var hidden_size: Int?
    var intermediate_size: Int?
    var num_hidden_layers: Int?
    var num_attention_heads: Int?
    var num_key_value_heads: Int?
    var head_dim: Int?
    var max_position_embeddings: Int?
    var rope_theta: Double?
    var rope_parameters: RopeParameters?
    var rope_scaling: RopeParameters?
    var rms_norm_eps: Double?
    var tie_word_embeddings: Bool?
    var attention_bias: Bool?
    var mlp_bias: Bool?
    var hidden_act: String?
    var sliding_window: Int?
    var use_sliding_window: Bool?
    var bos_token_id: Int?
    var eos_token_id: TokenIDs?
    // GPT-2
    var n_embd: Int?
    var n_head: Int?
    var n_layer: Int?
    var n_positions: Int?
    var n_inner: Int?
    var layer_norm_epsilon: Double?
    var activation_function: String?
    var scale_attn_weights: Bool?
    var scale_attn_by_inverse_layer_idx: Bool?
}

import Foundation

/// The llama architecture in GGUF: metadata → `TransformerConfig`, GGUF tensor names →
/// Hugging Face names, and the Q/K row order of Hugging Face checkpoints restored.
///
/// llama.cpp's converter reorders the rows of every `q_proj` and `k_proj` weight (and bias)
/// from the rotate-half RoPE layout of transformers to the interleaved layout of GGML: within
/// each head of `headDim` rows, HF row `t·headDim/2 + j` (half `t` ∈ {0, 1}, pair `j`) becomes
/// GGUF row `2j + t`. `GGUFLlama` applies the inverse, so the weights equal what transformers
/// loads from the same file.
public enum GGUFLlama {
    /// Architectures read by `config(from:)` and `weights(from:config:)`. Qwen2 files are not
    /// permuted by the converter.
    public static let supportedArchitectures = ["llama", "qwen2"]

    /// The model configuration described by the file's metadata.
    /// - Throws: `GGUFError` when the architecture is not supported or a required key is
    ///   missing or has an impossible value.
    public static func config(from file: GGUFFile) throws -> TransformerConfig {
        let meta = file.metadata
        guard let arch = meta["general.architecture"]?.string else {
            throw GGUFError(.missing, file: file.path, "has no general.architecture metadata; it is not a model file")
        }
        guard supportedArchitectures.contains(arch) else {
            throw GGUFError(.unsupported, file: file.path, "has architecture '\(arch)'; Tally runs \(supportedArchitectures.joined(separator: ", ")) GGUF files")
        }
        func int(_ key: String) throws -> Int {
            guard let value = meta["\(arch).\(key)"] else {
                throw GGUFError(.missing, file: file.path, "lacks metadata key '\(arch).\(key)', which a \(arch) model needs")
            }
            guard let v = value.int, v > 0 else {
                throw GGUFError(.malformed, file: file.path, "metadata key '\(arch).\(key)' is \(value) (\(value.typeName)); expected a positive integer")
            }
            return v
        }
        func optionalInt(_ key: String) throws -> Int? {
            meta["\(arch).\(key)"] == nil ? nil : try int(key)
        }
        func double(_ key: String) throws -> Double? {
            guard let value = meta["\(arch).\(key)"] else { return nil }
            guard let v = value.double, v.isFinite, v > 0 else {
                throw GGUFError(.malformed, file: file.path, "metadata key '\(arch).\(key)' is \(value) (\(value.typeName)); expected a positive number")
            }
            return v
        }

        let hidden = try int("embedding_length")
        let layers = try int("block_count")
        let ffn = try int("feed_forward_length")
        let heads = try int("attention.head_count")
        let kvHeads = try optionalInt("attention.head_count_kv") ?? heads
        let contextLength = try optionalInt("context_length") ?? 2048
        guard heads % kvHeads == 0 else {
            throw GGUFError(.malformed, file: file.path, "\(arch).attention.head_count (\(heads)) is not a multiple of head_count_kv (\(kvHeads))")
        }
        let headDim = try optionalInt("attention.key_length") ?? hidden / heads
        if let valueLength = try optionalInt("attention.value_length"), valueLength != headDim {
            throw GGUFError(.unsupported, file: file.path, "has attention.value_length \(valueLength) different from key_length \(headDim); Tally's llama model needs them equal")
        }
        guard headDim % 2 == 0 else {
            throw GGUFError(.malformed, file: file.path, "has an odd head dimension \(headDim); RoPE needs an even one")
        }
        if let ropeDims = try optionalInt("rope.dimension_count"), ropeDims != headDim {
            throw GGUFError(.unsupported, file: file.path, "applies RoPE to \(ropeDims) of \(headDim) head dimensions; Tally supports full rotary embeddings only")
        }
        if let scaling = meta["\(arch).rope.scaling.type"]?.string, scaling != "none" {
            throw GGUFError(.unsupported, file: file.path, "uses RoPE scaling '\(scaling)', which Tally does not implement")
        }
        let ropeTheta = try double("rope.freq_base") ?? 10_000
        let eps = try double("attention.layer_norm_rms_epsilon") ?? 1e-5

        let embedding = file.tensor(named: "token_embd.weight")
        let vocab: Int
        if let v = try optionalInt("vocab_size") {
            vocab = v
        } else if let tokens = meta["tokenizer.ggml.tokens"]?.array {
            vocab = tokens.count
        } else if let embedding, embedding.dimensions.count == 2 {
            vocab = embedding.dimensions[1]
        } else {
            throw GGUFError(.missing, file: file.path, "does not say its vocabulary size (no \(arch).vocab_size, tokenizer.ggml.tokens or token_embd.weight)")
        }
        let tied = file.tensor(named: "output.weight") == nil
        let hasQBias = file.tensor(named: "blk.0.attn_q.bias") != nil
        let hasOBias = file.tensor(named: "blk.0.attn_output.bias") != nil
        let hasMLPBias = file.tensor(named: "blk.0.ffn_up.bias") != nil

        var eos: [Int] = []
        for key in ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"] {
            if let id = meta[key]?.int, !eos.contains(id) { eos.append(id) }
        }
        return TransformerConfig(
            architecture: .llama, vocabSize: vocab, hiddenSize: hidden, intermediateSize: ffn,
            numLayers: layers, numHeads: heads, numKVHeads: kvHeads, headDim: headDim,
            maxPositions: contextLength, ropeTheta: ropeTheta, normEps: eps,
            tieWordEmbeddings: tied, attentionBias: hasQBias, attentionOutputBias: hasOBias,
            mlpBias: hasMLPBias, bosTokenID: meta["tokenizer.ggml.bos_token_id"]?.int, eosTokenIDs: eos)
    }

    /// The Hugging Face name of a llama GGUF tensor, or nil for a name outside the architecture.
    /// - Parameter ggufName: e.g. `blk.3.attn_q.weight`.
    public static func huggingFaceName(for ggufName: String) -> String? {
        let top = [
            "token_embd.weight": "model.embed_tokens.weight",
            "output_norm.weight": "model.norm.weight",
            "output.weight": "lm_head.weight",
        ]
        if let name = top[ggufName] { return name }
        let parts = ggufName.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "blk", let layer = Int(parts[1]), layer >= 0,
            parts[3] == "weight" || parts[3] == "bias"
        else { return nil }
        let modules = [
            "attn_norm": "input_layernorm",
            "ffn_norm": "post_attention_layernorm",
            "attn_q": "self_attn.q_proj",
            "attn_k": "self_attn.k_proj",
            "attn_v": "self_attn.v_proj",
            "attn_output": "self_attn.o_proj",
            "ffn_gate": "mlp.gate_proj",
            "ffn_up": "mlp.up_proj",
            "ffn_down": "mlp.down_proj",
        ]
        guard let module = modules[String(parts[2])] else { return nil }
        if parts[3] == "bias" && module.hasSuffix("norm") { return nil }
        return "model.layers.\(layer).\(module).\(parts[3])"
    }

    /// The shape Hugging Face gives the weight `name` under `config`, or nil when unknown.
    public static func expectedShape(of name: String, config c: TransformerConfig) -> [Int]? {
        let q = c.numHeads * c.headDim, kv = c.numKVHeads * c.headDim
        switch name {
        case "model.embed_tokens.weight", "lm_head.weight": return [c.vocabSize, c.hiddenSize]
        case "model.norm.weight": return [c.hiddenSize]
        default: break
        }
        guard let suffix = name.split(separator: ".", maxSplits: 3).last else { return nil }
        switch suffix {
        case "input_layernorm.weight", "post_attention_layernorm.weight": return [c.hiddenSize]
        case "self_attn.q_proj.weight": return [q, c.hiddenSize]
        case "self_attn.k_proj.weight", "self_attn.v_proj.weight": return [kv, c.hiddenSize]
        case "self_attn.o_proj.weight": return [c.hiddenSize, q]
        case "self_attn.q_proj.bias": return [q]
        case "self_attn.k_proj.bias", "self_attn.v_proj.bias": return [kv]
        case "self_attn.o_proj.bias": return [c.hiddenSize]
        case "mlp.gate_proj.weight", "mlp.up_proj.weight": return [c.intermediateSize, c.hiddenSize]
        case "mlp.down_proj.weight": return [c.hiddenSize, c.intermediateSize]
        case "mlp.gate_proj.bias", "mlp.up_proj.bias": return [c.intermediateSize]
        case "mlp.down_proj.bias": return [c.hiddenSize]
        default: return nil
        }
    }

    /// Every weight of the model, dequantised to Float32, with Hugging Face names and shapes
    /// and the Q/K rows back in Hugging Face order.
    /// - Parameters:
    ///   - file: an opened llama (or qwen2) GGUF file.
    ///   - config: its configuration from `config(from:)`.
    /// - Throws: `GGUFError` for unknown or missing tensors, shape mismatches and unsupported
    ///   quantisation types.
    public static func weights(from file: GGUFFile, config: TransformerConfig) throws -> [String: WeightTensor] {
        try weights(from: file, config: config, storage: .f32).dense
    }

    /// The model's weights with the matrices stored in a format of
    /// ``QuantizedMatrix/supportedTypes`` kept in it (`storage: .quantised`; Q/K rows restored
    /// to Hugging Face order) and everything else dequantised to Float32, as
    /// ``weights(from:config:)``. With `.f32` every weight is Float32.
    /// - Throws: what ``weights(from:config:)`` throws.
    public static func weights(
        from file: GGUFFile, config: TransformerConfig, storage: WeightStorage
    ) throws -> (dense: [String: WeightTensor], quantized: [String: QuantizedMatrix]) {
        let arch = file.metadata["general.architecture"]?.string ?? "llama"
        var weights: [String: WeightTensor] = [:]
        var quantized: [String: QuantizedMatrix] = [:]
        for info in file.tensors {
            if info.name == "rope_freqs.weight" {
                throw GGUFError(.unsupported, file: file.path, "has tensor 'rope_freqs.weight' (Llama 3.1-style RoPE frequency scaling), which Tally does not implement")
            }
            guard let name = huggingFaceName(for: info.name) else {
                throw GGUFError(.unsupported, file: file.path, "has tensor '\(info.name)' (shape \(info.shape)), which is not part of the llama architecture Tally runs")
            }
            if let layer = layerIndex(of: info.name), layer >= config.numLayers {
                throw GGUFError(.malformed, file: file.path, "has tensor '\(info.name)' for layer \(layer), but \(arch).block_count is \(config.numLayers)")
            }
            guard let expected = expectedShape(of: name, config: config) else {
                throw GGUFError(.unsupported, file: file.path, "has tensor '\(info.name)' with no known shape")
            }
            guard info.shape == expected else {
                throw GGUFError(.shapeMismatch, file: file.path, "tensor '\(info.name)' (\(name)) has shape \(info.shape) but the metadata implies \(expected); the file is inconsistent")
            }
            let heads = name.hasSuffix("q_proj.weight") ? config.numHeads : name.hasSuffix("k_proj.weight") ? config.numKVHeads : nil
            if storage == .quantised, expected.count == 2, QuantizedMatrix.supportedTypes.contains(info.type) {
                let order = arch == "llama" ? heads.map { huggingFaceRowOrder(rows: expected[0], heads: $0) } : nil
                do {
                    quantized[name] = try file.withRawBytes(of: info) { bytes in
                        try QuantizedMatrix(type: info.type, rows: expected[0], columns: expected[1], bytes: bytes, rowOrder: order)
                    }
                } catch let error as GGUFError {
                    throw GGUFError(error.code, file: file.path, "tensor '\(info.name)': \(error.message)")
                }
                continue
            }
            var values = try file.dequantize(info)
            if arch == "llama" {
                if name.hasSuffix("q_proj.weight") || name.hasSuffix("q_proj.bias") {
                    values = unpermuteRows(values, rows: expected[0], columns: expected.count > 1 ? expected[1] : 1, heads: config.numHeads)
                } else if name.hasSuffix("k_proj.weight") || name.hasSuffix("k_proj.bias") {
                    values = unpermuteRows(values, rows: expected[0], columns: expected.count > 1 ? expected[1] : 1, heads: config.numKVHeads)
                }
            }
            weights[name] = WeightTensor(shape: expected, values: values)
        }
        var required = ["model.embed_tokens.weight", "model.norm.weight"]
        for layer in 0..<config.numLayers {
            for module in ["input_layernorm", "post_attention_layernorm", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"] {
                required.append("model.layers.\(layer).\(module).weight")
            }
        }
        for name in required where weights[name] == nil && quantized[name] == nil {
            throw GGUFError(.missing, file: file.path, "lacks the tensor for \(name) (\(ggufName(for: name))); the file is incomplete")
        }
        return (weights, quantized)
    }

    /// For each Hugging Face row of a Q or K projection, the GGUF row it comes from
    /// (``unpermuteRows(_:rows:columns:heads:)`` as a row order); rows in their own order
    /// when they do not split into `heads` heads of an even size (as `unpermuteRows`).
    static func huggingFaceRowOrder(rows: Int, heads: Int) -> [Int] {
        guard heads > 0, rows % (2 * heads) == 0 else { return Array(0..<rows) }
        let headDim = rows / heads, half = headDim / 2
        var order = [Int](repeating: 0, count: rows)
        for h in 0..<heads {
            for t in 0..<2 {
                for j in 0..<half { order[h * headDim + t * half + j] = h * headDim + 2 * j + t }
            }
        }
        return order
    }

    /// Restores Hugging Face row order of a Q or K projection stored by llama.cpp's converter.
    /// - Parameters:
    ///   - values: `rows × columns` values, row-major, rows in GGUF order.
    ///   - heads: number of heads the rows are split into (query heads for Q, KV heads for K).
    /// - Returns: the same values with HF row `h·d + t·d/2 + j` taken from GGUF row `h·d + 2j + t`.
    public static func unpermuteRows(_ values: [Float], rows: Int, columns: Int, heads: Int) -> [Float] {
        reorderRows(values, rows: rows, columns: columns, heads: heads, toGGUF: false)
    }

    /// The inverse of ``unpermuteRows(_:rows:columns:heads:)``: Hugging Face row order to
    /// llama.cpp's, GGUF row `h·d + 2j + t` taken from HF row `h·d + t·d/2 + j`.
    public static func permuteRows(_ values: [Float], rows: Int, columns: Int, heads: Int) -> [Float] {
        reorderRows(values, rows: rows, columns: columns, heads: heads, toGGUF: true)
    }

    /// Moves every row between HF row `h·d + t·d/2 + j` and GGUF row `h·d + 2j + t`.
    static func reorderRows(_ values: [Float], rows: Int, columns: Int, heads: Int, toGGUF: Bool) -> [Float] {
        guard heads > 0, rows % (2 * heads) == 0, values.count == rows * columns else { return values }
        let headDim = rows / heads
        let half = headDim / 2
        var out = [Float](repeating: 0, count: values.count)
        values.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for h in 0..<heads {
                    for t in 0..<2 {
                        for j in 0..<half {
                            let hfRow = h * headDim + t * half + j
                            let ggufRow = h * headDim + 2 * j + t
                            let (from, to) = toGGUF ? (hfRow, ggufRow) : (ggufRow, hfRow)
                            for c in 0..<columns {
                                dst[to * columns + c] = src[from * columns + c]
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    static func layerIndex(of ggufName: String) -> Int? {
        let parts = ggufName.split(separator: ".")
        guard parts.count >= 2, parts[0] == "blk" else { return nil }
        return Int(parts[1])
    }

    static func ggufName(for hfName: String) -> String {
        let top = ["model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight", "lm_head.weight": "output.weight"]
        if let name = top[hfName] { return name }
        let parts = hfName.split(separator: ".")
        guard parts.count >= 5 else { return hfName }
        let modules = [
            "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
            "q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output",
            "gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down",
        ]
        let module = parts.count == 6 ? String(parts[4]) : String(parts[3])
        return "blk.\(parts[2]).\(modules[module] ?? module).\(parts.last ?? "weight")"
    }
}

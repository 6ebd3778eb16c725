import Foundation
import TallyCore
import TallyTensor

/// `LlamaForCausalLM` (and Llama-shaped checkpoints such as SmolLM2 and Qwen2): RMSNorm,
/// RoPE, grouped-query attention, SwiGLU MLP, optional projection biases, optionally tied
/// embeddings.
public final class LlamaModel: CausalLanguageModel {
    final class Layer {
        let inputNorm: Tensor
        let q: Linear, k: Linear, v: Linear, o: Linear
        let postNorm: Tensor
        let gate: Linear, up: Linear, down: Linear

        init(_ r: WeightReader, _ c: TransformerConfig, _ i: Int) throws {
            let p = "model.layers.\(i)."
            let d = c.hiddenSize, qd = c.numHeads * c.headDim, kvd = c.numKVHeads * c.headDim, m = c.intermediateSize
            func lin(_ name: String, _ out: Int, _ inp: Int, bias: Bool) throws -> Linear {
                try r.matrix(p + name + ".weight", [out, inp], bias: try r.optional(p + name + ".bias", [out], present: bias))
            }
            inputNorm = try r.tensor(p + "input_layernorm.weight", [d])
            q = try lin("self_attn.q_proj", qd, d, bias: c.attentionBias)
            k = try lin("self_attn.k_proj", kvd, d, bias: c.attentionBias)
            v = try lin("self_attn.v_proj", kvd, d, bias: c.attentionBias)
            o = try lin("self_attn.o_proj", d, qd, bias: c.attentionOutputBias)
            postNorm = try r.tensor(p + "post_attention_layernorm.weight", [d])
            gate = try lin("mlp.gate_proj", m, d, bias: c.mlpBias)
            up = try lin("mlp.up_proj", m, d, bias: c.mlpBias)
            down = try lin("mlp.down_proj", d, m, bias: c.mlpBias)
        }
    }

    public let config: TransformerConfig
    /// The embedding table `[vocab, hidden]`, as a layer so that it can be quantised and
    /// serve as the tied output layer.
    let embed: Linear
    let layers: [Layer]
    let norm: Tensor
    /// nil when the output layer is tied to the embedding.
    let lmHead: Linear?
    let rope: RotaryEmbedding
    public let namedParameters: [(name: String, tensor: Tensor)]
    public let namedLinears: [(name: String, layer: Linear)]
    public let namedQuantizedWeights: [(name: String, matrix: QuantizedMatrix)]
    /// The table itself, or a Float32 copy of a quantised one (made on each access).
    public var tokenEmbedding: Tensor {
        if let weight = embed.weight { return weight }
        let w = embed.floatWeight()
        return (try? Tensor(shape: w.shape, values: w.values)) ?? Tensor(zeros: [0, config.hiddenSize])
    }
    public var softPrompt: SoftPrompt?

    /// Builds the model from Hugging Face-named weights.
    /// - Parameters:
    ///   - config: the shape (architecture `.llama`).
    ///   - weights: tensors named as in `model.safetensors` (`lm_head.weight` only when untied).
    ///   - source: the checkpoint, named in errors.
    ///   - quantized: matrices kept quantised, by the same names (they never train).
    ///   - source: the checkpoint, named in errors.
    ///   - trainable: whether parameters start with `requiresGrad`.
    /// - Throws: `TallyError` (`invalid-model`) for a missing tensor or a shape mismatch.
    public init(
        config: TransformerConfig, weights: [String: WeightTensor], quantized: [String: QuantizedMatrix] = [:],
        source: String = "weights", trainable: Bool = true
    ) throws {
        guard config.architecture == .llama else {
            throw TallyError(code: .invalidModel, message: "LlamaModel cannot load a \(config.architecture) config", location: SourceLocation(file: source))
        }
        self.config = config
        let r = WeightReader(weights: weights, source: source, trainable: trainable, quantized: quantized)
        embed = try r.matrix("model.embed_tokens.weight", [config.vocabSize, config.hiddenSize])
        layers = try (0..<config.numLayers).map { try Layer(r, config, $0) }
        norm = try r.tensor("model.norm.weight", [config.hiddenSize])
        if config.tieWordEmbeddings {
            lmHead = nil
        } else {
            lmHead = try r.matrix("lm_head.weight", [config.vocabSize, config.hiddenSize])
        }
        rope = RotaryEmbedding(headDim: config.headDim, theta: config.ropeTheta)
        var params: [(String, Tensor)] = []
        var linears: [(String, Linear)] = []
        var kept: [(String, QuantizedMatrix)] = []
        /// A matrix's weight goes to the parameters when Float32, else to the quantised weights.
        func add(_ name: String, _ layer: Linear) {
            if let w = layer.weight { params.append((name, w)) }
            if let q = layer.quantized { kept.append((name, q)) }
        }
        add("model.embed_tokens.weight", embed)
        for (i, l) in layers.enumerated() {
            let p = "model.layers.\(i)."
            params.append((p + "input_layernorm.weight", l.inputNorm))
            for (n, lin) in [("self_attn.q_proj", l.q), ("self_attn.k_proj", l.k), ("self_attn.v_proj", l.v), ("self_attn.o_proj", l.o)] {
                linears.append((p + n, lin))
                add(p + n + ".weight", lin)
                if let b = lin.bias { params.append((p + n + ".bias", b)) }
            }
            params.append((p + "post_attention_layernorm.weight", l.postNorm))
            for (n, lin) in [("mlp.gate_proj", l.gate), ("mlp.up_proj", l.up), ("mlp.down_proj", l.down)] {
                linears.append((p + n, lin))
                add(p + n + ".weight", lin)
                if let b = lin.bias { params.append((p + n + ".bias", b)) }
            }
        }
        params.append(("model.norm.weight", norm))
        if let lmHead {
            add("lm_head.weight", lmHead)
            linears.append(("lm_head", lmHead))
        }
        namedParameters = params
        namedLinears = linears
        namedQuantizedWeights = kept
    }

    /// The parameter shapes a config implies, by Hugging Face name.
    public static func parameterShapes(_ c: TransformerConfig) -> [(name: String, shape: [Int])] {
        let d = c.hiddenSize, qd = c.numHeads * c.headDim, kvd = c.numKVHeads * c.headDim, m = c.intermediateSize
        var out: [(String, [Int])] = [("model.embed_tokens.weight", [c.vocabSize, d])]
        for i in 0..<c.numLayers {
            let p = "model.layers.\(i)."
            out.append((p + "input_layernorm.weight", [d]))
            for (n, o, inp, bias) in [
                ("self_attn.q_proj", qd, d, c.attentionBias), ("self_attn.k_proj", kvd, d, c.attentionBias),
                ("self_attn.v_proj", kvd, d, c.attentionBias), ("self_attn.o_proj", d, qd, c.attentionOutputBias),
            ] {
                out.append((p + n + ".weight", [o, inp]))
                if bias { out.append((p + n + ".bias", [o])) }
            }
            out.append((p + "post_attention_layernorm.weight", [d]))
            for (n, o, inp) in [("mlp.gate_proj", m, d), ("mlp.up_proj", m, d), ("mlp.down_proj", d, m)] {
                out.append((p + n + ".weight", [o, inp]))
                if c.mlpBias { out.append((p + n + ".bias", [o])) }
            }
        }
        out.append(("model.norm.weight", [d]))
        if !c.tieWordEmbeddings { out.append(("lm_head.weight", [c.vocabSize, d])) }
        return out
    }

    public func hiddenStates(_ tokens: TokenBatch, tape: Tape, cache: KVCache?) -> Tensor {
        let c = config
        let eps = Float(c.normEps)
        let (batch, embeddings) = inputs(tokens, cache: cache, tape: tape, tokenEmbeddings: embed.embeddingRows(tokens.ids, tape: tape))
        var positions = batch.positions
        if let cache {
            precondition(cache.active.count == batch.batch, "KV cache has \(cache.active.count) active sequences for \(batch.batch) rows")
            positions = cache.admit(mask: batch.mask, count: batch.length)
        }
        let keyMask = batch.isPadded ? batch.mask : nil
        var h = embeddings
        for (i, l) in layers.enumerated() {
            let a = tape.rmsNorm(h, weight: l.inputNorm, eps: eps)
            let qkv = Linear.apply([l.q, l.k, l.v], to: a, tape: tape)
            let q = tape.rope(qkv[0], rope, heads: c.numHeads, positions: positions)
            let k = tape.rope(qkv[1], rope, heads: c.numKVHeads, positions: positions)
            let v = qkv[2]
            let attn: Tensor
            if let cache {
                cache.store(layer: i, keys: k, values: v, count: batch.length)
                attn = cache.attend(layer: i, q: q, count: batch.length, heads: c.numHeads, headDim: c.headDim)
            } else {
                attn = tape.causalAttention(
                    q: q, k: k, v: v, batch: batch.batch, seq: batch.length, heads: c.numHeads, kvHeads: c.numKVHeads,
                    headDim: c.headDim, keyMask: keyMask)
            }
            h = tape.addInPlaceIfPossible(h, l.o(attn, tape: tape))
            let m = tape.rmsNorm(h, weight: l.postNorm, eps: eps)
            let gateUp = Linear.apply([l.gate, l.up], to: m, tape: tape)
            let act = tape.swiglu(gate: gateUp[0], up: gateUp[1])
            h = tape.addInPlaceIfPossible(h, l.down(act, tape: tape))
        }
        cache?.advance(by: batch.length)
        return tape.rmsNorm(h, weight: norm, eps: eps)
    }

    public func outputLogits(_ hidden: Tensor, tape: Tape) -> Tensor {
        if let lmHead { return lmHead(hidden, tape: tape) }
        return embed(hidden, tape: tape)
    }
}

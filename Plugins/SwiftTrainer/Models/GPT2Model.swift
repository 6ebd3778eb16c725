import Foundation
import TallyCore
import TallyTensor

/// `GPT2LMHeadModel`: learned positions, pre-LayerNorm blocks, fused q/k/v projection, GELU
/// (tanh form) MLP, Conv1D weights stored `[in, out]`, output layer tied to the token embedding.
///
/// Parameters are named as transformers names them (`transformer.h.0.attn.c_attn.weight`);
/// checkpoints without the `transformer.` prefix load too.
public final class GPT2Model: CausalLanguageModel {
    final class Block {
        let ln1w: Tensor, ln1b: Tensor
        let cAttn: Linear, cProj: Linear
        let ln2w: Tensor, ln2b: Tensor
        let fc: Linear, proj: Linear

        init(_ r: WeightReader, _ c: TransformerConfig, _ prefix: String) throws {
            let d = c.hiddenSize, m = c.intermediateSize
            func conv(_ name: String, _ inp: Int, _ out: Int) throws -> Linear {
                Linear(weight: try r.tensor(prefix + name + ".weight", [inp, out]), bias: try r.tensor(prefix + name + ".bias", [out]), layout: .inOut)
            }
            ln1w = try r.tensor(prefix + "ln_1.weight", [d])
            ln1b = try r.tensor(prefix + "ln_1.bias", [d])
            cAttn = try conv("attn.c_attn", d, 3 * d)
            cProj = try conv("attn.c_proj", d, d)
            ln2w = try r.tensor(prefix + "ln_2.weight", [d])
            ln2b = try r.tensor(prefix + "ln_2.bias", [d])
            fc = try conv("mlp.c_fc", d, m)
            proj = try conv("mlp.c_proj", m, d)
        }
    }

    public let config: TransformerConfig
    let wte: Tensor, wpe: Tensor
    let blocks: [Block]
    let lnfw: Tensor, lnfb: Tensor
    public let namedParameters: [(name: String, tensor: Tensor)]
    public let namedLinears: [(name: String, layer: Linear)]
    public var tokenEmbedding: Tensor { wte }
    public var softPrompt: SoftPrompt?

    /// Builds the model from Hugging Face-named weights.
    /// - Parameters:
    ///   - config: the shape (architecture `.gpt2`).
    ///   - weights: tensors named as in `model.safetensors`.
    ///   - source: the checkpoint, named in errors.
    ///   - trainable: whether parameters start with `requiresGrad`.
    /// - Throws: `TallyError` (`invalid-model`) for a missing tensor or a shape mismatch.
    public init(config: TransformerConfig, weights: [String: WeightTensor], source: String = "weights", trainable: Bool = true) throws {
        guard config.architecture == .gpt2 else {
            throw TallyError(code: .invalidModel, message: "GPT2Model cannot load a \(config.architecture) config", location: SourceLocation(file: source))
        }
        self.config = config
        let prefix = weights["transformer.wte.weight"] != nil || weights["wte.weight"] == nil ? "transformer." : ""
        let r = WeightReader(weights: weights, source: source, trainable: trainable)
        let d = config.hiddenSize
        wte = try r.tensor(prefix + "wte.weight", [config.vocabSize, d])
        wpe = try r.tensor(prefix + "wpe.weight", [config.maxPositions, d])
        blocks = try (0..<config.numLayers).map { try Block(r, config, prefix + "h.\($0).") }
        lnfw = try r.tensor(prefix + "ln_f.weight", [d])
        lnfb = try r.tensor(prefix + "ln_f.bias", [d])
        var params: [(String, Tensor)] = [("transformer.wte.weight", wte), ("transformer.wpe.weight", wpe)]
        var linears: [(String, Linear)] = []
        for (i, b) in blocks.enumerated() {
            let p = "transformer.h.\(i)."
            params += [(p + "ln_1.weight", b.ln1w), (p + "ln_1.bias", b.ln1b)]
            for (n, lin) in [("attn.c_attn", b.cAttn), ("attn.c_proj", b.cProj)] {
                linears.append((p + n, lin))
                if let w = lin.weight { params.append((p + n + ".weight", w)) }
                if let bias = lin.bias { params.append((p + n + ".bias", bias)) }
            }
            params += [(p + "ln_2.weight", b.ln2w), (p + "ln_2.bias", b.ln2b)]
            for (n, lin) in [("mlp.c_fc", b.fc), ("mlp.c_proj", b.proj)] {
                linears.append((p + n, lin))
                if let w = lin.weight { params.append((p + n + ".weight", w)) }
                if let bias = lin.bias { params.append((p + n + ".bias", bias)) }
            }
        }
        params += [("transformer.ln_f.weight", lnfw), ("transformer.ln_f.bias", lnfb)]
        namedParameters = params
        namedLinears = linears
    }

    /// The parameter shapes a config implies, by Hugging Face name.
    public static func parameterShapes(_ c: TransformerConfig) -> [(name: String, shape: [Int])] {
        let d = c.hiddenSize, m = c.intermediateSize
        var out: [(String, [Int])] = [("transformer.wte.weight", [c.vocabSize, d]), ("transformer.wpe.weight", [c.maxPositions, d])]
        for i in 0..<c.numLayers {
            let p = "transformer.h.\(i)."
            out += [
                (p + "ln_1.weight", [d]), (p + "ln_1.bias", [d]),
                (p + "attn.c_attn.weight", [d, 3 * d]), (p + "attn.c_attn.bias", [3 * d]),
                (p + "attn.c_proj.weight", [d, d]), (p + "attn.c_proj.bias", [d]),
                (p + "ln_2.weight", [d]), (p + "ln_2.bias", [d]),
                (p + "mlp.c_fc.weight", [d, m]), (p + "mlp.c_fc.bias", [m]),
                (p + "mlp.c_proj.weight", [m, d]), (p + "mlp.c_proj.bias", [d]),
            ]
        }
        out += [("transformer.ln_f.weight", [d]), ("transformer.ln_f.bias", [d])]
        return out
    }

    public func hiddenStates(_ tokens: TokenBatch, tape: Tape, cache: KVCache?) -> Tensor {
        let c = config
        let eps = Float(c.normEps)
        let d = c.hiddenSize
        let (batch, embeddings) = inputs(tokens, cache: cache, tape: tape, tokenEmbeddings: tape.embedding(tokens.ids, weight: wte))
        var positions = batch.positions
        if let cache {
            precondition(cache.active.count == batch.batch, "KV cache has \(cache.active.count) active sequences for \(batch.batch) rows")
            positions = cache.admit(mask: batch.mask, count: batch.length)
        }
        let positionIDs = positions.map { min($0, c.maxPositions - 1) }
        let keyMask = batch.isPadded ? batch.mask : nil
        var h = tape.add(embeddings, tape.embedding(positionIDs, weight: wpe))
        for (i, b) in blocks.enumerated() {
            let a = tape.layerNorm(h, weight: b.ln1w, bias: b.ln1b, eps: eps)
            let qkv = b.cAttn(a, tape: tape)
            let q = tape.sliceColumns(qkv, start: 0, width: d)
            let k = tape.sliceColumns(qkv, start: d, width: d)
            let v = tape.sliceColumns(qkv, start: 2 * d, width: d)
            let attn: Tensor
            if let cache {
                cache.store(layer: i, keys: k, values: v, count: batch.length)
                attn = cache.attend(layer: i, q: q, count: batch.length, heads: c.numHeads, headDim: c.headDim)
            } else {
                attn = tape.causalAttention(
                    q: q, k: k, v: v, batch: batch.batch, seq: batch.length, heads: c.numHeads, kvHeads: c.numHeads,
                    headDim: c.headDim, keyMask: keyMask)
            }
            h = tape.addInPlaceIfPossible(h, b.cProj(attn, tape: tape))
            let m = tape.layerNorm(h, weight: b.ln2w, bias: b.ln2b, eps: eps)
            h = tape.addInPlaceIfPossible(h, b.proj(tape.gelu(b.fc(m, tape: tape)), tape: tape))
        }
        cache?.advance(by: batch.length)
        return tape.layerNorm(h, weight: lnfw, bias: lnfb, eps: eps)
    }

    public func outputLogits(_ hidden: Tensor, tape: Tape) -> Tensor {
        tape.linear(hidden, wte)
    }
}

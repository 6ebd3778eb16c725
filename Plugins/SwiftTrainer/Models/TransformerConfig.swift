import Foundation

/// The shape of a decoder-only transformer, whichever file it came from (`config.json` of a
/// Hugging Face directory, or GGUF metadata).
public struct TransformerConfig: Codable, Sendable, Hashable {
    public enum Architecture: String, Codable, Sendable, Hashable {
        /// LlamaForCausalLM (and Llama-shaped models such as SmolLM2, Qwen2 with biases).
        case llama
        /// GPT2LMHeadModel.
        case gpt2
    }

    public var architecture: Architecture
    public var vocabSize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numLayers: Int
    public var numHeads: Int
    public var numKVHeads: Int
    public var headDim: Int
    public var maxPositions: Int
    public var ropeTheta: Double
    /// RMSNorm epsilon (llama) or LayerNorm epsilon (gpt2).
    public var normEps: Double
    public var tieWordEmbeddings: Bool
    /// Biases on q/k/v projections (Qwen2-style checkpoints).
    public var attentionBias: Bool
    /// Bias on the attention output projection.
    public var attentionOutputBias: Bool
    public var mlpBias: Bool
    public var bosTokenID: Int?
    public var eosTokenIDs: [Int]

    public init(architecture: Architecture, vocabSize: Int, hiddenSize: Int, intermediateSize: Int, numLayers: Int, numHeads: Int, numKVHeads: Int, headDim: Int? = nil, maxPositions: Int, ropeTheta: Double = 10_000, normEps: Double = 1e-5, tieWordEmbeddings: Bool, attentionBias: Bool = false, attentionOutputBias: Bool = false, mlpBias: Bool = false, bosTokenID: Int? = nil, eosTokenIDs: [Int] = []) {
        self.architecture = architecture
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.numLayers = numLayers
        self.numHeads = numHeads
        self.numKVHeads = numKVHeads
        self.headDim = headDim ?? hiddenSize / max(numHeads, 1)
        self.maxPositions = maxPositions
        self.ropeTheta = ropeTheta
        self.normEps = normEps
        self.tieWordEmbeddings = tieWordEmbeddings
        self.attentionBias = attentionBias
        self.attentionOutputBias = attentionOutputBias
        self.mlpBias = mlpBias
        self.bosTokenID = bosTokenID
        self.eosTokenIDs = eosTokenIDs
    }
}

/// A weight as read from a checkpoint, converted to Float32, named as Hugging Face names it
/// (`model.layers.0.self_attn.q_proj.weight`, shape `[out, in]` for Llama linears;
/// GPT-2 Conv1D weights keep their stored `[in, out]` layout).
public struct WeightTensor: Sendable {
    public let shape: [Int]
    public let values: [Float]

    public init(shape: [Int], values: [Float]) {
        self.shape = shape
        self.values = values
    }

    public var count: Int { shape.reduce(1, *) }
}

import Foundation

/// A model read from one GGUF file: configuration, Float32 weights with Hugging Face names,
/// tokenizer and chat template.
public struct GGUFModel: Sendable {
    public let config: TransformerConfig
    public let weights: [String: WeightTensor]
    public let tokenizer: BPETokenizer
    /// `tokenizer.chat_template`, if the file ships one.
    public var chatTemplate: String? { tokenizer.chatTemplate }

    /// Reads the GGUF file at `url` completely (weights dequantised to Float32).
    ///
    /// ```swift
    /// let model = try GGUFModel(url: URL(fileURLWithPath: "SmolLM2-135M-Instruct.Q4_1.gguf"))
    /// print(model.config.numLayers, model.weights["model.norm.weight"]?.shape ?? [])
    /// ```
    /// - Throws: `GGUFError` for a malformed, truncated or unsupported model file,
    ///   `TokenizerError` for an unusable embedded tokenizer.
    public init(url: URL) throws {
        let file = try GGUFFile(url: url)
        config = try GGUFLlama.config(from: file)
        tokenizer = try BPETokenizer(gguf: file)
        weights = try GGUFLlama.weights(from: file, config: config)
    }

    /// `(config, weights, tokenizer)` of the GGUF file at `url`; see `init(url:)`.
    /// - Throws: `GGUFError` or `TokenizerError`.
    public static func load(_ url: URL) throws -> (TransformerConfig, [String: WeightTensor], BPETokenizer) {
        let model = try GGUFModel(url: url)
        return (model.config, model.weights, model.tokenizer)
    }
}

import Foundation
import TallyCore

/// A model read from one GGUF file: configuration, Float32 weights with Hugging Face names,
/// tokenizer and chat template.
public struct GGUFModel: Sendable {
    public let config: TransformerConfig
    public let weights: [String: WeightTensor]
    /// Matrices kept in their block format (only when loaded with `storage: .quantised`).
    public let quantizedWeights: [String: QuantizedMatrix]
    public let tokenizer: BPETokenizer
    /// `tokenizer.chat_template`, if the file ships one.
    public var chatTemplate: String? { tokenizer.chatTemplate }

    /// Reads the GGUF file at `url` completely: weights dequantised to Float32, or with
    /// `storage: .quantised` the quantised matrices kept as they are (``QuantizedMatrix``).
    ///
    /// ```swift
    /// let model = try GGUFModel(url: URL(fileURLWithPath: "SmolLM2-135M-Instruct.Q4_1.gguf"))
    /// print(model.config.numLayers, model.weights["model.norm.weight"]?.shape ?? [])
    /// ```
    /// - Throws: `GGUFError` for a malformed, truncated or unsupported model file,
    ///   `TokenizerError` for an unusable embedded tokenizer.
    public init(url: URL, storage: WeightStorage = .f32) throws {
        let file = try GGUFFile(url: url)
        config = try GGUFLlama.config(from: file)
        tokenizer = try BPETokenizer(gguf: file)
        (weights, quantizedWeights) = try GGUFLlama.weights(from: file, config: config, storage: storage)
    }

    /// `(config, weights, tokenizer)` of the GGUF file at `url`; see `init(url:)`.
    /// - Throws: `GGUFError` or `TokenizerError`.
    public static func load(_ url: URL) throws -> (TransformerConfig, [String: WeightTensor], BPETokenizer) {
        let model = try GGUFModel(url: url)
        return (model.config, model.weights, model.tokenizer)
    }
}

/// Everything needed to run a local model, from a GGUF file or a Hugging Face directory.
public struct ModelFiles: Sendable {
    public let config: TransformerConfig
    /// Float32 weights by Hugging Face name.
    public let weights: [String: WeightTensor]
    public let tokenizer: BPETokenizer
    /// The file or directory the model came from.
    public let source: URL

    /// The model's chat template (ChatML when it ships none).
    public var chatTemplate: ChatTemplate { ChatTemplate(tokenizer: tokenizer, origin: source.path) }

    /// Reads a `.gguf` file or a Hugging Face model directory (`config.json`,
    /// `model.safetensors` or shards, `tokenizer.json`, optional `tokenizer_config.json`).
    ///
    /// ```swift
    /// let files = try ModelFiles.load(url)
    /// let model = try ModelLoader.model(config: files.config, weights: files.weights, source: url.path)
    /// let prompt = files.tokenizer.encode(try files.chatTemplate.render(messages: messages, addGenerationPrompt: true))
    /// ```
    /// - Parameter url: the GGUF file or the model directory.
    /// - Throws: `TallyError` (`invalid-model` or `io`) naming the file and what is wrong.
    public static func load(_ url: URL) throws -> ModelFiles {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw TallyError(code: .io, message: "no model file or directory at this path", location: SourceLocation(file: url.path))
        }
        do {
            if isDirectory.boolValue {
                let (config, weights) = try ModelLoader.huggingFaceDirectory(url)
                let tokenizer = try BPETokenizer(huggingFaceDirectory: url)
                return ModelFiles(config: config, weights: weights, tokenizer: tokenizer, source: url)
            }
            let model = try GGUFModel(url: url)
            return ModelFiles(config: model.config, weights: model.weights, tokenizer: model.tokenizer, source: url)
        } catch let error as GGUFError {
            throw error.tallyError
        } catch let error as TokenizerError {
            throw error.tallyError
        }
    }
}

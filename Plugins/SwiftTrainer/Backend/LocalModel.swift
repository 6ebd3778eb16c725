import Foundation
import TallyCore
import TallyTensor

/// A model ready to answer chat requests: weights, tokenizer and chat template together.
public final class LocalModel {
    /// The network.
    public let model: any CausalLanguageModel
    /// Its tokenizer.
    public let tokenizer: BPETokenizer
    /// The chat template the model ships (ChatML when it ships none).
    public let template: ChatTemplate
    /// Where it was loaded from.
    public let source: URL
    /// A stable identity of these weights, tokenizer and template (``ModelIdentity``), part
    /// of every ledger cache key.
    public let identity: String

    /// Wraps an already loaded model.
    public init(model: any CausalLanguageModel, tokenizer: BPETokenizer, template: ChatTemplate, source: URL, identity: String) {
        self.model = model
        self.tokenizer = tokenizer
        self.template = template
        self.source = source
        self.identity = identity
    }

    /// Loads a model from a GGUF file or a Hugging Face directory (`config.json`,
    /// `model.safetensors`, `tokenizer.json`, optional `tokenizer_config.json`).
    /// - Parameters:
    ///   - url: the `.gguf` file or the model directory.
    ///   - trainable: whether parameters start with `requiresGrad` (fine-tuning).
    ///   - storage: `.quantised` keeps a GGUF file's quantised matrices as they are (for
    ///     generation and scoring only: they never train, and LoRA adapters stay unmerged on
    ///     them); ignored (Float32) when `trainable` or for a Hugging Face directory.
    ///   - identity: the model's identity when the caller already knows it; computed from
    ///     the files' contents and `storage` (``ModelIdentity``) when nil.
    ///   - digests: where file digests are remembered (by default in this call only).
    /// - Throws: `TallyError` (`invalid-model`) naming the file that is missing or malformed.
    public static func load(
        _ url: URL, trainable: Bool = false, storage: WeightStorage = .f32, identity: String? = nil,
        digests: FileDigestCache = FileDigestCache(store: nil)
    ) throws -> LocalModel {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw TallyError(code: .invalidModel, message: "model not found at \(url.path); give a .gguf file, a Hugging Face model directory, or a name from `tally models list`")
        }
        do {
            let storage = trainable ? WeightStorage.f32 : storage
            let identity = try identity ?? ModelIdentity.of(model: url, storage: storage, digests: digests)
            if isDirectory.boolValue {
                return try loadDirectory(url, trainable: trainable, identity: identity)
            }
            let gguf = try GGUFModel(url: url, storage: storage)
            let model = try ModelLoader.model(
                config: gguf.config, weights: gguf.weights, quantized: gguf.quantizedWeights, source: url.path, trainable: trainable)
            return LocalModel(
                model: model, tokenizer: gguf.tokenizer, template: ChatTemplate(tokenizer: gguf.tokenizer, origin: url.path),
                source: url, identity: identity)
        } catch let error as TallyError {
            throw error
        } catch let error as TokenizerError {
            throw error.tallyError
        } catch {
            throw TallyError(code: .invalidModel, message: "cannot load the model at \(url.path)", underlying: error)
        }
    }

    /// A Hugging Face model directory.
    static func loadDirectory(_ directory: URL, trainable: Bool, identity: String) throws -> LocalModel {
        let (config, weights) = try ModelLoader.huggingFaceDirectory(directory)
        let model = try ModelLoader.model(config: config, weights: weights, source: directory.path, trainable: trainable)
        let tokenizer = try loadTokenizer(directory: directory)
        return LocalModel(
            model: model, tokenizer: tokenizer,
            template: ChatTemplate(tokenizer: tokenizer, origin: directory.appendingPathComponent("tokenizer_config.json").path),
            source: directory, identity: identity)
    }

    /// `tokenizer.json` of a model directory, with the chat template and special tokens from
    /// `tokenizer_config.json` when present.
    static func loadTokenizer(directory: URL) throws -> BPETokenizer {
        let tokenizerFile = directory.appendingPathComponent("tokenizer.json")
        guard FileManager.default.fileExists(atPath: tokenizerFile.path) else {
            throw TallyError(code: .invalidModel, message: "\(directory.path) has no tokenizer.json; Tally needs the model's tokenizer next to its weights", location: SourceLocation(file: tokenizerFile.path))
        }
        var eos: [String] = []
        var bos: String?
        var template: String?
        let configFile = directory.appendingPathComponent("tokenizer_config.json")
        if let data = try? Data(contentsOf: configFile),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        {
            template = object["chat_template"] as? String
            if let token = tokenString(object["eos_token"]) { eos.append(token) }
            bos = tokenString(object["bos_token"])
        }
        do {
            return try BPETokenizer(tokenizerJSON: tokenizerFile, eosTokens: eos, bosToken: bos, chatTemplate: template)
        } catch let error as TokenizerError {
            throw error.tallyError
        }
    }

    /// A special token as `tokenizer_config.json` writes it: a string or `{"content": …}`.
    static func tokenString(_ value: Any?) -> String? {
        if let text = value as? String { return text }
        if let object = value as? [String: Any] { return object["content"] as? String }
        return nil
    }

    /// Token ids that end an answer: the tokenizer's EOS ids and the chat end-of-turn marker.
    public var stopTokenIDs: Set<Int> {
        var ids = Set(tokenizer.eosTokenIDs)
        for marker in ["<|im_end|>", "<|eot_id|>", "<|endoftext|>"] {
            if let id = tokenizer.id(for: marker) { ids.insert(id) }
        }
        return ids
    }

    /// The prompt ids of a chat, rendered with the model's template.
    /// - Throws: `TallyError` when the template cannot be rendered.
    public func promptIDs(_ messages: [ChatMessage]) throws -> [Int] {
        do {
            let text = try template.render(messages: messages, addGenerationPrompt: true)
            return tokenizer.encode(text, addSpecialTokens: false)
        } catch let error as ChatTemplateError {
            throw TallyError(code: .invalidModel, message: "cannot render the prompt: \(error.from(source.path).description)")
        }
    }
}

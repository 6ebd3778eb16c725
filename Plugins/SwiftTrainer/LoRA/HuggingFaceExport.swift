import Foundation
import TallyCore
import TallyTensor

/// Writes a model as a Hugging Face directory (`config.json`, `model.safetensors`, and the
/// tokenizer files when available) that `AutoModelForCausalLM.from_pretrained` and
/// ``ModelLoader/load(huggingFaceDirectory:trainable:)`` open.
public enum HuggingFaceExport {
    /// `config.json` contents for `config`.
    public static func configJSON(_ c: TransformerConfig) -> [String: Any] {
        var out: [String: Any] = ["vocab_size": c.vocabSize, "tie_word_embeddings": c.tieWordEmbeddings, "dtype": "float32", "use_cache": true]
        if let bos = c.bosTokenID { out["bos_token_id"] = bos }
        if c.eosTokenIDs.count == 1 { out["eos_token_id"] = c.eosTokenIDs[0] } else if !c.eosTokenIDs.isEmpty { out["eos_token_id"] = c.eosTokenIDs }
        switch c.architecture {
        case .gpt2:
            out["architectures"] = ["GPT2LMHeadModel"]
            out["model_type"] = "gpt2"
            out["n_embd"] = c.hiddenSize
            out["n_layer"] = c.numLayers
            out["n_head"] = c.numHeads
            out["n_inner"] = c.intermediateSize
            out["n_positions"] = c.maxPositions
            out["layer_norm_epsilon"] = c.normEps
            out["activation_function"] = "gelu_new"
        case .llama:
            let qwen2 = c.attentionBias && !c.attentionOutputBias
            out["architectures"] = [qwen2 ? "Qwen2ForCausalLM" : "LlamaForCausalLM"]
            out["model_type"] = qwen2 ? "qwen2" : "llama"
            out["hidden_size"] = c.hiddenSize
            out["intermediate_size"] = c.intermediateSize
            out["num_hidden_layers"] = c.numLayers
            out["num_attention_heads"] = c.numHeads
            out["num_key_value_heads"] = c.numKVHeads
            out["head_dim"] = c.headDim
            out["max_position_embeddings"] = c.maxPositions
            out["rms_norm_eps"] = c.normEps
            out["rope_theta"] = c.ropeTheta
            out["rope_parameters"] = ["rope_theta": c.ropeTheta, "rope_type": "default"] as [String: Any]
            out["hidden_act"] = "silu"
            if !qwen2 { out["attention_bias"] = c.attentionBias }
            out["mlp_bias"] = c.mlpBias
        }
        return out
    }

    /// Writes `model`'s current weights (a tied embedding once, as transformers saves it).
    /// - Parameters:
    ///   - model: the model; adapters must be merged and unloaded first for a merged model.
    ///   - directory: created if needed.
    ///   - tokenizerFiles: files to copy beside the weights (`tokenizer.json`,
    ///     `tokenizer_config.json`, ...), skipped when missing.
    ///   - tokenizer: when given, the tokenizer files that `tokenizerFiles` did not provide
    ///     (`tokenizer.json`, `tokenizer_config.json` with the chat template) are written from
    ///     it, and `generation_config.json` names its stop tokens: the directory then opens on
    ///     its own, even when the model came from a GGUF file.
    /// - Throws: `TallyError` (`io`) if a file cannot be written.
    public static func save(_ model: any CausalLanguageModel, to directory: URL, tokenizerFiles: [URL] = [], tokenizer: ExportTokenizer? = nil) throws {
        let fm = FileManager.default
        do {
            try fm.createDirectory(at: directory, withIntermediateDirectories: true)
            let json = try JSONSerialization.data(withJSONObject: configJSON(model.config), options: [.prettyPrinted, .sortedKeys])
            try json.write(to: directory.appendingPathComponent("config.json"), options: .atomic)
        } catch {
            throw TallyError(code: .io, message: "cannot write config.json: \(error.localizedDescription)", location: SourceLocation(file: directory.path), underlying: error)
        }
        try SafeTensorsFile.write(model.stateDict(), metadata: ["format": "pt"], to: directory.appendingPathComponent("model.safetensors"))
        for file in tokenizerFiles where fm.fileExists(atPath: file.path) {
            let dest = directory.appendingPathComponent(file.lastPathComponent)
            do {
                if fm.fileExists(atPath: dest.path) { try fm.removeItem(at: dest) }
                try fm.copyItem(at: file, to: dest)
            } catch {
                throw TallyError(code: .io, message: "cannot copy \(file.lastPathComponent): \(error.localizedDescription)", location: SourceLocation(file: dest.path), underlying: error)
            }
        }
        guard let tokenizer else { return }
        if !fm.fileExists(atPath: directory.appendingPathComponent("tokenizer.json").path) {
            do {
                try tokenizer.tokenizer.writeHuggingFaceFiles(to: directory, maxLength: model.config.maxPositions)
            } catch let error as TokenizerError {
                throw error.tallyError
            }
        }
        var generation: [String: Any] = ["eos_token_id": tokenizer.stopTokenIDs.sorted()]
        if let bos = tokenizer.tokenizer.bosTokenID { generation["bos_token_id"] = bos }
        if let pad = tokenizer.stopTokenIDs.min() { generation["pad_token_id"] = pad }
        let url = directory.appendingPathComponent("generation_config.json")
        do {
            try JSONSerialization.data(withJSONObject: generation, options: [.prettyPrinted, .sortedKeys]).write(to: url, options: .atomic)
        } catch {
            throw TallyError(code: .io, message: "cannot write generation_config.json: \(error.localizedDescription)", location: SourceLocation(file: url.path), underlying: error)
        }
    }
}

/// The tokenizer a saved model directory or GGUF file carries: the tokenizer with the chat
/// template Tally renders (ChatML when the model shipped none), and the ids that end a reply.
public struct ExportTokenizer: Sendable {
    public let tokenizer: BPETokenizer
    public let stopTokenIDs: Set<Int>

    /// The export form of a loaded model's tokenizer.
    public init(_ local: LocalModel) {
        var tokenizer = local.tokenizer
        tokenizer.chatTemplate = local.template.source
        self.tokenizer = tokenizer
        self.stopTokenIDs = local.stopTokenIDs
    }
}

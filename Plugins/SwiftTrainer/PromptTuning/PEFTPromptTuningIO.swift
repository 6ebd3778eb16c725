import Foundation
import TallyCore
import TallyTensor

/// Reads and writes prompt-tuning adapters in PEFT's own layout, so that
/// `PeftModel.from_pretrained(base, dir)` opens what Tally trains and Tally opens what PEFT
/// trains:
/// - `adapter_config.json`: PEFT's `PromptTuningConfig` fields (`peft_type` `PROMPT_TUNING`,
///   `task_type` `CAUSAL_LM`, `num_virtual_tokens`, `token_dim`, `num_transformer_submodules`
///   1, `prompt_tuning_init` `RANDOM` or `TEXT`, `prompt_tuning_init_text`,
///   `tokenizer_name_or_path`, `base_model_name_or_path`, ...).
/// - `adapter_model.safetensors`: one tensor, `prompt_embeddings`
///   `[num_virtual_tokens, token_dim]` (in memory PEFT names it
///   `prompt_encoder.default.embedding.weight`; both are accepted on load).
public enum PEFTPromptTuning {
    /// The on-disk key of the embeddings.
    public static let weightKey = "prompt_embeddings"
    /// `peft_type` of a prompt-tuning adapter.
    public static let peftType = "PROMPT_TUNING"

    /// The adapter's tensors by on-disk key.
    public static func stateDict(_ tuning: PromptTuningModel) -> [String: WeightTensor] {
        let e = tuning.prompt.embeddings
        return [weightKey: WeightTensor(shape: e.shape, values: e.values)]
    }

    /// PEFT's `adapter_config.json` for `tuning`.
    /// - Parameters:
    ///   - tuning: the prompt-tuned model.
    ///   - baseModel: `base_model_name_or_path` and `tokenizer_name_or_path` (the model's
    ///     name or path), if known.
    public static func configJSON(_ tuning: PromptTuningModel, baseModel: String?) -> [String: Any] {
        let null = NSNull()
        let c = tuning.base.config
        let text = tuning.configuration.initText
        return [
            "auto_mapping": null, "base_model_name_or_path": baseModel ?? null, "inference_mode": true,
            "modules_to_save": null, "num_attention_heads": c.numHeads, "num_layers": c.numLayers,
            "num_transformer_submodules": 1, "num_virtual_tokens": tuning.prompt.count,
            "peft_type": peftType, "peft_version": PEFTAdapter.peftVersion,
            "prompt_tuning_init": text == nil ? "RANDOM" : "TEXT", "prompt_tuning_init_text": text ?? null,
            "revision": null, "task_type": "CAUSAL_LM", "token_dim": c.hiddenSize, "tokenizer_kwargs": null,
            // PEFT requires a tokenizer with TEXT init; it loads it only to initialise a new prompt.
            "tokenizer_name_or_path": baseModel ?? null,
        ]
    }

    /// Writes `adapter_config.json` and `adapter_model.safetensors` into `directory`
    /// (created if needed; each file replaced atomically).
    /// - Parameters:
    ///   - tuning: the prompt-tuned model.
    ///   - directory: the adapter directory.
    ///   - baseModel: recorded as `base_model_name_or_path` and `tokenizer_name_or_path`.
    /// - Throws: `TallyError` (`io`) if a file cannot be written.
    public static func save(_ tuning: PromptTuningModel, to directory: URL, baseModel: String? = nil) throws {
        let url = directory.appendingPathComponent(PEFTAdapter.configFile)
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let json = try JSONSerialization.data(withJSONObject: configJSON(tuning, baseModel: baseModel), options: [.prettyPrinted, .sortedKeys])
            try json.write(to: url, options: .atomic)
        } catch {
            throw TallyError(code: .io, message: "cannot write the adapter config: \(error.localizedDescription)", location: SourceLocation(file: url.path), underlying: error)
        }
        try SafeTensorsFile.write(stateDict(tuning), metadata: ["format": "pt"], to: directory.appendingPathComponent(PEFTAdapter.weightsFile))
    }

    /// Reads a prompt-tuning adapter's settings from `adapter_config.json`.
    /// - Throws: `TallyError` (`invalid-model`) naming the file and field when the config is
    ///   not a causal-LM prompt-tuning config Tally can apply.
    public static func readConfiguration(_ directory: URL) throws -> PromptTuningConfiguration {
        let url = directory.appendingPathComponent(PEFTAdapter.configFile)
        let loc = SourceLocation(file: url.path)
        let c = try PEFTAdapter.readConfigObject(directory)
        guard let type = c["peft_type"] as? String, type == peftType else {
            throw TallyError(code: .invalidModel, message: "field 'peft_type' is \((c["peft_type"] as? String).map { "'\($0)'" } ?? "missing"); a prompt-tuning adapter has '\(peftType)'", location: loc)
        }
        if let task = c["task_type"] as? String, task != "CAUSAL_LM" {
            throw TallyError(code: .invalidModel, message: "field 'task_type' is '\(task)'; only CAUSAL_LM prompt tuning is supported", location: loc)
        }
        if let sub = (c["num_transformer_submodules"] as? NSNumber)?.intValue, sub != 1 {
            throw TallyError(code: .invalidModel, message: "field 'num_transformer_submodules' is \(sub); a decoder-only model has 1", location: loc)
        }
        guard let n = (c["num_virtual_tokens"] as? NSNumber)?.intValue, n >= 1 else {
            throw TallyError(code: .invalidModel, message: "field 'num_virtual_tokens' is missing or not a positive integer", location: loc)
        }
        let initialization: PromptTuningConfiguration.Initialization
        switch c["prompt_tuning_init"] as? String ?? "RANDOM" {
        case "TEXT":
            guard let text = c["prompt_tuning_init_text"] as? String else {
                throw TallyError(code: .invalidModel, message: "field 'prompt_tuning_init' is TEXT but 'prompt_tuning_init_text' is missing", location: loc)
            }
            initialization = .text(text)
        default:
            // RANDOM and SAMPLE_VOCAB only say how training started; the weights file holds the result.
            initialization = .random
        }
        return PromptTuningConfiguration(numVirtualTokens: n, initialization: initialization)
    }

    /// Attaches the prompt-tuning adapter in `directory` to `model` (freezing the model's own
    /// weights).
    /// - Parameters:
    ///   - directory: a PEFT prompt-tuning adapter directory.
    ///   - model: the base model the adapter was trained on.
    /// - Returns: the prompt-tuned model.
    /// - Throws: `TallyError` (`invalid-model`) naming the file and tensor for a missing file
    ///   or tensor, a shape that does not fit the model, or a model that already carries a
    ///   soft prompt.
    public static func load(from directory: URL, into model: any CausalLanguageModel) throws -> PromptTuningModel {
        let configuration = try readConfiguration(directory)
        let weightsURL = directory.appendingPathComponent(PEFTAdapter.weightsFile)
        let tensors = try SafeTensorsFile(contentsOf: weightsURL).floatTensors()
        let loc = SourceLocation(file: weightsURL.path)
        guard let w = tensors[weightKey] ?? tensors[PromptTuningModel.parameterName] else {
            throw TallyError(code: .invalidModel, message: "no tensor '\(weightKey)' (found: \(tensors.keys.sorted().joined(separator: ", "))); is this a prompt-tuning adapter?", location: loc)
        }
        let n = configuration.numVirtualTokens, d = model.config.hiddenSize
        guard w.shape == [n, d], w.values.count == n * d else {
            throw TallyError(
                code: .invalidModel,
                message: "tensor '\(weightKey)' has shape \(w.shape) but num_virtual_tokens \(n) and the model's hidden size \(d) need [\(n), \(d)]; is this the adapter of another base model?",
                location: loc)
        }
        let embeddings = try PromptTuningModel.tensor([n, d], w.values)
        return try PromptTuningModel(base: model, configuration: configuration, embeddings: embeddings)
    }
}

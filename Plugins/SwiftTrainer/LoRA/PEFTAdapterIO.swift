import Foundation
import TallyCore
import TallyTensor

/// Reads and writes LoRA adapters in PEFT's own layout, so that
/// `PeftModel.from_pretrained(base, dir)` opens what Tally trains and Tally opens what PEFT
/// trains:
/// - `adapter_config.json`: PEFT's `LoraConfig` fields (`peft_type` `LORA`, `r`, `lora_alpha`,
///   `lora_dropout`, `target_modules`, `use_rslora`, ...).
/// - `adapter_model.safetensors`: `base_model.model.<module>.lora_A.weight` `[r, in]` and
///   `...lora_B.weight` `[out, r]`. PEFT drops the adapter name (`.default`) on disk; the
///   in-memory names (and `grads.safetensors` dumps) carry it. Both are accepted on load.
public enum PEFTAdapter {
    /// The adapter's config file name.
    public static let configFile = "adapter_config.json"
    /// The adapter's weights file name.
    public static let weightsFile = "adapter_model.safetensors"
    /// The PEFT version whose layout the files follow.
    public static let peftVersion = "0.21.0"

    /// The on-disk key of an adapter matrix (`which` is `A` or `B`).
    public static func diskKey(module: String, _ which: String) -> String {
        "base_model.model.\(module).lora_\(which).weight"
    }

    /// The adapter's tensors by on-disk key.
    public static func stateDict(_ lora: LoRAModel) -> [String: WeightTensor] {
        var out: [String: WeightTensor] = [:]
        for m in lora.adapters {
            out[diskKey(module: m.module, "A")] = WeightTensor(shape: m.adapter.a.shape, values: m.adapter.a.values)
            out[diskKey(module: m.module, "B")] = WeightTensor(shape: m.adapter.b.shape, values: m.adapter.b.values)
        }
        return out
    }

    /// PEFT's `adapter_config.json` for `lora`.
    /// - Parameters:
    ///   - lora: the adapted model.
    ///   - baseModel: `base_model_name_or_path` (the model's name or path), if known.
    public static func configJSON(_ lora: LoRAModel, baseModel: String?) -> [String: Any] {
        // PEFT expands all-linear to the leaf names of the modules it adapted.
        let leafNames = Set(lora.adapters.map { $0.module.split(separator: ".").last.map(String.init) ?? $0.module }).sorted()
        let targets: [String]
        if lora.configuration.targets.count == 1, lora.configuration.targets[0].lowercased() == "all-linear" {
            targets = leafNames
        } else {
            targets = lora.configuration.targets
        }
        let null = NSNull()
        return [
            "alora_invocation_tokens": null, "alpha_pattern": [String: Any](), "arrow_config": null, "auto_mapping": null,
            "base_model_name_or_path": baseModel ?? null, "bias": "none", "corda_config": null,
            "ensure_weight_tying": false, "eva_config": null, "exclude_modules": null,
            "fan_in_fan_out": lora.adapters.first?.layer.layout == .inOut, "inference_mode": true,
            "init_lora_weights": true, "kasa_config": null, "layer_replication": null, "layers_pattern": null,
            "layers_to_transform": null, "loftq_config": [String: Any](), "lora_alpha": lora.configuration.alpha,
            "lora_bias": false, "lora_dropout": lora.configuration.dropout, "lora_ga_config": null,
            "megatron_config": null, "megatron_core": "megatron.core", "modules_to_save": null,
            "monteclora_config": null, "peft_type": "LORA", "peft_version": peftVersion, "qalora_group_size": 16,
            "r": lora.configuration.rank, "rank_pattern": [String: Any](), "revision": null,
            "target_modules": targets, "target_parameters": null, "task_type": "CAUSAL_LM",
            "trainable_token_indices": null, "use_bdlora": null, "use_dora": false, "use_qalora": false,
            "use_rslora": lora.configuration.useRSLoRA, "velora_config": null,
        ]
    }

    /// Writes `adapter_config.json` and `adapter_model.safetensors` into `directory`
    /// (created if needed; each file replaced atomically).
    /// - Parameters:
    ///   - lora: the adapted model.
    ///   - directory: the adapter directory.
    ///   - baseModel: recorded as `base_model_name_or_path`.
    /// - Throws: `TallyError` (`io`) if a file cannot be written.
    public static func save(_ lora: LoRAModel, to directory: URL, baseModel: String? = nil) throws {
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let json = try JSONSerialization.data(withJSONObject: configJSON(lora, baseModel: baseModel), options: [.prettyPrinted, .sortedKeys])
            try json.write(to: directory.appendingPathComponent(configFile), options: .atomic)
        } catch let e as TallyError {
            throw e
        } catch {
            throw TallyError(code: .io, message: "cannot write the adapter config: \(error.localizedDescription)", location: SourceLocation(file: directory.appendingPathComponent(configFile).path), underlying: error)
        }
        try SafeTensorsFile.write(stateDict(lora), metadata: ["format": "pt"], to: directory.appendingPathComponent(weightsFile))
    }

    /// Reads an adapter's settings from `adapter_config.json`.
    /// - Throws: `TallyError` (`invalid-model`) naming the file and field when the config is
    ///   not a plain LoRA config Tally can apply.
    public static func readConfiguration(_ directory: URL) throws -> LoRAConfiguration {
        let url = directory.appendingPathComponent(configFile)
        let loc = SourceLocation(file: url.path)
        let c = try readConfigObject(directory)
        if let type = c["peft_type"] as? String, type != "LORA" {
            throw TallyError(code: .invalidModel, message: "field 'peft_type' is '\(type)'; a LoRA adapter has 'LORA' (Tally applies LORA and PROMPT_TUNING adapters)", location: loc)
        }
        if (c["use_dora"] as? Bool) == true {
            throw TallyError(code: .invalidModel, message: "field 'use_dora' is true; DoRA adapters are not supported", location: loc)
        }
        if let bias = c["bias"] as? String, bias != "none" {
            throw TallyError(code: .invalidModel, message: "field 'bias' is '\(bias)'; only bias 'none' is supported", location: loc)
        }
        for field in ["alpha_pattern", "rank_pattern"] {
            if let p = c[field] as? [String: Any], !p.isEmpty {
                throw TallyError(code: .invalidModel, message: "field '\(field)' is not empty; per-module ranks and alphas are not supported", location: loc)
            }
        }
        guard let r = (c["r"] as? NSNumber)?.intValue, r >= 1 else {
            throw TallyError(code: .invalidModel, message: "field 'r' is missing or not a positive integer", location: loc)
        }
        let alpha = (c["lora_alpha"] as? NSNumber)?.doubleValue ?? 8
        let dropout = (c["lora_dropout"] as? NSNumber)?.doubleValue ?? 0
        let targets: [String]
        if let list = c["target_modules"] as? [String] {
            targets = list
        } else if let one = c["target_modules"] as? String {
            targets = [one]
        } else {
            targets = []
        }
        return LoRAConfiguration(rank: r, alpha: alpha, dropout: dropout, targets: targets, useRSLoRA: (c["use_rslora"] as? Bool) ?? false)
    }

    /// `adapter_config.json` of an adapter directory as a JSON object.
    /// - Throws: `TallyError` (`invalid-model`) naming the file when it is missing or not a
    ///   JSON object.
    static func readConfigObject(_ directory: URL) throws -> [String: Any] {
        let url = directory.appendingPathComponent(configFile)
        let loc = SourceLocation(file: url.path)
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(contentsOf: url))
        } catch {
            throw TallyError(code: .invalidModel, message: "cannot read the PEFT adapter config: \(error.localizedDescription); an adapter directory holds adapter_config.json and adapter_model.safetensors", location: loc, underlying: error)
        }
        guard let c = object as? [String: Any] else {
            throw TallyError(code: .invalidModel, message: "adapter_config.json is not a JSON object", location: loc)
        }
        return c
    }

    /// An adapter applied to a model by ``apply(from:to:)``.
    public enum Applied {
        /// A LoRA adapter, merged into the base weights.
        case lora
        /// A soft prompt, attached to the model (it stays in front of every input).
        case promptTuning(PromptTuningModel)
    }

    /// Applies the PEFT adapter in `directory` to `model` for inference, whatever its
    /// `peft_type`: a LoRA adapter is merged into the weights (as `merge_and_unload`), a
    /// prompt-tuning adapter is attached as the model's soft prompt.
    /// - Returns: what was applied.
    /// - Throws: `TallyError` (`invalid-model`) naming the file for an adapter type Tally does
    ///   not support or an adapter that does not fit the model.
    @discardableResult
    public static func apply(from directory: URL, to model: any CausalLanguageModel) throws -> Applied {
        let type = try readConfigObject(directory)["peft_type"] as? String ?? "LORA"
        switch type {
        case PEFTPromptTuning.peftType:
            return .promptTuning(try PEFTPromptTuning.load(from: directory, into: model))
        case "LORA":
            try load(from: directory, into: model).mergeAndUnload()
            return .lora
        default:
            throw TallyError(
                code: .invalidModel, message: "field 'peft_type' is '\(type)'; Tally applies LORA and PROMPT_TUNING adapters",
                location: SourceLocation(file: directory.appendingPathComponent(configFile).path))
        }
    }

    /// Attaches the adapter in `directory` to `model` (freezing the model's own weights).
    /// The adapted modules are those the weights file names; each must be a linear layer of
    /// the model with matching shapes.
    /// - Parameters:
    ///   - directory: a PEFT adapter directory.
    ///   - model: the base model the adapter was trained on.
    /// - Returns: the adapted model.
    /// - Throws: `TallyError` (`invalid-model`) naming the file and tensor for a missing file,
    ///   a key that names no linear layer, or a shape that does not fit.
    public static func load(from directory: URL, into model: any CausalLanguageModel) throws -> LoRAModel {
        let configuration = try readConfiguration(directory)
        let weightsURL = directory.appendingPathComponent(weightsFile)
        let file = try SafeTensorsFile(contentsOf: weightsURL)
        let tensors = try file.floatTensors()
        let loc = SourceLocation(file: weightsURL.path)
        var byModule: [String: (a: WeightTensor?, b: WeightTensor?)] = [:]
        for (key, t) in tensors {
            guard key.hasPrefix("base_model.model.") else {
                throw TallyError(code: .invalidModel, message: "tensor '\(key)' is not a PEFT LoRA key (expected base_model.model.<module>.lora_A.weight)", location: loc)
            }
            var rest = String(key.dropFirst("base_model.model.".count))
            rest = rest.replacingOccurrences(of: ".default.weight", with: ".weight")
            if rest.hasSuffix(".lora_A.weight") {
                byModule[String(rest.dropLast(".lora_A.weight".count)), default: (nil, nil)].a = t
            } else if rest.hasSuffix(".lora_B.weight") {
                byModule[String(rest.dropLast(".lora_B.weight".count)), default: (nil, nil)].b = t
            } else {
                throw TallyError(code: .invalidModel, message: "tensor '\(key)' is not a LoRA A or B matrix; only plain LoRA adapters (no modules_to_save, no bias) are supported", location: loc)
            }
        }
        let linears = Dictionary(model.namedLinears.map { ($0.name, $0.layer) }, uniquingKeysWith: { a, _ in a })
        var modules: [(String, Linear, WeightTensor, WeightTensor)] = []
        for (name, layer) in model.namedLinears {
            guard let pair = byModule[name] else { continue }
            guard let a = pair.a, let b = pair.b else {
                throw TallyError(code: .invalidModel, message: "module '\(name)' has only one of lora_A and lora_B", location: loc)
            }
            let r = configuration.rank
            guard a.shape == [r, layer.inFeatures], b.shape == [layer.outFeatures, r] else {
                throw TallyError(
                    code: .invalidModel,
                    message: "module '\(name)': lora_A \(a.shape) / lora_B \(b.shape) do not fit a rank-\(r) adapter on a \(layer.inFeatures) -> \(layer.outFeatures) layer (expected [\(r), \(layer.inFeatures)] and [\(layer.outFeatures), \(r)]); is this the adapter of another base model?",
                    location: loc)
            }
            modules.append((name, layer, a, b))
        }
        for name in byModule.keys where linears[name] == nil {
            throw TallyError(code: .invalidModel, message: "the adapter adapts module '\(name)', which the base model does not have; is this the adapter of another base model?", location: loc)
        }
        guard !modules.isEmpty else {
            throw TallyError(code: .invalidModel, message: "the adapter holds no LoRA tensors", location: loc)
        }
        let lora = try LoRAModel(base: model, configuration: configuration, modules: modules.map { ($0.0, $0.1) }, seed: 0)
        for (i, m) in modules.enumerated() {
            try lora.adapters[i].adapter.a.copy(from: m.2.values)
            try lora.adapters[i].adapter.b.copy(from: m.3.values)
        }
        return lora
    }
}

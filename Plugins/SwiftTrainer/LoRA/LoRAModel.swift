import Foundation
import TallyCore
import TallyTensor

/// LoRA settings as PEFT's `LoraConfig` holds them.
public struct LoRAConfiguration: Sendable, Hashable, Codable {
    /// `r`.
    public var rank: Int
    /// `lora_alpha`.
    public var alpha: Double
    /// `lora_dropout`.
    public var dropout: Double
    /// `target_modules`: module names (`q_proj`, or full paths such as
    /// `model.layers.0.self_attn.q_proj`), or `["all-linear"]`.
    public var targets: [String]
    /// `use_rslora`: scale by `alpha / sqrt(r)`.
    public var useRSLoRA: Bool

    /// Makes a configuration.
    public init(rank: Int = 8, alpha: Double = 16, dropout: Double = 0, targets: [String] = ["all-linear"], useRSLoRA: Bool = false) {
        self.rank = rank
        self.alpha = alpha
        self.dropout = dropout
        self.targets = targets
        self.useRSLoRA = useRSLoRA
    }

    /// The configuration a recipe's ``LoRAOptions`` describe.
    public init(_ options: LoRAOptions) {
        self.init(rank: options.rank, alpha: options.alpha, dropout: options.dropout, targets: options.targets, useRSLoRA: options.useRSLoRA)
    }

    /// `alpha / r`, or `alpha / sqrt(r)` with rsLoRA.
    public var scaling: Double { useRSLoRA ? alpha / Double(rank).squareRoot() : alpha / Double(rank) }

    /// Checks the values.
    /// - Throws: `TallyError` (`invalid-recipe`) naming the bad field.
    public func validate() throws {
        guard rank >= 1 else { throw TallyError(code: .invalidRecipe, message: "LoRA rank must be at least 1, got \(rank)") }
        guard alpha > 0, alpha.isFinite else { throw TallyError(code: .invalidRecipe, message: "LoRA alpha must be positive, got \(alpha)") }
        guard dropout >= 0, dropout < 1 else { throw TallyError(code: .invalidRecipe, message: "LoRA dropout must be in [0, 1), got \(dropout)") }
        guard !targets.isEmpty else { throw TallyError(code: .invalidRecipe, message: "LoRA targets are empty; name modules such as q_proj and v_proj, or use all-linear") }
    }
}

/// A model with LoRA adapters on some of its linear layers: the PEFT `LoraModel` equivalent.
///
/// Applying adapters freezes every base parameter; only the adapters' A and B train.
///
/// ```swift
/// let lora = try LoRAModel(base: model, configuration: LoRAConfiguration(rank: 8, targets: ["q_proj", "v_proj"]), seed: 0)
/// let loss = model.loss(batch, labels: labels, tape: tape)   // adapters take part
/// ```
public final class LoRAModel {
    /// The adapted model (its linear layers carry the adapters).
    public let base: any CausalLanguageModel
    /// The settings.
    public let configuration: LoRAConfiguration
    /// Adapters by module path (`model.layers.0.self_attn.q_proj`), in the model's order.
    public let adapters: [(module: String, layer: Linear, adapter: LoRAAdapter)]

    /// Attaches fresh adapters (A Kaiming-uniform, B zero) to the target modules.
    /// - Parameters:
    ///   - base: the model; its parameters are frozen.
    ///   - configuration: rank, alpha, dropout, targets.
    ///   - seed: seeds A's initialisation and dropout.
    /// - Throws: `TallyError` (`invalid-recipe`) for bad settings or targets that match no module.
    public convenience init(base: any CausalLanguageModel, configuration: LoRAConfiguration, seed: UInt64) throws {
        try configuration.validate()
        try self.init(base: base, configuration: configuration, modules: LoRAModel.targetModules(configuration.targets, in: base), seed: seed)
    }

    /// Attaches fresh adapters to the given modules.
    init(base: any CausalLanguageModel, configuration: LoRAConfiguration, modules: [(name: String, layer: Linear)], seed: UInt64) throws {
        base.setTrainable(false)
        var list: [(String, Linear, LoRAAdapter)] = []
        for (i, (name, layer)) in modules.enumerated() {
            if layer.adapter != nil {
                throw TallyError(code: .invalidModel, message: "module '\(name)' already carries an adapter; load the base model again before adding LoRA")
            }
            let adapter = LoRAAdapter(
                base: layer, rank: configuration.rank, alpha: configuration.alpha, dropout: configuration.dropout,
                useRSLoRA: configuration.useRSLoRA, seed: seed &+ UInt64(i) &* 0x9E37_79B9_7F4A_7C15)
            layer.adapter = adapter
            list.append((name, layer, adapter))
        }
        self.base = base
        self.configuration = configuration
        self.adapters = list
    }

    /// The linear layers that `targets` select, with PEFT's matching rule: a module matches a
    /// name when its path equals it or ends with `.name`; `all-linear` selects every linear
    /// layer except the output layer (`lm_head`).
    /// - Throws: `TallyError` (`invalid-recipe`) when a target matches nothing, listing the
    ///   module names the model has.
    public static func targetModules(_ targets: [String], in model: any CausalLanguageModel) throws -> [(name: String, layer: Linear)] {
        let linears = model.namedLinears
        if targets.count == 1, targets[0].lowercased() == "all-linear" {
            return linears.filter { $0.name != "lm_head" }
        }
        var chosen: [(String, Linear)] = []
        var unmatched: [String] = []
        for t in targets {
            if !linears.contains(where: { LoRAModel.matches($0.name, t) }) { unmatched.append(t) }
        }
        if !unmatched.isEmpty {
            let available = Set(linears.map { $0.name.split(separator: ".").last.map(String.init) ?? $0.name }).sorted()
            throw TallyError(
                code: .invalidRecipe,
                message: "LoRA target(s) \(unmatched.joined(separator: ", ")) match no linear layer of the model; available: \(available.joined(separator: ", ")) or all-linear")
        }
        for (name, layer) in linears where targets.contains(where: { LoRAModel.matches(name, $0) }) {
            chosen.append((name, layer))
        }
        return chosen
    }

    static func matches(_ module: String, _ target: String) -> Bool {
        module == target || module.hasSuffix("." + target)
    }

    /// The trainable tensors with PEFT's in-memory names
    /// (`base_model.model.<module>.lora_A.default.weight`), A before B per module.
    public var namedParameters: [(name: String, tensor: Tensor)] {
        adapters.flatMap { m in
            [("base_model.model.\(m.module).lora_A.default.weight", m.adapter.a),
             ("base_model.model.\(m.module).lora_B.default.weight", m.adapter.b)]
        }
    }

    /// The number of trainable values.
    public var trainableParameterCount: Int { adapters.reduce(0) { $0 + $1.adapter.a.count + $1.adapter.b.count } }

    /// Switches dropout on (training) or off (evaluation).
    public func setTraining(_ training: Bool) {
        for m in adapters { m.adapter.isTraining = training }
    }

    /// Adds every adapter into its base weight (PEFT's `merge_adapter`).
    public func merge() {
        for m in adapters { m.adapter.merge(into: m.layer) }
    }

    /// Undoes ``merge()``.
    public func unmerge() {
        for m in adapters { m.adapter.unmerge(from: m.layer) }
    }

    /// Merges the adapters and removes them from the layers (PEFT's `merge_and_unload`):
    /// the base model then computes the adapted function on its own. An adapter on a
    /// quantised layer cannot merge: it stays attached, in evaluation mode (no dropout), and
    /// adds its product to the quantised base output on every pass.
    public func mergeAndUnload() {
        merge()
        for m in adapters {
            if m.adapter.isMerged {
                m.layer.adapter = nil
            } else {
                m.adapter.isTraining = false
            }
        }
    }

    /// Removes the adapters without merging, restoring the base model.
    public func unload() {
        unmerge()
        for m in adapters { m.layer.adapter = nil }
    }
}

import Foundation

/// A kind of strategy that recipes name with `kind:`: its recipe keys, whether it adapts
/// weights (and with which training method), and how to build a strategy from an entry.
///
/// The built-in kinds (`zero-shot`, `few-shot`, `chain-of-thought`, `rag`, `lora`,
/// `prompt-tuning`, `full-finetune`, `baseline`) are written against this protocol and nothing else; a package that
/// depends on Tally registers its own kinds the same way:
///
/// ```swift
/// struct EchoKind: StrategyKind {
///     let name = "echo"
///     let summary = "repeats the input after a prefix"
///     let keys = [StrategyKey.string("prefix", default: "Echo:", help: "text put before the input")]
///     func makeStrategy(_ spec: StrategySpec, context: StrategyContext) throws -> any Strategy {
///         EchoStrategy(spec: spec, task: context.task, prefix: spec.settings.string("prefix") ?? "Echo:")
///     }
/// }
/// var catalog = StrategyCatalog.builtIn
/// catalog.register(EchoKind())
/// ```
public protocol StrategyKind: Sendable {
    /// The name recipes use (`kind: few-shot`).
    var name: String { get }
    /// One line for `tally plugins`.
    var summary: String { get }
    /// The recipe keys this kind reads, besides the keys every strategy has (`name`, `kind`,
    /// `backend`, `max_tokens`, `seeds`, `variants`). Default: none. Items of `variants:` may
    /// override any of them.
    var keys: [StrategyKey] { get }
    /// The fine-tuning method (an open identifier such as `lora`) this kind asks its
    /// backend for, or nil when it leaves weights untouched (prompting). A backend must list
    /// it in `BackendPlugin.fineTuningMethods(for:)`. Default: nil.
    var trainingMethod: String? { get }
    /// Whether strategies of this kind answer with a backend's language model. Default: true.
    /// A kind that answers with a model its strategies train themselves (a classic classifier,
    /// returned by `Strategy.trainAnswerer(progress:)`) says false: its recipe entries need no
    /// `backend:`, no forgetting probe runs for it, and reports show its forgetting as not
    /// applicable (there is no language model to forget anything). Such a kind leaves
    /// `trainingMethod` nil.
    var usesLanguageModel: Bool { get }
    /// Whether an entry's outcome depends on the seed, so that `run.seeds` repeats it.
    /// Default: kinds that adapt weights (training is seeded).
    func dependsOnSeed(_ spec: StrategySpec) -> Bool
    /// Problems with an entry that its keys' types and ranges do not catch (a key that needs
    /// task labels, a data field that must exist). Default: none.
    func check(_ spec: StrategySpec, context: StrategyCheckContext) -> [ConfigIssue]
    /// Builds the strategy for a validated entry.
    func makeStrategy(_ spec: StrategySpec, context: StrategyContext) throws -> any Strategy
}

extension StrategyKind {
    public var keys: [StrategyKey] { [] }
    public var trainingMethod: String? { nil }
    public var usesLanguageModel: Bool { true }
    public func dependsOnSeed(_ spec: StrategySpec) -> Bool { adaptsWeights }
    public func check(_ spec: StrategySpec, context: StrategyCheckContext) -> [ConfigIssue] { [] }

    /// Whether strategies of this kind change model weights (need a fine-tuner, can forget).
    public var adaptsWeights: Bool { trainingMethod != nil }
}

/// The strategy kinds a `tally` process knows: recipe `kind:` string -> `StrategyKind`.
/// Built by the CLI and passed down (no global state).
///
/// ```swift
/// let strategy = try StrategyCatalog.builtIn.make(spec, context: context)
/// ```
public struct StrategyCatalog: Sendable {
    /// Keys every strategy entry has, whatever its kind. `variants` expands one entry into
    /// several (each item overrides some of the kind's keys; see docs/recipe-format.md).
    public static let commonKeys = ["name", "kind", "backend", "max_tokens", "seeds", "variants"]

    /// Kinds in registration order.
    public private(set) var kinds: [any StrategyKind] = []

    public init(_ kinds: [any StrategyKind] = []) {
        for kind in kinds { register(kind) }
    }

    /// Adds a kind, replacing one of the same name.
    public mutating func register(_ kind: any StrategyKind) {
        if let index = kinds.firstIndex(where: { $0.name == kind.name }) {
            kinds[index] = kind
        } else {
            kinds.append(kind)
        }
    }

    /// Registered kind names, in registration order.
    public var names: [String] { kinds.map(\.name) }

    /// The kind named `name`.
    /// - Throws: `TallyError(.unknownName)` with the nearest registered kind.
    public func kind(named name: String) throws -> any StrategyKind {
        if let kind = kinds.first(where: { $0.name == name }) { return kind }
        var message = "unknown strategy kind '\(name)'"
        if let near = nearestName(to: name, among: names) { message += "; did you mean '\(near)'?" }
        message += " Known kinds: \(names.joined(separator: ", "))."
        throw TallyError(code: .unknownName, message: message)
    }

    /// Builds the strategy for a recipe entry.
    /// - Throws: `TallyError(.unknownName)` for an unknown kind, or the kind's error.
    public func make(_ spec: StrategySpec, context: StrategyContext) throws -> any Strategy {
        try kind(named: spec.kind).makeStrategy(spec, context: context)
    }

    /// The kinds Tally ships: zero-shot, few-shot, chain-of-thought, rag, lora, prompt-tuning,
    /// full-finetune, baseline.
    public static let builtIn = StrategyCatalog([
        ZeroShotKind(), FewShotKind(), ChainOfThoughtKind(), RAGKind(), LoRAKind(), PromptTuningKind(), FullFineTuneKind(), BaselineKind(),
    ])
}

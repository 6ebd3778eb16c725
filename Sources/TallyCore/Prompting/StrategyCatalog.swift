import Foundation

/// The strategy kinds a `tally` process knows: recipe `kind:` string -> factory.
///
/// ```swift
/// let strategy = try StrategyCatalog.builtIn.make(spec, context: context)
/// ```
public struct StrategyCatalog: Sendable {
    /// One registered kind.
    public struct Entry: Sendable {
        public let kind: String
        /// One line for `tally plugins`.
        public let summary: String
        /// Whether strategies of this kind change model weights (and need a fine-tuner).
        public let adaptsWeights: Bool
        /// Whether a strategy's outcome depends on the seed, so that `run.seeds` repeats it.
        public let dependsOnSeed: @Sendable (StrategySpec) -> Bool
        public let make: @Sendable (StrategySpec, StrategyContext) throws -> any Strategy

        /// - Parameter dependsOnSeed: default: strategies that adapt weights (training is
        ///   seeded) and those that pick demonstrations at random (`selection: random`, shots > 0).
        ///   Decoding is greedy, so sampling adds no dependence.
        public init(kind: String, summary: String, adaptsWeights: Bool, dependsOnSeed: (@Sendable (StrategySpec) -> Bool)? = nil, make: @escaping @Sendable (StrategySpec, StrategyContext) throws -> any Strategy) {
            self.kind = kind
            self.summary = summary
            self.adaptsWeights = adaptsWeights
            self.dependsOnSeed = dependsOnSeed ?? { spec in adaptsWeights || (spec.selection == "random" && spec.shots > 0) }
            self.make = make
        }
    }

    /// Entries in registration order.
    public private(set) var entries: [Entry] = []

    public init(_ entries: [Entry] = []) {
        for entry in entries { register(entry) }
    }

    /// Adds an entry, replacing one of the same kind.
    public mutating func register(_ entry: Entry) {
        if let index = entries.firstIndex(where: { $0.kind == entry.kind }) {
            entries[index] = entry
        } else {
            entries.append(entry)
        }
    }

    /// Registered kind names, in registration order.
    public var kinds: [String] { entries.map(\.kind) }

    /// The entry for `kind`.
    /// - Throws: `TallyError(.unknownName)` with the nearest registered kind.
    public func entry(kind: String) throws -> Entry {
        if let entry = entries.first(where: { $0.kind == kind }) { return entry }
        var message = "unknown strategy kind '\(kind)'"
        if let near = nearestName(to: kind, among: kinds) { message += "; did you mean '\(near)'?" }
        message += " Known kinds: \(kinds.joined(separator: ", "))."
        throw TallyError(code: .unknownName, message: message)
    }

    /// Builds the strategy for a recipe entry.
    /// - Throws: `TallyError(.unknownName)` for an unknown kind, or the factory's error.
    public func make(_ spec: StrategySpec, context: StrategyContext) throws -> any Strategy {
        try entry(kind: spec.kind).make(spec, context)
    }

    /// zero-shot, few-shot, chain-of-thought, lora, full-finetune.
    public static let builtIn = StrategyCatalog([
        Entry(kind: "zero-shot", summary: "instruction and input only; labelled tasks are told the labels", adaptsWeights: false) {
            ZeroShotStrategy(spec: $0, context: $1)
        },
        Entry(kind: "few-shot", summary: "k demonstrations (first, random or BM25-similar; optionally label-balanced)", adaptsWeights: false) {
            try FewShotStrategy(spec: $0, context: $1)
        },
        Entry(kind: "chain-of-thought", summary: "step-by-step reasoning ending in 'Answer: …', with rationale demonstrations or zero-shot", adaptsWeights: false) {
            try ChainOfThoughtStrategy(spec: $0, context: $1)
        },
        Entry(kind: "lora", summary: "LoRA fine-tune on the training split via the backend's fine-tuner, then zero-shot prompts", adaptsWeights: true) {
            FineTuningStrategy(spec: $0, context: $1)
        },
        Entry(kind: "full-finetune", summary: "full fine-tune on the training split via the backend's fine-tuner, then zero-shot prompts", adaptsWeights: true) {
            FineTuningStrategy(spec: $0, context: $1)
        },
    ])
}

import Foundation

// The built-in prompting kinds, `zero-shot`, `few-shot` and `chain-of-thought`, written
// against the public `StrategyKind` API only. They leave weights untouched.

/// `zero-shot`: the instruction and the input.
public struct ZeroShotKind: StrategyKind {
    public let name = "zero-shot"
    public let summary = "instruction and input only; labelled tasks are told the labels"

    public var keys: [StrategyKey] { PromptKeys.keys }

    public init() {}

    public func check(_ spec: StrategySpec, context: StrategyCheckContext) -> [ConfigIssue] {
        PromptKeys.check(spec, context: context, demonstrations: false)
    }

    public func makeStrategy(_ spec: StrategySpec, context: StrategyContext) throws -> any Strategy {
        ZeroShotStrategy(spec: spec, context: context)
    }
}

/// Prompt variants: the keys every built-in prompting kind declares to replace the task's
/// templates (`task.instruction`, `task.context`, `task.input`) for one strategy, so that
/// `variants:` can compare wordings. A kind from outside TallyCore adds them the same way:
/// `keys: PromptKeys.keys + …`, `PromptKeys.check` in `check`, `PromptKeys.context` in
/// `makeStrategy`.
public enum PromptKeys {
    /// `instruction`, `context` and `input`; without them the task's own are used.
    public static let keys: [StrategyKey] = [
        .string("instruction", help: "replaces task.instruction (the system message) for this strategy"),
        .string("context", help: "replaces task.context (template shown before the input); \"\" shows none"),
        .string("input", help: "replaces task.input (template over the data fields; must use one)"),
    ]

    /// The task a strategy prompts with: `base` with the templates the entry wrote. An empty
    /// `context` removes the context.
    public static func task(_ spec: StrategySpec, base: TaskSpec) -> TaskSpec {
        let settings = spec.settings
        guard settings.wrote("instruction") || settings.wrote("context") || settings.wrote("input") else { return base }
        var context = base.context
        if settings.wrote("context") {
            let written = settings.string("context") ?? ""
            context = written.isEmpty ? nil : written
        }
        return TaskSpec(
            instruction: settings.wrote("instruction") ? settings.string("instruction") ?? base.instruction : base.instruction,
            input: settings.wrote("input") ? settings.string("input") ?? base.input : base.input,
            context: context, target: base.target, labels: base.labels, metric: base.metric,
            answerPattern: base.answerPattern, maxAnswerTokens: base.maxAnswerTokens)
    }

    /// `context` with its task replaced by `task(_:base:)`.
    public static func context(_ spec: StrategySpec, _ context: StrategyContext) -> StrategyContext {
        StrategyContext(task: task(spec, base: context.task), train: context.train, validation: context.validation, seed: context.seed, recipeDirectory: context.recipeDirectory, cacheDirectory: context.cacheDirectory)
    }

    /// The written templates must be usable: an instruction that is not empty, an input that
    /// uses a data field, and fields that the test rows have (and, when the strategy shows
    /// demonstrations, the training rows too).
    /// - Parameter provided: fields the strategy fills in itself (a `rag` strategy's
    ///   `{retrieved}`), which the data need not have.
    public static func check(_ spec: StrategySpec, context: StrategyCheckContext, demonstrations: Bool, provided: Set<String> = []) -> [ConfigIssue] {
        var issues: [ConfigIssue] = []
        let settings = spec.settings
        if settings.wrote("instruction"), (settings.string("instruction") ?? "").trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            issues.append(ConfigIssue(key: "instruction", "strategy '\(spec.name)': its instruction is empty.", fix: "write the instruction, or remove the key to use task.instruction"))
        }
        if settings.wrote("input"), PromptTemplate(settings.string("input") ?? "").fields.isEmpty {
            issues.append(ConfigIssue(key: "input", "strategy '\(spec.name)': its input uses no data field, so every example would look the same.", fix: "put the field holding the input in braces, e.g. \"Review: {text}\""))
        }
        var files: [(what: String, fields: [String])] = []
        if let fields = context.testFields { files.append(("test", fields)) }
        if demonstrations, let fields = context.trainFields { files.append(("training", fields)) }
        for key in ["context", "input"] where settings.wrote(key) {
            for field in PromptTemplate(settings.string(key) ?? "").fields where !provided.contains(field) {
                // One issue per field: the first file that lacks it.
                guard let file = files.first(where: { !$0.fields.contains(field) }) else { continue }
                let near = nearestName(to: field, among: file.fields)
                issues.append(ConfigIssue(key: key, "strategy '\(spec.name)': its \(key) uses field '\(field)', but no \(file.what) row has it (their fields: \(file.fields.joined(separator: ", "))).",
                                          fix: near.map { "did you mean '{\($0)}'?" } ?? "use one of the data's fields, or add '\(field)' to the rows"))
            }
        }
        return issues
    }
}

/// How demonstrations are chosen: the keys `few-shot` and `chain-of-thought` share, their
/// checks, and their seed dependence.
public enum DemonstrationKeys {
    /// `shots`, `selection` and `balanced`; `shots` with the given default and minimum.
    public static func keys(shotsDefault: Int?, shotsMinimum: Int, shotsHelp: String) -> [StrategyKey] {
        [
            .int("shots", default: shotsDefault, min: shotsMinimum, help: shotsHelp),
            .choice("selection", DemonstrationSelector.Selection.allCases.map(\.rawValue), default: DemonstrationSelector.Selection.first.rawValue,
                    help: "first rows, a seeded random draw, or the most similar rows by BM25"),
            .bool("balanced", default: false, help: "take demonstrations evenly across task.labels"),
        ]
    }

    /// Label balancing needs labels; more shots than training rows shows fewer.
    public static func check(_ spec: StrategySpec, shots: Int, context: StrategyCheckContext) -> [ConfigIssue] {
        var issues: [ConfigIssue] = []
        if spec.settings.bool("balanced") == true, context.task.labels == nil {
            issues.append(ConfigIssue(key: "balanced", "strategy '\(spec.name)' asks for label-balanced demonstrations but the task has no labels.", fix: "add task.labels, or remove balanced"))
        }
        if let count = context.trainCount, shots > count {
            issues.append(ConfigIssue(.warning, key: "shots", "strategy '\(spec.name)' asks for \(shots) demonstrations but the training data has only \(count) usable row(s); it will show at most that many.", fix: "lower shots or add training rows"))
        }
        return issues
    }

    /// Random demonstrations depend on the seed; first and similar ones do not.
    public static func dependsOnSeed(_ spec: StrategySpec, shots: Int) -> Bool {
        spec.settings.string("selection") == DemonstrationSelector.Selection.random.rawValue && shots > 0
    }

    /// The selector for a strategy's settings. Variants of one entry draw their random
    /// demonstrations alike (the draw is seeded by the entry's name), so only what they
    /// override differs between them.
    static func selector(_ spec: StrategySpec, pool: [Example], shots: Int, context: StrategyContext) throws -> DemonstrationSelector {
        let raw = spec.settings.string("selection") ?? DemonstrationSelector.Selection.first.rawValue
        guard let selection = DemonstrationSelector.Selection(rawValue: raw) else {
            let near = nearestName(to: raw, among: DemonstrationSelector.Selection.allCases.map(\.rawValue))
            throw TallyError(code: .invalidRecipe, message: "strategy '\(spec.name)': unknown selection '\(raw)'" + (near.map { "; did you mean '\($0)'?" } ?? "; use first, random or similar"), location: spec.location)
        }
        return DemonstrationSelector(
            pool: pool, task: context.task, shots: shots, selection: selection,
            balanced: spec.settings.bool("balanced") ?? false, seed: context.seed, label: spec.group ?? spec.name)
    }
}

/// `few-shot`: k demonstrations before the question.
public struct FewShotKind: StrategyKind {
    public static let defaultShots = 4
    public let name = "few-shot"
    public let summary = "k demonstrations (first, random or BM25-similar; optionally label-balanced)"
    public var keys: [StrategyKey] {
        DemonstrationKeys.keys(shotsDefault: Self.defaultShots, shotsMinimum: 1, shotsHelp: "demonstrations shown before the question") + PromptKeys.keys
    }

    public init() {}

    static func shots(_ spec: StrategySpec) -> Int { spec.settings.int("shots") ?? defaultShots }

    public func dependsOnSeed(_ spec: StrategySpec) -> Bool { DemonstrationKeys.dependsOnSeed(spec, shots: Self.shots(spec)) }

    public func check(_ spec: StrategySpec, context: StrategyCheckContext) -> [ConfigIssue] {
        DemonstrationKeys.check(spec, shots: Self.shots(spec), context: context) + PromptKeys.check(spec, context: context, demonstrations: true)
    }

    public func makeStrategy(_ spec: StrategySpec, context: StrategyContext) throws -> any Strategy {
        try FewShotStrategy(spec: spec, context: context)
    }
}

/// `chain-of-thought`: step-by-step reasoning ending in `Answer: …`.
public struct ChainOfThoughtKind: StrategyKind {
    /// The training field used for rationales when the recipe names none.
    public static let defaultRationaleField = "rationale"
    public let name = "chain-of-thought"
    public let summary = "step-by-step reasoning ending in 'Answer: …', with rationale demonstrations or zero-shot"
    /// Sampling temperature of self-consistency when the recipe sets none.
    public static let defaultSamplingTemperature = 0.7
    public var keys: [StrategyKey] {
        DemonstrationKeys.keys(shotsDefault: nil, shotsMinimum: 0, shotsHelp: "rationale demonstrations (default 4 with rationale_field, else 0: zero-shot)")
            + [.string("rationale_field", help: "training-data field with a worked rationale (default: 'rationale' when the data has it)")]
            + PromptKeys.keys
            + [
                .int("samples", default: 1, min: 1, help: "chains sampled per question; the majority answer wins (self-consistency)"),
                .number("temperature", min: .init(0), max: .init(2), help: "sampling temperature (default \(Self.defaultSamplingTemperature) with samples > 1, else 0: greedy)"),
            ]
    }

    public init() {}

    /// Shots as written, or the default: 4 when the recipe names a rationale field, else 0.
    static func shots(_ spec: StrategySpec) -> Int {
        spec.settings.int("shots") ?? (spec.settings.string("rationale_field") != nil ? FewShotKind.defaultShots : 0)
    }

    /// Chains sampled per question.
    static func samples(_ spec: StrategySpec) -> Int { max(1, spec.settings.int("samples") ?? 1) }

    /// The temperature as written, or the default: 0.7 with several samples, else 0.
    static func temperature(_ spec: StrategySpec) -> Double {
        spec.settings.double("temperature") ?? (samples(spec) > 1 ? defaultSamplingTemperature : 0)
    }

    /// Random demonstrations and sampled chains depend on the seed.
    public func dependsOnSeed(_ spec: StrategySpec) -> Bool {
        DemonstrationKeys.dependsOnSeed(spec, shots: Self.shots(spec)) || Self.temperature(spec) > 0
    }

    public func check(_ spec: StrategySpec, context: StrategyCheckContext) -> [ConfigIssue] {
        var issues = DemonstrationKeys.check(spec, shots: Self.shots(spec), context: context)
        issues += PromptKeys.check(spec, context: context, demonstrations: Self.shots(spec) > 0)
        if Self.samples(spec) > 1, Self.temperature(spec) == 0 {
            issues.append(ConfigIssue(.warning, key: "temperature", "strategy '\(spec.name)' samples \(Self.samples(spec)) chains per question at temperature 0: greedy decoding gives the same chain every time, so it pays \(Self.samples(spec)) times for one answer.", fix: "remove temperature (default \(Self.defaultSamplingTemperature) with samples > 1) or set it above 0, or set samples: 1"))
        }
        guard let fields = context.trainFields else { return issues }
        if let field = spec.settings.string("rationale_field") {
            if !fields.contains(field) {
                let near = nearestName(to: field, among: fields)
                issues.append(ConfigIssue(key: "rationale_field", "strategy '\(spec.name)': rationale_field '\(field)' is in no training row (their fields: \(fields.joined(separator: ", "))).", fix: near.map { "did you mean '\($0)'?" } ?? "add a rationale to the training rows or remove rationale_field"))
            }
        } else if Self.shots(spec) > 0, !fields.contains(Self.defaultRationaleField) {
            issues.append(ConfigIssue(.warning, key: "shots", "strategy '\(spec.name)' asks for \(Self.shots(spec)) chain-of-thought demonstrations, but names no rationale_field and the training data has no '\(Self.defaultRationaleField)' field; it runs as zero-shot \"think step by step\".", fix: "add rationale_field: <the data field holding a worked rationale>, or set shots: 0"))
        }
        return issues
    }

    public func makeStrategy(_ spec: StrategySpec, context: StrategyContext) throws -> any Strategy {
        try ChainOfThoughtStrategy(spec: spec, context: context)
    }
}

/// `zero-shot`: the instruction as the system message, the (context and) input as the user
/// message; labelled tasks are told the allowed labels.
public struct ZeroShotStrategy: Strategy {
    public let spec: StrategySpec
    public let task: TaskSpec

    /// Prompts with the task's templates, or those the entry overrides (`PromptKeys`).
    public init(spec: StrategySpec, context: StrategyContext) {
        self.spec = spec
        self.task = PromptKeys.task(spec, base: context.task)
    }

    public var maxTokens: Int { spec.maxTokens ?? task.maxAnswerTokens }

    public func messages(for example: Example) -> [ChatMessage] {
        [.system(PromptBuilder.systemPrompt(task: task)), .user(PromptBuilder.userPrompt(task: task, example: example))]
    }
}

/// `few-shot`: k demonstrations as user/assistant turns between the system message and the
/// question (see `DemonstrationSelector` for how they are chosen).
public struct FewShotStrategy: Strategy {
    public let spec: StrategySpec
    public let task: TaskSpec
    let selector: DemonstrationSelector

    /// Questions and demonstrations use the task's templates, or those the entry overrides.
    /// - Throws: `TallyError(.invalidRecipe)` for an unknown selection.
    public init(spec: StrategySpec, context: StrategyContext) throws {
        let context = PromptKeys.context(spec, context)
        self.spec = spec
        self.task = context.task
        selector = try DemonstrationKeys.selector(spec, pool: context.train, shots: FewShotKind.shots(spec), context: context)
    }

    public var maxTokens: Int { spec.maxTokens ?? task.maxAnswerTokens }

    /// The demonstrations shown for `example`.
    public func demonstrations(for example: Example) -> [Example] { selector.select(for: example) }

    /// The demonstrations it shows (at most the training rows).
    public var labelledExamples: Int { selector.labelledExamples }

    public func messages(for example: Example) -> [ChatMessage] {
        var messages: [ChatMessage] = [.system(PromptBuilder.systemPrompt(task: task))]
        for demo in selector.select(for: example) {
            messages.append(.user(PromptBuilder.userPrompt(task: task, example: demo)))
            messages.append(.assistant(demo[task.target] ?? ""))
        }
        messages.append(.user(PromptBuilder.userPrompt(task: task, example: example)))
        return messages
    }
}

/// `chain-of-thought`: asks for step-by-step reasoning ending in `Answer: …`. With a
/// `rationale_field` and shots > 0, demonstrations show the rationale then the answer;
/// otherwise it is the zero-shot "think step by step" form. With `samples` > 1 it samples
/// that many chains per question and keeps the majority answer (self-consistency).
public struct ChainOfThoughtStrategy: Strategy {
    /// Appended to the system message.
    public static let instruction = "Think step by step, then give the final answer on the last line as \"Answer: <answer>\"."
    /// Generated-token limit when the recipe sets none.
    public static let defaultMaxTokens = 256

    public let spec: StrategySpec
    public let task: TaskSpec
    let selector: DemonstrationSelector?
    /// The training field demonstrations take their rationale from.
    let rationaleField: String?
    /// Seeds the sampled chains.
    let seed: UInt64

    /// The rationale demonstrations it shows (0 zero-shot).
    public var labelledExamples: Int { selector?.labelledExamples ?? 0 }

    /// Demonstrations need rationales: the recipe's `rationale_field`, else the training
    /// rows' `rationale` field when they have one; without either it runs zero-shot.
    /// Prompts use the task's templates, or those the entry overrides.
    /// - Throws: `TallyError(.invalidRecipe)` for an unknown selection.
    public init(spec: StrategySpec, context: StrategyContext) throws {
        let context = PromptKeys.context(spec, context)
        self.spec = spec
        self.task = context.task
        self.seed = context.seed
        let shots = ChainOfThoughtKind.shots(spec)
        let field = spec.settings.string("rationale_field")
            ?? (context.train.contains { $0[ChainOfThoughtKind.defaultRationaleField] != nil } ? ChainOfThoughtKind.defaultRationaleField : nil)
        if shots > 0, let field {
            let pool = context.train.filter { $0[field].map { !$0.isEmpty } ?? false }
            selector = try DemonstrationKeys.selector(spec, pool: pool, shots: shots, context: context)
            rationaleField = field
        } else {
            selector = nil
            rationaleField = nil
        }
    }

    public var maxTokens: Int { spec.maxTokens ?? Self.defaultMaxTokens }
    public var reasoning: Bool { true }
    /// `samples` chains per question (self-consistency); the majority answer wins.
    public var samples: Int { ChainOfThoughtKind.samples(spec) }
    public var temperature: Double { ChainOfThoughtKind.temperature(spec) }

    /// Greedy (the plain request) unless it samples; a sampled chain has the temperature and
    /// its own seed, derived from the run seed and the sample's index.
    public func request(for example: Example, sample: Int) -> GenerationRequest {
        guard temperature > 0 else { return request(for: example) }
        return GenerationRequest(messages: messages(for: example), maxTokens: maxTokens, temperature: temperature, topP: 1, stop: [], seed: SelfConsistency.seed(seed, sample: sample))
    }

    public func messages(for example: Example) -> [ChatMessage] {
        var messages: [ChatMessage] = [.system(PromptBuilder.systemPrompt(task: task, extra: Self.instruction))]
        if let selector, let field = rationaleField {
            for demo in selector.select(for: example) {
                messages.append(.user(PromptBuilder.userPrompt(task: task, example: demo)))
                let rationale = (demo[field] ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
                messages.append(.assistant(rationale + "\nAnswer: " + (demo[task.target] ?? "")))
            }
        }
        messages.append(.user(PromptBuilder.userPrompt(task: task, example: example)))
        return messages
    }
}

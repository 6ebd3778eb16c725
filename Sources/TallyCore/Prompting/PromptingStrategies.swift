import Foundation

/// `zero-shot`: the instruction as the system message, the (context and) input as the user
/// message; labelled tasks are told the allowed labels.
public struct ZeroShotStrategy: Strategy {
    public let spec: StrategySpec
    public let task: TaskSpec

    public init(spec: StrategySpec, context: StrategyContext) {
        self.spec = spec
        self.task = context.task
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

    /// - Throws: `TallyError(.invalidRecipe)` for an unknown selection.
    public init(spec: StrategySpec, context: StrategyContext) throws {
        self.spec = spec
        self.task = context.task
        selector = DemonstrationSelector(
            pool: context.train, task: context.task, shots: spec.shots,
            selection: try FewShotStrategy.selection(spec), balanced: spec.balanced, seed: context.seed, label: spec.name)
    }

    static func selection(_ spec: StrategySpec) throws -> DemonstrationSelector.Selection {
        guard let selection = DemonstrationSelector.Selection(rawValue: spec.selection) else {
            let near = nearestName(to: spec.selection, among: DemonstrationSelector.Selection.allCases.map(\.rawValue))
            throw TallyError(code: .invalidRecipe, message: "strategy '\(spec.name)': unknown selection '\(spec.selection)'" + (near.map { "; did you mean '\($0)'?" } ?? "; use first, random or similar"), location: spec.location)
        }
        return selection
    }

    public var maxTokens: Int { spec.maxTokens ?? task.maxAnswerTokens }

    /// The demonstrations shown for `example`.
    public func demonstrations(for example: Example) -> [Example] { selector.select(for: example) }

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
/// otherwise it is the zero-shot "think step by step" form.
public struct ChainOfThoughtStrategy: Strategy {
    /// Appended to the system message.
    public static let instruction = "Think step by step, then give the final answer on the last line as \"Answer: <answer>\"."
    /// Generated-token limit when the recipe sets none.
    public static let defaultMaxTokens = 256

    public let spec: StrategySpec
    public let task: TaskSpec
    let selector: DemonstrationSelector?

    /// - Throws: `TallyError(.invalidRecipe)` for an unknown selection.
    public init(spec: StrategySpec, context: StrategyContext) throws {
        self.spec = spec
        self.task = context.task
        if spec.shots > 0, let field = spec.rationaleField {
            let pool = context.train.filter { $0[field].map { !$0.isEmpty } ?? false }
            selector = DemonstrationSelector(
                pool: pool, task: context.task, shots: spec.shots,
                selection: try FewShotStrategy.selection(spec), balanced: spec.balanced, seed: context.seed, label: spec.name)
        } else {
            selector = nil
        }
    }

    public var maxTokens: Int { spec.maxTokens ?? Self.defaultMaxTokens }
    public var reasoning: Bool { true }

    public func messages(for example: Example) -> [ChatMessage] {
        var messages: [ChatMessage] = [.system(PromptBuilder.systemPrompt(task: task, extra: Self.instruction))]
        if let selector, let field = spec.rationaleField {
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

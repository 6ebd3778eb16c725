import TallyCore

/// `kind: role`: zero-shot prompting that first tells the model who it is
/// ("You are a film critic."). Its own recipe key, `role`, is validated by `tally validate`
/// like any built-in key and listed by `tally-plus plugins`.
public struct RoleKind: StrategyKind {
    public let name = "role"
    public let summary = "zero-shot with a role sentence before the instruction"
    public let keys: [StrategyKey] = [
        .string("role", default: "a careful annotator", help: "who the model is told it is"),
    ]

    public init() {}

    public func check(_ spec: StrategySpec, context: StrategyCheckContext) -> [ConfigIssue] {
        guard let role = spec.settings.string("role"), !role.trimmingCharacters(in: .whitespaces).isEmpty else {
            return [ConfigIssue(key: "role", "strategy '\(spec.name)' has an empty role.", fix: "write e.g. role: a film critic")]
        }
        return []
    }

    public func makeStrategy(_ spec: StrategySpec, context: StrategyContext) throws -> any Strategy {
        RoleStrategy(spec: spec, task: context.task, role: spec.settings.string("role") ?? "a careful annotator")
    }
}

/// The strategy a `role` entry builds: the role, then the usual instruction and input.
public struct RoleStrategy: Strategy {
    public let spec: StrategySpec
    public let task: TaskSpec
    let role: String

    public var maxTokens: Int { spec.maxTokens ?? task.maxAnswerTokens }

    public func messages(for example: Example) -> [ChatMessage] {
        [.system("You are \(role). " + PromptBuilder.systemPrompt(task: task)), .user(PromptBuilder.userPrompt(task: task, example: example))]
    }
}

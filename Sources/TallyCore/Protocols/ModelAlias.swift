/// Model names that hosted providers document as moving aliases: the name stays, the model
/// behind it changes when the provider releases a new snapshot, so two runs of one recipe may
/// measure two models. `tally validate` and the report warn about them; Tally records the
/// snapshot each answer came from (``GenerationResult/servedModel``) either way.
///
/// Patterns: a `-latest` suffix (OpenAI's `chatgpt-4o-latest`, Anthropic's
/// `claude-3-5-sonnet-latest`, Mistral's `mistral-large-latest`) and a `:latest` tag (Ollama,
/// which also serves untagged names as `:latest`).
///
/// ```swift
/// ModelAlias.isMoving("claude-3-5-sonnet-latest")   // true
/// ModelAlias.isMoving("gpt-4o-2024-08-06")          // false
/// ```
public enum ModelAlias {
    /// Whether `name` is a documented moving alias.
    /// - Parameter name: a model name as a recipe writes it.
    public static func isMoving(_ name: String) -> Bool {
        let lowered = name.lowercased()
        return lowered.hasSuffix("-latest") || lowered.hasSuffix(":latest")
    }

    /// The warning for a recipe that names `name`, or nil when it is no moving alias.
    /// - Parameter name: a model name as a recipe writes it.
    public static func warning(for name: String) -> String? {
        guard isMoving(name) else { return nil }
        return "'\(name)' is a moving alias: the provider may serve another model under this name later, so a rerun or a comparison across runs may measure a different model. Name a dated snapshot (the provider's model list gives them); Tally records the snapshot that answered each call in the ledger and the report"
    }
}

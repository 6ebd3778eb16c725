import Foundation
import LexiconPlugins
import TallyCore
import TallyTesting
import Testing

@Suite("Lexicon plugin and role kind")
struct LexiconPluginsTests {
    /// The example's recipe directory (this file is Tests/LexiconPluginsTests/...).
    static let recipes = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Recipes")

    @Test("the lexicon answers by the sign of the summed ratings, with usage")
    func answers() async throws {
        let model = try LexiconModel.load(Self.recipes.appendingPathComponent("data/lexicon.tsv"), maxBytes: 1 << 20, positive: "pos", negative: "neg")
        let good = try await model.generate(GenerationRequest(messages: [.system("Classify."), .user("Review: a lovely film")]))
        let bad = try await model.generate(GenerationRequest(messages: [.user("Review: boring and slow")]))
        #expect(good.text == "pos" && bad.text == "neg")
        #expect(good.usage.promptTokens > 0 && good.usage.completionTokens == 1)
    }

    @Test("the recipe validates with both extensions registered; a misspelled key of the kind is located")
    func validates() throws {
        var strategies = StrategyCatalog.builtIn
        strategies.register(RoleKind())
        let registry = PluginRegistry([LexiconPlugin()])
        let url = Self.recipes.appendingPathComponent("reviews.yaml")
        let diagnostics = RecipeLoader.validate(contentsOf: url, registry: registry, environment: [:], strategies: strategies)
        #expect(!diagnostics.contains { $0.severity == .error }, "\(diagnostics)")

        let text = try String(contentsOf: url, encoding: .utf8).replacingOccurrences(of: "role: \"a film critic\"", with: "rol: \"a film critic\"")
        let copy = FileManager.default.temporaryDirectory.appendingPathComponent("tally-plus-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: Self.recipes, to: copy)
        try text.write(to: copy.appendingPathComponent("reviews.yaml"), atomically: true, encoding: .utf8)
        let found = RecipeLoader.validate(contentsOf: copy.appendingPathComponent("reviews.yaml"), registry: registry, environment: [:], strategies: strategies)
        #expect(found.contains { $0.severity == .error && $0.message.contains("unknown key 'rol'") && ($0.fix ?? "").contains("did you mean 'role'?") && $0.location.line != nil && $0.location.column != nil })
    }

    @Test("the lexicon backend passes Tally's conformance checks")
    func conformance() async throws {
        let config = BackendConfig(
            name: "words", plugin: "lexicon", model: "example-lexicon",
            settings: ["lexicon": "data/lexicon.tsv", "positive_label": "positive", "negative_label": "negative"],
            recipeDirectory: Self.recipes)
        let checks = await BackendConformance.check(plugin: LexiconPlugin(), config: config, environment: [:])
        #expect(checks.failures.isEmpty, Comment(rawValue: checks.failureSummary ?? ""))
    }
}

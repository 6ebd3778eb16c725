import Foundation
import TallyCore
import TallyTesting
import Testing

/// `--set KEY=VALUE`: changes applied to a recipe before it is read, checked like the file.
@Suite("Recipe overrides")
struct RecipeOverrideTests {
    func parse(_ overrides: [String]) throws -> (recipe: Recipe?, diagnostics: [Diagnostic]) {
        let url = try Fixtures.resource("recipes/sentiment.yaml")
        return RecipeLoader.parse(contentsOf: url, registry: Fixtures.registry(), environment: [:], overrides: overrides)
    }

    func load(_ overrides: [String]) throws -> Recipe {
        let url = try Fixtures.resource("recipes/sentiment.yaml")
        return try RecipeLoader.load(contentsOf: url, registry: Fixtures.registry(), environment: [:], overrides: overrides)
    }

    @Test("values replace, add and remove keys at every level")
    func appliesValues() throws {
        let plain = try load([])
        #expect(plain.run.maxExamples == nil && plain.data.validation != nil && plain.overrides.isEmpty)

        let overrides = [
            "run.max_examples=6",                      // a key the file does not have
            "run.seed=11",                             // a key it has (in a flow mapping)
            "strategies.lora-r4.max_steps=1",          // a list entry by name, a new key
            "strategies.1.shots=3",                    // a list entry by position
            "strategies.full.learning_rate=1e-4",
            "probes.knowledge.max_tokens=8",
            "backends.hosted.price.input_per_mtok=0.5",
            "costs={requests_per_month: 5000}",        // a whole section, as YAML
            "data.validation=",                        // an empty value removes the key
            "task.labels=[positive, negative]",
        ]
        let recipe = try load(overrides)
        #expect(recipe.run.maxExamples == 6)
        #expect(recipe.run.seed == 11 && recipe.run.concurrency == 4)
        let lora = try #require(recipe.strategies.first { $0.name == "lora-r4" })
        #expect(lora.settings.int("max_steps") == 1 && lora.settings.double("epochs") == 2)
        #expect(recipe.strategies[1].settings.int("shots") == 3)
        #expect(recipe.strategies.first { $0.name == "full" }?.settings.double("learning_rate") == 1e-4)
        #expect(recipe.probes.first { $0.name == "knowledge" }?.maxTokens == 8)
        #expect(recipe.backend(named: "hosted")?.price.inputPerMTok == 0.5)
        #expect(recipe.backend(named: "hosted")?.price.outputPerMTok == 2000)
        #expect(recipe.costs.requestsPerMonth == 5000 && recipe.costs.computeUSDPerHour == CostSpec().computeUSDPerHour)
        #expect(recipe.data.validation == nil)
        #expect(recipe.overrides == overrides)
        // The file itself is untouched.
        #expect(try load([]).run.maxExamples == nil)
    }

    @Test("a bad key or value is an error that names the override")
    func reportsProblemsAtTheOverride() throws {
        let cases: [(override: String, message: String, fix: String?)] = [
            ("run.max_exampels=6", "unknown key 'max_exampels' in 'run'", "did you mean 'max_examples'?"),
            ("run.max_examples=0", "'run.max_examples' is 0 but must be at least 1", nil),
            ("run.max_examples=many", "'run.max_examples' must be a whole number, not 'many'", nil),
            ("strategies.lora-r5.epochs=1", "'strategies' has no entry named 'lora-r5'", "did you mean 'lora-r4'?"),
            ("strategies.9.epochs=1", "'strategies' has no entry named '9'", "position from 0 to 4"),
            ("run.seed.low=1", "'run.seed' is the single value '7', so it has no key 'low'", nil),
            ("run.max_examples", "'run.max_examples' is not KEY=VALUE", "--set run.max_examples=20"),
            ("run..seed=1", "'run..seed' is not a key path", nil),
            ("=3", "'' is not a key path", nil),
            ("task.labels=[a, b", "the value '[a, b' is not valid YAML", nil),
            ("strategies.cot.rank=4", "'rank' does not apply to chain-of-thought", nil),
        ]
        for item in cases {
            let (recipe, found) = try parse([item.override])
            #expect(recipe == nil, "\(item.override) was accepted")
            let match = found.first { $0.severity == .error && $0.message.contains(item.message) }
            #expect(match != nil, "\(item.override): no error containing '\(item.message)'; got:\n\(found.map(\.description).joined(separator: "\n"))")
            #expect(match?.location.file == "--set \(item.override)", "\(item.override): located at \(match?.location.description ?? "-")")
            #expect(match?.location.line == nil)
            if let fix = item.fix { #expect(match?.fix?.contains(fix) ?? false, "\(item.override): fix was \(match?.fix ?? "none")") }
            #expect(match?.description.hasPrefix("--set \(item.override): error: ") ?? false)
        }
    }

    @Test("every override is checked; problems in the file keep their lines")
    func checksAllTogether() throws {
        let (recipe, found) = try parse(["run.max_examples=0", "run.concurrency=many", "run.seed=3"])
        #expect(recipe == nil)
        let errors = found.filter { $0.severity == .error }
        #expect(errors.count == 2, "\(errors)")
        #expect(Set(errors.map(\.location.file)) == ["--set run.max_examples=0", "--set run.concurrency=many"])
    }

    @Test("overrides are applied in order: the last one wins")
    func lastWins() throws {
        let recipe = try load(["run.max_examples=4", "run.max_examples=9"])
        #expect(recipe.run.maxExamples == 9)
    }
}

import Foundation
import Testing

/// The recipes shipped under `Recipes/`, the one `tally init` writes, and `--set`, through
/// the real `tally validate`: examples must never rot, and a recipe that cannot run yet
/// must say exactly what to fetch.
@Suite struct ShippedRecipesTests {
    /// API keys are removed from the environment: hosted recipes must validate without them.
    static var apiKeyVariables: [String] {
        ["OPENAI_API_KEY", "ANTHROPIC_API_KEY"] + ProcessInfo.processInfo.environment.keys.filter { $0.contains("API_KEY") }
    }

    /// The commands that fetch the default assets; the only errors allowed without them.
    static let fetchCommands = ["tally data fetch vader-movie-reviews", "tally data fetch vader-lexicon", "tally models fetch smollm2-135m-instruct"]

    static func errorLines(_ stderr: String) -> [String] {
        stderr.split(separator: "\n").map(String.init).filter { $0.contains(": error: ") }
    }

    /// Whether a recipe refers to the asset cache (`cache:` paths or the default model),
    /// outside comments.
    static func needsAssets(_ recipe: URL) throws -> Bool {
        let text = try String(contentsOf: recipe, encoding: .utf8)
        let code = text.split(separator: "\n").map { $0.prefix { $0 != "#" } }.joined(separator: "\n")
        return code.contains("cache:") || code.contains("smollm2-135m-instruct")
    }

    @Test func recipesAreFound() throws {
        let recipes = try Repository.recipes()
        #expect(recipes.contains { $0.lastPathComponent == "quickstart.yaml" }, "Recipes/ not found at \(Repository.root.path)")
        #expect(recipes.count >= 2)
    }

    @Test(.enabled(if: CachedAssets.hasAll, CachedAssets.skipReason))
    func everyShippedRecipeValidates() async throws {
        let workspace = try CLITests.Workspace()
        let recipes = try Repository.recipes()
        #expect(!recipes.isEmpty)
        for recipe in recipes {
            let result = try await workspace.run(["validate", recipe.path], unset: Self.apiKeyVariables)
            #expect(result.status == 0, "\(recipe.lastPathComponent) does not validate:\n\(result.stderr)")
            #expect(result.stdout.contains("OK"), "\(recipe.lastPathComponent): \(result.stdout)")
            #expect(Self.errorLines(result.stderr).isEmpty)
            if try String(contentsOf: recipe, encoding: .utf8).contains("api_key_env:") {
                // The key is missing, and validate says so without failing.
                #expect(result.stderr.contains("is not set"), "\(recipe.lastPathComponent): no warning about the missing API key")
            }
        }
    }

    @Test func withoutTheAssetsValidateSaysWhatToFetch() async throws {
        let workspace = try CLITests.Workspace()
        let emptyCache = workspace.root.appending(path: "empty-cache")
        try FileManager.default.createDirectory(at: emptyCache, withIntermediateDirectories: true)
        var needing = 0
        for recipe in try Repository.recipes() {
            let name = recipe.lastPathComponent
            let result = try await workspace.run(["validate", recipe.path], environment: ["TALLY_CACHE": emptyCache.path], unset: Self.apiKeyVariables)
            #expect(!result.stderr.contains("Fatal error") && !result.stderr.contains("Stack dump"))
            if try Self.needsAssets(recipe) {
                needing += 1
                #expect(result.status == 2, "\(name) validates without the assets it names")
                let errors = Self.errorLines(result.stderr)
                #expect(!errors.isEmpty, "\(name): no error listed:\n\(result.stderr)")
                for line in errors {
                    #expect(Self.fetchCommands.contains { line.contains($0) }, "\(name): an error other than a missing asset:\n\(line)")
                }
            } else {
                #expect(result.status == 0, "\(name) does not validate:\n\(result.stderr)")
            }
        }
        #expect(needing > 0, "no shipped recipe uses the cached model or data; is Recipes/ found?")
    }

    @Test func initRecipeSaysToFetchTheModelWhenItIsMissing() async throws {
        let workspace = try CLITests.Workspace()
        let emptyCache = workspace.root.appending(path: "empty-cache")
        try FileManager.default.createDirectory(at: emptyCache, withIntermediateDirectories: true)
        let environment = ["TALLY_CACHE": emptyCache.path]
        let written = try await workspace.run(["init", "starter/tally.yaml"], environment: environment)
        #expect(written.status == 0, "\(written.stderr)")
        #expect(written.stdout.contains("tally models fetch smollm2-135m-instruct"), "init does not say the model must be fetched:\n\(written.stdout)")

        let result = try await workspace.run(["validate", "starter/tally.yaml"], environment: environment, unset: Self.apiKeyVariables)
        #expect(result.status == 2)
        let errors = Self.errorLines(result.stderr)
        // The data files init wrote are fine; the model is the one thing missing.
        #expect(errors.count == 1, "\(result.stderr)")
        #expect(errors.first?.contains("tally models fetch smollm2-135m-instruct") ?? false, "\(result.stderr)")
    }

    @Test(.enabled(if: CachedAssets.hasModel, "needs SmolLM2-135M-Instruct in the asset cache (tally models fetch smollm2-135m-instruct)"))
    func initRecipeValidates() async throws {
        let workspace = try CLITests.Workspace()
        let written = try await workspace.run(["init", "starter/tally.yaml"])
        #expect(written.status == 0, "\(written.stderr)")
        #expect(!written.stdout.contains("tally models fetch"), "init asks to fetch a model that is in the cache:\n\(written.stdout)")
        for file in ["starter/data/train.jsonl", "starter/data/test.jsonl"] {
            #expect(FileManager.default.fileExists(atPath: workspace.root.appending(path: file).path), "init did not write \(file)")
        }
        let result = try await workspace.run(["validate", "starter/tally.yaml"], unset: Self.apiKeyVariables)
        #expect(result.status == 0, "the starter recipe does not validate:\n\(result.stderr)")
        #expect(result.stdout.contains("starter/tally.yaml: OK"))
        #expect(result.stderr.isEmpty, "warnings on the starter recipe:\n\(result.stderr)")
    }

    @Test func setOverridesAreCheckedLikeTheFile() async throws {
        let workspace = try CLITests.Workspace()
        let misspelt = try await workspace.run(["validate", "sentiment.yaml", "--set", "run.max_exampels=3"])
        #expect(misspelt.status == 2)
        #expect(misspelt.stderr.contains("--set run.max_exampels=3: error: unknown key 'max_exampels' in 'run'. Fix: did you mean 'max_examples'?"), "\(misspelt.stderr)")

        let badValue = try await workspace.run(["run", "sentiment.yaml", "--set", "run.max_examples=0", "--quiet"])
        #expect(badValue.status == 2)
        #expect(badValue.stderr.contains("--set run.max_examples=0: error: 'run.max_examples' is 0 but must be at least 1"), "\(badValue.stderr)")
        #expect(workspace.calls().isEmpty, "a rejected override still ran the recipe")

        let noValue = try await workspace.run(["plan", "sentiment.yaml", "--set", "run.max_examples"])
        #expect(noValue.status == 2)
        #expect(noValue.stderr.contains("is not KEY=VALUE"), "\(noValue.stderr)")

        let plain = try await workspace.run(["plan", "sentiment.yaml", "--json"])
        let reduced = try await workspace.run(["plan", "sentiment.yaml", "--json", "--set", "run.max_examples=3", "--set", "run.max_train_examples=4"])
        #expect(plain.status == 0 && reduced.status == 0, "\(plain.stderr)\(reduced.stderr)")
        let before = try #require(try JSONSerialization.jsonObject(with: Data(plain.stdout.utf8)) as? [String: Any])
        let after = try #require(try JSONSerialization.jsonObject(with: Data(reduced.stdout.utf8)) as? [String: Any])
        #expect((before["test_examples"] as? Int ?? 0) > 3)
        #expect(after["test_examples"] as? Int == 3 && after["train_examples"] as? Int == 4)
    }
}

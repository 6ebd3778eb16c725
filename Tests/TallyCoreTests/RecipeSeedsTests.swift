import Foundation
import TallyCore
import TallyTesting
import Testing

/// A recipe with one strategy of each kind of seed dependence; `run` and `lora` lines are
/// replaced by the tests.
private let seededBase = """
name: seeds
task:
  instruction: Classify the review.
  input: "Review: {text}"
  target: label
  labels: [positive, negative]
data:
  train: data/train.jsonl
  test: data/test.jsonl
backends:
  local: {plugin: fake, model: local-model}
strategies:
  - {name: zs, kind: zero-shot, backend: local}
  - {name: fs-random, kind: few-shot, backend: local, shots: 2, selection: random}
  - {name: fs-similar, kind: few-shot, backend: local, shots: 2, selection: similar}
  - {name: lora, kind: lora, backend: local}
  - {name: full, kind: full-finetune, backend: local, seeds: [1, 2]}
run: {seeds: [7, 11, 13]}
"""

private func seededRecipe(run: String? = nil, lora: String? = nil, full: String? = nil) -> String {
    var text = seededBase
    if let run { text = text.replacingOccurrences(of: "run: {seeds: [7, 11, 13]}", with: run) }
    if let lora { text = text.replacingOccurrences(of: "  - {name: lora, kind: lora, backend: local}", with: lora) }
    if let full { text = text.replacingOccurrences(of: "  - {name: full, kind: full-finetune, backend: local, seeds: [1, 2]}", with: full) }
    return text
}

private func check(_ yaml: String) throws -> [Diagnostic] {
    RecipeLoader.validate(contentsOf: try Fixtures.recipe(yaml), registry: Fixtures.registry(), environment: [:])
}

private func line(of token: String, in yaml: String) -> Int? {
    yaml.split(separator: "\n", omittingEmptySubsequences: false).firstIndex { $0.contains(token) }.map { $0 + 1 }
}

@Suite("Recipe seeds")
struct RecipeSeedsTests {
    @Test("run.seeds repeats seed-dependent strategies; a strategy's own seeds take precedence")
    func resolvesSeeds() throws {
        let recipe = try RecipeLoader.load(contentsOf: try Fixtures.recipe(seededBase), registry: Fixtures.registry(), environment: [:])
        #expect(recipe.run.seeds == [7, 11, 13])
        #expect(recipe.run.seed == 7)  // defaults to the first of run.seeds
        let catalog = StrategyCatalog.builtIn
        let resolved = try recipe.strategies.map { spec in
            recipe.seeds(for: spec, dependsOnSeed: try catalog.kind(named: spec.kind).dependsOnSeed(spec))
        }
        #expect(resolved == [[7], [7, 11, 13], [7], [7, 11, 13], [1, 2]])
        #expect(recipe.strategies[4].seeds == [1, 2] && recipe.strategies[3].seeds == nil)
        // Each repetition trains with its own seed: the context's seed reaches the job.
        for seed: UInt64 in [7, 11] {
            let strategy = try catalog.make(recipe.strategies[3], context: StrategyContext(task: recipe.task, train: [Example(id: "1", fields: ["text": "a", "label": "positive"], location: SourceLocation(file: "t"))], seed: seed))
            #expect(try strategy.fineTuneRequest(baseIdentity: "m", workRoot: URL(fileURLWithPath: "/tmp"))?.options.seed == seed)
        }
    }

    @Test("an explicit run.seed is kept; without seeds every strategy runs once with it")
    func explicitSeed() throws {
        let withSeed = try RecipeLoader.load(contentsOf: try Fixtures.recipe(seededRecipe(run: "run: {seed: 3, seeds: [7, 11]}")), registry: Fixtures.registry(), environment: [:])
        #expect(withSeed.run.seed == 3 && withSeed.run.seeds == [7, 11])
        let plain = try RecipeLoader.load(contentsOf: try Fixtures.recipe(seededRecipe(run: "run: {seed: 5}", full: "  - {name: full, kind: full-finetune, backend: local}")), registry: Fixtures.registry(), environment: [:])
        #expect(plain.run.seeds == nil)
        let catalog = StrategyCatalog.builtIn
        for spec in plain.strategies {
            #expect(plain.seeds(for: spec, dependsOnSeed: try catalog.kind(named: spec.kind).dependsOnSeed(spec)) == [5])
        }
    }

    @Test("bad seed lists are errors at the offending item's line and column", arguments: [
        ("run: {seeds: []}", "[]", "'run.seeds' is empty"),
        ("run: {seeds: [7, 11, 7]}", "7]", "seed 7 appears more than once in 'run.seeds'"),
        ("run: {seeds: [7, 1.5]}", "1.5", "'run.seeds[1]' must be a whole number, not '1.5'"),
        ("run: {seeds: [7, x]}", "x]", "'run.seeds[1]' must be a whole number, not 'x'"),
        ("run: {seeds: [7, -2]}", "-2", "'run.seeds[1]' is -2 but must be at least 0"),
        ("run: {seeds: 7}", "7}", "'run.seeds' must be a list of seeds such as [7, 11, 13]"),
        ("run: {seeds: [7, [1]]}", "[1]", "'run.seeds[1]' must be text"),
    ])
    func badRunSeeds(run: String, token: String, message: String) throws {
        let yaml = seededRecipe(run: run)
        let found = try check(yaml)
        let row = try #require(line(of: "run:", in: yaml))
        let lineText = yaml.split(separator: "\n", omittingEmptySubsequences: false)[row - 1]
        // The token's last occurrence on the line (the repeated 7 is the second one).
        let range = try #require(lineText.range(of: token, options: .backwards))
        let column = lineText.distance(from: lineText.startIndex, to: range.lowerBound) + 1
        let match = found.first { $0.severity == .error && $0.message.contains(message) }
        #expect(match != nil, "no error '\(message)'; got:\n\(found.map(\.description).joined(separator: "\n"))")
        #expect(match?.location.line == row && match?.location.column == column, "at \(match?.location.description ?? "-"), expected \(row):\(column)")
        #expect(match?.location.file.hasSuffix("recipe.yaml") ?? false)
        #expect(match?.fix != nil)
        #expect(throws: RecipeValidationError.self) { try RecipeLoader.load(contentsOf: try Fixtures.recipe(yaml), registry: Fixtures.registry(), environment: [:]) }
    }

    @Test("a strategy's bad seeds are errors at its line")
    func badStrategySeeds() throws {
        let yaml = seededRecipe(lora: "  - {name: lora, kind: lora, backend: local, seeds: [3, 3]}")
        let found = try check(yaml)
        let error = try #require(found.first { $0.severity == .error })
        #expect(error.message.contains("seed 3 appears more than once in 'strategies[3].seeds'"))
        #expect(error.location.line == line(of: "name: lora", in: yaml))
        #expect(error.fix == "list each seed once")
        let empty = try check(seededRecipe(lora: "  - {name: lora, kind: lora, backend: local, seeds: []}"))
        #expect(empty.contains { $0.severity == .error && $0.message.contains("'strategies[3].seeds' is empty") })
    }

    @Test("seeds on a strategy that does not depend on the seed, and run.seeds with none that does, are warnings")
    func warnings() throws {
        let yaml = seededRecipe(full: "  - {name: full, kind: full-finetune, backend: local}\n  - {name: zs2, kind: zero-shot, backend: local, seeds: [1, 2]}")
        let found = try check(yaml)
        #expect(!found.contains { $0.severity == .error })
        let warning = try #require(found.first { $0.severity == .warning && $0.message.contains("'zs2' does not depend on the seed") })
        #expect(warning.location.line == line(of: "name: zs2", in: yaml))

        let promptingOnly = """
            name: seeds
            task: {instruction: Classify., input: "Review: {text}", target: label, labels: [positive, negative]}
            data: {train: data/train.jsonl, test: data/test.jsonl}
            backends: {local: {plugin: fake, model: local-model}}
            strategies:
              - {name: zs, kind: zero-shot}
            run: {seeds: [1, 2]}
            """
        let unused = try check(promptingOnly)
        let note = try #require(unused.first { $0.message.contains("'run.seeds' has no effect") })
        #expect(note.severity == .warning && note.location.line == 7)
    }
}

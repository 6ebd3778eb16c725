import Foundation
import TallyCore
import TallyTesting
import Testing

/// A recipe whose first entry has three variants (lines 18-20); tests replace single lines.
private let base = """
name: t
task:
  instruction: Classify the review.
  input: "Review: {text}"
  target: label
  labels: [positive, negative]
data:
  train: data/train.jsonl
  test: data/test.jsonl
backends:
  hosted: {plugin: fake, model: hosted-model}
strategies:
  - name: wording
    kind: few-shot
    backend: hosted
    shots: 2
    variants:
      - {name: short, instruction: "Positive or negative?"}
      - {name: long, instruction: "Read the review and say whether it is positive or negative.", shots: 3}
      - {name: clue, context: "Hint: {label} is not shown here."}
  - {name: zs, kind: zero-shot, backend: hosted}
"""

/// `yaml` with line `number` (1-based) replaced by `text`.
private func replacing(line number: Int, with text: String, in yaml: String = base) -> String {
    var lines = yaml.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    lines[number - 1] = text
    return lines.joined(separator: "\n")
}

private func parse(_ yaml: String, overrides: [String] = []) throws -> (recipe: Recipe?, diagnostics: [Diagnostic]) {
    RecipeLoader.parse(contentsOf: try Fixtures.recipe(yaml), registry: Fixtures.registry(), environment: [:], overrides: overrides)
}

/// Expects exactly one diagnostic of `severity` containing `message`, at `line` and the
/// column where `token` starts.
private func expectOne(_ yaml: String, _ severity: Diagnostic.Severity = .error, line: Int, token: String, message: String, fix: String? = nil, sourceLocation: Testing.SourceLocation = #_sourceLocation) throws {
    let found = try parse(yaml).diagnostics
    let column = Fixtures.column(of: token, line: line, in: yaml)
    let matching = found.filter { $0.severity == severity && $0.message.contains(message) }
    #expect(matching.count == 1, "expected one \(severity) containing '\(message)'; got:\n\(found.map(\.description).joined(separator: "\n"))", sourceLocation: sourceLocation)
    let match = matching.first
    #expect(match?.location.line == line && match?.location.column == column, "at \(match?.location.description ?? "-"), expected \(line):\(column ?? -1)", sourceLocation: sourceLocation)
    #expect(match?.location.file.hasSuffix("recipe.yaml") ?? false, sourceLocation: sourceLocation)
    if let fix { #expect(match?.fix?.contains(fix) ?? false, "fix: \(match?.fix ?? "none")", sourceLocation: sourceLocation) }
}

@Suite("Recipe variants")
struct RecipeVariantsTests {
    @Test("variants expand one entry into named strategies that inherit and override its keys")
    func expands() throws {
        let (recipe, diagnostics) = try parse(base)
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        let strategies = try #require(recipe?.strategies)
        #expect(strategies.map(\.name) == ["wording/short", "wording/long", "wording/clue", "zs"])
        #expect(strategies.map(\.group) == ["wording", "wording", "wording", nil])
        #expect(strategies.map(\.variant) == ["short", "long", "clue", nil])
        #expect(strategies.prefix(3).allSatisfy { $0.kind == "few-shot" && $0.backend == "hosted" })
        // Each variant's own keys, over the entry's, over the kind's defaults.
        let (short, long, clue) = (strategies[0], strategies[1], strategies[2])
        #expect(short.settings.string("instruction") == "Positive or negative?" && short.settings.int("shots") == 2)
        #expect(long.settings.int("shots") == 3 && long.settings.wrote("shots"))
        #expect(clue.settings.string("instruction") == nil && !clue.settings.wrote("instruction"))
        #expect(clue.settings.string("context") == "Hint: {label} is not shown here." && clue.settings.string("selection") == "first")
        #expect(short.settings.wrote("shots") && !short.settings.wrote("selection"))
        // Each is located at its own item.
        #expect(strategies.prefix(3).map { $0.location?.line } == [18, 19, 20])
        #expect(short.location?.column == Fixtures.column(of: "{name: short", line: 18, in: base))
        #expect(strategies[3].group == nil && strategies[3].location?.line == 21)
    }

    @Test("a variant changes the prompt the strategy sends; the others keep the task's")
    func variantsPrompt() throws {
        let recipe = try #require(try parse(base).recipe)
        let task = recipe.task
        let example = Example(id: "x", fields: ["text": "Great fun.", "label": "positive"], location: SourceLocation(file: "test.jsonl", line: 1))
        let context = StrategyContext(task: task, train: [], seed: 0)
        let prompts = try recipe.strategies.map { try StrategyCatalog.builtIn.make($0, context: context).messages(for: example) }
        #expect(prompts[0].first?.content.hasPrefix("Positive or negative?") ?? false)
        #expect(prompts[1].first?.content.hasPrefix("Read the review") ?? false)
        #expect(prompts[2].first?.content.hasPrefix("Classify the review.") ?? false)
        #expect(prompts[2].last?.content == "Hint: positive is not shown here.\n\nReview: Great fun.")
        #expect(prompts[3].last?.content == "Review: Great fun.")
    }

    @Test("problems in a variant are reported at the variant's own line and column")
    func errorsAtTheVariant() throws {
        try expectOne(replacing(line: 19, with: "      - {name: long, shots: many}"), line: 19, token: "many",
                      message: "'strategies[0].variants[1].shots' must be a whole number")
        try expectOne(replacing(line: 19, with: "      - {name: long, shots: 0}"), line: 19, token: "0}",
                      message: "'strategies[0].variants[1].shots' is 0 but must be at least 1")
        try expectOne(replacing(line: 19, with: "      - {name: long, instructions: Hi}"), line: 19, token: "instructions",
                      message: "unknown key 'instructions' in 'strategies[0].variants[1]' (strategy 'wording/long', kind few-shot)", fix: "did you mean 'instruction'?")
        try expectOne(replacing(line: 19, with: "      - {name: long, rank: 4}"), line: 19, token: "rank",
                      message: "'rank' does not apply to few-shot (strategy 'wording/long')")
        try expectOne(replacing(line: 19, with: "      - {name: long, backend: other}"), line: 19, token: "backend",
                      message: "'backend' cannot be set in a variant (strategy 'wording/long')", fix: "move it to the entry")
        try expectOne(replacing(line: 19, with: "      - {instruction: Hi}"), line: 19, token: "{instruction",
                      message: "'strategies[0].variants[1]' has no 'name'")
        try expectOne(replacing(line: 19, with: "      - {name: short, instruction: Hi}"), line: 19, token: "short",
                      message: "two variants of strategy 'wording' are named 'short'")
        try expectOne(replacing(line: 19, with: "      - {name: a/b, instruction: Hi}"), line: 19, token: "a/b",
                      message: "variant name 'a/b' in 'strategies[0].variants[1]' contains '/'")
        try expectOne(replacing(line: 19, with: "      - long"), line: 19, token: "long",
                      message: "'strategies[0].variants[1]' must be a mapping")
        // The kind's own checks, at the variant's value.
        try expectOne(replacing(line: 20, with: "      - {name: clue, context: \"Genre: {genre}\"}"), line: 20, token: "\"Genre",
                      message: "strategy 'wording/clue': its context uses field 'genre', but no test row has it")
        try expectOne(replacing(line: 20, with: "      - {name: clue, input: \"Review: {txt}\"}"), line: 20, token: "\"Review",
                      message: "its input uses field 'txt'", fix: "did you mean '{text}'?")
        try expectOne(replacing(line: 20, with: "      - {name: clue, input: \"Review\"}"), line: 20, token: "\"Review",
                      message: "strategy 'wording/clue': its input uses no data field")
        try expectOne(replacing(line: 20, with: "      - {name: clue, instruction: \" \"}"), line: 20, token: "\" \"",
                      message: "strategy 'wording/clue': its instruction is empty")
        // A variant that changes nothing is a warning.
        try expectOne(replacing(line: 20, with: "      - {name: clue}"), .warning, line: 20, token: "{name: clue",
                      message: "strategy 'wording/clue' sets no key of its own")
    }

    @Test("the variants list itself, names that collide, and inherited problems reported once")
    func listAndNames() throws {
        // The entry without its items (lines 18-20), so that line 17 can hold the whole list.
        let empty = base.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
            .filter { ![17, 18, 19].contains($0.offset) }.map { $0.element }.joined(separator: "\n")
        try expectOne(replacing(line: 17, with: "    variants: {name: short}", in: empty), line: 17, token: "{name",
                      message: "'strategies[0].variants' must be a list of variants")
        try expectOne(replacing(line: 17, with: "    variants: []", in: empty), line: 17, token: "[]", message: "'strategies[0].variants' is empty")
        // A strategy named like a variant, or like the entry: one namespace.
        try expectOne(replacing(line: 21, with: "  - {name: wording/long, kind: zero-shot, backend: hosted}"), line: 21, token: "{name",
                      message: "two strategies are named 'wording/long'")
        try expectOne(replacing(line: 21, with: "  - {name: wording, kind: zero-shot, backend: hosted}"), line: 21, token: "{name",
                      message: "two strategies are named 'wording'")
        // A bad key of the entry is reported once, at the entry, not once per variant.
        let inherited = replacing(line: 16, with: "    input: \"Review: {txt}\"")
        try expectOne(inherited, line: 16, token: "\"Review", message: "its input uses field 'txt'")
        // The demonstrations need the field in the training rows too; zero-shot does not.
        let testOnly = replacing(line: 20, with: "      - {name: clue, context: \"Id: {id}\"}")
        try expectOne(testOnly, line: 20, token: "\"Id", message: "its context uses field 'id', but no training row has it")
        let zeroShot = replacing(line: 14, with: "    kind: zero-shot", in: replacing(line: 16, with: "    max_tokens: 4", in: replacing(line: 19, with: "      - {name: long, instruction: Hi}", in: testOnly)))
        let clean = try parse(zeroShot).diagnostics
        #expect(clean.isEmpty, "\(clean)")
    }

    @Test("--set addresses an entry by name, a variant by its full name, or its item under variants")
    func overrides() throws {
        let recipe = try #require(try parse(base, overrides: [
            "strategies.wording.shots=1",
            "strategies.wording/short.instruction=Short?",
            "strategies.wording.variants.clue.context=\"Label: {label}\"",
            "strategies.zs.instruction=Zero?",
        ]).recipe)
        #expect(recipe.strategies.map { $0.settings.int("shots") } == [1, 3, 1, nil])
        #expect(recipe.strategies[0].settings.string("instruction") == "Short?")
        #expect(recipe.strategies[2].settings.string("context") == "Label: {label}")
        #expect(recipe.strategies[3].settings.string("instruction") == "Zero?")
        // A variant that does not exist, named like one: the error names the variants list.
        let (missing, diagnostics) = try parse(base, overrides: ["strategies.wording/shrot.shots=1"])
        #expect(missing == nil)
        let error = try #require(diagnostics.first { $0.severity == .error })
        #expect(error.location.file == "--set strategies.wording/shrot.shots=1")
        #expect(error.message.contains("'strategies.wording.variants' has no entry named 'shrot'") && (error.fix?.contains("did you mean 'short'?") ?? false))
        // A problem in an overridden variant value names the override.
        let (_, bad) = try parse(base, overrides: ["strategies.wording/long.shots=0"])
        #expect(bad.contains { $0.location.file == "--set strategies.wording/long.shots=0" && $0.message.contains("is 0 but must be at least 1") })
    }

    @Test("variants of a seeded kind share their random demonstrations")
    func sharedDemonstrations() throws {
        let recipe = try #require(try parse(replacing(line: 16, with: "    selection: random")).recipe)
        let url = try Fixtures.resource("data/train.jsonl")
        let train = try DatasetLoader.load(url).examples
        let context = StrategyContext(task: recipe.task, train: train, seed: 3)
        let example = Example(id: "x", fields: ["text": "Great fun.", "label": "positive"], location: SourceLocation(file: "test.jsonl", line: 1))
        let shown = try recipe.strategies.prefix(3).map { spec in
            let strategy = try #require(try StrategyCatalog.builtIn.make(spec, context: context) as? FewShotStrategy)
            return strategy.demonstrations(for: example).map(\.id)
        }
        #expect(shown[0].count == 4 && shown[1].count == 3)
        #expect(shown[0] == shown[2])
        // A plain entry with the same settings but another name draws differently (its own seed).
        let other = StrategySpec(name: "other", kind: "few-shot", backend: "hosted", settings: recipe.strategies[0].settings)
        let alone = try #require(try StrategyCatalog.builtIn.make(other, context: context) as? FewShotStrategy)
        #expect(alone.demonstrations(for: example).count == 4)
    }
}

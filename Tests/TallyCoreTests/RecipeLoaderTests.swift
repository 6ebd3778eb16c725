import Foundation
import TallyCore
import TallyTesting
import Testing

/// A small valid recipe; tests replace single lines to produce each class of error.
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
  api: {plugin: fake-api, model: m}
strategies:
  - {name: zs, kind: zero-shot, backend: hosted}
"""

/// `base` with line `number` (1-based) replaced by `text` (several lines allowed).
private func replacing(line number: Int, with text: String, in yaml: String = base) -> String {
    var lines = yaml.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    lines[number - 1] = text
    return lines.joined(separator: "\n")
}

private func diagnostics(_ yaml: String) throws -> (url: URL, diagnostics: [Diagnostic]) {
    let url = try Fixtures.recipe(yaml)
    return (url, RecipeLoader.validate(contentsOf: url, registry: Fixtures.registry(), environment: [:]))
}

/// Expects an error at `line`, at the column where `token` starts, whose message contains
/// `message` and whose fix contains `fix`.
private func expectError(_ yaml: String, line: Int, token: String, message: String, fix: String? = nil, sourceLocation: Testing.SourceLocation = #_sourceLocation) throws {
    let (_, found) = try diagnostics(yaml)
    let column = Fixtures.column(of: token, line: line, in: yaml)
    let match = found.first { d in
        d.severity == .error && d.location.line == line && d.location.column == column && d.message.contains(message)
            && (fix.map { d.fix?.contains($0) ?? false } ?? true)
    }
    #expect(match != nil, "no error at \(line):\(column ?? -1) containing '\(message)'; got:\n\(found.map(\.description).joined(separator: "\n"))", sourceLocation: sourceLocation)
    #expect(match?.location.file.hasSuffix("recipe.yaml") ?? false, sourceLocation: sourceLocation)
}

@Suite("Recipe loading")
struct RecipeLoadingTests {
    @Test("a full recipe loads into the model with defaults and resolved paths")
    func loadsFullRecipe() throws {
        let url = try Fixtures.resource("recipes/sentiment.yaml")
        let recipe = try RecipeLoader.load(contentsOf: url, registry: Fixtures.registry(), environment: [:])
        #expect(recipe.name == "sentiment")
        #expect(recipe.task.labels == ["positive", "negative"])
        #expect(recipe.task.metric == "accuracy")
        #expect(recipe.task.maxAnswerTokens == 16)
        #expect(recipe.data.train.path.hasSuffix("/data/train.jsonl"))
        #expect(!recipe.data.train.path.contains(".."))
        #expect(FileManager.default.fileExists(atPath: recipe.data.test.path))
        #expect(recipe.backends.map(\.name) == ["local", "hosted"])
        #expect(recipe.backends[0].settings == ["max_concurrency": "2"])
        #expect(recipe.backends[1].price.inputPerMTok == 1000)
        #expect(recipe.backends[1].price.outputPerMTok == 2000)
        #expect(recipe.strategies.map(\.name) == ["zero-shot", "few-shot-2", "cot", "lora-r4", "full"])
        let few = recipe.strategies[1]
        #expect(few.settings.int("shots") == 2 && few.settings.string("selection") == "similar" && few.settings.bool("balanced") == false)
        #expect(few.settings.wrote("shots") && !few.settings.wrote("balanced"))
        let cot = recipe.strategies[2]
        #expect(cot.settings.string("rationale_field") == "rationale" && cot.settings.int("shots") == 1)
        let lora = recipe.strategies[3]
        #expect(try LoRAOptions(parameters: lora.settings.values) == LoRAOptions(rank: 4, alpha: 8, dropout: 0, targets: ["all-linear"], useRSLoRA: false))
        let training = TrainingOptions(settings: lora.settings, seed: recipe.run.seed)
        #expect(training.epochs == 2 && training.learningRate == 2e-4 && training.seed == 7)
        #expect(recipe.strategies[4].settings["rank"] == nil)
        #expect(try StrategyCatalog.builtIn.kind(named: recipe.strategies[4].kind).adaptsWeights)
        #expect(recipe.probes.map(\.kind) == [.qa, .refusal, .drift])
        #expect(recipe.probes[0].maxTokens == 16 && recipe.probes[1].maxTokens == 32)
        #expect(recipe.costs.computeUSDPerHour == 0.36)
        #expect(recipe.constraints.budgetUSD == 20 && recipe.constraints.minAccuracy == 0.8)
        #expect(recipe.run.seed == 7 && recipe.run.concurrency == 4 && recipe.run.maxExamples == nil)
        #expect(lora.location?.line == 26)
    }

    @Test("the base recipe is clean and defaults fill in")
    func baseIsClean() throws {
        let (url, found) = try diagnostics(base)
        #expect(found.isEmpty, "\(found)")
        let recipe = try RecipeLoader.load(contentsOf: url, registry: Fixtures.registry(), environment: [:])
        #expect(recipe.task.metric == "accuracy")  // default with labels
        #expect(recipe.costs == CostSpec())
        #expect(recipe.run == RunSettings())
    }

    @Test("metric defaults to exact_match without labels; few-shot defaults to 4 shots")
    func defaults() throws {
        let yaml = replacing(line: 14, with: "  - {kind: few-shot, backend: hosted}", in: replacing(line: 6, with: ""))
        let recipe = try RecipeLoader.load(contentsOf: try Fixtures.recipe(yaml), registry: Fixtures.registry(), environment: [:])
        #expect(recipe.task.metric == "exact_match")
        #expect(recipe.strategies[0].name == "few-shot")
        #expect(recipe.strategies[0].settings.int("shots") == 4 && recipe.strategies[0].settings.string("selection") == "first")
    }

    @Test("load throws every error at once")
    func collectsAll() throws {
        var yaml = replacing(line: 3, with: "  instrution: Classify.")
        yaml = replacing(line: 14, with: "  - {name: zs, kind: zero-shoot, backend: hosed}", in: yaml)
        yaml = replacing(line: 4, with: "  input: \"Review: {txt}\"", in: yaml)
        yaml = replacing(line: 6, with: "  metric: acuracy", in: yaml)
        yaml = replacing(line: 9, with: "  test: data/tset.jsonl", in: yaml)
        let url = try Fixtures.recipe(yaml)
        let error = try #require(throws: RecipeValidationError.self) {
            try RecipeLoader.load(contentsOf: url, registry: Fixtures.registry(), environment: [:])
        }
        let messages = error.errors.map(\.message)
        #expect(messages.contains { $0.contains("unknown key 'instrution'") })
        #expect(messages.contains { $0.contains("'task' has no 'instruction'") })
        #expect(messages.contains { $0.contains("unknown strategy kind 'zero-shoot'") })
        #expect(messages.contains { $0.contains("'task.input' uses field 'txt'") })
        #expect(messages.contains { $0.contains("unknown metric 'acuracy'") })
        #expect(messages.contains { $0.contains("data file 'data/tset.jsonl' does not exist") })
        #expect(error.errors.count >= 6)
        // In file order.
        let lines = error.errors.compactMap(\.location.line)
        #expect(lines == lines.sorted())
        #expect(error.description.contains("recipe.yaml:3:3: error: unknown key 'instrution' in 'task'. Fix: did you mean 'instruction'?"))
    }

    @Test("paths expand ~ and resolve against the recipe directory")
    func resolvesPaths() {
        let dir = URL(fileURLWithPath: "/srv/recipes")
        #expect(RecipeLoader.resolve(path: "data/x.jsonl", relativeTo: dir).path == "/srv/recipes/data/x.jsonl")
        #expect(RecipeLoader.resolve(path: "../x.jsonl", relativeTo: dir).path == "/srv/x.jsonl")
        #expect(RecipeLoader.resolve(path: "/abs/x.jsonl", relativeTo: dir).path == "/abs/x.jsonl")
        let home = NSString(string: "~").expandingTildeInPath
        #expect(RecipeLoader.resolve(path: "~/x.jsonl", relativeTo: dir).path == URL(fileURLWithPath: home).appendingPathComponent("x.jsonl").standardizedFileURL.path)
    }

    @Test("a missing recipe file is one clear error")
    func missingFile() {
        let found = RecipeLoader.validate(contentsOf: URL(fileURLWithPath: "/nonexistent/recipe.yaml"), registry: Fixtures.registry(), environment: [:])
        #expect(found.count == 1 && found[0].message.contains("no such recipe file"))
    }
}

@Suite("Recipe validation errors")
struct RecipeValidationTests {
    @Test("YAML syntax error names line and column")
    func syntax() throws {
        let yaml = replacing(line: 4, with: "  input: \"Review: {text}")
        let (_, found) = try diagnostics(yaml)
        let error = try #require(found.first)
        #expect(error.severity == .error && error.message.hasPrefix("YAML syntax error"))
        #expect(error.location.line != nil && error.location.line! >= 4)
        #expect(error.location.column != nil)
    }

    @Test("an empty recipe, or one that is not a mapping, is one clear error")
    func emptyOrNotMapping() throws {
        let (_, empty) = try diagnostics("")
        #expect(empty.map(\.description).contains { $0.hasSuffix("recipe.yaml:1:1: error: the recipe is empty. Fix: write a recipe (run `tally init` for a commented starter)") })
        let (_, list) = try diagnostics("- a\n- b\n")
        #expect(list.count == 1 && list[0].message.contains("'recipe' must be a mapping"))
        try expectError(base + "\nprobes: knowledge", line: 15, token: "knowledge", message: "'probes' must be a list of probes")
        try expectError(replacing(line: 14, with: "  - zero-shot"), line: 14, token: "zero-shot", message: "'strategies[0]' must be a mapping")
    }

    @Test("duplicate keys are reported")
    func duplicateKeys() throws {
        let yaml = replacing(line: 5, with: "  target: label\n  target: text")
        let (_, found) = try diagnostics(yaml)
        #expect(found.contains { $0.message.contains("'target' appears more than once") })
    }

    @Test("unknown top-level key suggests the nearest section")
    func unknownTopKey() throws {
        try expectError(replacing(line: 13, with: "strategys:"), line: 13, token: "strategys", message: "unknown key 'strategys' in 'recipe'", fix: "did you mean 'strategies'?")
    }

    @Test("unknown nested key suggests the nearest field")
    func unknownNestedKey() throws {
        try expectError(replacing(line: 5, with: "  targt: label"), line: 5, token: "targt", message: "unknown key 'targt' in 'task'", fix: "did you mean 'target'?")
        try expectError(replacing(line: 14, with: "  - {name: zs, kind: few-shot, backend: hosted, shot: 2}"), line: 14, token: "shot:", message: "unknown key 'shot'", fix: "did you mean 'shots'?")
        try expectError(replacing(line: 11, with: "  hosted: {plugin: fake, model: hosted-model, price: {input_per_mtk: 1}}"), line: 11, token: "input_per_mtk", message: "unknown key 'input_per_mtk' in 'backends.hosted.price'", fix: "input_per_mtok")
    }

    @Test("unknown strategy kind suggests the nearest kind")
    func unknownKind() throws {
        try expectError(replacing(line: 14, with: "  - {name: zs, kind: few-shoot, backend: hosted}"), line: 14, token: "few-shoot", message: "unknown strategy kind 'few-shoot'", fix: "did you mean 'few-shot'?")
    }

    @Test("unknown metric suggests the nearest metric")
    func unknownMetric() throws {
        try expectError(replacing(line: 6, with: "  metric: acuracy"), line: 6, token: "acuracy", message: "unknown metric 'acuracy'", fix: "did you mean 'accuracy'?")
    }

    @Test("unknown selection suggests the nearest selection")
    func unknownSelection() throws {
        try expectError(replacing(line: 14, with: "  - {name: zs, kind: few-shot, backend: hosted, selection: simlar}"), line: 14, token: "simlar", message: "unknown selection 'simlar'", fix: "did you mean 'similar'?")
    }

    @Test("unknown probe kind suggests the nearest kind")
    func unknownProbeKind() throws {
        let yaml = base + "\nprobes:\n  - {name: safety, kind: refusl, data: probes/refusal.jsonl}"
        try expectError(yaml, line: 16, token: "refusl", message: "unknown probe kind 'refusl'", fix: "did you mean 'refusal'?")
    }

    @Test("unknown plugin suggests the nearest registered plugin")
    func unknownPlugin() throws {
        try expectError(replacing(line: 11, with: "  hosted: {plugin: fak, model: hosted-model}"), line: 11, token: "fak,", message: "unknown backend plugin 'fak'", fix: "did you mean 'fake'?")
    }

    @Test("wrong types are reported with the expected type")
    func types() throws {
        try expectError(replacing(line: 14, with: "  - {name: zs, kind: few-shot, backend: hosted, shots: many}"), line: 14, token: "many", message: "'strategies[0].shots' must be a whole number, not 'many'")
        try expectError(replacing(line: 14, with: "  - {name: zs, kind: few-shot, backend: hosted, balanced: maybe}"), line: 14, token: "maybe", message: "must be true or false")
        try expectError(replacing(line: 3, with: "  instruction: [a, b]"), line: 3, token: "[a", message: "'task.instruction' must be text")
        try expectError(replacing(line: 9, with: "#", in: replacing(line: 8, with: "#", in: replacing(line: 7, with: "data: data/train.jsonl"))), line: 7, token: "data/train", message: "'data' must be a mapping")
        try expectError(base + "\nrun: {seed: 7, concurrency: 2.5}", line: 15, token: "2.5", message: "'run.concurrency' must be a whole number")
    }

    @Test("out-of-range values name the allowed range")
    func ranges() throws {
        let lora = "  - {name: l, kind: lora, backend: hosted, rank: 0}"
        try expectError(replacing(line: 14, with: lora), line: 14, token: "0}", message: "'strategies[0].rank' is 0 but must be at least 1")
        try expectError(base + "\nconstraints: {min_accuracy: 1.5}", line: 15, token: "1.5", message: "'constraints.min_accuracy' is 1.5 but must be between 0 and 1")
        try expectError(base + "\nrun: {concurrency: 0}", line: 15, token: "0}", message: "'run.concurrency' is 0 but must be at least 1")
        try expectError(base + "\nrun: {max_validation_examples: 0}", line: 15, token: "0}", message: "'run.max_validation_examples' is 0 but must be at least 1")
        try expectError(replacing(line: 14, with: "  - {name: zs, kind: few-shot, backend: hosted, shots: -1}"), line: 14, token: "-1", message: "'strategies[0].shots' is -1 but must be at least 1")
        try expectError(replacing(line: 14, with: "  - {name: l, kind: lora, backend: hosted, dropout: 1}"), line: 14, token: "1}", message: "'strategies[0].dropout' is 1 but must be at least 0 and less than 1")
        try expectError(base + "\ncosts: {horizon_months: 0}", line: 15, token: "0}", message: "'costs.horizon_months' is 0 but must be greater than 0")
        try expectError(replacing(line: 11, with: "  hosted: {plugin: fake, model: hosted-model, price: {input_per_mtok: -1}}"), line: 11, token: "-1", message: "'backends.hosted.price.input_per_mtok' is -1 but must be at least 0")
    }

    @Test("a strategy's backend must exist")
    func missingBackend() throws {
        try expectError(replacing(line: 14, with: "  - {name: zs, kind: zero-shot, backend: hosed}"), line: 14, token: "hosed", message: "uses backend 'hosed', which is not defined", fix: "did you mean 'hosted'?")
    }

    @Test("fine-tuning needs a backend whose plugin can fine-tune")
    func fineTuneBackend() throws {
        try expectError(replacing(line: 14, with: "  - {name: l, kind: lora, backend: api}"), line: 14, token: "api}", message: "backend 'api' (plugin fake-api) cannot run lora fine-tuning; it cannot fine-tune at all", fix: "use backend 'hosted'")
    }

    @Test("keys that do not apply to the kind are rejected")
    func keyForWrongKind() throws {
        try expectError(replacing(line: 14, with: "  - {name: zs, kind: zero-shot, backend: hosted, rank: 8}"), line: 14, token: "rank", message: "'rank' does not apply to zero-shot", fix: "remove it")
        try expectError(replacing(line: 14, with: "  - {name: f, kind: full-finetune, backend: hosted, alpha: 8}"), line: 14, token: "alpha", message: "'alpha' does not apply to full-finetune")
    }

    @Test("the target field must exist in the data")
    func missingTarget() throws {
        try expectError(replacing(line: 5, with: "  target: lable"), line: 5, token: "lable", message: "'task.target' uses field 'lable', but no row of", fix: "did you mean 'label'?")
    }

    @Test("template fields must exist in the data")
    func missingTemplateField() throws {
        try expectError(replacing(line: 4, with: "  input: \"Review: {txt}\""), line: 4, token: "\"Review", message: "'task.input' uses field 'txt'", fix: "did you mean 'text'?")
        try expectError(replacing(line: 4, with: "  input: \"Review\""), line: 4, token: "\"Review", message: "uses no data field")
    }

    @Test("data files must exist")
    func missingDataFile() throws {
        try expectError(replacing(line: 9, with: "  test: data/tset.jsonl"), line: 9, token: "data/tset", message: "data file 'data/tset.jsonl' does not exist")
        try expectError(replacing(line: 8, with: "  tests: data/test.jsonl"), line: 8, token: "tests", message: "unknown key 'tests' in 'data'", fix: "did you mean 'test'?")
    }

    @Test("data files must parse into at least one usable row")
    func unusableData() throws {
        try expectError(replacing(line: 9, with: "  test: data/formats/nothing.jsonl"), line: 9, token: "data/formats", message: "has no usable row")
    }

    @Test("bad rows are warnings with file:line, not errors")
    func badRowWarnings() throws {
        let yaml = replacing(line: 4, with: "  input: \"{input}\"", in: replacing(line: 5, with: "  target: output", in: replacing(line: 6, with: "", in: replacing(line: 8, with: "  train: data/formats/plain.jsonl", in: replacing(line: 9, with: "  test: data/formats/bad.jsonl")))))
        let (url, found) = try diagnostics(yaml)
        let warnings = found.filter { $0.severity == .warning && $0.location.file.hasSuffix("data/formats/bad.jsonl") }
        try #require(warnings.map(\.location.line) == [2, 3, 5])
        #expect(warnings[0].message.contains("not valid JSON"))
        #expect(warnings[1].message.contains("not a JSON object"))
        #expect(warnings[2].message.contains("repeats the id of line 4"))
        #expect(throws: Never.self) { try RecipeLoader.load(contentsOf: url, registry: Fixtures.registry(), environment: [:]) }
    }

    @Test("unknown plugin setting keys suggest the nearest setting")
    func pluginSettingKeys() throws {
        try expectError(replacing(line: 11, with: "  hosted: {plugin: fake, model: hosted-model, max_concurency: 2}"), line: 11, token: "max_concurency", message: "unknown key 'max_concurency' in 'backends.hosted' (plugin fake)", fix: "did you mean 'max_concurrency'?")
    }

    @Test("the plugin's own validation is reported at the field")
    func pluginValidate() throws {
        try expectError(replacing(line: 11, with: "  hosted: {plugin: fake, model: broken}"), line: 11, token: "broken", message: "backend 'hosted' (plugin fake): model 'broken' cannot be served")
        try expectError(replacing(line: 11, with: "  hosted: {plugin: fake, model: m, max_concurrency: 0}"), line: 11, token: "0}", message: "max_concurrency must be a whole number of at least 1")
    }

    @Test("missing sections and required fields are named")
    func missingSections() throws {
        let yaml = "name: t\ntask:\n  instruction: x\n"
        let (_, found) = try diagnostics(yaml)
        let messages = found.map(\.message)
        #expect(messages.contains("'task' has no 'input'."))
        #expect(messages.contains("'task' has no 'target'."))
        #expect(messages.contains("the recipe has no 'data' section."))
        #expect(messages.contains("the recipe has no 'backends' section."))
        #expect(messages.contains("the recipe has no 'strategies' section."))
    }

    /// How many worked demonstrations the recipe's first strategy shows before a question.
    func rationaleDemonstrations(_ recipe: Recipe) throws -> Int {
        let train = try DatasetLoader.load(recipe.data.train).examples
        let strategy = try StrategyCatalog.builtIn.make(recipe.strategies[0], context: StrategyContext(task: recipe.task, train: train))
        let question = try #require(train.first)
        return strategy.messages(for: question).filter { $0.role == .assistant && $0.content.contains("Answer: ") }.count
    }

    @Test("chain-of-thought demonstrations use an existing rationale field")
    func rationale() throws {
        // Without rationale_field, the training data's `rationale` field is used when present…
        let url = try Fixtures.recipe(replacing(line: 14, with: "  - {name: c, kind: chain-of-thought, backend: hosted, shots: 2}"))
        let recipe = try RecipeLoader.load(contentsOf: url, registry: Fixtures.registry(), environment: [:])
        #expect(try rationaleDemonstrations(recipe) == 2)
        // …otherwise the strategy runs zero-shot, with a warning.
        let noRationale = replacing(line: 8, with: "  train: data/validation.jsonl", in: replacing(line: 14, with: "  - {name: c, kind: chain-of-thought, backend: hosted, shots: 2}"))
        let (plainURL, found) = try diagnostics(noRationale)
        #expect(found.contains { $0.severity == .warning && $0.location.line == 14 && $0.message.contains("runs as zero-shot") })
        let plain = try RecipeLoader.load(contentsOf: plainURL, registry: Fixtures.registry(), environment: [:])
        #expect(try rationaleDemonstrations(plain) == 0)
        try expectError(replacing(line: 14, with: "  - {name: c, kind: chain-of-thought, backend: hosted, rationale_field: rationle}"), line: 14, token: "rationle", message: "rationale_field 'rationle' is in no training row", fix: "did you mean 'rationale'?")
    }

    @Test("balanced needs labels; regex needs a valid pattern; names are unique")
    func crossField() throws {
        let noLabels = replacing(line: 6, with: "", in: replacing(line: 14, with: "  - {name: f, kind: few-shot, backend: hosted, balanced: true}"))
        try expectError(noLabels, line: 14, token: "true", message: "the task has no labels")
        try expectError(replacing(line: 6, with: "  metric: regex\n  answer_pattern: \"(unclosed\""), line: 7, token: "\"(unclosed", message: "not a valid regular expression")
        try expectError(replacing(line: 6, with: "  metric: regex"), line: 6, token: "metric", message: "metric 'regex' needs 'task.answer_pattern'")
        try expectError(base + "\n  - {name: zs, kind: few-shot, backend: hosted}", line: 15, token: "{name", message: "two strategies are named 'zs'")
    }

    @Test("an unset api_key_env variable is a warning; a key in its place is an error")
    func apiKeyEnv() throws {
        let (_, found) = try diagnostics(replacing(line: 11, with: "  hosted: {plugin: fake, model: m, api_key_env: MY_KEY}"))
        #expect(found.contains { $0.severity == .warning && $0.message.contains("MY_KEY is not set") && $0.location.line == 11 })
        try expectError(replacing(line: 11, with: "  hosted: {plugin: fake, model: m, api_key_env: sk-abc.def}"), line: 11, token: "sk-abc", message: "must name an environment variable")
    }
}

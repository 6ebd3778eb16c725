import Foundation
import Yams

/// Reads a recipe file (YAML) into a validated `Recipe`, reporting every problem with
/// file:line:column and a fix. docs/recipe-format.md documents each field.
///
/// ```swift
/// do {
///     let recipe = try RecipeLoader.load(contentsOf: url, registry: registry, environment: env)
/// } catch let error as RecipeValidationError {
///     error.diagnostics.forEach { print($0) }
/// }
/// ```
public enum RecipeLoader {
    /// Top-level sections.
    public static let sectionKeys = ["name", "description", "task", "data", "probes", "backends", "strategies", "costs", "constraints", "run", "curves"]
    public static let taskKeys = ["instruction", "input", "context", "target", "labels", "metric", "answer_pattern", "max_tokens"]
    public static let dataKeys = ["train", "test", "validation", "strict"]
    public static let probeKeys = ["name", "kind", "data", "metric", "max_tokens"]
    /// Backend keys the core understands; any other scalar key is a plugin setting.
    public static let backendKeys = ["plugin", "model", "api_key_env", "base_url", "price"]
    public static let priceKeys = ["input_per_mtok", "output_per_mtok", "cached_input_per_mtok", "finetuned_input_per_mtok", "finetuned_output_per_mtok", "training_per_mtok"]
    public static let costKeys = ["compute_usd_per_hour", "requests_per_month", "horizon_months", "gpu_usd_per_hour", "label_usd_per_example", "labelled_examples"]
    public static let constraintKeys = ["min_accuracy", "max_forgetting", "budget_usd", "max_latency_ms"]
    public static let runKeys = ["seed", "seeds", "concurrency", "max_examples", "max_train_examples", "max_validation_examples", "bootstrap_samples"]

    /// Loads and validates a recipe, including its data files.
    /// - Parameters:
    ///   - url: the recipe file; relative paths inside it resolve against its directory.
    ///   - registry: the backend plugins `plugin:` may name.
    ///   - environment: checked for `api_key_env` variables and passed to plugins' `validate`.
    ///   - strategies: the strategy kinds `kind:` may name.
    ///   - overrides: `KEY=VALUE` changes applied before the recipe is read (`--set`; see
    ///     `RecipeOverrides` for the key paths and values accepted).
    /// - Throws: `RecipeValidationError` with every diagnostic when there is at least one error.
    public static func load(contentsOf url: URL, registry: PluginRegistry, environment: [String: String] = ProcessInfo.processInfo.environment, strategies: StrategyCatalog = .builtIn, overrides: [String] = []) throws -> Recipe {
        let (recipe, diagnostics) = parse(contentsOf: url, registry: registry, environment: environment, strategies: strategies, overrides: overrides)
        guard let recipe, !diagnostics.contains(where: { $0.severity == .error }) else {
            throw RecipeValidationError(diagnostics: diagnostics)
        }
        return recipe
    }

    /// Every diagnostic (errors and warnings) for a recipe, data files included; empty when
    /// the recipe is clean.
    public static func validate(contentsOf url: URL, registry: PluginRegistry, environment: [String: String] = ProcessInfo.processInfo.environment, strategies: StrategyCatalog = .builtIn, overrides: [String] = []) -> [Diagnostic] {
        parse(contentsOf: url, registry: registry, environment: environment, strategies: strategies, overrides: overrides).diagnostics
    }

    /// Parses a recipe, returning the recipe when it has no error, and all diagnostics.
    /// Diagnostics about an override carry `--set KEY=VALUE` in place of file:line:column.
    public static func parse(contentsOf url: URL, registry: PluginRegistry, environment: [String: String] = ProcessInfo.processInfo.environment, strategies: StrategyCatalog = .builtIn, overrides: [String] = []) -> (recipe: Recipe?, diagnostics: [Diagnostic]) {
        let shown = url.relativePath.isEmpty ? url.path : url.relativePath
        guard let data = try? Data(contentsOf: url) else {
            let exists = FileManager.default.fileExists(atPath: url.path)
            return (nil, [Diagnostic(.error, at: SourceLocation(file: shown), exists ? "cannot read the recipe file." : "no such recipe file.", fix: exists ? "check its permissions" : "check the path, or write a starter recipe with `tally init`")])
        }
        let text = String(decoding: data, as: UTF8.self)
        let parser = RecipeParser(file: url, shown: shown, registry: registry, environment: environment, catalog: strategies, overrides: overrides)
        let recipe = parser.parse(yaml: text)
        // Recipe problems first, in file order; then data-file problems, in discovery order.
        let ordered = parser.reader.diagnostics.enumerated().sorted { a, b in
            let aRecipe = a.element.location.file == shown ? 0 : 1
            let bRecipe = b.element.location.file == shown ? 0 : 1
            if aRecipe != bRecipe { return aRecipe < bRecipe }
            if aRecipe == 0 {
                let la = (a.element.location.line ?? 0, a.element.location.column ?? 0)
                let lb = (b.element.location.line ?? 0, b.element.location.column ?? 0)
                if la != lb { return la < lb }
            }
            return a.offset < b.offset
        }.map(\.element)
        return (recipe, ordered)
    }

    /// Resolves a path written in a recipe: `~` expanded, relative paths against `directory`,
    /// `cache:REL` under the asset cache (see `AssetCatalog.resolvePath`).
    public static func resolve(path: String, relativeTo directory: URL) -> URL {
        if path.hasPrefix(AssetCatalog.cachePrefix), let url = try? AssetCatalog.resolvePath(path, relativeTo: directory) { return url }
        let expanded = NSString(string: path).expandingTildeInPath
        if expanded.hasPrefix("/") { return URL(fileURLWithPath: expanded).standardizedFileURL }
        return directory.appendingPathComponent(expanded).standardizedFileURL
    }
}

/// The single-use worker behind `RecipeLoader`.
final class RecipeParser {
    let file: URL
    let shown: String
    let registry: PluginRegistry
    let environment: [String: String]
    let catalog: StrategyCatalog
    /// `KEY=VALUE` changes from the command line, applied in order.
    let overrides: [String]
    let reader: YAMLReader
    let directory: URL
    /// The recipe directory as the user sees it (prefix for data paths in messages).
    let shownDirectory: String

    init(file: URL, shown: String, registry: PluginRegistry, environment: [String: String], catalog: StrategyCatalog, overrides: [String] = []) {
        self.file = file
        self.overrides = overrides
        self.shown = shown
        self.registry = registry
        self.environment = environment
        self.catalog = catalog
        self.reader = YAMLReader(file: shown)
        self.directory = file.deletingLastPathComponent()
        self.shownDirectory = (shown as NSString).deletingLastPathComponent
    }

    func shownPath(_ raw: String) -> String {
        if raw.hasPrefix(AssetCatalog.cachePrefix) { return RecipeLoader.resolve(path: raw, relativeTo: directory).path }
        let expanded = NSString(string: raw).expandingTildeInPath
        if expanded.hasPrefix("/") || shownDirectory.isEmpty { return expanded }
        return (shownDirectory as NSString).appendingPathComponent(expanded)
    }

    // MARK: entry point

    func parse(yaml: String) -> Recipe? {
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: yaml) else {
                reader.add(Diagnostic(.error, at: SourceLocation(file: shown, line: 1, column: 1), "the recipe is empty.", fix: "write a recipe (run `tally init` for a commented starter)"))
                return nil
            }
            // Override values are composed on the lines after the file's last one.
            let lines = yaml.reduce(1) { $1.isNewline ? $0 + 1 : $0 }
            root = overrides.isEmpty ? node : RecipeOverrides.apply(overrides, to: node, firstLine: lines + 1, reader: reader)
        } catch {
            reader.add(syntaxDiagnostic(error, yaml: yaml))
            return nil
        }
        guard let top = reader.mapping(root, "recipe", allowed: RecipeLoader.sectionKeys, example: "name: my-task") else { return nil }

        let name = reader.string(top["name"], "name") ?? file.deletingPathExtension().lastPathComponent
        let task = parseTask(top)
        let data = parseData(top)
        let run = parseRun(top)
        let costs = parseCosts(top)
        let constraints = parseConstraints(top)
        let backends = parseBackends(top, required: needsBackends(top))
        let strategies = parseStrategies(top, backends: backends, task: task, run: run)
        let probes = parseProbes(top)
        if let task = task?.spec, let data {
            checkData(task: task, taskNodes: self.task, data: data)
        }
        if let task = task?.spec, let strategies {
            checkStrategies(strategies, task: task, train: data?.train, test: data?.test, backends: backends)
        }
        let curves = parseCurves(top, strategies: strategies, trainCount: data?.train?.dataset.map { dataset in
            run?.maxTrainExamples.map { min($0, dataset.examples.count) } ?? dataset.examples.count
        })

        guard !reader.hasErrors, let task, let train = data?.train, let test = data?.test, let run, let costs, let constraints, let backends, let strategies, let probes, let curves else { return nil }
        return Recipe(
            name: name, file: file, task: task.spec,
            data: DataSpec(train: train.url, test: test.url, validation: data?.validation?.url, strict: data?.strict ?? false),
            probes: probes, backends: backends.map(\.config), strategies: strategies.map(\.spec),
            costs: costs, constraints: constraints, run: run, curves: curves, overrides: overrides)
    }

    func syntaxDiagnostic(_ error: any Error, yaml: String) -> Diagnostic {
        let fix = "fix the YAML at this position (check indentation, unbalanced quotes or brackets, and a ':' in unquoted text)"
        if let error = error as? YamlError {
            switch error {
            case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _), .composer(let context, let problem, let mark, _):
                var message = "YAML syntax error: \(problem)"
                if let context { message += " (\(context.text) at line \(context.mark.line), column \(context.mark.column))" }
                return Diagnostic(.error, at: SourceLocation(file: shown, line: mark.line, column: mark.column), message + ".", fix: fix)
            case .duplicatedKeysInMapping(let duplicates, let context):
                return Diagnostic(.error, at: SourceLocation(file: shown, line: context.mark.line, column: context.mark.column), "key \(duplicates.map { "'\($0)'" }.joined(separator: ", ")) appears more than once in one mapping.", fix: "keep one of them")
            case .reader(let problem, let offset, _, _):
                var line = 1, column = 1
                if let offset {
                    for char in yaml.prefix(offset) {
                        if char.isNewline { line += 1; column = 1 } else { column += 1 }
                    }
                }
                return Diagnostic(.error, at: SourceLocation(file: shown, line: line, column: column), "the recipe cannot be read: \(problem).", fix: "save the file as UTF-8 text")
            default:
                break
            }
        }
        return Diagnostic(.error, at: SourceLocation(file: shown, line: 1, column: 1), "YAML error: \(error).", fix: fix)
    }

    // MARK: task

    struct TaskNodes {
        let spec: TaskSpec
        let input: Node?
        let context: Node?
        let target: Node?
        let labels: Node?
    }

    private(set) var task: TaskNodes?

    func parseTask(_ top: YAMLReader.Mapping) -> TaskNodes? {
        guard let node = top["task"] else {
            reader.error(top.node, "the recipe has no 'task' section.", fix: "add task: {instruction: \"…\", input: \"{text}\", target: label}")
            return nil
        }
        guard let map = reader.mapping(node, "task", allowed: RecipeLoader.taskKeys, example: "{instruction: \"…\", input: \"{text}\", target: label}") else { return nil }
        let instruction = reader.requiredString(map, "instruction", example: "\"Classify the review as positive or negative.\"")
        let input = reader.requiredString(map, "input", example: "\"Review: {text}\"")
        if let input, PromptTemplate(input).fields.isEmpty, let node = map["input"] {
            reader.error(node, "'task.input' uses no data field, so every example would look the same.", fix: "put the field holding the input in braces, e.g. \"Review: {text}\"")
        }
        let context = reader.string(map["context"], "task.context")
        let target = reader.requiredString(map, "target", example: "label")
        var labels = reader.stringList(map["labels"], "task.labels")
        if let list = labels, let node = map["labels"] {
            if list.isEmpty {
                reader.error(node, "'task.labels' is empty.", fix: "list the labels, e.g. [positive, negative], or remove the key for free-form answers")
                labels = nil
            } else if list.contains(where: { TextNormalizer.normalize($0).isEmpty }) {
                reader.error(node, "a label in 'task.labels' is empty after normalisation (case, punctuation and articles are ignored).", fix: "use labels that contain letters or digits")
            } else {
                var seen: [String: String] = [:]
                for label in list {
                    let key = TextNormalizer.normalize(label)
                    if let other = seen[key] {
                        reader.error(node, "labels '\(other)' and '\(label)' are the same once case and punctuation are ignored.", fix: "keep one of them")
                    }
                    seen[key] = label
                }
            }
        }
        let defaultMetric = labels == nil ? MetricKind.exactMatch.rawValue : MetricKind.accuracy.rawValue
        var metric: String? = defaultMetric
        if let node = map["metric"] {
            metric = reader.choice(node, "task.metric", MetricKind.allCases.map(\.rawValue), what: "metric")
        }
        let pattern = reader.string(map["answer_pattern"], "task.answer_pattern")
        if metric == MetricKind.regex.rawValue, pattern == nil {
            reader.error(map.keyNode("metric") ?? map.node, "metric 'regex' needs 'task.answer_pattern'.", fix: "add answer_pattern: \"Answer: (\\\\w+)\" (the first capture group is the answer)")
        }
        if let pattern, let node = map["answer_pattern"] {
            do {
                _ = try NSRegularExpression(pattern: pattern)
            } catch {
                reader.error(node, "'task.answer_pattern' is not a valid regular expression.", fix: "check brackets and escapes (in YAML double quotes a backslash is written \\\\)")
            }
        }
        var maxTokens = 16
        if let node = map["max_tokens"] { maxTokens = reader.int(node, "task.max_tokens", min: 1) ?? maxTokens }
        // A missing instruction or an invalid metric is already reported; keep going so the
        // data checks still run (the recipe is not built while there are errors).
        guard let input, let target else { return nil }
        let spec = TaskSpec(instruction: instruction ?? "", input: input, context: context, target: target, labels: labels, metric: metric ?? defaultMetric, answerPattern: pattern, maxAnswerTokens: maxTokens)
        let nodes = TaskNodes(spec: spec, input: map["input"], context: map["context"], target: map["target"], labels: map["labels"])
        task = nodes
        return nodes
    }

    // MARK: data

    struct LoadedFile {
        let url: URL
        let shown: String
        let node: Node
        let dataset: Dataset?
    }

    /// The data files that could be located (missing ones are already reported).
    struct LoadedData {
        let train: LoadedFile?
        let test: LoadedFile?
        let validation: LoadedFile?
        /// `data.strict`: skipped rows are errors, not warnings.
        let strict: Bool
    }

    func parseData(_ top: YAMLReader.Mapping) -> LoadedData? {
        guard let node = top["data"] else {
            reader.error(top.node, "the recipe has no 'data' section.", fix: "add data: {train: data/train.jsonl, test: data/test.jsonl}")
            return nil
        }
        guard let map = reader.mapping(node, "data", allowed: RecipeLoader.dataKeys, example: "{train: data/train.jsonl, test: data/test.jsonl}") else { return nil }
        let strict = map["strict"].flatMap { reader.bool($0, "data.strict") } ?? false
        let train = dataFile(map, "train", required: true, strict: strict)
        let test = dataFile(map, "test", required: true, strict: strict)
        let validation = dataFile(map, "validation", required: false, strict: strict)
        return LoadedData(train: train, test: test, validation: validation, strict: strict)
    }

    func dataFile(_ map: YAMLReader.Mapping, _ key: String, required: Bool, strict: Bool) -> LoadedFile? {
        guard map.has(key) else {
            if required { reader.error(map.keyNode(key) ?? map.node, "'data' has no '\(key)' file.", fix: "add \(key): data/\(key).jsonl") }
            return nil
        }
        guard let node = map[key], let raw = reader.string(node, "data.\(key)") else { return nil }
        let url = RecipeLoader.resolve(path: raw, relativeTo: directory)
        let shownPath = self.shownPath(raw)
        guard FileManager.default.fileExists(atPath: url.path) else {
            reader.error(node, "data file '\(raw)' does not exist (looked for \(shownPath)).", fix: AssetCatalog.fetchHint(for: url) ?? "check the path; relative paths are resolved against the recipe's directory")
            return LoadedFile(url: url, shown: shownPath, node: node, dataset: nil)
        }
        do {
            let dataset = try DatasetLoader.load(url, displayPath: shownPath)
            reportProblems(dataset.problems, severity: strict ? .error : .warning)
            return LoadedFile(url: url, shown: shownPath, node: node, dataset: dataset)
        } catch let error as TallyError {
            reader.error(node, "data file '\(raw)' cannot be used: \(error.message)", fix: "fix the file (one JSON object per line, or CSV/TSV with a header row)")
            return LoadedFile(url: url, shown: shownPath, node: node, dataset: nil)
        } catch {
            reader.error(node, "data file '\(raw)' cannot be used: \(error).")
            return LoadedFile(url: url, shown: shownPath, node: node, dataset: nil)
        }
    }

    /// Row problems as warnings (the run skips those rows), or errors under `data.strict`; at
    /// most 10 per file.
    func reportProblems(_ problems: [DataProblem], severity: Diagnostic.Severity = .warning, limit: Int = 10) {
        for problem in problems.prefix(limit) {
            reader.add(Diagnostic(severity, at: problem.location, problem.message))
        }
        if problems.count > limit, let first = problems.first {
            reader.add(Diagnostic(severity, at: SourceLocation(file: first.location.file), "\(problems.count - limit) more row(s) in this file are skipped for the same kinds of reasons."))
        }
    }

    /// Template fields, target and rationale fields must exist in the data.
    func checkData(task: TaskSpec, taskNodes: TaskNodes?, data: LoadedData) {
        var needs: [(field: String, node: Node?, what: String)] = []
        for field in PromptTemplate(task.input).fields { needs.append((field, taskNodes?.input, "task.input")) }
        if let context = task.context {
            for field in PromptTemplate(context).fields { needs.append((field, taskNodes?.context, "task.context")) }
        }
        needs.append((task.target, taskNodes?.target, "task.target"))
        let files = [data.test, data.train, data.validation].compactMap { $0 }
        for file in files {
            guard let dataset = file.dataset else { continue }
            let available = dataset.fieldNames
            var reported = Set<String>()
            for need in needs where !available.contains(need.field) && reported.insert(need.field).inserted {
                let near = nearestName(to: need.field, among: available)
                reader.error(need.node, "'\(need.what)' uses field '\(need.field)', but no row of \(file.shown) has it (its fields: \(available.joined(separator: ", "))).",
                    fix: near.map { "did you mean '\($0)'?" } ?? "use one of the data's fields, or add '\(need.field)' to the rows")
            }
            let present = needs.map(\.field).filter { available.contains($0) }
            let purposes = Dictionary(needs.map { ($0.field, $0.what) }, uniquingKeysWith: { a, _ in a })
            let checked = Dataset(url: dataset.url, displayPath: dataset.displayPath, format: dataset.format, examples: dataset.examples, problems: []).requiring(present, purposes: purposes)
            reportProblems(checked.problems, severity: data.strict ? .error : .warning)
            if let labels = task.labels {
                let normalized = Set(labels.map(TextNormalizer.normalize))
                let outside = checked.examples.filter { !normalized.contains(TextNormalizer.normalize($0[task.target] ?? "")) }
                reportProblems(outside.map { DataProblem(location: $0.location, message: "target '\($0[task.target] ?? "")' is not one of task.labels (\(labels.joined(separator: ", "))); no answer can be scored correct on this row.") })
            }
        }
    }

    /// Each strategy kind's own checks of its entries (keys that need task labels, data
    /// fields that must exist), reported at the key they name.
    func checkStrategies(_ strategies: [ParsedStrategy], task: TaskSpec, train: LoadedFile?, test: LoadedFile?, backends: [ParsedBackend]?) {
        let embedding = (backends ?? []).filter { $0.plugin?.canEmbed($0.config) ?? false }.map(\.config.name)
        let context = StrategyCheckContext(
            task: task, trainFields: train?.dataset?.fieldNames, trainCount: train?.dataset?.examples.count, testFields: test?.dataset?.fieldNames,
            recipeDirectory: directory, backendNames: backends?.map(\.config.name), embeddingBackends: Set(embedding))
        // Variants inherit the entry's keys: a problem with one of those is reported once.
        var reported = Set<String>()
        for strategy in strategies {
            for issue in strategy.kind.check(strategy.spec, context: context) {
                let node = issue.key.flatMap { strategy.valueNodes[$0] } ?? strategy.node
                if let group = strategy.spec.group {
                    let location = reader.location(node)
                    let key = "\(group)\u{0}\(location.line ?? 0):\(location.column ?? 0)\u{0}\(issue.severity)\u{0}\(issue.fix ?? "")"
                    if !reported.insert(key).inserted { continue }
                }
                if issue.severity == .error {
                    reader.error(node, issue.message, fix: issue.fix)
                } else {
                    reader.warning(node, issue.message, fix: issue.fix)
                }
            }
        }
    }

    // MARK: probes

    func parseProbes(_ top: YAMLReader.Mapping) -> [ProbeSpec]? {
        guard let node = top["probes"] else { return [] }
        guard case .sequence(let sequence) = node else {
            reader.error(node, "'probes' must be a list of probes.", fix: "write probes: [{name: knowledge, kind: qa, data: probes/knowledge.jsonl}]")
            return nil
        }
        var probes: [ProbeSpec] = []
        var names: Set<String> = []
        var failed = false
        for (index, item) in sequence.enumerated() {
            let path = "probes[\(index)]"
            guard let map = reader.mapping(item, path, allowed: RecipeLoader.probeKeys, example: "{name: knowledge, kind: qa, data: probes/knowledge.jsonl}") else { failed = true; continue }
            let name = reader.requiredString(map, "name", example: "knowledge")
            if let name, !names.insert(name).inserted {
                reader.error(map["name"], "two probes are named '\(name)'.", fix: "give each probe a unique name")
            }
            var kind: ProbeSpec.Kind? = .qa
            if let node = map["kind"] {
                kind = reader.choice(node, "\(path).kind", ProbeSpec.Kind.allCases.map(\.rawValue), what: "probe kind").flatMap(ProbeSpec.Kind.init(rawValue:))
            }
            var metric: String? = MetricKind.exactMatch.rawValue
            if let node = map["metric"] {
                metric = reader.choice(node, "\(path).metric", MetricKind.allCases.filter { $0 != .regex && $0 != .accuracy }.map(\.rawValue), what: "probe metric")
                if kind != nil, kind != .qa {
                    reader.warning(node, "'\(path).metric' is ignored for \(kind?.rawValue ?? "") probes (refusal counts refusals, drift measures cross-entropy).", fix: "remove it")
                }
            }
            var maxTokens = 32
            if let node = map["max_tokens"] { maxTokens = reader.int(node, "\(path).max_tokens", min: 1) ?? maxTokens }
            var url: URL?
            if let raw = reader.requiredString(map, "data", example: "probes/\(name ?? "knowledge").jsonl"), let node = map["data"] {
                let resolved = RecipeLoader.resolve(path: raw, relativeTo: directory)
                url = resolved
                if !FileManager.default.fileExists(atPath: resolved.path) {
                    reader.error(node, "probe data file '\(raw)' does not exist (looked for \(shownPath(raw))).", fix: AssetCatalog.fetchHint(for: resolved) ?? "check the path; relative paths are resolved against the recipe's directory")
                } else if let kind {
                    do {
                        let loaded = try ProbeLoader.load(resolved, kind: kind, displayPath: shownPath(raw))
                        reportProblems(loaded.problems)
                    } catch let error as TallyError {
                        reader.error(node, "probe data file '\(raw)' cannot be used: \(error.message)", fix: kind == .drift ? "each line needs {\"text\": \"…\"}" : kind == .qa ? "each line needs {\"input\": \"…\", \"output\": \"…\"}" : "each line needs {\"input\": \"…\"}")
                    } catch {
                        reader.error(node, "probe data file '\(raw)' cannot be used: \(error).")
                    }
                }
            }
            guard let name, let kind, let metric, let url else { failed = true; continue }
            probes.append(ProbeSpec(name: name, kind: kind, data: url, metric: metric, maxTokens: maxTokens))
        }
        return failed ? nil : probes
    }

    // MARK: backends

    struct ParsedBackend {
        let config: BackendConfig
        let plugin: (any BackendPlugin)?
        let node: Node
        /// The backend's `price` mapping, when it has one.
        var priceNode: Node? = nil
        /// Whether its plugin reported an error for it (then what it can run is unknown).
        var failedValidation = false
    }

    /// Whether the recipe needs a `backends` section: unless every strategy names a known
    /// kind that uses no language model (such strategies answer with a model of their own).
    func needsBackends(_ top: YAMLReader.Mapping) -> Bool {
        guard let node = top["strategies"], case .sequence(let sequence) = node, sequence.count > 0 else { return true }
        return sequence.contains { item in
            guard case .mapping(let map) = item, let kindNode = map["kind"], case .scalar(let scalar) = kindNode,
                  let kind = try? catalog.kind(named: scalar.string) else { return true }
            return kind.usesLanguageModel
        }
    }

    /// - Parameter required: whether a missing section is an error; otherwise it means none.
    func parseBackends(_ top: YAMLReader.Mapping, required: Bool = true) -> [ParsedBackend]? {
        guard let node = top["backends"] else {
            guard required else { return [] }
            reader.error(top.node, "the recipe has no 'backends' section.", fix: "add backends: {local: {plugin: swift-trainer, model: smollm2-135m-instruct}}")
            return nil
        }
        guard let map = reader.mapping(node, "backends", allowed: nil, example: "{local: {plugin: swift-trainer, model: …}}") else { return nil }
        if map.entries.isEmpty {
            reader.error(node, "'backends' is empty.", fix: "add at least one backend, e.g. local: {plugin: swift-trainer, model: smollm2-135m-instruct}")
            return nil
        }
        var backends: [ParsedBackend] = []
        var failed = false
        for entry in map.entries {
            if let backend = parseBackend(name: entry.key, node: entry.value) { backends.append(backend) } else { failed = true }
        }
        return failed ? nil : backends
    }

    func parseBackend(name: String, node: Node) -> ParsedBackend? {
        let path = "backends.\(name)"
        guard let map = reader.mapping(node, path, allowed: nil, example: "{plugin: openai, model: gpt-4o-mini}") else { return nil }
        let pluginName = reader.requiredString(map, "plugin", example: registry.backends.keys.sorted().first ?? "swift-trainer")
        var plugin: (any BackendPlugin)?
        if let pluginName, let pluginNode = map["plugin"] {
            plugin = registry.backends[pluginName]
            if plugin == nil {
                let known = registry.backends.keys.sorted()
                let near = nearestName(to: pluginName, among: known)
                reader.error(pluginNode, "unknown backend plugin '\(pluginName)' in '\(path).plugin'.",
                    fix: (near.map { "did you mean '\($0)'? " } ?? "") + "Registered plugins: \(known.isEmpty ? "none" : known.joined(separator: ", ")) (see `tally plugins`).")
            }
        }
        let rawModel = reader.requiredString(map, "model", example: "smollm2-135m-instruct")
        let model = rawModel.map { $0.hasPrefix("~") ? NSString(string: $0).expandingTildeInPath : $0 }
        let apiKeyEnv = reader.string(map["api_key_env"], "\(path).api_key_env")
        if let apiKeyEnv, let node = map["api_key_env"] {
            if apiKeyEnv.isEmpty || apiKeyEnv.contains(where: { !($0.isLetter || $0.isNumber || $0 == "_") }) {
                reader.error(node, "'\(path).api_key_env' must name an environment variable (letters, digits, _), not hold the key itself.", fix: "write api_key_env: OPENAI_API_KEY and export the key in that variable")
            } else if environment[apiKeyEnv] == nil {
                reader.warning(node, "environment variable \(apiKeyEnv) is not set; `tally run` needs it for backend '\(name)'.", fix: "export \(apiKeyEnv)=… before running")
            }
        }
        let baseURL = reader.string(map["base_url"], "\(path).base_url")
        if let baseURL, let node = map["base_url"], URL(string: baseURL)?.scheme == nil {
            reader.error(node, "'\(path).base_url' is not a URL.", fix: "write it with its scheme, e.g. http://localhost:8080/v1")
        }
        var price = Pricing()
        if let priceNode = map["price"], let priceMap = reader.mapping(priceNode, "\(path).price", allowed: RecipeLoader.priceKeys, example: "{input_per_mtok: 0.15, output_per_mtok: 0.60}") {
            func value(_ key: String) -> Double? { reader.double(priceMap[key], "\(path).price.\(key)", min: 0) }
            price = Pricing(
                inputPerMTok: value("input_per_mtok") ?? 0, outputPerMTok: value("output_per_mtok") ?? 0,
                cachedInputPerMTok: value("cached_input_per_mtok"), fineTunedInputPerMTok: value("finetuned_input_per_mtok"),
                fineTunedOutputPerMTok: value("finetuned_output_per_mtok"), trainingPerMTok: value("training_per_mtok"))
        }
        var settings: [String: String] = [:]
        for entry in map.entries where !RecipeLoader.backendKeys.contains(entry.key) {
            if YAMLReader.isNull(entry.value) { continue }
            guard case .scalar(let scalar) = entry.value else {
                reader.error(entry.value, "'\(path).\(entry.key)' must be a single value (plugin settings are scalars), not \(reader.describe(entry.value)).", fix: "write \(entry.key): <value>")
                continue
            }
            if let plugin, !plugin.settingKeys.contains(entry.key) {
                let valid = (RecipeLoader.backendKeys + plugin.settingKeys.sorted())
                let near = nearestName(to: entry.key, among: valid)
                reader.error(entry.keyNode, "unknown key '\(entry.key)' in '\(path)' (plugin \(plugin.name)).",
                    fix: (near.map { "did you mean '\($0)'? " } ?? "remove it. ") + "Valid keys: \(valid.joined(separator: ", ")).")
                continue
            }
            settings[entry.key] = scalar.string
        }
        guard let pluginName, let model else { return nil }
        let config = BackendConfig(name: name, plugin: pluginName, model: model, apiKeyEnv: apiKeyEnv, baseURL: baseURL, price: price, settings: settings, recipeDirectory: directory)
        let issues = plugin?.validate(config, environment: environment) ?? []
        if let plugin {
            for issue in issues {
                let at = issue.key.flatMap { key in map[key] ?? map.keyNode(key) } ?? node
                let fix = issue.fix ?? issue.key.map { "change '\(path).\($0)'" }
                let message = "backend '\(name)' (plugin \(plugin.name)): \(issue.message)"
                if issue.severity == .error { reader.error(at, message, fix: fix) } else { reader.warning(at, message, fix: fix) }
            }
        }
        return ParsedBackend(config: config, plugin: plugin, node: node, priceNode: map["price"], failedValidation: issues.contains { $0.severity == .error })
    }

    // MARK: strategies

    struct ParsedStrategy {
        let spec: StrategySpec
        let kind: any StrategyKind
        /// The entry's node, and its values by key (for diagnostics at a key).
        let node: Node
        let valueNodes: [String: Node]
        /// Whether its kind adapts weights.
        var adaptsWeights: Bool { kind.adaptsWeights }
        /// Whether its outcome depends on the seed (so seeds repeat it).
        var dependsOnSeed: Bool { kind.dependsOnSeed(spec) }
    }

    func parseStrategies(_ top: YAMLReader.Mapping, backends: [ParsedBackend]?, task: TaskNodes?, run: RunSettings?) -> [ParsedStrategy]? {
        guard let node = top["strategies"] else {
            reader.error(top.node, "the recipe has no 'strategies' section.", fix: "add strategies: [{name: zero-shot, kind: zero-shot, backend: <a backend name>}]")
            return nil
        }
        guard case .sequence(let sequence) = node else {
            reader.error(node, "'strategies' must be a list.", fix: "write strategies: [{name: zero-shot, kind: zero-shot, backend: local}]")
            return nil
        }
        if sequence.count == 0 {
            reader.error(node, "'strategies' is empty.", fix: "list at least one strategy, e.g. {name: zero-shot, kind: zero-shot, backend: local}")
            return nil
        }
        var parsed: [ParsedStrategy] = []
        // Strategy names and the names of entries with variants (which reports group by)
        // share one namespace.
        var names: Set<String> = []
        var failed = false
        for (index, item) in sequence.enumerated() {
            guard let expanded = parseStrategy(item, index: index, backends: backends, task: task, seed: run?.seed ?? 0) else { failed = true; continue }
            let group = expanded.first?.spec.group
            for name in [group].compactMap({ $0 }) + expanded.map(\.spec.name) where !names.insert(name).inserted {
                reader.error(item, "two strategies are named '\(name)'\(group == nil ? "" : " (an entry with variants is named '\(group ?? "")'; its variants '\(group ?? "")/<variant>')").", fix: "give each strategy a unique name")
                failed = true
            }
            parsed += expanded
        }
        if !failed, let seeds = run?.seeds, seeds.count > 1, !parsed.contains(where: \.dependsOnSeed), let node = runSeedsNode {
            reader.warning(node, "'run.seeds' has no effect: no strategy's outcome depends on the seed (fine-tuning does; prompting with fixed demonstrations does not), so each runs once.", fix: "remove run.seeds, or add a strategy that depends on the seed")
        }
        if let backends { warnUnpricedHostedTraining(parsed, backends: backends) }
        return failed ? nil : parsed
    }

    /// A hosted fine-tuner's job is billed by the provider, not by this machine's compute
    /// time; without `price.training_per_mtok` (and without a bill from the provider) its
    /// cost is unknown, which `tally validate` says up front, once per backend.
    func warnUnpricedHostedTraining(_ strategies: [ParsedStrategy], backends: [ParsedBackend]) {
        var warned = Set<String>()
        for strategy in strategies where strategy.adaptsWeights {
            guard let backend = backends.first(where: { $0.config.name == strategy.spec.backend }), let plugin = backend.plugin,
                  plugin.fineTunesRemotely, backend.config.price.trainingPerMTok == nil, warned.insert(backend.config.name).inserted else { continue }
            let users = strategies.filter { $0.adaptsWeights && $0.spec.backend == backend.config.name }.map { "'\($0.spec.name)'" }
            reader.warning(backend.priceNode ?? backend.node, "backend '\(backend.config.name)' (plugin \(plugin.name)) fine-tunes on the provider's machines but has no price.training_per_mtok: unless the provider reports its bill, the training cost of \(users.joined(separator: ", ")) is reported as unknown.",
                fix: "add training_per_mtok (USD per million trained tokens, from the provider's price list) under backends.\(backend.config.name).price")
        }
    }

    /// One strategy entry, expanded into one parsed strategy per item of its `variants:` (or
    /// into itself when it has none). Every problem is reported; nil when there was one.
    func parseStrategy(_ node: Node, index: Int, backends: [ParsedBackend]?, task: TaskNodes?, seed: UInt64) -> [ParsedStrategy]? {
        let path = "strategies[\(index)]"
        guard let map = reader.mapping(node, path, allowed: nil, example: "{name: zero-shot, kind: zero-shot, backend: local}") else { return nil }
        var ok = true
        let kindName = reader.requiredString(map, "kind", example: catalog.names.first ?? "<kind>")
        var kind: (any StrategyKind)?
        if let kindName, let kindNode = map["kind"] {
            kind = try? catalog.kind(named: kindName)
            if kind == nil {
                let near = nearestName(to: kindName, among: catalog.names)
                reader.error(kindNode, "unknown strategy kind '\(kindName)' in '\(path).kind'.", fix: (near.map { "did you mean '\($0)'? " } ?? "") + "Known kinds: \(catalog.names.joined(separator: ", ")).")
                ok = false
            }
        } else {
            ok = false
        }
        let name = reader.string(map["name"], "\(path).name") ?? kindName ?? "strategy-\(index + 1)"
        let label = "strategy '\(name)'"

        // Keys: the common ones, then the kind's own.
        let common = StrategyCatalog.commonKeys
        var written: [String: SettingValue] = [:]
        if let kind {
            let own = map.entries.filter { !common.contains($0.key) }
            if let values = readKindKeys(own, kind: kind, path: path, label: label, allowed: common + kind.keys.map(\.name)) {
                written = values
            } else {
                ok = false
            }
        }
        let variants = parseVariants(map, entry: name, kind: kind, path: path)
        if variants == nil { ok = false }

        // Backend reference; a kind that uses no language model needs none.
        let usesModel = kind?.usesLanguageModel ?? true
        var backendName = reader.string(map["backend"], "\(path).backend")
        if usesModel, backendName == nil, let backends, backends.count == 1 { backendName = backends[0].config.name }
        if usesModel, backendName == nil, map["backend"] == nil {
            reader.error(map.node, "\(label) names no backend.", fix: "add backend: <one of \(backends?.map(\.config.name).joined(separator: ", ") ?? "the backends")>")
            ok = false
        }
        if let backendName, let backends {
            if let backend = backends.first(where: { $0.config.name == backendName }) {
                if let kind, !kind.usesLanguageModel {
                    reader.warning(map["backend"] ?? map.node, "\(label) is a \(kind.name) strategy, which answers without a language model; backend '\(backendName)' is not used.", fix: "remove backend from this strategy")
                } else if let kind, let method = kind.trainingMethod, let plugin = backend.plugin, !backend.failedValidation, !plugin.fineTuningMethods(for: backend.config).contains(method) {
                    let methods = plugin.fineTuningMethods(for: backend.config).sorted()
                    let fineTunable = backends.filter { $0.plugin?.fineTuningMethods(for: $0.config).contains(method) ?? false }.map(\.config.name)
                    reader.error(map["backend"] ?? map.node, "\(label) is a \(kind.name) strategy, but backend '\(backendName)' (plugin \(plugin.name)) cannot run \(method) fine-tuning\(methods.isEmpty ? "; it cannot fine-tune at all" : "; it supports \(methods.joined(separator: ", "))").",
                        fix: fineTunable.isEmpty ? "use a backend whose plugin can run \(method) (e.g. swift-trainer for the built-in methods)" : "use backend \(fineTunable.map { "'\($0)'" }.joined(separator: " or "))")
                    ok = false
                }
            } else {
                let names = backends.map(\.config.name)
                let near = nearestName(to: backendName, among: names)
                reader.error(map["backend"], "\(label) uses backend '\(backendName)', which is not defined under 'backends'.", fix: (near.map { "did you mean '\($0)'? " } ?? "") + "Defined backends: \(names.joined(separator: ", ")).")
                ok = false
            }
        }

        var maxTokens: Int?
        if let node = map["max_tokens"] {
            maxTokens = reader.int(node, "\(path).max_tokens", min: 1)
            if maxTokens == nil { ok = false }
        }

        // Repetitions.
        var seeds: [UInt64]?
        if let node = map["seeds"] {
            if let list = seedList(node, "\(path).seeds") { seeds = list } else { ok = false }
        }

        guard ok, let kind, backendName != nil || !kind.usesLanguageModel, let variants else { return nil }
        let backend = kind.usesLanguageModel ? backendName : nil
        let entryNodes = Dictionary(map.entries.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        /// The entry's values with `overrides` on top, then the kind's defaults.
        func settings(_ overrides: [String: SettingValue]) -> StrategySettings {
            let values = written.merging(overrides) { _, new in new }
            var all = values
            for key in kind.keys where all[key.name] == nil {
                if let value = key.defaultValue { all[key.name] = value }
            }
            return StrategySettings(all, written: Set(values.keys))
        }
        let parsed: [ParsedStrategy]
        if variants.isEmpty {
            let spec = StrategySpec(
                name: name, kind: kind.name, backend: backend, maxTokens: maxTokens,
                settings: settings([:]), seeds: seeds, location: reader.location(node))
            parsed = [ParsedStrategy(spec: spec, kind: kind, node: node, valueNodes: entryNodes)]
        } else {
            parsed = variants.map { variant in
                let spec = StrategySpec(
                    name: StrategySpec.variantName(entry: name, variant: variant.name), kind: kind.name, backend: backend, maxTokens: maxTokens,
                    settings: settings(variant.values), seeds: seeds, location: reader.location(variant.node), group: name, variant: variant.name)
                return ParsedStrategy(spec: spec, kind: kind, node: variant.node, valueNodes: entryNodes.merging(variant.nodes) { _, new in new })
            }
        }
        if let seeds, seeds.count > 1, !parsed.contains(where: \.dependsOnSeed), let node = map["seeds"] {
            reader.warning(node, "\(label) does not depend on the seed (its \(kind.name) outcome is the same for every seed: greedy decoding, no seeded choice in its settings), so 'seeds' has no effect: it runs once.", fix: "remove seeds, or change a setting that makes it seeded (e.g. selection: random for demonstrations)")
        }
        return parsed
    }

    /// One item of an entry's `variants:`: its name, the kind keys it sets and their nodes.
    struct ParsedVariant {
        let name: String
        let node: Node
        let values: [String: SettingValue]
        let nodes: [String: Node]
    }

    /// An entry's `variants:` list: empty when the entry has none; nil (reported) when an item
    /// is malformed. Each item is `{name: …, <kind keys>}`; names are unique within the entry.
    func parseVariants(_ map: YAMLReader.Mapping, entry: String, kind: (any StrategyKind)?, path: String) -> [ParsedVariant]? {
        guard let node = map["variants"] else { return [] }
        let example = "[{name: short, instruction: \"…\"}, {name: long, instruction: \"…\"}]"
        guard case .sequence(let sequence) = node else {
            reader.error(node, "'\(path).variants' must be a list of variants, not \(reader.describe(node)).", fix: "write variants: \(example)")
            return nil
        }
        if sequence.count == 0 {
            reader.error(node, "'\(path).variants' is empty.", fix: "list at least one variant, e.g. variants: \(example), or remove the key")
            return nil
        }
        var variants: [ParsedVariant] = []
        var ok = true
        for (index, item) in sequence.enumerated() {
            let itemPath = "\(path).variants[\(index)]"
            guard let itemMap = reader.mapping(item, itemPath, allowed: nil, example: "{name: short, instruction: \"…\"}") else { ok = false; continue }
            let name = reader.requiredString(itemMap, "name", example: "short")
            if let name, let nameNode = itemMap["name"] {
                if name.contains("/") {
                    reader.error(nameNode, "variant name '\(name)' in '\(itemPath)' contains '/', which separates the entry's name from the variant's ('\(StrategySpec.variantName(entry: entry, variant: "…"))').", fix: "use a name without '/'")
                    ok = false
                } else if variants.contains(where: { $0.name == name }) {
                    reader.error(nameNode, "two variants of strategy '\(entry)' are named '\(name)'.", fix: "give each variant a unique name")
                    ok = false
                }
            } else {
                ok = false
            }
            let label = "strategy '\(StrategySpec.variantName(entry: entry, variant: name ?? String(index)))'"
            var keys = itemMap.entries.filter { $0.key != "name" }
            for entryKey in keys where StrategyCatalog.commonKeys.contains(entryKey.key) {
                reader.error(entryKey.keyNode, "'\(entryKey.key)' cannot be set in a variant (\(label)); variants share the entry's \(StrategyCatalog.commonKeys.filter { $0 != "name" && $0 != "variants" }.joined(separator: ", ")) and differ only in the kind's own keys.", fix: "move it to the entry, or write a separate strategy")
                ok = false
            }
            keys.removeAll { StrategyCatalog.commonKeys.contains($0.key) }
            guard let kind else { continue }
            guard let values = readKindKeys(keys, kind: kind, path: itemPath, label: label, allowed: ["name"] + kind.keys.map(\.name)) else { ok = false; continue }
            if keys.isEmpty {
                reader.warning(item, "\(label) sets no key of its own, so it is the entry itself.", fix: "override at least one of the \(kind.name) keys (\(kind.keys.map(\.name).joined(separator: ", "))), or remove the variant")
            }
            if let name {
                variants.append(ParsedVariant(name: name, node: item, values: values, nodes: Dictionary(keys.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })))
            }
        }
        return ok ? variants : nil
    }

    /// The kind's own keys among `entries`, each checked against its declaration; keys the
    /// kind does not declare are reported (naming the kinds that use them, or the nearest of
    /// `allowed`). Nil when any was wrong.
    func readKindKeys(_ entries: [YAMLReader.Entry], kind: any StrategyKind, path: String, label: String, allowed: [String]) -> [String: SettingValue]? {
        let keys = kind.keys
        var values: [String: SettingValue] = [:]
        var ok = true
        for entry in entries {
            guard let key = keys.first(where: { $0.name == entry.key }) else {
                let owners = catalog.kinds.filter { $0.keys.contains { $0.name == entry.key } }.map(\.name)
                if !owners.isEmpty {
                    reader.error(entry.keyNode, "'\(entry.key)' does not apply to \(kind.name) (\(label)); it is used by \(owners.joined(separator: ", ")) strategies.", fix: "remove it, or change the kind")
                } else {
                    let near = nearestName(to: entry.key, among: allowed)
                    reader.error(entry.keyNode, "unknown key '\(entry.key)' in '\(path)' (\(label), kind \(kind.name)).",
                        fix: (near.map { "did you mean '\($0)'? " } ?? "remove it; ") + "Valid keys: \(allowed.joined(separator: ", ")).")
                }
                ok = false
                continue
            }
            if let value = read(entry.value, key: key, path: "\(path).\(entry.key)") {
                values[key.name] = value
            } else {
                ok = false
            }
        }
        return ok ? values : nil
    }

    /// A strategy key's value, checked against its declared type and range.
    func read(_ node: Node, key: StrategyKey, path: String) -> SettingValue? {
        let rule = key.rangeDescription
        switch key.type {
        case .bool:
            return reader.bool(node, path).map(SettingValue.bool)
        case .int:
            guard let value = reader.int(node, path, min: key.minimum.map { Int(($0.value + ($0.exclusive ? 1 : 0)).rounded(.up)) }, rule: rule) else { return nil }
            if let hi = key.maximum, hi.exclusive ? Double(value) >= hi.value : Double(value) > hi.value {
                reader.error(node, "'\(path)' is \(value) but must be \(rule ?? "smaller").", fix: "choose a value \(rule ?? "in range")")
                return nil
            }
            return .int(value)
        case .number:
            return reader.double(node, path, min: key.minimum?.value, minExclusive: key.minimum?.exclusive ?? false,
                                 max: key.maximum?.value, maxExclusive: key.maximum?.exclusive ?? false, rule: rule).map(SettingValue.number)
        case .string:
            return reader.string(node, path).map(SettingValue.string)
        case .strings:
            guard let list = reader.stringList(node, path) else { return nil }
            if list.isEmpty {
                reader.error(node, "'\(path)' is empty.", fix: "give at least one value, or remove the key to use its default")
                return nil
            }
            return .list(list)
        case .choice(let choices):
            return reader.choice(node, path, choices, what: key.name).map(SettingValue.string)
        }
    }

    /// A list of seeds: at least one, each a whole number of at least 0, none repeated.
    /// Every problem is reported at the offending item.
    func seedList(_ node: Node, _ path: String) -> [UInt64]? {
        guard case .sequence(let sequence) = node else {
            reader.error(node, "'\(path)' must be a list of seeds such as [7, 11, 13], not \(reader.describe(node)).", fix: "write \(path.split(separator: ".").last ?? "seeds"): [7, 11, 13]")
            return nil
        }
        if sequence.count == 0 {
            reader.error(node, "'\(path)' is empty.", fix: "list at least one seed, e.g. [7, 11, 13], or remove the key")
            return nil
        }
        var seeds: [UInt64] = []
        var ok = true
        for (index, item) in sequence.enumerated() {
            guard let value = reader.int(item, "\(path)[\(index)]", min: 0) else { ok = false; continue }
            let seed = UInt64(value)
            if seeds.contains(seed) {
                reader.error(item, "seed \(seed) appears more than once in '\(path)'; two runs with one seed would be the same run.", fix: "list each seed once")
                ok = false
                continue
            }
            seeds.append(seed)
        }
        return ok ? seeds : nil
    }

    // MARK: costs, constraints, run

    func parseCosts(_ top: YAMLReader.Mapping) -> CostSpec? {
        let defaults = CostSpec()
        guard let node = top["costs"] else { return defaults }
        guard let map = reader.mapping(node, "costs", allowed: RecipeLoader.costKeys, example: "{compute_usd_per_hour: 0.10, requests_per_month: 100000, horizon_months: 6}") else { return nil }
        let compute = map["compute_usd_per_hour"].map { reader.double($0, "costs.compute_usd_per_hour", min: 0) } ?? defaults.computeUSDPerHour
        let requests = map["requests_per_month"].map { reader.double($0, "costs.requests_per_month", min: 0) } ?? defaults.requestsPerMonth
        let horizon = map["horizon_months"].map { reader.double($0, "costs.horizon_months", min: 0, minExclusive: true) } ?? defaults.horizonMonths
        let gpu = map["gpu_usd_per_hour"].map { reader.double($0, "costs.gpu_usd_per_hour", min: 0) } ?? defaults.gpuUSDPerHour
        let label = map["label_usd_per_example"].map { reader.double($0, "costs.label_usd_per_example", min: 0) } ?? defaults.labelUSDPerExample
        let labelled = map["labelled_examples"].map { reader.int($0, "costs.labelled_examples", min: 0) } ?? defaults.labelledExamples
        guard let compute, let requests, let horizon, let gpu, let label, let labelled else { return nil }
        return CostSpec(computeUSDPerHour: compute, requestsPerMonth: requests, horizonMonths: horizon, gpuUSDPerHour: gpu, labelUSDPerExample: label, labelledExamples: labelled)
    }

    func parseConstraints(_ top: YAMLReader.Mapping) -> Constraints? {
        guard let node = top["constraints"] else { return Constraints() }
        guard let map = reader.mapping(node, "constraints", allowed: RecipeLoader.constraintKeys, example: "{min_accuracy: 0.8, max_forgetting: 0.05, budget_usd: 20}") else { return nil }
        var ok = true
        func read(_ key: String, _ parse: (Node) -> Double?) -> Double? {
            guard let node = map[key] else { return nil }
            let value = parse(node)
            if value == nil { ok = false }
            return value
        }
        let minAccuracy = read("min_accuracy") { self.reader.double($0, "constraints.min_accuracy", min: 0, max: 1, rule: "between 0 and 1 (a fraction, e.g. 0.8 for 80%)") }
        let maxForgetting = read("max_forgetting") { self.reader.double($0, "constraints.max_forgetting", min: 0) }
        let budget = read("budget_usd") { self.reader.double($0, "constraints.budget_usd", min: 0) }
        let latency = read("max_latency_ms") { self.reader.double($0, "constraints.max_latency_ms", min: 0, minExclusive: true) }
        return ok ? Constraints(minAccuracy: minAccuracy, maxForgetting: maxForgetting, budgetUSD: budget, maxLatencyMs: latency) : nil
    }

    /// The `run.seeds` node, for warnings about it.
    private(set) var runSeedsNode: Node?

    func parseRun(_ top: YAMLReader.Mapping) -> RunSettings? {
        let defaults = RunSettings()
        guard let node = top["run"] else { return defaults }
        guard let map = reader.mapping(node, "run", allowed: RecipeLoader.runKeys, example: "{seed: 7, concurrency: 8, max_examples: 200}") else { return nil }
        var ok = true
        func read(_ key: String, min: Int) -> Int?? {
            guard let node = map[key] else { return .none }
            let value = reader.int(node, "run.\(key)", min: min)
            if value == nil { ok = false }
            return .some(value)
        }
        let seed = read("seed", min: 0)
        let concurrency = read("concurrency", min: 1)
        let maxExamples = read("max_examples", min: 1)
        let maxTrain = read("max_train_examples", min: 1)
        let maxValidation = read("max_validation_examples", min: 1)
        let bootstrap = read("bootstrap_samples", min: 1)
        var seeds: [UInt64]?
        if let node = map["seeds"] {
            runSeedsNode = node
            seeds = seedList(node, "run.seeds")
            if seeds == nil { ok = false }
        }
        guard ok else { return nil }
        return RunSettings(
            seed: (seed ?? nil).map { UInt64($0) } ?? seeds?.first ?? defaults.seed, seeds: seeds,
            concurrency: (concurrency ?? nil) ?? defaults.concurrency,
            maxExamples: maxExamples ?? nil, maxTrainExamples: maxTrain ?? nil, maxValidationExamples: maxValidation ?? nil,
            bootstrapSamples: (bootstrap ?? nil) ?? defaults.bootstrapSamples)
    }
}

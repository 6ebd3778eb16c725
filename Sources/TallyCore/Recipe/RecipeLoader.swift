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
    public static let sectionKeys = ["name", "description", "task", "data", "probes", "backends", "strategies", "costs", "constraints", "run"]
    public static let taskKeys = ["instruction", "input", "context", "target", "labels", "metric", "answer_pattern", "max_tokens"]
    public static let dataKeys = ["train", "test", "validation"]
    public static let probeKeys = ["name", "kind", "data", "metric", "max_tokens"]
    /// Backend keys the core understands; any other scalar key is a plugin setting.
    public static let backendKeys = ["plugin", "model", "api_key_env", "base_url", "price"]
    public static let priceKeys = ["input_per_mtok", "output_per_mtok", "cached_input_per_mtok", "finetuned_input_per_mtok", "finetuned_output_per_mtok", "training_per_mtok"]
    public static let promptingKeys = ["shots", "selection", "balanced", "rationale_field"]
    public static let loraKeys = ["rank", "alpha", "dropout", "targets", "use_rslora"]
    public static let trainingKeys = ["epochs", "max_steps", "learning_rate", "batch_size", "gradient_accumulation", "weight_decay", "warmup_steps", "schedule", "max_grad_norm", "eval_every", "early_stopping_patience", "learning_rate_multiplier"]
    public static let strategyKeys = ["name", "kind", "backend", "max_tokens", "seeds"] + promptingKeys + loraKeys + trainingKeys
    public static let costKeys = ["compute_usd_per_hour", "requests_per_month", "horizon_months", "gpu_usd_per_hour"]
    public static let constraintKeys = ["min_accuracy", "max_forgetting", "budget_usd", "max_latency_ms"]
    public static let runKeys = ["seed", "seeds", "concurrency", "max_examples", "max_train_examples", "max_validation_examples", "bootstrap_samples"]
    public static let schedules = ["constant", "linear", "cosine"]

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
        let backends = parseBackends(top)
        var strategies = parseStrategies(top, backends: backends, task: task, run: run)
        let probes = parseProbes(top)
        if let task = task?.spec, let data {
            if let train = data.train { strategies = strategies.map { defaultRationales($0, train: train) } }
            checkData(task: task, taskNodes: self.task, data: data, strategies: strategies)
        }

        guard !reader.hasErrors, let task, let train = data?.train, let test = data?.test, let run, let costs, let constraints, let backends, let strategies, let probes else { return nil }
        return Recipe(
            name: name, file: file, task: task.spec,
            data: DataSpec(train: train.url, test: test.url, validation: data?.validation?.url),
            probes: probes, backends: backends.map(\.config), strategies: strategies.map(\.spec),
            costs: costs, constraints: constraints, run: run, overrides: overrides)
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
    }

    func parseData(_ top: YAMLReader.Mapping) -> LoadedData? {
        guard let node = top["data"] else {
            reader.error(top.node, "the recipe has no 'data' section.", fix: "add data: {train: data/train.jsonl, test: data/test.jsonl}")
            return nil
        }
        guard let map = reader.mapping(node, "data", allowed: RecipeLoader.dataKeys, example: "{train: data/train.jsonl, test: data/test.jsonl}") else { return nil }
        let train = dataFile(map, "train", required: true)
        let test = dataFile(map, "test", required: true)
        let validation = dataFile(map, "validation", required: false)
        return LoadedData(train: train, test: test, validation: validation)
    }

    func dataFile(_ map: YAMLReader.Mapping, _ key: String, required: Bool) -> LoadedFile? {
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
            reportProblems(dataset.problems)
            return LoadedFile(url: url, shown: shownPath, node: node, dataset: dataset)
        } catch let error as TallyError {
            reader.error(node, "data file '\(raw)' cannot be used: \(error.message)", fix: "fix the file (one JSON object per line, or CSV/TSV with a header row)")
            return LoadedFile(url: url, shown: shownPath, node: node, dataset: nil)
        } catch {
            reader.error(node, "data file '\(raw)' cannot be used: \(error).")
            return LoadedFile(url: url, shown: shownPath, node: node, dataset: nil)
        }
    }

    /// Row problems as warnings (the run skips those rows), at most 10 per file.
    func reportProblems(_ problems: [DataProblem], limit: Int = 10) {
        for problem in problems.prefix(limit) {
            reader.add(Diagnostic(.warning, at: problem.location, problem.message))
        }
        if problems.count > limit, let first = problems.first {
            reader.add(Diagnostic(.warning, at: SourceLocation(file: first.location.file), "\(problems.count - limit) more row(s) in this file are skipped for the same kinds of reasons."))
        }
    }

    /// Template fields, target and rationale fields must exist in the data.
    func checkData(task: TaskSpec, taskNodes: TaskNodes?, data: LoadedData, strategies: [ParsedStrategy]?) {
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
            reportProblems(checked.problems)
            if let labels = task.labels {
                let normalized = Set(labels.map(TextNormalizer.normalize))
                let outside = checked.examples.filter { !normalized.contains(TextNormalizer.normalize($0[task.target] ?? "")) }
                reportProblems(outside.map { DataProblem(location: $0.location, message: "target '\($0[task.target] ?? "")' is not one of task.labels (\(labels.joined(separator: ", "))); no answer can be scored correct on this row.") })
            }
        }
        guard let strategies, let trainFile = data.train, let train = trainFile.dataset else { return }
        for strategy in strategies {
            if let field = strategy.spec.rationaleField, !train.fieldNames.contains(field) {
                let near = nearestName(to: field, among: train.fieldNames)
                reader.error(strategy.rationaleNode, "strategy '\(strategy.spec.name)': rationale_field '\(field)' is in no row of \(trainFile.shown) (its fields: \(train.fieldNames.joined(separator: ", "))).", fix: near.map { "did you mean '\($0)'?" } ?? "add a rationale to the training rows or remove rationale_field")
            }
            if strategy.spec.shots > train.examples.count {
                reader.warning(strategy.shotsNode, "strategy '\(strategy.spec.name)' asks for \(strategy.spec.shots) demonstrations but \(trainFile.shown) has only \(train.examples.count) usable row(s); it will show at most that many.", fix: "lower shots or add training rows")
            }
        }
    }

    /// Chain-of-thought with shots but no `rationale_field` uses the training data's
    /// `rationale` field when it has one; otherwise it runs zero-shot ("think step by
    /// step"), with a warning.
    func defaultRationales(_ strategies: [ParsedStrategy], train: LoadedFile) -> [ParsedStrategy] {
        strategies.map { parsed in
            let spec = parsed.spec
            guard spec.kind == "chain-of-thought", spec.shots > 0, spec.rationaleField == nil, let dataset = train.dataset else { return parsed }
            let hasRationale = dataset.fieldNames.contains("rationale")
            if !hasRationale {
                reader.warning(parsed.shotsNode ?? parsed.node, "strategy '\(spec.name)' asks for \(spec.shots) chain-of-thought demonstrations, but names no rationale_field and \(train.shown) has no 'rationale' field; it runs as zero-shot \"think step by step\".", fix: "add rationale_field: <the data field holding a worked rationale>, or set shots: 0")
            }
            let updated = StrategySpec(
                name: spec.name, kind: spec.kind, backend: spec.backend, shots: hasRationale ? spec.shots : 0, selection: spec.selection,
                balanced: spec.balanced, rationaleField: hasRationale ? "rationale" : nil, maxTokens: spec.maxTokens, lora: spec.lora,
                training: spec.training, seeds: spec.seeds, location: spec.location)
            return ParsedStrategy(spec: updated, rationaleNode: parsed.rationaleNode, shotsNode: parsed.shotsNode, node: parsed.node, adaptsWeights: parsed.adaptsWeights, dependsOnSeed: parsed.dependsOnSeed && updated.shots > 0)
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
    }

    func parseBackends(_ top: YAMLReader.Mapping) -> [ParsedBackend]? {
        guard let node = top["backends"] else {
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
        if let plugin {
            for problem in plugin.validate(config, environment: environment) {
                let at = map.keyNode(problem.field).flatMap { key in map[problem.field] ?? key } ?? node
                reader.error(at, "backend '\(name)' (plugin \(plugin.name)): \(problem.message)", fix: "change '\(path).\(problem.field)'")
            }
        }
        return ParsedBackend(config: config, plugin: plugin, node: node, priceNode: map["price"])
    }

    // MARK: strategies

    struct ParsedStrategy {
        let spec: StrategySpec
        let rationaleNode: Node?
        let shotsNode: Node?
        let node: Node
        /// Whether its kind adapts weights.
        var adaptsWeights: Bool = false
        /// Whether its outcome depends on the seed (so seeds repeat it).
        var dependsOnSeed: Bool = false
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
        var names: Set<String> = []
        var failed = false
        for (index, item) in sequence.enumerated() {
            guard let strategy = parseStrategy(item, index: index, backends: backends, task: task, seed: run?.seed ?? 0) else { failed = true; continue }
            if !names.insert(strategy.spec.name).inserted {
                reader.error(item, "two strategies are named '\(strategy.spec.name)'.", fix: "give each strategy a unique name")
                failed = true
            }
            parsed.append(strategy)
        }
        if !failed, let seeds = run?.seeds, seeds.count > 1, !parsed.contains(where: \.dependsOnSeed), let node = runSeedsNode {
            reader.warning(node, "'run.seeds' has no effect: no strategy's outcome depends on the seed (only fine-tuning and few-shot or chain-of-thought with selection: random do), so each runs once.", fix: "remove run.seeds, or add a strategy that depends on the seed")
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

    func parseStrategy(_ node: Node, index: Int, backends: [ParsedBackend]?, task: TaskNodes?, seed: UInt64) -> ParsedStrategy? {
        let path = "strategies[\(index)]"
        guard let map = reader.mapping(node, path, allowed: RecipeLoader.strategyKeys, example: "{name: zero-shot, kind: zero-shot, backend: local}") else { return nil }
        var ok = true
        let kind = reader.requiredString(map, "kind", example: "zero-shot")
        var entry: StrategyCatalog.Entry?
        if let kind, let kindNode = map["kind"] {
            entry = try? catalog.entry(kind: kind)
            if entry == nil {
                let near = nearestName(to: kind, among: catalog.kinds)
                reader.error(kindNode, "unknown strategy kind '\(kind)' in '\(path).kind'.", fix: (near.map { "did you mean '\($0)'? " } ?? "") + "Known kinds: \(catalog.kinds.joined(separator: ", ")).")
                ok = false
            }
        } else {
            ok = false
        }
        let name = reader.string(map["name"], "\(path).name") ?? kind ?? "strategy-\(index + 1)"
        let label = "strategy '\(name)'"

        // Which keys make sense for which built-in kind.
        if let kind, ["zero-shot", "few-shot", "chain-of-thought", "lora", "full-finetune"].contains(kind) {
            var allowed = Set(["name", "kind", "backend", "max_tokens", "seeds"])
            if kind == "few-shot" || kind == "chain-of-thought" { allowed.formUnion(RecipeLoader.promptingKeys) }
            if kind == "few-shot" { allowed.remove("rationale_field") }
            if kind == "lora" { allowed.formUnion(RecipeLoader.loraKeys) }
            if kind == "lora" || kind == "full-finetune" { allowed.formUnion(RecipeLoader.trainingKeys) }
            for entry in map.entries where !allowed.contains(entry.key) {
                let owners: String
                if RecipeLoader.loraKeys.contains(entry.key) { owners = "lora strategies" }
                else if RecipeLoader.trainingKeys.contains(entry.key) { owners = "lora and full-finetune strategies" }
                else if entry.key == "rationale_field" { owners = "chain-of-thought strategies" }
                else { owners = "few-shot and chain-of-thought strategies" }
                reader.error(entry.keyNode, "'\(entry.key)' does not apply to \(kind) (\(label)); it is used by \(owners).", fix: "remove it, or change the kind")
                ok = false
            }
        }

        // Backend reference.
        var backendName = reader.string(map["backend"], "\(path).backend")
        if backendName == nil, let backends, backends.count == 1 { backendName = backends[0].config.name }
        if backendName == nil, map["backend"] == nil {
            reader.error(map.node, "\(label) names no backend.", fix: "add backend: <one of \(backends?.map(\.config.name).joined(separator: ", ") ?? "the backends")>")
            ok = false
        }
        if let backendName, let backends {
            if let backend = backends.first(where: { $0.config.name == backendName }) {
                if let entry, entry.adaptsWeights, let plugin = backend.plugin, let kind, !plugin.fineTuningMethods.contains(kind) {
                    let methods = plugin.fineTuningMethods.sorted()
                    let fineTunable = backends.filter { $0.plugin?.fineTuningMethods.contains(kind) ?? false }.map(\.config.name)
                    reader.error(map["backend"] ?? map.node, "\(label) is a \(kind) strategy, but backend '\(backendName)' (plugin \(plugin.name)) cannot run \(kind)\(methods.isEmpty ? "; it cannot fine-tune at all" : "; it supports \(methods.joined(separator: ", "))").",
                        fix: fineTunable.isEmpty ? "use a backend whose plugin can fine-tune (e.g. swift-trainer)" : "use backend \(fineTunable.map { "'\($0)'" }.joined(separator: " or "))")
                    ok = false
                }
            } else {
                let names = backends.map(\.config.name)
                let near = nearestName(to: backendName, among: names)
                reader.error(map["backend"], "\(label) uses backend '\(backendName)', which is not defined under 'backends'.", fix: (near.map { "did you mean '\($0)'? " } ?? "") + "Defined backends: \(names.joined(separator: ", ")).")
                ok = false
            }
        }

        // Prompting settings.
        let isFewShot = kind == "few-shot"
        let rationaleField = reader.string(map["rationale_field"], "\(path).rationale_field")
        var shots = isFewShot ? 4 : (kind == "chain-of-thought" && rationaleField != nil ? 4 : 0)
        if let node = map["shots"] {
            if let value = reader.int(node, "\(path).shots", min: isFewShot ? 1 : 0) { shots = value } else { ok = false }
        }
        var selection = "first"
        if let node = map["selection"] {
            if let value = reader.choice(node, "\(path).selection", DemonstrationSelector.Selection.allCases.map(\.rawValue), what: "selection") { selection = value } else { ok = false }
        }
        var balanced = false
        if let node = map["balanced"] {
            if let value = reader.bool(node, "\(path).balanced") { balanced = value } else { ok = false }
            if balanced, let task, task.spec.labels == nil {
                reader.error(node, "\(label) asks for label-balanced demonstrations but the task has no labels.", fix: "add task.labels, or remove balanced")
                ok = false
            }
        }
        var maxTokens: Int?
        if let node = map["max_tokens"] {
            maxTokens = reader.int(node, "\(path).max_tokens", min: 1)
            if maxTokens == nil { ok = false }
        }

        // LoRA.
        var lora: LoRAOptions?
        if kind == "lora" {
            let defaults = LoRAOptions()
            let rank = map["rank"].map { reader.int($0, "\(path).rank", min: 1, rule: "greater than 0") } ?? defaults.rank
            let alpha = map["alpha"].map { reader.double($0, "\(path).alpha", min: 0, minExclusive: true) } ?? defaults.alpha
            let dropout = map["dropout"].map { reader.double($0, "\(path).dropout", min: 0, max: 1, maxExclusive: true) } ?? defaults.dropout
            let targets = map["targets"].map { reader.stringList($0, "\(path).targets") } ?? defaults.targets
            let rs = map["use_rslora"].map { reader.bool($0, "\(path).use_rslora") } ?? defaults.useRSLoRA
            if let targets, targets.isEmpty, let node = map["targets"] {
                reader.error(node, "'\(path).targets' is empty.", fix: "write targets: all-linear, or a list such as [q_proj, v_proj]")
                ok = false
            }
            if let rank, let alpha, let dropout, let targets, let rs {
                lora = LoRAOptions(rank: rank, alpha: alpha, dropout: dropout, targets: targets, useRSLoRA: rs)
            } else {
                ok = false
            }
        }

        // Training options.
        var training = TrainingOptions(seed: seed)
        if entry?.adaptsWeights ?? false {
            func check<T>(_ value: T??, _ assign: (T) -> Void) {
                switch value {
                case .none: break
                case .some(.none): ok = false
                case .some(.some(let v)): assign(v)
                }
            }
            check(map["epochs"].map { reader.double($0, "\(path).epochs", min: 0, minExclusive: true) }) { training.epochs = $0 }
            check(map["max_steps"].map { reader.int($0, "\(path).max_steps", min: 1) }) { training.maxSteps = $0 }
            check(map["learning_rate"].map { reader.double($0, "\(path).learning_rate", min: 0, minExclusive: true) }) { training.learningRate = $0 }
            check(map["batch_size"].map { reader.int($0, "\(path).batch_size", min: 1) }) { training.batchSize = $0 }
            check(map["gradient_accumulation"].map { reader.int($0, "\(path).gradient_accumulation", min: 1) }) { training.gradientAccumulation = $0 }
            check(map["weight_decay"].map { reader.double($0, "\(path).weight_decay", min: 0) }) { training.weightDecay = $0 }
            check(map["warmup_steps"].map { reader.int($0, "\(path).warmup_steps", min: 0) }) { training.warmupSteps = $0 }
            check(map["schedule"].map { reader.choice($0, "\(path).schedule", RecipeLoader.schedules, what: "schedule") }) { training.schedule = $0 }
            check(map["max_grad_norm"].map { reader.double($0, "\(path).max_grad_norm", min: 0, minExclusive: true) }) { training.maxGradNorm = $0 }
            check(map["eval_every"].map { reader.int($0, "\(path).eval_every", min: 0) }) { training.evalEvery = $0 }
            check(map["early_stopping_patience"].map { reader.int($0, "\(path).early_stopping_patience", min: 0) }) { training.earlyStoppingPatience = $0 }
            check(map["learning_rate_multiplier"].map { reader.double($0, "\(path).learning_rate_multiplier", min: 0, minExclusive: true) }) { training.learningRateMultiplier = $0 }
        }

        // Repetitions.
        var seeds: [UInt64]?
        if let node = map["seeds"] {
            if let list = seedList(node, "\(path).seeds") { seeds = list } else { ok = false }
        }

        guard ok, let kind, let backendName else { return nil }
        let spec = StrategySpec(
            name: name, kind: kind, backend: backendName, shots: shots, selection: selection, balanced: balanced,
            rationaleField: rationaleField, maxTokens: maxTokens, lora: lora, training: training, seeds: seeds, location: reader.location(node))
        let dependsOnSeed = entry?.dependsOnSeed(spec) ?? false
        if let seeds, seeds.count > 1, !dependsOnSeed, let node = map["seeds"] {
            reader.warning(node, "\(label) does not depend on the seed (greedy decoding\(spec.shots > 0 ? ", demonstrations chosen by '\(selection)'" : "")), so 'seeds' has no effect: it runs once.", fix: "remove seeds\(kind == "few-shot" || kind == "chain-of-thought" ? ", or use selection: random to draw different demonstrations per seed" : "")")
        }
        return ParsedStrategy(spec: spec, rationaleNode: map["rationale_field"], shotsNode: map["shots"], node: node, adaptsWeights: entry?.adaptsWeights ?? false, dependsOnSeed: dependsOnSeed)
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
        guard let compute, let requests, let horizon, let gpu else { return nil }
        return CostSpec(computeUSDPerHour: compute, requestsPerMonth: requests, horizonMonths: horizon, gpuUSDPerHour: gpu)
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

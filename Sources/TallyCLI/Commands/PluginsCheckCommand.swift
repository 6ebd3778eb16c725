import ArgumentParser
import Foundation
import TallyCore
import TallyTesting

/// `tally plugins check RECIPE --backend NAME`: builds one backend of a recipe the way
/// `tally run` would and runs the conformance checks of TallyTesting on it.
struct PluginsCheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check that a recipe's backend behaves as Tally relies on.",
        discussion: """
            Builds the backend as the recipe configures it and checks: validation has no side \
            effects; identity is stable; greedy answers repeat; usage is reported; batches match \
            single calls; cancellation is prompt; and, when the backend fine-tunes, a short job on \
            a few training rows finishes, its artifact reopens with one identity, a rerun resumes, \
            and nothing is written outside the job's work directory. Prompts come from the \
            recipe's first strategy on that backend. Every check has a time limit, so a plugin \
            that hangs or exits mid-request fails instead of stalling. Prints one line per check; \
            exits 0 when every check passes, 1 when one fails, 2 when the recipe is invalid.
            """)

    @Argument(help: "The recipe file (YAML).", completion: .file(extensions: ["yaml", "yml"]))
    var recipe: String

    @Option(help: "The backend to check (a key under `backends:`); may be left out when the recipe has one.")
    var backend: String?

    @Option(name: .customLong("set"), parsing: .singleValue, help: ArgumentHelp("Change a recipe value for this command only (repeatable).", valueName: "key=value"))
    var overrides: [String] = []

    @Option(help: "Seconds one generate call may take before it counts as hung.")
    var timeout: Double = 60

    @Option(help: "Seconds building the backend, fine-tuning and reopening an artifact may each take.")
    var setupTimeout: Double = 600

    @Option(help: "Training rows of the recipe's data to fine-tune on.")
    var rows: Int = 4

    @Option(help: "Optimiser steps of the check's fine-tune.")
    var steps: Int = 1

    @Flag(help: "Leave out the fine-tuning checks.")
    var skipFineTuning = false

    @Flag(help: "Run the fine-tuning checks on a backend whose jobs run (and are billed) at a provider; left out otherwise.")
    var hostedFineTuning = false

    @Flag(help: "Print JSON instead of text.")
    var json = false

    func validate() throws {
        guard timeout > 0, setupTimeout > 0 else { throw ValidationError("--timeout and --setup-timeout must be positive numbers of seconds") }
        guard rows > 0, steps > 0 else { throw ValidationError("--rows and --steps must be at least 1") }
    }

    func run() async throws {
        try await reportingErrors {
            let extensions = TallyExtensions.current
            let recipe = try loadRecipeOrExit(self.recipe, extensions: extensions, overrides: overrides)
            let config = try Self.backend(named: backend, in: recipe)
            let plugin = try extensions.plugins.backendPlugin(named: config.plugin)
            let sandbox = FileManager.default.temporaryDirectory.appending(path: "tally-check-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: sandbox, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: sandbox) }

            let inputs = try CheckInputs.make(recipe: recipe, backend: config, plugin: plugin, strategies: extensions.strategies, rows: rows, steps: steps, workDirectory: sandbox.appending(path: "job"))
            var notes = inputs.notes
            var fineTuneRequest = inputs.fineTuneRequest
            if fineTuneRequest != nil, skipFineTuning {
                fineTuneRequest = nil
                notes.append("fine-tuning checks left out (--skip-fine-tuning)")
            } else if fineTuneRequest != nil, plugin.fineTunesRemotely, !hostedFineTuning {
                fineTuneRequest = nil
                notes.append("fine-tuning checks left out: '\(config.plugin)' fine-tunes at a provider, which bills the job; add --hosted-fine-tuning to run one")
            }
            Console.err("checking backend '\(config.name)' (plugin \(config.plugin))...")
            let timeouts = ConformanceTimeouts(request: .seconds(timeout), setup: .seconds(setupTimeout), cancellation: .seconds(min(timeout, 5)))
            let checks = await BackendConformance.check(
                plugin: plugin, config: config, environment: ProcessInfo.processInfo.environment,
                requests: inputs.requests, fineTuneRequest: fineTuneRequest,
                watching: [URL(fileURLWithPath: FileManager.default.currentDirectoryPath)], timeouts: timeouts)
            show(checks, config: config, notes: notes)
            if !checks.failures.isEmpty { throw ExitCode(ExitStatus.failure) }
        }
    }

    func show(_ checks: [ConformanceCheck], config: BackendConfig, notes: [String]) {
        let failed = checks.filter(\.failed).count, skipped = checks.filter(\.skipped).count
        let passed = checks.count - failed - skipped
        if json {
            struct CheckInfo: Encodable { let name: String, outcome: String, detail: String }
            struct Listing: Encodable {
                let backend: String, plugin: String, passed: Int, failed: Int, skipped: Int, notes: [String], checks: [CheckInfo]
            }
            let listing = Listing(
                backend: config.name, plugin: config.plugin, passed: passed, failed: failed, skipped: skipped, notes: notes,
                checks: checks.map { CheckInfo(name: $0.name, outcome: $0.outcome.description.lowercased(), detail: $0.detail) })
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            if let data = try? encoder.encode(listing) { Console.out(String(decoding: data, as: UTF8.self)) }
            return
        }
        var text = "Checking backend '\(config.name)' (plugin \(config.plugin), model \(config.model))\n"
        for note in notes { text += "  note: \(note)\n" }
        let width = checks.map(\.name.count).max() ?? 0
        for check in checks {
            text += "  \(check.outcome)  \(check.name.padding(toLength: width, withPad: " ", startingAt: 0))  \(check.detail)\n"
        }
        text += "\(passed) passed, \(failed) failed, \(skipped) skipped"
        Console.out(text)
    }

    /// The backend entry named `name`, or the recipe's only one.
    /// - Throws: `TallyError(.unknownName)` naming the recipe's backends.
    static func backend(named name: String?, in recipe: Recipe) throws -> BackendConfig {
        let names = recipe.backends.map(\.name)
        if let name {
            if let config = recipe.backend(named: name) { return config }
            var message = "the recipe has no backend '\(name)'"
            if let near = nearestName(to: name, among: names) { message += "; did you mean '\(near)'?" }
            throw TallyError(code: .unknownName, message: message + " Its backends: \(names.joined(separator: ", ")).")
        }
        guard recipe.backends.count == 1, let only = recipe.backends.first else {
            throw TallyError(code: .unknownName, message: "the recipe has \(names.count) backends; name one with --backend (\(names.joined(separator: ", ")))")
        }
        return only
    }
}

/// What `tally plugins check` asks of a backend, taken from the recipe: the prompts its
/// first strategy on that backend sends, and a short fine-tuning job on a few training rows.
struct CheckInputs {
    var requests: [GenerationRequest]
    var fineTuneRequest: FineTuneRequest?
    var notes: [String]

    /// The longest answer a check asks for: enough to see the model answer, short enough to
    /// keep the checks quick on a CPU.
    static let maxTokens = 32

    /// - Throws: `TallyError` when the recipe's data cannot be read.
    static func make(recipe: Recipe, backend config: BackendConfig, plugin: any BackendPlugin, strategies catalog: StrategyCatalog, rows: Int, steps: Int, workDirectory: URL) throws -> CheckInputs {
        let task = recipe.task
        var fields = PromptTemplate(task.input).fields
        if let context = task.context { fields += PromptTemplate(context).fields }
        fields.append(task.target)
        let train = Array(try DatasetLoader.load(recipe.data.train).requiring(fields).examples.prefix(rows))
        let test = Array(try DatasetLoader.load(recipe.data.test).requiring(fields).examples.prefix(2))
        var notes: [String] = []
        let context = StrategyContext(task: task, train: train, validation: [], seed: recipe.run.seed, recipeDirectory: recipe.directory)
        let specs = recipe.strategies.filter { $0.backend == config.name }

        // Prompts: the first strategy on this backend that can be built, else the task's
        // zero-shot prompt.
        var requests: [GenerationRequest] = []
        for spec in specs {
            guard let strategy = try? catalog.make(spec, context: context) else { continue }
            requests = test.map { shortened(strategy.request(for: $0)) }
            notes.append("prompts from strategy '\(spec.name)' on \(test.count) test row\(test.count == 1 ? "" : "s")")
            break
        }
        if requests.isEmpty {
            requests = test.map { example in
                GenerationRequest(messages: [.system(PromptBuilder.systemPrompt(task: task)), .user(PromptBuilder.userPrompt(task: task, example: example))], maxTokens: min(task.maxAnswerTokens, maxTokens))
            }
            if !requests.isEmpty { notes.append("prompts: the task's zero-shot prompt on \(test.count) test row\(test.count == 1 ? "" : "s")") }
        }

        // Fine-tuning: the recipe's first training strategy on this backend, else the first
        // method the backend offers (LoRA when it does); one short job either way.
        let methods = plugin.fineTuningMethods(for: config)
        guard !methods.isEmpty, !train.isEmpty else {
            if !methods.isEmpty { notes.append("no fine-tuning checks: the training data has no usable rows") }
            return CheckInputs(requests: requests, fineTuneRequest: nil, notes: notes)
        }
        let baseIdentity = "\(config.plugin):\(config.model)"
        var job: FineTuneRequest?
        for spec in specs {
            guard let kind = try? catalog.kind(named: spec.kind), let method = kind.trainingMethod, methods.contains(method),
                  let strategy = try? kind.makeStrategy(spec, context: context),
                  let request = try? strategy.fineTuneRequest(baseIdentity: baseIdentity, workRoot: workDirectory.deletingLastPathComponent())
            else { continue }
            job = request
            notes.append("fine-tuning as strategy '\(spec.name)' does (\(request.method.name)), \(steps) step\(steps == 1 ? "" : "s") on \(train.count) row\(train.count == 1 ? "" : "s")")
            break
        }
        let options: TrainingOptions
        let method: FineTuneMethod
        let examples: [TrainingExample]
        if let job {
            var changed = job.options
            changed.maxSteps = steps
            changed.batchSize = min(changed.batchSize, train.count)
            changed.gradientAccumulation = 1
            changed.evalEvery = 0
            changed.earlyStoppingPatience = 0
            options = changed
            method = job.method
            examples = job.train
        } else {
            method = methods.contains(FineTuneMethod.loraName) ? .lora(LoRAOptions()) : FineTuneMethod(name: methods.min() ?? FineTuneMethod.loraName)
            options = TrainingOptions(maxSteps: steps, batchSize: train.count, seed: recipe.run.seed)
            examples = train.map { example in
                TrainingExample(messages: [.system(PromptBuilder.systemPrompt(task: task)), .user(PromptBuilder.userPrompt(task: task, example: example))], completion: example[task.target] ?? "")
            }
            notes.append("fine-tuning with \(method.name) (no strategy of the recipe fine-tunes on this backend), \(steps) step\(steps == 1 ? "" : "s") on \(train.count) row\(train.count == 1 ? "" : "s")")
        }
        let key = try FineTuningStrategy.jobKey(baseIdentity: baseIdentity, method: method, options: options, train: examples, validation: [])
        let request = FineTuneRequest(method: method, options: options, train: examples, validation: [], workDirectory: workDirectory, jobKey: key)
        return CheckInputs(requests: requests, fineTuneRequest: request, notes: notes)
    }

    /// The request with its answer length capped at `maxTokens`.
    static func shortened(_ request: GenerationRequest) -> GenerationRequest {
        GenerationRequest(messages: request.messages, maxTokens: min(request.maxTokens, maxTokens), temperature: request.temperature, topP: request.topP, stop: request.stop, seed: request.seed)
    }
}

import ArgumentParser
import Foundation
import SwiftTrainer
import TallyCore
import TallyTensor

/// `tally export RUN STRATEGY`: ships a measured strategy in a format a serving stack opens.
struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export a run's strategy: a Hugging Face model directory, a PEFT adapter, a GGUF file, or the exact prompt.",
        discussion: """
            RUN is a run id from `tally runs`, or `latest`; STRATEGY a strategy name from its report. \
            Formats: hf (config.json, model.safetensors, tokenizer.json, tokenizer_config.json with the \
            chat template, generation_config.json; LoRA merged into the weights), peft (the adapter as \
            PEFT lays it out, naming its base model), gguf (one file for llama.cpp and Ollama, --gguf-type \
            f16, q8_0 or f32), prompt (the messages Tally sent, as prompt.json and a promptfoo prompt \
            file). Models come from the built-in swift-trainer backend; the recipe is read again from \
            the path the run recorded (or --recipe) to find the base model and the data.
            """)

    /// The error code of a strategy that has nothing to export in the asked format.
    static let notExportable = TallyError.Code("not-exportable")

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case hf, peft, gguf, prompt
    }

    @Argument(help: "A run id from `tally runs`, or `latest`.")
    var run: String

    @Argument(help: "The strategy's name, as in the report.")
    var strategy: String

    @Option(help: "hf, peft, gguf or prompt.")
    var format: Format

    @Option(help: "Output directory (created).")
    var out: String

    @Option(name: .customLong("gguf-type"), help: "GGUF tensor type: f16, q8_0 or f32.")
    var ggufType = "f16"

    @Option(name: .customLong("base-model"), help: "The base model name written into a PEFT adapter (e.g. a Hugging Face id; default: the recipe's model).")
    var baseModel: String?

    @Option(help: "The recipe the run came from, when it has moved since (default: the path the run recorded).")
    var recipe: String?

    @Option(help: "Tally's home: ledger and run directories (default: $TALLY_HOME or ./.tally).")
    var home: String?

    @Option(help: "Threads for BLAS and parallel loops.")
    var threads = 2

    func validate() throws {
        guard ModelExport.ggufTypes.contains(where: { $0.name == ggufType }) else {
            throw ValidationError("--gguf-type must be one of \(ModelExport.ggufTypes.map(\.name).joined(separator: ", ")), not '\(ggufType)'")
        }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
    }

    func run() async throws {
        try await reportingErrors {
            let extensions = TallyExtensions.current
            let measurements = try loadRun(run, home: tallyHome(home))
            let names = measurements.strategies.map(\.runName)
            guard let measured = measurements.strategies.first(where: { $0.runName == strategy }) else {
                var message = "run \(measurements.runID) has no strategy '\(strategy)'"
                if let near = nearestName(to: strategy, among: names) { message += "; did you mean '\(near)'?" }
                message += " (strategies: \(names.joined(separator: ", ")))"
                throw TallyError(code: .unknownName, message: message)
            }
            let recipePath = recipe ?? measurements.recipePath
            guard FileManager.default.fileExists(atPath: recipePath) else {
                throw TallyError(code: .io, message: "the recipe of run \(measurements.runID), \(recipePath), is not there; run from the directory `tally run` ran in, or pass --recipe")
            }
            let recipe = try loadRecipeOrExit(recipePath, extensions: extensions, overrides: measurements.overrides ?? [])
            let outURL = fileURL(out)
            do {
                try FileManager.default.createDirectory(at: outURL, withIntermediateDirectories: true)
            } catch {
                throw TallyError(code: .io, message: "cannot create \(outURL.path): \(error.localizedDescription)", underlying: error)
            }
            let written: [URL]
            if format == .prompt {
                written = try exportPrompt(measured, measurements: measurements, recipe: recipe, extensions: extensions, to: outURL)
            } else {
                written = try exportModel(measured, recipe: recipe, to: outURL)
            }
            for url in written { Console.out(displayPath(url)) }
        }
    }

    // MARK: models

    /// hf, peft or gguf from a strategy trained by the built-in trainer.
    func exportModel(_ measured: StrategyMeasurement, recipe: Recipe, to outURL: URL) throws -> [URL] {
        guard measured.adaptsWeights else {
            let what = measured.usesLanguageModel ? "a prompting strategy: it leaves the model's weights as they are; export --format prompt and serve the base model" : "a baseline without a language model"
            throw TallyError(code: Self.notExportable, message: "'\(measured.runName)' is \(what)")
        }
        guard let outcome = measured.training else {
            throw TallyError(code: Self.notExportable, message: "run has no training record for '\(measured.runName)'; it did not finish training")
        }
        guard let backendName = measured.backend, let config = recipe.backend(named: backendName) else {
            throw TallyError(code: .invalidRecipe, message: "the recipe no longer defines the backend of '\(measured.runName)' (\(measured.backend ?? "none"))")
        }
        let pluginName = SwiftTrainerPlugin().name
        guard config.plugin == pluginName else {
            throw TallyError(code: Self.notExportable, message: "'\(measured.runName)' was trained by plugin \(config.plugin); export reads models of the \(pluginName) backend (the tuned model is at \(outcome.artifact))")
        }
        let artifact = URL(fileURLWithPath: outcome.artifact)
        let isAdapter = FileManager.default.fileExists(atPath: artifact.appendingPathComponent(PEFTAdapter.configFile).path)
        if format == .peft {
            guard isAdapter else {
                throw TallyError(code: Self.notExportable, message: "'\(measured.runName)' is a full fine-tune: it has no adapter; export --format hf or gguf")
            }
            return try copyAdapter(artifact, to: outURL, baseModel: baseModel ?? config.model)
        }
        let baseURL = try AssetCatalog.resolveModel(config.model, relativeTo: config.recipeDirectory, environment: ProcessInfo.processInfo.environment)
        return try Threading.withThreadCount(threads) {
            let base = try LocalModel.load(baseURL)
            let tuner = SwiftTrainerFineTuner(baseModel: baseURL, baseIdentity: base.identity, threads: threads)
            let local = try tuner.loadTuned(outcome)
            if format == .hf {
                try ModelExport.writeHuggingFace(local, to: outURL)
                return ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json"]
                    .map { outURL.appendingPathComponent($0) }
            }
            guard let type = ModelExport.ggufTypes.first(where: { $0.name == ggufType })?.type else { return [] }
            let file = outURL.appendingPathComponent("\(Self.fileSafe(measured.runName))-\(ggufType).gguf")
            try ModelExport.writeGGUF(local, to: file, type: type, name: measured.runName)
            return [file]
        }
    }

    /// The adapter directory's files, with `base_model_name_or_path` naming the base model.
    func copyAdapter(_ artifact: URL, to outURL: URL, baseModel: String) throws -> [URL] {
        var written: [URL] = []
        do {
            for name in try FileManager.default.contentsOfDirectory(atPath: artifact.path).sorted() where !name.hasPrefix(".") {
                let dest = outURL.appendingPathComponent(name)
                if FileManager.default.fileExists(atPath: dest.path) { try FileManager.default.removeItem(at: dest) }
                if name == PEFTAdapter.configFile {
                    let data = try Data(contentsOf: artifact.appendingPathComponent(name))
                    guard var object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                        throw TallyError(code: .invalidModel, message: "\(name) is not a JSON object", location: SourceLocation(file: artifact.appendingPathComponent(name).path))
                    }
                    object["base_model_name_or_path"] = baseModel
                    try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]).write(to: dest, options: .atomic)
                } else {
                    try FileManager.default.copyItem(at: artifact.appendingPathComponent(name), to: dest)
                }
                written.append(dest)
            }
        } catch let error as TallyError {
            throw error
        } catch {
            throw TallyError(code: .io, message: "cannot copy the adapter from \(artifact.path) to \(outURL.path): \(error.localizedDescription)", underlying: error)
        }
        return written
    }

    static func fileSafe(_ name: String) -> String {
        String(name.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." ? $0 : "-" })
    }

    // MARK: prompts

    /// `prompt.json` (the messages with `{field}` placeholders and the request settings) and
    /// `promptfoo-prompt.yaml` (the same messages with `{{field}}` variables).
    func exportPrompt(_ measured: StrategyMeasurement, measurements: RunMeasurements, recipe: Recipe, extensions: TallyExtensions, to outURL: URL) throws -> [URL] {
        guard measured.usesLanguageModel, !measured.adaptsWeights else {
            throw TallyError(code: Self.notExportable, message: "'\(measured.runName)' is not a prompting strategy; export it with --format \(measured.adaptsWeights ? "hf, peft or gguf" : "…: a baseline has no prompt or model to export")")
        }
        guard let spec = recipe.strategies.first(where: { $0.name == measured.name }) else {
            throw TallyError(code: .invalidRecipe, message: "the recipe no longer has a strategy named '\(measured.name)'")
        }
        let kind = try extensions.strategies.kind(named: spec.kind)
        // The run's own data subsets (the plan `tally run` walked), so demonstrations match.
        let plan = try RunPlan.make(recipe: recipe, strategies: extensions.strategies)
        let context = StrategyContext(task: recipe.task, train: plan.train.examples, validation: plan.validation?.examples ?? [], seed: measured.seed ?? recipe.run.seed)
        let strategy = try kind.makeStrategy(spec, context: context)
        let fields = Array(Set(RunPlan.neededFields(recipe.task)).subtracting([recipe.task.target])).sorted()
        func placeholders(_ render: (String) -> String) -> Example {
            Example(id: "prompt", fields: Dictionary(uniqueKeysWithValues: fields.map { ($0, render($0)) }), location: SourceLocation(file: "prompt"))
        }
        let request = strategy.request(for: placeholders { "{\($0)}" }, sample: 0)
        let nunjucks = strategy.messages(for: placeholders { "{{\($0)}}" })
        // Demonstrations chosen per input (most-similar selection) differ between two real inputs.
        let samples = context.train.prefix(2).map { Array(strategy.messages(for: $0).dropLast()) }
        let perInput = samples.count == 2 && samples[0] != samples[1]
        var object: [String: Any] = [
            "run": measurements.runID, "strategy": measured.runName, "kind": measured.kind,
            "model": recipe.backend(named: measured.backend ?? "")?.model ?? measured.model,
            "fields": fields,
            "messages": request.messages.map { ["role": $0.role.rawValue, "content": $0.content] },
            "max_tokens": request.maxTokens, "temperature": request.temperature, "top_p": request.topP,
            "stop": request.stop, "samples": strategy.samples,
            "demonstrations_depend_on_input": perInput,
            "fill": "replace each {field} in the messages' content with the example's value",
        ]
        if let labels = recipe.task.labels { object["labels"] = labels }
        let jsonURL = outURL.appendingPathComponent("prompt.json")
        let yamlURL = outURL.appendingPathComponent("promptfoo-prompt.yaml")
        var yaml = "# The chat prompt of strategy '\(measured.runName)' (run \(measurements.runID)), exported by tally.\n"
        yaml += "# promptfoo: prompts: [file://promptfoo-prompt.yaml]; vars: \(fields.joined(separator: ", "))\n"
        if perInput { yaml += "# Note: this strategy picks its demonstrations per input; these are the ones for an example input.\n" }
        for message in nunjucks {
            yaml += "- role: \(message.role.rawValue)\n  content: \(try Self.yamlString(message.content))\n"
        }
        do {
            try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]).write(to: jsonURL, options: .atomic)
            try Data(yaml.utf8).write(to: yamlURL, options: .atomic)
        } catch {
            throw TallyError(code: .io, message: "cannot write the prompt into \(outURL.path): \(error.localizedDescription)", underlying: error)
        }
        if strategy.samples > 1 {
            Console.err("note: '\(measured.runName)' samples \(strategy.samples) answers per input and keeps the majority answer; prompt.json says so in \"samples\"")
        }
        return [jsonURL, yamlURL]
    }

    /// A YAML double-quoted scalar (JSON string syntax, which YAML 1.2 reads).
    static func yamlString(_ text: String) throws -> String {
        let data = try JSONSerialization.data(withJSONObject: [text], options: [.withoutEscapingSlashes])
        let array = String(decoding: data, as: UTF8.self)
        return String(array.dropFirst().dropLast())
    }
}

import Foundation
import Synchronization

/// The `exec` backend plugin: an external program that speaks Tally's JSON-lines protocol
/// on stdin/stdout (docs/plugins.md). Any language works; the recipe names the program:
///
/// ```yaml
/// backends:
///   mine: {plugin: exec, model: my-model, command: "python3 my_backend.py --fast", timeout_s: 120}
/// ```
public struct ExecPlugin: BackendPlugin {
    public init() {}

    public var name: String { "exec" }
    public var summary: String { "an external program speaking Tally's JSON-lines protocol (docs/plugins.md)" }
    public var settingKeys: Set<String> { ["command", "timeout_s", "max_concurrency"] }
    /// The program says what it supports in `describe`; validation allows both methods.
    public var fineTuningMethods: Set<String> { [FineTuneMethod.loraName, FineTuneMethod.fullName] }

    public func validate(_ config: BackendConfig, environment: [String: String]) -> [ConfigIssue] {
        var problems: [ConfigIssue] = []
        do {
            _ = try Self.resolveCommand(config, environment: environment)
        } catch let error as TallyError {
            problems.append(ConfigIssue(key: "command", error.message))
        } catch {
            problems.append(ConfigIssue(key: "command", "\(error)"))
        }
        if let text = config.settings["timeout_s"], Double(text).map({ $0 > 0 }) != true {
            problems.append(ConfigIssue(key: "timeout_s", "timeout_s must be a positive number of seconds, not '\(text)'"))
        }
        if let text = config.settings["max_concurrency"], Int(text).map({ $0 > 0 }) != true {
            problems.append(ConfigIssue(key: "max_concurrency", "max_concurrency must be a positive whole number, not '\(text)'"))
        }
        return problems
    }

    public func makeBackend(_ config: BackendConfig, environment: [String: String]) async throws -> Backend {
        let (executable, arguments) = try Self.resolveCommand(config, environment: environment)
        let timeout = config.settings["timeout_s"].flatMap(Double.init) ?? 600
        let connection = try ExecConnection(
            executable: executable, arguments: arguments, environment: environment,
            workingDirectory: config.recipeDirectory, timeoutSeconds: timeout)
        let description = try await connection.call(
            "describe", params: ExecProtocol.DescribeParams(model: config.model, settings: config.settings),
            as: ExecProtocol.Description.self,
            // Starting up may load a model: allow at least a minute whatever timeout_s says.
            timeout: max(timeout, 60))
        let identity = "exec:\(description.name)@\(description.version ?? "0"):\(config.model)"
        let generator = ExecGenerator(connection: connection, model: config.model, artifact: nil, identity: identity)
        let methods = Set(description.fineTuningMethods ?? [])
        let fineTuner: (any FineTuner)? = methods.isEmpty ? nil : ExecFineTuner(connection: connection, model: config.model, methods: methods, baseIdentity: identity)
        let concurrency = config.settings["max_concurrency"].flatMap(Int.init) ?? description.maxConcurrency ?? 1
        return Backend(generator: generator, fineTuner: fineTuner, dataLeavesMachine: description.dataLeavesMachine ?? true, maxConcurrency: max(1, concurrency))
    }

    /// Splits `command:` into a program and arguments and finds the program: a path with a
    /// slash is taken relative to the recipe's directory, a bare name is looked up in `PATH`.
    /// - Throws: `TallyError(.invalidRecipe)` when `command:` is missing or the program
    ///   cannot be found or run.
    public static func resolveCommand(_ config: BackendConfig, environment: [String: String]) throws -> (URL, [String]) {
        guard let command = config.settings["command"], !command.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw TallyError(code: .invalidRecipe, message: "the exec plugin needs `command:`, the program to run (e.g. command: \"python3 my_backend.py\")")
        }
        var words = try splitCommandLine(command)
        let program = words.removeFirst()
        let fileManager = FileManager.default
        var candidate: URL?
        if program.hasPrefix("~/") {
            candidate = fileManager.homeDirectoryForCurrentUser.appending(path: String(program.dropFirst(2)))
        } else if program.hasPrefix("/") {
            candidate = URL(fileURLWithPath: program)
        } else if program.contains("/") {
            candidate = config.recipeDirectory.appending(path: program).standardizedFileURL
        } else {
            let path = environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
            for directory in path.split(separator: ":") where !directory.isEmpty {
                let url = URL(fileURLWithPath: String(directory)).appending(path: program)
                if fileManager.isExecutableFile(atPath: url.path) {
                    candidate = url
                    break
                }
            }
            if candidate == nil {
                throw TallyError(code: .invalidRecipe, message: "cannot find the program '\(program)' of `command:` in PATH; give its path (relative to the recipe) or install it")
            }
        }
        guard let url = candidate, fileManager.isExecutableFile(atPath: url.path) else {
            throw TallyError(code: .invalidRecipe, message: "the program '\(program)' of `command:` is not an executable file (looked for \(candidate?.path ?? program)); fix the path or `chmod +x` it")
        }
        return (url, words)
    }

    /// Splits a command line on spaces, honouring single and double quotes and backslashes.
    /// - Throws: `TallyError(.invalidRecipe)` for an unclosed quote or an empty command.
    public static func splitCommandLine(_ text: String) throws -> [String] {
        var words: [String] = []
        var current = ""
        var inWord = false
        var quote: Character?
        var escaped = false
        for character in text {
            if escaped {
                current.append(character)
                escaped = false
                continue
            }
            if character == "\\" && quote != "'" {
                escaped = true
                inWord = true
                continue
            }
            if let open = quote {
                if character == open { quote = nil } else { current.append(character) }
                continue
            }
            if character == "\"" || character == "'" {
                quote = character
                inWord = true
            } else if character == " " || character == "\t" {
                if inWord { words.append(current) }
                current = ""
                inWord = false
            } else {
                current.append(character)
                inWord = true
            }
        }
        if quote != nil {
            throw TallyError(code: .invalidRecipe, message: "`command:` has an unclosed quote: \(text)")
        }
        if inWord { words.append(current) }
        if words.isEmpty {
            throw TallyError(code: .invalidRecipe, message: "`command:` is empty")
        }
        return words
    }
}

/// Generation (and scoring, when the program supports it) through an exec plugin.
public struct ExecGenerator: TextGenerator, TextScorer {
    let connection: ExecConnection
    let model: String
    /// The fine-tuned artifact, or nil for the base model.
    let artifact: String?
    public let identity: String

    public func generate(_ request: GenerationRequest) async throws -> GenerationResult {
        let started = ContinuousClock.now
        let result = try await connection.call(
            "generate", params: ExecProtocol.GenerateParams(model: model, artifact: artifact, request: request),
            as: ExecProtocol.Generation.self)
        let elapsed = ContinuousClock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return GenerationResult(text: result.text, usage: result.usage?.usage ?? TokenUsage(), latencySeconds: seconds, computeSeconds: result.computeS)
    }

    public func crossEntropy(of text: String) async throws -> (nats: Double, tokens: Int) {
        let score = try await connection.call("score", params: ExecProtocol.ScoreParams(model: model, artifact: artifact, text: text), as: ExecProtocol.Score.self)
        return (score.nats, score.tokens)
    }
}

/// Fine-tuning through an exec plugin.
public struct ExecFineTuner: FineTuner {
    let connection: ExecConnection
    let model: String
    let methods: Set<String>
    let baseIdentity: String

    public func fineTune(_ request: FineTuneRequest, progress: @escaping @Sendable (ProgressEvent) -> Void) async throws -> FineTuneOutcome {
        guard methods.contains(request.method.name) else {
            throw TallyError(code: .backend, message: "this exec plugin does not support `\(request.method.name)` (it offers \(methods.sorted().joined(separator: ", ")))")
        }
        let params = ExecProtocol.FineTuneParams(
            model: model, method: request.method.name, parameters: request.method.parameters, options: request.options,
            train: request.train, validation: request.validation,
            workDirectory: request.workDirectory.path, jobKey: request.jobKey)
        // The program names its own phases; close each one when the job ends.
        let phases = Mutex<[String]>([])
        let relay: @Sendable (ProgressEvent) -> Void = { event in
            if case .advanced(let phase, _, _, _) = event {
                let isNew = phases.withLock { seen in
                    if seen.contains(phase) { return false }
                    seen.append(phase)
                    return true
                }
                if isNew { progress(.started(phase: phase, total: nil)) }
            }
            progress(event)
        }
        defer { for phase in phases.withLock({ $0 }) { progress(.finished(phase: phase)) } }
        // Training takes as long as it takes: no timeout (0 disables it).
        let result = try await connection.call("finetune", params: params, as: ExecProtocol.FineTuneResult.self, progress: relay, timeout: 0)
        return FineTuneOutcome(
            artifact: result.artifact, wallSeconds: result.wallS ?? 0, trainedTokens: result.trainedTokens ?? 0,
            steps: result.steps ?? 0, trainLoss: result.trainLoss ?? [], validationLoss: result.validationLoss ?? [],
            peakMemoryBytes: result.peakMemoryBytes, billedUSD: result.billedUSD, notes: result.notes ?? [])
    }

    public func generator(for outcome: FineTuneOutcome) async throws -> any TextGenerator {
        let opened = try await connection.call("open_artifact", params: ExecProtocol.OpenArtifactParams(model: model, artifact: outcome.artifact), as: ExecProtocol.OpenedArtifact.self, timeout: max(connection.timeoutSeconds, 60))
        return ExecGenerator(connection: connection, model: model, artifact: outcome.artifact, identity: "\(baseIdentity)+\(opened.identity)")
    }
}

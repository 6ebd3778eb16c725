import Foundation
import Synchronization

/// The `exec` backend plugin: an external program that speaks Tally's exec protocol
/// (JSON-RPC 2.0 over stdin/stdout, docs/plugins.md). Any language works; the recipe names
/// the program:
///
/// ```yaml
/// backends:
///   mine: {plugin: exec, model: my-model, command: "python3 my_backend.py --fast", timeout_s: 120}
/// ```
///
/// The program declares what it can do in `describe`, fine-tuning methods included; validation
/// asks it (once per backend entry and process) rather than assuming.
public struct ExecPlugin: BackendPlugin {
    /// What `describe` said for each backend entry validated so far (per plugin value, so per
    /// registry): validation starts each program once however often it is asked.
    private let descriptions = DescriptionCache()

    public init() {}

    public var name: String { "exec" }
    public var summary: String { "an external program speaking Tally's exec protocol \(ExecProtocol.version) (JSON-RPC 2.0 over stdin/stdout; docs/plugins.md)" }
    public var settingKeys: Set<String> { ["command", "timeout_s", "max_concurrency"] }
    /// None in general: each program declares its own in `describe`
    /// (`fineTuningMethods(for:)` asks it).
    public var fineTuningMethods: Set<String> { [] }

    /// Seconds validation waits for `describe`: a program should answer it before loading
    /// a model (load it on the first request instead).
    public static let validationTimeout: Double = 20

    /// The methods the configured program declares in `describe` (asked once per entry and
    /// process); none when it cannot be started or does not answer (`validate` says why).
    public func fineTuningMethods(for config: BackendConfig) -> Set<String> {
        guard case .success(let description) = describe(config, environment: ProcessInfo.processInfo.environment) else { return [] }
        return Set(description.fineTuningMethods ?? [])
    }

    /// Whether the configured program declares `embeddings` in `describe` (it answers
    /// `embed`); asked once per entry and process.
    public func canEmbed(_ config: BackendConfig) -> Bool {
        guard case .success(let description) = describe(config, environment: ProcessInfo.processInfo.environment) else { return false }
        return description.embeddings != nil
    }

    /// Checks the settings, then starts the program, asks `describe` (protocol version
    /// included) and stops it again; the only side effect is that short-lived process.
    public func validate(_ config: BackendConfig, environment: [String: String]) -> [ConfigIssue] {
        var problems: [ConfigIssue] = []
        var commandResolves = false
        do {
            _ = try Self.resolveCommand(config, environment: environment)
            commandResolves = true
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
        if commandResolves, case .failure(let error) = describe(config, environment: environment) {
            problems.append(ConfigIssue(key: "command", "`describe` failed: \(error.message)", fix: "run the command by hand and send it a describe request (docs/plugins.md), or fix `command:`"))
        }
        return problems
    }

    /// `describe` of the configured program, from the cache or by starting it.
    func describe(_ config: BackendConfig, environment: [String: String]) -> Result<ExecProtocol.Description, TallyError> {
        if let known = descriptions.entries.withLock({ $0[config] }) { return known }
        let result: Result<ExecProtocol.Description, TallyError>
        do {
            let (executable, arguments) = try Self.resolveCommand(config, environment: environment)
            let connection = try ExecConnection(
                executable: executable, arguments: arguments, environment: environment,
                workingDirectory: config.recipeDirectory, timeoutSeconds: Self.validationTimeout)
            defer { connection.stop(grace: 1) }
            result = .success(try connection.describeSynchronously(model: config.model, settings: config.settings, timeout: Self.validationTimeout))
        } catch let error as TallyError {
            result = .failure(error)
        } catch {
            result = .failure(TallyError(code: .backend, message: "\(error)"))
        }
        descriptions.entries.withLock { $0[config] = result }
        return result
    }

    public func makeBackend(_ config: BackendConfig, environment: [String: String]) async throws -> Backend {
        let (executable, arguments) = try Self.resolveCommand(config, environment: environment)
        let timeout = config.settings["timeout_s"].flatMap(Double.init) ?? 600
        let connection = try ExecConnection(
            executable: executable, arguments: arguments, environment: environment,
            workingDirectory: config.recipeDirectory, timeoutSeconds: timeout)
        // Starting up may load a model: allow at least a minute whatever timeout_s says.
        let description = try await connection.describe(model: config.model, settings: config.settings, timeout: max(timeout, 60))
        let identity = "exec:\(description.name)@\(description.version):\(config.model)"
        let generator = ExecGenerator(connection: connection, model: config.model, artifact: nil, identity: identity)
        let methods = Set(description.fineTuningMethods ?? [])
        let fineTuner: (any FineTuner)? = methods.isEmpty ? nil : ExecFineTuner(connection: connection, model: config.model, methods: methods, baseIdentity: identity)
        let concurrency = config.settings["max_concurrency"].flatMap(Int.init) ?? description.maxConcurrency ?? 1
        let embedder = description.embeddings.map {
            ExecEmbedder(connection: connection, model: config.model, identity: identity, maxBatchSize: $0.maxBatchSize ?? ExecProtocol.EmbeddingCapability.defaultBatchSize)
        }
        return Backend(generator: generator, fineTuner: fineTuner, dataLeavesMachine: description.dataLeavesMachine ?? true, maxConcurrency: max(1, concurrency), embedder: embedder)
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

/// `describe` results by backend entry; see `ExecPlugin.fineTuningMethods(for:)`.
final class DescriptionCache: Sendable {
    let entries = Mutex<[BackendConfig: Result<ExecProtocol.Description, TallyError>]>([:])
}

/// Generation (and scoring, when the program supports it) through an exec plugin.
public struct ExecGenerator: TextGenerator, TextScorer {
    /// The connection to the program (a conformance checker reads its `violations`).
    public let connection: ExecConnection
    let model: String
    /// The fine-tuned artifact, or nil for the base model.
    let artifact: String?
    public let identity: String

    public func generate(_ request: GenerationRequest) async throws -> GenerationResult {
        let started = ContinuousClock.now
        let result = try await connection.call(
            ExecProtocol.Method.generate, params: ExecProtocol.GenerateParams(model: model, artifact: artifact, request: request),
            as: ExecProtocol.Generation.self)
        let elapsed = ContinuousClock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return GenerationResult(text: result.text, usage: result.usage.usage, latencySeconds: seconds, computeSeconds: result.computeS)
    }

    public func crossEntropy(of text: String) async throws -> (nats: Double, tokens: Int) {
        let score = try await connection.call(ExecProtocol.Method.score, params: ExecProtocol.ScoreParams(model: model, artifact: artifact, text: text), as: ExecProtocol.Score.self)
        return (score.nats, score.tokens)
    }
}

/// Embedding through an exec plugin that declares `embeddings` in `describe`.
public struct ExecEmbedder: TextEmbedder {
    /// The connection to the program.
    public let connection: ExecConnection
    let model: String
    /// `exec:<name>@<version>:<model>`: the vectors change when the plugin's version does.
    public let identity: String
    public let maxBatchSize: Int

    /// Sends one `embed` request; the reply must hold one finite vector per text, all of one
    /// dimension (anything else is a protocol violation).
    public func embed(_ texts: [String]) async throws -> Embeddings {
        let count = texts.count
        let result = try await connection.call(
            ExecProtocol.Method.embed, params: ExecProtocol.EmbedParams(model: model, texts: texts),
            as: ExecProtocol.EmbeddingResult.self, check: { $0.problem(texts: count) })
        return Embeddings(vectors: result.vectors.map { $0.map(Float.init) }, promptTokens: result.promptTokens)
    }
}

/// Fine-tuning through an exec plugin.
public struct ExecFineTuner: FineTuner {
    /// The connection to the program.
    public let connection: ExecConnection
    let model: String
    let methods: Set<String>
    let baseIdentity: String

    public func fineTune(_ request: FineTuneRequest, progress: @escaping @Sendable (ProgressEvent) -> Void) async throws -> FineTuneOutcome {
        guard methods.contains(request.method.name) else {
            throw TallyError(code: .backend, message: "exec plugin '\(connection.commandLine)' does not offer `\(request.method.name)` fine-tuning (its describe lists \(methods.sorted().joined(separator: ", ")))")
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
                    if seen.contains(phase) || seen.count >= 16 { return false }
                    seen.append(phase)
                    return true
                }
                if isNew { progress(.started(phase: phase, total: nil)) }
            }
            progress(event)
        }
        defer { for phase in phases.withLock({ $0 }) { progress(.finished(phase: phase)) } }
        // Training takes as long as it takes: no timeout (0 disables it).
        let result = try await connection.call(ExecProtocol.Method.finetune, params: params, as: ExecProtocol.FineTuneResult.self, progress: relay, timeout: 0)
        return result.outcome
    }

    public func generator(for outcome: FineTuneOutcome) async throws -> any TextGenerator {
        let opened = try await connection.call(
            ExecProtocol.Method.openArtifact, params: ExecProtocol.OpenArtifactParams(model: model, artifact: outcome.artifact),
            as: ExecProtocol.OpenedArtifact.self, timeout: max(connection.timeoutSeconds, 60))
        return ExecGenerator(connection: connection, model: model, artifact: outcome.artifact, identity: "\(baseIdentity)+\(opened.identity)")
    }
}

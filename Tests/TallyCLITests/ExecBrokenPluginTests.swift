import Foundation
import Testing
import TallyCore

/// Tally's exec connection against plugins that break the protocol on purpose
/// (Resources/broken-plugins/broken_plugin.py): each break is reported clearly, and the
/// breaks a conformance checker must find are really there.
@Suite struct ExecBrokenPluginTests {
    static let question = GenerationRequest(messages: [.user("Review: a wonderful film")], maxTokens: 4)

    // MARK: schema

    /// A reply to `generate` that breaks the schema fails that request with a protocol
    /// violation naming the member at fault, and the connection records it.
    @Test(arguments: [
        ("missing-jsonrpc", "`jsonrpc` is missing"),
        ("result-and-error", "`error` appears together with `result`"),
        ("wrong-type", "`result.text` has the wrong type"),
        ("string-id", "`id` is \"2\""),
        ("missing-usage", "`result.usage` is missing"),
        ("negative-usage", "`result.usage.prompt_tokens` is -5"),
    ])
    func aReplyThatBreaksTheSchemaIsAViolation(_ breaking: String, _ expected: String) async throws {
        let connection = try await BrokenPlugin.start(breaking)
        let error = await #expect(throws: TallyError.self) {
            _ = try await connection.call(ExecProtocol.Method.generate, params: BrokenPlugin.generateParams, as: ExecProtocol.Generation.self)
        }
        let message = error?.message ?? ""
        #expect(message.hasPrefix(ExecProtocol.violationPrefix), "\(message)")
        #expect(message.contains("the reply to `generate` (id 2)"), "\(message)")
        #expect(message.contains(expected), "\(message)")
        #expect(connection.violationCount == 1)
        #expect(connection.violations.first?.id == 2)
    }

    @Test func aReplyToAnIDTallyNeverSentIsRecordedAndTheRequestTimesOut() async throws {
        let connection = try await BrokenPlugin.start("unknown-id")
        let error = await #expect(throws: TallyError.self) {
            _ = try await connection.call(ExecProtocol.Method.generate, params: BrokenPlugin.generateParams, as: ExecProtocol.Generation.self, timeout: 0.5)
        }
        #expect(error?.message.contains("did not answer `generate` (id 2) within 0.5 s") == true, "\(String(describing: error))")
        let violation = try #require(connection.violations.first)
        #expect(violation.field == "id" && violation.id == 1002)
        #expect(violation.description.contains("names no pending request"))
    }

    @Test func aLineThatIsNotJSONIsRecordedButDoesNotFailTheRequest() async throws {
        let connection = try await BrokenPlugin.start("not-json")
        let reply = try await connection.call(ExecProtocol.Method.generate, params: BrokenPlugin.generateParams, as: ExecProtocol.Generation.self)
        #expect(reply.text == "positive")
        #expect(connection.violationCount == 2, "one junk line before describe's reply, one before generate's")
        #expect(connection.violations.allSatisfy { $0.field.isEmpty && $0.problem.contains("is not JSON") && $0.excerpt == "loading weights... done" })
    }

    @Test func aProgressNotificationThatBreaksTheSchemaFailsItsRequest() async throws {
        let connection = try await BrokenPlugin.start("bad-progress")
        let temp = try TemporaryDirectory()
        let error = await #expect(throws: TallyError.self) {
            _ = try await connection.call(ExecProtocol.Method.finetune, params: BrokenPlugin.fineTuneParams(temp.url), as: ExecProtocol.FineTuneResult.self, timeout: 10)
        }
        #expect(error?.message.contains("`params.completed` is -1") == true, "\(String(describing: error))")
        #expect(error?.message.contains("(id 2)") == true)
    }

    @Test func aLineLongerThanTheLimitStopsThePlugin() async throws {
        let connection = try await BrokenPlugin.start("huge-line")
        let error = await #expect(throws: TallyError.self) {
            _ = try await connection.call(ExecProtocol.Method.generate, params: BrokenPlugin.generateParams, as: ExecProtocol.Generation.self)
        }
        #expect(error?.message.contains("longer than 8 MiB") == true, "\(String(describing: error))")
        // Later requests fail the same way: the stream cannot be trusted to be in step.
        let later = await #expect(throws: TallyError.self) {
            _ = try await connection.call(ExecProtocol.Method.generate, params: BrokenPlugin.generateParams, as: ExecProtocol.Generation.self)
        }
        #expect(later?.message == error?.message)
    }

    // MARK: versions

    @Test(arguments: [
        ("protocol-2", "speaks exec protocol 2.0, but this Tally speaks 1.1; use a release of the plugin for protocol 1.x"),
        ("no-protocol-version", "declares no `protocol_version` in its describe result, so it predates exec protocol 1.0"),
        ("pre-1.0", "`jsonrpc` is missing; every message carries \"jsonrpc\": \"2.0\" (a plugin written for the exec protocol before 1.0 must be updated)"),
    ])
    func describeRefusesAnotherProtocolVersion(_ breaking: String, _ expected: String) async throws {
        let connection = try BrokenPlugin.connection(breaking)
        let error = await #expect(throws: TallyError.self) {
            _ = try await connection.describe(model: "m", settings: [:])
        }
        #expect(error?.message.contains(expected) == true, "\(String(describing: error))")
    }

    // MARK: process lifecycle

    @Test func aPluginThatExitsMidRequestFailsThisAndEveryLaterRequest() async throws {
        let connection = try await BrokenPlugin.start("exit-mid-request")
        let expected = "exec plugin '\(connection.commandLine)' exited with status 3 (last stderr: broken_plugin.py: simulated crash in generate)"
        for _ in 0..<2 {
            let error = await #expect(throws: TallyError.self) {
                _ = try await connection.call(ExecProtocol.Method.generate, params: BrokenPlugin.generateParams, as: ExecProtocol.Generation.self)
            }
            #expect(error?.message == expected)
        }
    }

    /// Writing a large request into the pipe of a plugin that has closed its stdin must not
    /// raise SIGPIPE in this process (which would end the test run); the request fails with
    /// the plugin's exit.
    @Test func writingToAPluginThatLeftRaisesNoSIGPIPE() async throws {
        let connection = try await BrokenPlugin.start("exit-after-describe")
        let big = GenerationRequest(messages: [.user(String(repeating: "word ", count: 400_000))], maxTokens: 4)
        let params = ExecProtocol.GenerateParams(model: "m", artifact: nil, request: big)
        for _ in 0..<2 {
            let error = await #expect(throws: TallyError.self) {
                _ = try await connection.call(ExecProtocol.Method.generate, params: params, as: ExecProtocol.Generation.self)
            }
            #expect(error?.message == "exec plugin '\(connection.commandLine)' exited with status 4 (last stderr: broken_plugin.py: leaving after describe)", "\(String(describing: error))")
        }
    }

    @Test func aHungPluginTimesOutAndStoppingItStopsItsWholeGroup() async throws {
        let connection = try await BrokenPlugin.start("hang-mid-request", extra: ["--spawn-child", "--ignore-sigterm"])
        let error = await #expect(throws: TallyError.self) {
            _ = try await connection.call(ExecProtocol.Method.generate, params: BrokenPlugin.generateParams, as: ExecProtocol.Generation.self, timeout: 0.5)
        }
        #expect(error?.message.contains("did not answer `generate` (id 2) within 0.5 s; it may be hung (last stderr: child pid") == true, "\(String(describing: error))")
        let match = try #require(connection.stderrTail.firstMatch(of: /child pid (\d+) of plugin pid (\d+)/))
        let child = try #require(Int32(match.1))
        let plugin = connection.processID
        #expect(Int32(match.2) == plugin)
        #expect(BrokenPlugin.isAlive(child) && BrokenPlugin.isAlive(plugin))

        // The plugin ignores SIGTERM and EOF: stopping it takes the SIGKILL after the grace.
        let started = ContinuousClock.now
        await connection.shutdown(grace: 0.3)
        #expect(ContinuousClock.now - started < .seconds(10))
        #expect(!BrokenPlugin.isAlive(plugin), "the plugin outlived stop()")
        try await BrokenPlugin.waitUntil { !BrokenPlugin.isAlive(child) }
        let later = await #expect(throws: TallyError.self) {
            _ = try await connection.call(ExecProtocol.Method.generate, params: BrokenPlugin.generateParams, as: ExecProtocol.Generation.self)
        }
        #expect(later?.message == "exec plugin '\(connection.commandLine)' was stopped by Tally")
    }

    /// `tally run` against a plugin that hangs, ignores EOF and SIGTERM and has a child: the
    /// run fails at `timeout_s` with one clear line, and nothing of the plugin's group
    /// outlives `tally`.
    @Test func tallyLeavesNoPluginProcessBehind() async throws {
        let temp = try TemporaryDirectory()
        let root = temp.url
        try FileManager.default.createDirectory(at: root.appending(path: "data"), withIntermediateDirectories: true)
        let rows = #"{"text": "a great film", "label": "positive"}\#n{"text": "a dull film", "label": "negative"}\#n"#
        try rows.write(to: root.appending(path: "data/train.jsonl"), atomically: true, encoding: .utf8)
        try rows.write(to: root.appending(path: "data/test.jsonl"), atomically: true, encoding: .utf8)
        try """
            name: hang
            task: {instruction: "Positive or negative?", input: "Review: {text}", target: label, labels: [positive, negative], metric: accuracy}
            data: {train: data/train.jsonl, test: data/test.jsonl}
            backends:
              stuck: {plugin: exec, model: m, command: "python3 \(try BrokenPlugin.script.path) --break hang-mid-request --spawn-child --ignore-sigterm", timeout_s: 1}
            strategies:
              - {name: zero-shot, kind: zero-shot, backend: stuck}
            run: {seed: 7, concurrency: 1}

            """.write(to: root.appending(path: "hang.yaml"), atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = try Binaries.tally
        process.arguments = ["run", "hang.yaml", "--quiet"]
        process.currentDirectoryURL = root
        var environment = ProcessInfo.processInfo.environment
        environment["TALLY_HOME"] = root.appending(path: "home").path
        environment["TALLY_CALL_CACHE"] = root.appending(path: "home/ledger.sqlite").path
        process.environment = environment
        let stderrURL = root.appending(path: "stderr")
        _ = FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
        process.standardError = try FileHandle(forWritingTo: stderrURL)
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let finished = try await CLITests.Running(process: process, stdoutURL: stderrURL, stderrURL: stderrURL).wait(timeout: 60)
        #expect(finished.status == 1, "\(finished.stderr)")
        #expect(finished.stderr.contains("did not answer `generate` (id 2) within 1 s; it may be hung (last stderr: child pid "), "\(finished.stderr)")
        let match = try #require(finished.stderr.firstMatch(of: /child pid (\d+) of plugin pid (\d+)/))
        let child = try #require(Int32(match.1)), plugin = try #require(Int32(match.2))
        // The plugin ignores SIGTERM: only the SIGKILL that follows stops it.
        try await BrokenPlugin.waitUntil { !BrokenPlugin.isAlive(child) && !BrokenPlugin.isAlive(plugin) }
    }

    // MARK: breaks only a checker can see

    @Test func theIdentityBreaksAreReal() async throws {
        let temp = try TemporaryDirectory()
        let plugin = ExecPlugin()
        func backend(_ breaking: String) async throws -> Backend {
            let config = BackendConfig(name: "b", plugin: "exec", model: "m", settings: ["command": "python3 \(try BrokenPlugin.script.path) --break \(breaking)"], recipeDirectory: temp.url)
            return try await plugin.makeBackend(config, environment: ProcessInfo.processInfo.environment)
        }
        // describe's version (part of every cache key) changes from one start to the next.
        let first = try await backend("describe-version-drift"), second = try await backend("describe-version-drift")
        #expect(first.generator.identity != second.generator.identity)

        // The same greedy request gets different answers.
        let nondeterministic = try await backend("nondeterministic")
        let answers = try await [nondeterministic.generator.generate(Self.question).text, nondeterministic.generator.generate(Self.question).text]
        #expect(answers[0] != answers[1])

        // The same artifact is reopened under another identity.
        let drifting = try await backend("artifact-identity-drift")
        let tuner = try #require(drifting.fineTuner)
        let outcome = try await tuner.fineTune(BrokenPlugin.fineTuneRequest(temp.url.appending(path: "a"))) { _ in }
        let reopened = try await [tuner.generator(for: outcome).identity, tuner.generator(for: outcome).identity]
        #expect(reopened[0] != reopened[1])

        // The same job, run twice, leaves an artifact of another identity.
        let unstable = try await backend("finetune-identity")
        let unstableTuner = try #require(unstable.fineTuner)
        let job = BrokenPlugin.fineTuneRequest(temp.url.appending(path: "b"))
        let firstRun = try await unstableTuner.generator(for: try await unstableTuner.fineTune(job) { _ in }).identity
        let secondRun = try await unstableTuner.generator(for: try await unstableTuner.fineTune(job) { _ in }).identity
        #expect(firstRun != secondRun)

        // The control: without a break, all of these hold still.
        let sound = try await backend("nothing")
        let soundTuner = try #require(sound.fineTuner)
        let soundOutcome = try await soundTuner.fineTune(BrokenPlugin.fineTuneRequest(temp.url.appending(path: "c"))) { _ in }
        #expect(try await soundTuner.generator(for: soundOutcome).identity == soundTuner.generator(for: soundOutcome).identity)
        #expect(try await sound.generator.generate(Self.question).text == sound.generator.generate(Self.question).text)
        #expect(try await backend("nothing").generator.identity == sound.generator.identity)
    }
}

/// The deliberately broken plugin and what its tests share.
enum BrokenPlugin {
    static var script: URL {
        get throws {
            guard let url = Bundle.module.url(forResource: "broken_plugin", withExtension: "py", subdirectory: "Resources/broken-plugins") else {
                throw FixtureProblem(text: "no Resources/broken-plugins/broken_plugin.py")
            }
            return url
        }
    }

    static let generateParams = ExecProtocol.GenerateParams(model: "m", artifact: nil, request: ExecBrokenPluginTests.question)

    /// A connection to `broken_plugin.py --break WHAT` (python3 from PATH), describe not sent.
    static func connection(_ breaking: String, extra: [String] = []) throws -> ExecConnection {
        let config = BackendConfig(name: "b", plugin: "exec", model: "m", settings: ["command": "python3 \(try script.path) --break \(breaking) \(extra.joined(separator: " "))"], recipeDirectory: try script.deletingLastPathComponent())
        let (executable, arguments) = try ExecPlugin.resolveCommand(config, environment: ProcessInfo.processInfo.environment)
        return try ExecConnection(executable: executable, arguments: arguments, environment: ProcessInfo.processInfo.environment, workingDirectory: config.recipeDirectory, timeoutSeconds: 20)
    }

    /// `connection` after a successful describe (request id 1).
    static func start(_ breaking: String, extra: [String] = []) async throws -> ExecConnection {
        let connection = try connection(breaking, extra: extra)
        _ = try await connection.describe(model: "m", settings: [:])
        return connection
    }

    static func fineTuneRequest(_ work: URL) -> FineTuneRequest {
        FineTuneRequest(
            method: .lora(LoRAOptions()), options: TrainingOptions(epochs: 1, batchSize: 1),
            train: [TrainingExample(messages: [.user("Review: zorp")], completion: "negative")], validation: [],
            workDirectory: work, jobKey: "job")
    }

    static func fineTuneParams(_ work: URL) -> ExecProtocol.FineTuneParams {
        let request = fineTuneRequest(work)
        return ExecProtocol.FineTuneParams(
            model: "m", method: request.method.name, parameters: request.method.parameters, options: request.options,
            train: request.train, validation: [], workDirectory: work.path, jobKey: request.jobKey)
    }

    /// Whether a process exists and is not a zombie.
    static func isAlive(_ pid: Int32) -> Bool {
        guard kill(pid, 0) == 0 else { return false }
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return true }
        let state = stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).prefix(1)
        return state != "Z" && state != "X"
    }

    static func waitUntil(seconds: Double = 10, _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while !condition() {
            if ContinuousClock.now > deadline { throw FixtureProblem(text: "timed out waiting") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}

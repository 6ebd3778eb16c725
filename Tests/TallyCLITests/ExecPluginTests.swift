import Foundation
import Testing
import TallyCore
import Synchronization

/// The `exec` plugin against the real `tally-test-backend` executable.
@Suite struct ExecPluginTests {
    func config(_ directory: URL, settings: [String: String]) throws -> BackendConfig {
        var settings = settings
        if settings["command"] == nil { settings["command"] = try Binaries.testBackend.path }
        return BackendConfig(name: "test", plugin: "exec", model: "test-model", settings: settings, recipeDirectory: directory)
    }

    func environment(_ extra: [String: String] = [:]) -> [String: String] {
        ProcessInfo.processInfo.environment.merging(extra) { _, new in new }
    }

    @Test func generatesThroughTheProtocol() async throws {
        let temp = try TemporaryDirectory()
        let log = temp.url.appending(path: "calls.log")
        let backend = try await ExecPlugin().makeBackend(try config(temp.url, settings: [:]), environment: environment(["TALLY_TEST_BACKEND_LOG": log.path]))
        #expect(backend.dataLeavesMachine == false)
        #expect(backend.maxConcurrency == 4)
        #expect(backend.generator.identity == "exec:tally-test-backend@1:test-model")
        let request = GenerationRequest(messages: [.system("Positive or negative?"), .user("Review: a wonderful, brilliant film")], maxTokens: 8)
        let result = try await backend.generator.generate(request)
        #expect(result.text == "positive")
        // 2 messages x 4 + 3 + 5 words.
        #expect(result.usage.promptTokens == 16)
        #expect(result.usage.completionTokens == 1)
        #expect(result.computeSeconds == 0.016)
        #expect(result.latencySeconds > 0)
        // Concurrent requests are matched to their answers by id.
        let questions = ["France", "Japan", "Italy", "Peru"]
        let answers = try await withThrowingTaskGroup(of: (String, String).self) { group in
            for country in questions {
                group.addTask { (country, try await backend.generator.generate(GenerationRequest(messages: [.user("What is the capital of \(country)?")])).text) }
            }
            return try await group.reduce(into: [String: String]()) { $0[$1.0] = $1.1 }
        }
        #expect(answers == ["France": "Paris", "Japan": "Tokyo", "Italy": "Rome", "Peru": "Lima"])
        let lines = try String(contentsOf: log, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 5)
    }

    @Test func fineTunesAndReopensTheArtifact() async throws {
        let temp = try TemporaryDirectory()
        let backend = try await ExecPlugin().makeBackend(try config(temp.url, settings: [:]), environment: environment())
        let tuner = try #require(backend.fineTuner)
        let train = [
            TrainingExample(messages: [.user("Review: zorp film")], completion: "negative"),
            TrainingExample(messages: [.user("Review: blick film")], completion: "positive"),
        ]
        let events = EventLog()
        let request = FineTuneRequest(method: .lora(LoRAOptions()), options: TrainingOptions(epochs: 2, batchSize: 1), train: train, validation: [], workDirectory: temp.url.appending(path: "job"), jobKey: "k")
        let outcome = try await tuner.fineTune(request) { events.append($0) }
        #expect(outcome.steps == 4)
        #expect(outcome.trainLoss.map(\.step) == [1, 2, 3, 4])
        // The program's phase is opened, advanced once per step, and closed.
        let seen = events.all
        #expect(seen.first == .started(phase: "training", total: nil))
        #expect(seen.last == .finished(phase: "training"))
        #expect(seen.filter { if case .advanced = $0 { true } else { false } }.count == 4)
        #expect(FileManager.default.fileExists(atPath: outcome.artifact + "/memory.json"))
        let tuned = try await tuner.generator(for: outcome)
        #expect(tuned.identity.hasPrefix("exec:tally-test-backend@1:test-model+"))
        // The base model has no opinion on made-up words; the tuned one learned them.
        #expect(try await backend.generator.generate(GenerationRequest(messages: [.user("Review: zorp")])).text == "unsure")
        #expect(try await tuned.generate(GenerationRequest(messages: [.user("Review: zorp")])).text == "negative")
        #expect(try await tuned.generate(GenerationRequest(messages: [.user("Review: blick")])).text == "positive")
    }

    @Test func pluginErrorsBecomeBackendErrors() async throws {
        let temp = try TemporaryDirectory()
        let backend = try await ExecPlugin().makeBackend(try config(temp.url, settings: [:]), environment: environment(["TALLY_TEST_BACKEND_FAIL": "generate"]))
        await #expect {
            _ = try await backend.generator.generate(GenerationRequest(messages: [.user("hi")]))
        } throws: { error in
            guard let error = error as? TallyError else { return false }
            return error.code == .backend && error.message.contains("configured to fail generate")
        }
    }

    @Test func aProcessThatExitsFailsPendingRequests() async throws {
        let temp = try TemporaryDirectory()
        // Run through /bin/sh: executing a file just written races with other tests' forks
        // (ETXTBSY), reading it does not.
        let script = temp.url.appending(path: "dies.sh")
        try """
            #!/bin/sh
            read line
            echo '{"jsonrpc":"2.0","id":1,"result":{"protocol_version":"1.0","name":"dies","version":"1"}}'
            read line
            echo 'something broke' >&2
            exit 3

            """.write(to: script, atomically: true, encoding: .utf8)
        let backend = try await ExecPlugin().makeBackend(try config(temp.url, settings: ["command": "/bin/sh dies.sh"]), environment: environment())
        #expect(backend.dataLeavesMachine, "a plugin that does not say is assumed to send data away")
        // The pending request and every later one fail with the same line.
        for _ in 0..<2 {
            await #expect {
                _ = try await backend.generator.generate(GenerationRequest(messages: [.user("hi")]))
            } throws: { error in
                guard let error = error as? TallyError else { return false }
                return error.code == .backend && error.message == "exec plugin '/bin/sh dies.sh' exited with status 3 (last stderr: something broke)"
            }
        }
    }

    @Test func slowAnswersTimeOut() async throws {
        let temp = try TemporaryDirectory()
        let backend = try await ExecPlugin().makeBackend(try config(temp.url, settings: ["timeout_s": "0.3"]), environment: environment(["TALLY_TEST_BACKEND_DELAY_MS": "2000"]))
        await #expect {
            _ = try await backend.generator.generate(GenerationRequest(messages: [.user("hi")]))
        } throws: { error in
            (error as? TallyError)?.message.contains("did not answer `generate` (id 2) within 0.3 s") == true
        }
    }

    @Test func validationNamesTheCommandProblem() throws {
        let temp = try TemporaryDirectory()
        let plugin = ExecPlugin()
        let missing = BackendConfig(name: "x", plugin: "exec", model: "m", recipeDirectory: temp.url)
        #expect(plugin.validate(missing, environment: [:]).map(\.key) == ["command"])
        let notFound = BackendConfig(name: "x", plugin: "exec", model: "m", settings: ["command": "no-such-program-xyz", "timeout_s": "soon"], recipeDirectory: temp.url)
        let problems = plugin.validate(notFound, environment: ["PATH": "/nonexistent"])
        #expect(problems.map(\.key) == ["command", "timeout_s"])
        #expect(problems.first?.message.contains("cannot find the program 'no-such-program-xyz'") == true)
    }

    @Test func validationAsksTheProgramForItsMethodsOnce() throws {
        let temp = try TemporaryDirectory()
        let log = temp.url.appending(path: "describe.log")
        let plugin = ExecPlugin()
        #expect(plugin.fineTuningMethods.isEmpty, "no claim without asking the program")
        let config = try config(temp.url, settings: [:])
        #expect(plugin.validate(config, environment: environment(["TALLY_TEST_BACKEND_DESCRIBE_LOG": log.path])).isEmpty)
        for _ in 0..<3 {
            #expect(plugin.fineTuningMethods(for: config) == ["lora", "full-finetune"])
        }
        let asked = try String(contentsOf: log, encoding: .utf8).split(separator: "\n")
        #expect(asked == ["describe"], "validation started the program more than once")
        // A program that cannot be started declares nothing; validate names the command.
        let missing = BackendConfig(name: "x", plugin: "exec", model: "m", settings: ["command": "./no-such-plugin"], recipeDirectory: temp.url)
        #expect(plugin.fineTuningMethods(for: missing).isEmpty)
        #expect(plugin.validate(missing, environment: environment()).map(\.key) == ["command"])
    }

    @Test func validationReportsAProgramOfAnotherProtocolVersion() throws {
        let temp = try TemporaryDirectory()
        let script = try BrokenPlugin.script.path
        let config = try config(temp.url, settings: ["command": "python3 \(script) --break protocol-2"])
        let problems = ExecPlugin().validate(config, environment: environment())
        #expect(problems.map(\.key) == ["command"])
        let message = problems.first?.message ?? ""
        #expect(message.contains("speaks exec protocol 2.0, but this Tally speaks 1.1"), "\(message)")
        #expect(ExecPlugin().fineTuningMethods(for: config).isEmpty)
    }

    @Test func commandLinesSplitLikeAShell() throws {
        #expect(try ExecPlugin.splitCommandLine("python3 'my backend.py' --name \"a b\" x\\ y") == ["python3", "my backend.py", "--name", "a b", "x y"])
        #expect(throws: TallyError.self) { try ExecPlugin.splitCommandLine("python3 'open") }
    }
}

/// Collects progress events from another task.
final class EventLog: Sendable {
    private let events = Synchronization.Mutex<[ProgressEvent]>([])
    func append(_ event: ProgressEvent) { events.withLock { $0.append(event) } }
    var all: [ProgressEvent] { events.withLock { $0 } }
}

import Foundation
import Testing

/// End-to-end tests: the real `tally` binary on real recipe files, with the deterministic
/// `tally-test-backend` as the model (found through PATH, as a user's plugin would be).
@Suite(.serialized) struct CLITests {
    /// A copy of the test recipes in a fresh directory, with its own TALLY_HOME and call log.
    final class Workspace: Sendable {
        let temp: TemporaryDirectory
        var root: URL { temp.url }
        var home: URL { root.appending(path: "home") }
        var log: URL { root.appending(path: "calls.log") }

        init() throws {
            temp = try TemporaryDirectory()
            let source = try #require(Bundle.module.url(forResource: "recipes", withExtension: nil, subdirectory: "Resources"))
            for name in try FileManager.default.contentsOfDirectory(atPath: source.path) {
                try FileManager.default.copyItem(at: source.appending(path: name), to: temp.url.appending(path: name))
            }
        }

        func environment(_ extra: [String: String]) -> [String: String] {
            var environment = ProcessInfo.processInfo.environment
            environment["PATH"] = Binaries.productsDirectory.path + ":" + (environment["PATH"] ?? "/usr/bin:/bin")
            environment["TALLY_HOME"] = home.path
            environment["TALLY_TEST_BACKEND_LOG"] = log.path
            environment["TERM"] = "dumb"
            for (key, value) in extra { environment[key] = value }
            return environment
        }

        /// Backend calls logged so far (generate, finetune, score), one entry per call.
        func calls() -> [String] {
            guard let text = try? String(contentsOf: log, encoding: .utf8) else { return [] }
            return text.split(separator: "\n").map(String.init)
        }

        /// Starts `tally` with `arguments`; stdout and stderr go to files.
        func start(_ arguments: [String], environment extra: [String: String] = [:]) throws -> Running {
            let process = Process()
            process.executableURL = try Binaries.tally
            process.arguments = arguments
            process.currentDirectoryURL = root
            process.environment = environment(extra)
            let id = UUID().uuidString
            let stdout = root.appending(path: "stdout-\(id)"), stderr = root.appending(path: "stderr-\(id)")
            _ = FileManager.default.createFile(atPath: stdout.path, contents: nil)
            _ = FileManager.default.createFile(atPath: stderr.path, contents: nil)
            process.standardOutput = try FileHandle(forWritingTo: stdout)
            process.standardError = try FileHandle(forWritingTo: stderr)
            process.standardInput = FileHandle.nullDevice
            try process.run()
            return Running(process: process, stdoutURL: stdout, stderrURL: stderr)
        }

        /// Runs `tally` to completion.
        func run(_ arguments: [String], environment extra: [String: String] = [:]) async throws -> Finished {
            let running = try start(arguments, environment: extra)
            return try await running.wait()
        }

        /// Sleeps in small steps until `condition` holds (or fails after `seconds`).
        func waitUntil(seconds: Double = 60, _ condition: () -> Bool) async throws {
            let deadline = ContinuousClock.now + .seconds(seconds)
            while !condition() {
                if ContinuousClock.now > deadline { throw TimedOut() }
                try await Task.sleep(for: .milliseconds(50))
            }
        }

        func reportJSON(in directory: URL) throws -> [String: Any] {
            let data = try Data(contentsOf: directory.appending(path: "report.json"))
            return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        }
    }

    struct TimedOut: Error {}

    struct Running: @unchecked Sendable {
        let process: Process
        let stdoutURL: URL
        let stderrURL: URL

        func wait() async throws -> Finished {
            let deadline = ContinuousClock.now + .seconds(300)
            while process.isRunning {
                if ContinuousClock.now > deadline { process.terminate(); throw TimedOut() }
                try await Task.sleep(for: .milliseconds(50))
            }
            return Finished(
                status: process.terminationStatus,
                stdout: (try? String(contentsOf: stdoutURL, encoding: .utf8)) ?? "",
                stderr: (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? "")
        }
    }

    struct Finished {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    @Test func helpListsEveryCommand() async throws {
        let workspace = try Workspace()
        let result = try await workspace.run(["--help"])
        #expect(result.status == 0)
        for command in ["validate", "plugins", "init"] {
            #expect(result.stdout.contains("  \(command)"), "--help does not list \(command)")
        }
    }

    @Test func validateReportsEveryErrorWithItsLocation() async throws {
        let workspace = try Workspace()
        let result = try await workspace.run(["validate", "invalid.yaml"])
        #expect(result.status == 2)
        let lines = result.stderr.split(separator: "\n").map(String.init)
        let located = lines.filter { $0.wholeMatch(of: /invalid\.yaml:\d+:\d+: error: .*/) != nil }
        // acuracy (line 7), missing test file (line 10), zero-shoot (line 14), backend nowhere (line 15), horizon_month (line 16).
        for line in [7, 10, 14, 15, 16] {
            #expect(located.contains { $0.hasPrefix("invalid.yaml:\(line):") }, "no error reported at line \(line):\n\(result.stderr)")
        }
        #expect(result.stderr.contains("zero-shot"), "the nearest kind is suggested")
        #expect(!result.stderr.contains("Fatal error") && !result.stderr.contains("Stack dump"))
        #expect(workspace.calls().isEmpty)
    }

    @Test func validateAcceptsAGoodRecipe() async throws {
        let workspace = try Workspace()
        let result = try await workspace.run(["validate", "sentiment.yaml"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("OK"))
    }

    @Test func pluginsListsBackendsAndKinds() async throws {
        let workspace = try Workspace()
        let result = try await workspace.run(["plugins"])
        #expect(result.status == 0)
        #expect(result.stdout.contains("exec"))
        for kind in ["zero-shot", "few-shot", "chain-of-thought", "lora", "full-finetune"] { #expect(result.stdout.contains(kind)) }
    }

    @Test func initWritesARecipeThatParses() async throws {
        let workspace = try Workspace()
        let result = try await workspace.run(["init", "starter/tally.yaml"])
        #expect(result.status == 0, "\(result.stderr)")
        let text = try String(contentsOf: workspace.root.appending(path: "starter/tally.yaml"), encoding: .utf8)
        #expect(text.contains("strategies:"))
        let again = try await workspace.run(["init", "starter/tally.yaml"])
        #expect(again.status != 0, "init must not overwrite without --force")
        #expect(again.stderr.contains("--force"))
    }
}

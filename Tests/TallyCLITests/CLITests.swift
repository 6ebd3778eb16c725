import Foundation
import TallyCore
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

        /// This process's environment with `tally-test-backend` on PATH, the workspace's home
        /// and call log, `extra` added and the variables in `unset` removed.
        func environment(_ extra: [String: String], unset: [String] = []) -> [String: String] {
            var environment = ProcessInfo.processInfo.environment
            environment["PATH"] = Binaries.productsDirectory.path + ":" + (environment["PATH"] ?? "/usr/bin:/bin")
            environment["TALLY_HOME"] = home.path
            // Answers stay in the workspace's home ledger, not the user's call cache, so tests
            // that count backend calls do not share answers (a test passes its own to share).
            environment["TALLY_CALL_CACHE"] = home.appending(path: "ledger.sqlite").path
            environment["TALLY_TEST_BACKEND_LOG"] = log.path
            environment["TERM"] = "dumb"
            for (key, value) in extra { environment[key] = value }
            for key in unset { environment[key] = nil }
            return environment
        }

        /// Backend calls logged so far (generate, finetune, score), one entry per call.
        func calls() -> [String] {
            guard let text = try? String(contentsOf: log, encoding: .utf8) else { return [] }
            return text.split(separator: "\n").map(String.init)
        }

        /// Starts `tally` with `arguments`; stdout and stderr go to files.
        func start(_ arguments: [String], environment extra: [String: String] = [:], unset: [String] = []) throws -> Running {
            let process = Process()
            process.executableURL = try Binaries.tally
            process.arguments = arguments
            process.currentDirectoryURL = root
            process.environment = environment(extra, unset: unset)
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

        /// Runs `tally` to completion (killing it after `timeout` seconds).
        func run(_ arguments: [String], environment extra: [String: String] = [:], unset: [String] = [], timeout: Double = 300) async throws -> Finished {
            let running = try start(arguments, environment: extra, unset: unset)
            return try await running.wait(timeout: timeout)
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

        func wait(timeout: Double = 300) async throws -> Finished {
            let deadline = ContinuousClock.now + .seconds(timeout)
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
        for command in ["run", "plan", "validate", "report", "runs", "plugins", "init"] {
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

    @Test func runWritesTheReportAndRerunMakesNoCalls() async throws {
        let workspace = try Workspace()
        let out = workspace.root.appending(path: "out")
        let first = try await workspace.run(["run", "sentiment.yaml", "--out", out.path])
        #expect(first.status == 0, "\(first.stderr)")
        let calls = workspace.calls()
        #expect(calls.contains { $0.hasPrefix("finetune") })
        #expect(calls.count == Set(calls).count, "a request was sent twice")

        let report = try workspace.reportJSON(in: out)
        #expect(report["schema_version"] as? Int == 2)
        let strategies = try #require(report["strategies"] as? [[String: Any]])
        #expect(strategies.map { $0["name"] as? String } == ["zero-shot", "few-shot-4", "cot", "lora-r8", "full"])
        for strategy in strategies {
            let accuracy = try #require(strategy["accuracy"] as? [String: Any])
            #expect(accuracy["n"] as? Int == 10)
            for key in ["value", "ci_low", "ci_high", "unparsed"] { #expect(accuracy[key] != nil) }
            let cost = try #require(strategy["cost"] as? [String: Any])
            for key in ["one_off_usd", "per_1k_requests_usd", "total_usd"] { #expect(cost[key] is Double) }
            let latency = try #require(strategy["latency_ms"] as? [String: Any])
            #expect(latency["p50"] is Double && latency["p95"] is Double)
            #expect(strategy["data_leaves_machine"] as? Bool == false)
            let forgetting = try #require(strategy["forgetting"] as? [[String: Any]])
            #expect(Set(forgetting.compactMap { $0["probe"] as? String }) == ["knowledge", "refusals"])
        }
        // The test backend learns the made-up words only by fine-tuning: lora beats zero-shot.
        let accuracy = { (name: String) in ((strategies.first { $0["name"] as? String == name }?["accuracy"] as? [String: Any])?["value"] as? Double) ?? -1 }
        #expect(accuracy("zero-shot") < accuracy("lora-r8"))
        let zeroShot = try #require(strategies.first { $0["name"] as? String == "zero-shot" })
        #expect(((zeroShot["accuracy"] as? [String: Any])?["unparsed"] as? Int ?? 0) >= 5, "the made-up words leave zero-shot without an answer")
        // Fine-tuned models lose some probe items; prompting forgets nothing by construction.
        let lora = try #require(strategies.first { $0["name"] as? String == "lora-r8" })
        #expect(lora["training"] != nil)
        let decision = try #require(report["decision"] as? [String: Any])
        for key in ["recommended", "reason", "pareto", "break_even"] { #expect(decision[key] != nil) }
        #expect(FileManager.default.fileExists(atPath: out.appending(path: "report.md").path))
        #expect(first.stdout.contains("Recommended:"))
        // The home directory Tally created keeps itself out of version control.
        let ignore = try String(contentsOf: workspace.home.appending(path: ".gitignore"), encoding: .utf8)
        #expect(ignore.split(separator: "\n").contains("*"))

        // Rerun: everything comes from the ledger.
        let second = try await workspace.run(["run", "sentiment.yaml", "--quiet", "--json"])
        #expect(second.status == 0, "\(second.stderr)")
        #expect(workspace.calls().count == calls.count, "the rerun called the backend")
        let rerun = try #require(try JSONSerialization.jsonObject(with: Data(second.stdout.utf8)) as? [String: Any])
        #expect((rerun["decision"] as? [String: Any])?["recommended"] as? String == decision["recommended"] as? String)
    }

    @Test("the same recipe run with another home (another directory) reuses the answers in the per-user call cache; --no-cache makes them again")
    func callCacheIsSharedAcrossHomes() async throws {
        let workspace = try Workspace()
        let cache = ["TALLY_CALL_CACHE": workspace.root.appending(path: "user-cache/calls.sqlite").path]
        let first = try await workspace.run(["run", "baseline.yaml", "--quiet", "--home", "project-a/.tally"], environment: cache)
        #expect(first.status == 0, "\(first.stderr)")
        let made = workspace.calls().count
        #expect(made > 0)
        let second = try await workspace.run(["run", "baseline.yaml", "--quiet", "--json", "--home", "project-b/.tally"], environment: cache)
        #expect(second.status == 0, "\(second.stderr)")
        #expect(workspace.calls().count == made, "the run from the second home called the backend again")
        // The second home has its own run and report, and no answers of its own.
        let runs = try Ledger(path: workspace.root.appending(path: "project-b/.tally/ledger.sqlite"))
        #expect(try runs.runs().count == 1)
        #expect(try runs.callCount() == 0)
        let refreshed = try await workspace.run(["run", "baseline.yaml", "--quiet", "--no-cache", "--home", "project-b/.tally"], environment: cache)
        #expect(refreshed.status == 0, "\(refreshed.stderr)")
        #expect(workspace.calls().count == 2 * made, "--no-cache did not make the calls again")
    }

    @Test func aKilledRunResumesWithoutDuplicates() async throws {
        let workspace = try Workspace()
        let slow = ["TALLY_TEST_BACKEND_DELAY_MS": "150"]
        let running = try workspace.start(["run", "sentiment.yaml", "--quiet"], environment: slow)
        try await workspace.waitUntil { workspace.calls().count >= 8 }
        kill(running.process.processIdentifier, SIGKILL)
        _ = try await running.wait()
        // The backend process may finish the request it was answering.
        try await Task.sleep(for: .milliseconds(300))
        let beforeResume = workspace.calls()

        let resumed = try await workspace.run(["run", "sentiment.yaml", "--quiet", "--json"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let all = workspace.calls()
        // Only requests in flight at the kill (at most `concurrency` = 2) may be repeated.
        #expect(all.count - Set(all).count <= 2, "persisted calls were repeated after resume")
        #expect(all.count > beforeResume.count)
        let report = try #require(try JSONSerialization.jsonObject(with: Data(resumed.stdout.utf8)) as? [String: Any])
        let strategies = try #require(report["strategies"] as? [[String: Any]])
        #expect(strategies.allSatisfy { ($0["accuracy"] as? [String: Any])?["n"] as? Int == 10 })

        let again = try await workspace.run(["run", "sentiment.yaml", "--quiet"])
        #expect(again.status == 0)
        #expect(workspace.calls().count == all.count)
    }

    @Test(arguments: [(SIGINT, Int32(130)), (SIGTERM, Int32(143))])
    func interruptFinishesInFlightWorkAndExitsWith128PlusSignal(signal: Int32, status: Int32) async throws {
        let workspace = try Workspace()
        let running = try workspace.start(["run", "sentiment.yaml"], environment: ["TALLY_TEST_BACKEND_DELAY_MS": "150"])
        try await workspace.waitUntil { workspace.calls().count >= 5 }
        kill(running.process.processIdentifier, signal)
        let interrupted = try await running.wait()
        #expect(interrupted.status == status, "\(interrupted.stderr)")
        #expect(interrupted.stderr.contains("partial report"), "\(interrupted.stderr)")
        #expect(interrupted.stderr.contains("interrupted"))
        #expect(!interrupted.stderr.contains("Stack dump"))
        let done = workspace.calls()
        #expect(!done.isEmpty)

        let resumed = try await workspace.run(["run", "sentiment.yaml", "--quiet"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let all = workspace.calls()
        // In-flight calls finished and were saved before exiting: nothing is asked twice.
        #expect(all.count == Set(all).count, "a call finished before Ctrl-C was repeated")
        #expect(all.count > done.count)
    }

    @Test func runStopsAtTheBudget() async throws {
        let workspace = try Workspace()
        let result = try await workspace.run(["run", "priced.yaml", "--quiet"])
        #expect(result.status == 3, "\(result.stderr)")
        #expect(result.stderr.lowercased().contains("budget"))
        // 20 requests at about 0.02-0.2 USD each would exceed 0.1 USD: the run stopped early.
        #expect(workspace.calls().count < 20)
        #expect(!result.stderr.contains("Stack dump"))
    }

    @Test func planEstimatesBeforeSpending() async throws {
        let workspace = try Workspace()
        let result = try await workspace.run(["plan", "sentiment.yaml"])
        #expect(result.status == 0, "\(result.stderr)")
        for name in ["zero-shot", "few-shot-4", "cot", "lora-r8", "full"] { #expect(result.stdout.contains(name)) }
        #expect(result.stdout.lowercased().contains("estimate"))
        #expect(workspace.calls().isEmpty)
    }

    @Test func reportAndRunsReadTheLedger() async throws {
        let workspace = try Workspace()
        let run = try await workspace.run(["run", "sentiment.yaml", "--quiet", "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        let runID = try #require(report["run_id"] as? String)

        let runs = try await workspace.run(["runs"])
        #expect(runs.status == 0)
        #expect(runs.stdout.contains(runID))

        let again = try await workspace.run(["report", runID, "--format", "json"])
        #expect(again.status == 0, "\(again.stderr)")
        let rerendered = try #require(try JSONSerialization.jsonObject(with: Data(again.stdout.utf8)) as? [String: Any])
        #expect((rerendered["decision"] as? [String: Any])?["reason"] as? String == (report["decision"] as? [String: Any])?["reason"] as? String)

        let missing = try await workspace.run(["report", "no-such-run"])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("no-such-run"))
    }

    @Test func pluginsListsBackendsAndKinds() async throws {
        let workspace = try Workspace()
        let result = try await workspace.run(["plugins"])
        #expect(result.status == 0)
        #expect(result.stdout.contains("exec"))
        for kind in ["zero-shot", "few-shot", "chain-of-thought", "lora", "prompt-tuning", "full-finetune"] { #expect(result.stdout.contains(kind)) }
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

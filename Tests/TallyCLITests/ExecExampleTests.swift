import Foundation
import Testing

/// Examples/exec-python end to end: the real `tally` binary runs the example's recipe
/// against its Python plugin, including a fine-tuning job that dies halfway and resumes.
@Suite(.serialized) struct ExecExampleTests {
    /// A copy of Examples/exec-python in a fresh directory, with its own TALLY_HOME.
    struct Example {
        let temp: TemporaryDirectory
        var root: URL { temp.url.appending(path: "exec-python") }
        var home: URL { temp.url.appending(path: "home") }

        init() throws {
            temp = try TemporaryDirectory()
            try FileManager.default.copyItem(at: Repository.root.appending(path: "Examples/exec-python"), to: root)
        }

        func run(_ arguments: [String], environment extra: [String: String] = [:]) async throws -> CLITests.Finished {
            let process = Process()
            process.executableURL = try Binaries.tally
            process.arguments = arguments
            process.currentDirectoryURL = root
            var environment = ProcessInfo.processInfo.environment
            environment["TALLY_HOME"] = home.path
            environment["TALLY_CALL_CACHE"] = home.appending(path: "ledger.sqlite").path
            environment["TERM"] = "dumb"
            environment["TALLY_EXAMPLE_CRASH_AFTER_STEP"] = nil
            for (key, value) in extra { environment[key] = value }
            process.environment = environment
            let id = UUID().uuidString
            let stdout = temp.url.appending(path: "stdout-\(id)"), stderr = temp.url.appending(path: "stderr-\(id)")
            _ = FileManager.default.createFile(atPath: stdout.path, contents: nil)
            _ = FileManager.default.createFile(atPath: stderr.path, contents: nil)
            process.standardOutput = try FileHandle(forWritingTo: stdout)
            process.standardError = try FileHandle(forWritingTo: stderr)
            process.standardInput = FileHandle.nullDevice
            try process.run()
            return try await CLITests.Running(process: process, stdoutURL: stdout, stderrURL: stderr).wait(timeout: 120)
        }

        /// Every file under the example's directory with its contents.
        func snapshot() throws -> [String: Data] {
            var files: [String: Data] = [:]
            let enumerator = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey])
            while let url = enumerator?.nextObject() as? URL {
                guard (try url.resourceValues(forKeys: [.isRegularFileKey])).isRegularFile == true else { continue }
                files[url.path] = try Data(contentsOf: url)
            }
            return files
        }

        static func strategies(_ stdout: String) throws -> [String: [String: Any]] {
            let report = try #require(try JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [String: Any])
            let list = try #require(report["strategies"] as? [[String: Any]])
            var byName: [String: [String: Any]] = [:]
            for strategy in list { if let name = strategy["name"] as? String { byName[name] = strategy } }
            return byName
        }
    }

    @Test func theExamplePassesTheConformanceChecks() async throws {
        let example = try Example()
        let result = try await example.run(["plugins", "check", "tally.yaml", "--backend", "toy"])
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        #expect(result.stdout.contains("0 failed"), "\(result.stdout)")
        #expect(result.stdout.contains("PASS  rerun resumes"), "\(result.stdout)")
    }

    @Test func theExampleRunsAndItsFineTuneResumesAfterACrash() async throws {
        let example = try Example()
        let before = try example.snapshot()
        #expect(try await example.run(["validate", "tally.yaml"]).status == 0)

        // The plugin dies after writing the checkpoint of step 4 of 15.
        let crashed = try await example.run(["run", "tally.yaml", "--quiet"], environment: ["TALLY_EXAMPLE_CRASH_AFTER_STEP": "4"])
        #expect(crashed.status == 1, "\(crashed.stderr)")
        #expect(crashed.stderr.contains("exited with status 3 (last stderr: tally_plugin.py: exiting after step 4 as TALLY_EXAMPLE_CRASH_AFTER_STEP asks)"), "\(crashed.stderr)")
        #expect(!crashed.stderr.contains("Stack dump"))

        let resumed = try await example.run(["run", "tally.yaml", "--quiet", "--json"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let strategies = try Example.strategies(resumed.stdout)
        #expect(Set(strategies.keys) == ["zero-shot", "few-shot-4", "full-finetune"])
        let accuracy = { (name: String) in ((strategies[name]?["accuracy"] as? [String: Any])?["value"] as? Double) ?? -1 }
        // The toy knows nothing without demonstrations or training.
        #expect(accuracy("zero-shot") == 0)
        #expect(accuracy("full-finetune") > accuracy("few-shot-4"))
        #expect(accuracy("full-finetune") >= 0.75)
        let training = try #require(strategies["full-finetune"]?["training"] as? [String: Any])
        #expect(training["steps"] as? Int == 15)
        #expect((training["notes"] as? [String])?.contains("resumed from step 4 of 15") == true, "\(training)")
        #expect((training["train_loss"] as? [Any])?.count == 15)
        for strategy in strategies.values { #expect(strategy["data_leaves_machine"] as? Bool == false) }
        let model = try #require(strategies["full-finetune"]?["model"] as? String)
        #expect(model.hasPrefix("exec:python-toy@1.0.0:bag-of-words+sha256:"))

        // The plugin wrote nothing outside its work directory (under TALLY_HOME).
        #expect(try example.snapshot() == before)

        // A job that never crashed produces the same artifact, byte for byte.
        let clean = try Example()
        let straight = try await clean.run(["run", "tally.yaml", "--quiet", "--json"])
        #expect(straight.status == 0, "\(straight.stderr)")
        #expect(try Example.strategies(straight.stdout)["full-finetune"]?["model"] as? String == model)
    }

    @Test func validationUsesTheMethodsTheProgramDeclares() async throws {
        let example = try Example()
        let recipe = try String(contentsOf: example.root.appending(path: "tally.yaml"), encoding: .utf8)
            .replacingOccurrences(of: "  - {name: full-finetune, kind: full-finetune,", with: "  - {name: lora, kind: lora,")
        try recipe.write(to: example.root.appending(path: "lora.yaml"), atomically: true, encoding: .utf8)
        let result = try await example.run(["validate", "lora.yaml"])
        #expect(result.status == 2, "\(result.stderr)")
        #expect(result.stderr.contains("cannot run lora fine-tuning; it supports full-finetune"), "\(result.stderr)")
    }
}

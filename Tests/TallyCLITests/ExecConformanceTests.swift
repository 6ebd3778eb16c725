import Foundation
import Testing
import TallyCore
import TallyTesting

/// The `exec` plugin with the test backend program passes TallyTesting's conformance suites.
/// Only the plugin's public API is used, so the test holds whatever the wire format.
@Suite struct ExecConformanceTests {
    @Test(.timeLimit(.minutes(2)))
    func testBackendConforms() async throws {
        let temp = try TemporaryDirectory()
        let recipeDirectory = temp.url.appending(path: "recipe")
        try FileManager.default.createDirectory(at: recipeDirectory, withIntermediateDirectories: true)
        let config = BackendConfig(name: "local", plugin: "exec", model: "test-model", settings: ["command": try Binaries.testBackend.path], recipeDirectory: recipeDirectory)
        var environment = ProcessInfo.processInfo.environment
        environment["TALLY_TEST_BACKEND_LOG"] = nil
        let train = [
            TrainingExample(messages: [.user("Review: zorp film")], completion: "negative"),
            TrainingExample(messages: [.user("Review: blick film")], completion: "positive"),
        ]
        let job = FineTuneRequest(
            method: .lora(LoRAOptions()), options: TrainingOptions(epochs: 1, batchSize: 2), train: train, validation: [],
            workDirectory: temp.url.appending(path: "jobs/job"), jobKey: "conformance")
        let checks = await BackendConformance.check(plugin: ExecPlugin(), config: config, environment: environment, fineTuneRequest: job)
        #expect(checks.failures.isEmpty, Comment(rawValue: checks.failureSummary ?? ""))
        #expect(checks.filter(\.skipped).isEmpty, "\(checks.filter(\.skipped))")
    }
}

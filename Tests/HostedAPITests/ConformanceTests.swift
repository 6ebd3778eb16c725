import Foundation
import Testing
import TallyCore
import TallyTesting
@testable import HostedAPI

/// The hosted plugins pass TallyTesting's conformance suites against the loopback server,
/// as a plugin author's own tests would run them.
@Suite("Hosted plugins pass the conformance suites")
struct ConformanceTests {
    /// `service`'s backend entry for `plugin`, with its own recipe directory (the checks
    /// watch it for writes).
    func config(_ service: FakeService, plugin: String, model: String, directory: URL) -> BackendConfig {
        let base = service.config(plugin: plugin, model: model)
        return BackendConfig(
            name: base.name, plugin: base.plugin, model: base.model, apiKeyEnv: base.apiKeyEnv, baseURL: base.baseURL,
            price: base.price, settings: base.settings, recipeDirectory: directory.appendingPathComponent("recipe"))
    }

    @Test("openai: chat and hosted fine-tuning", .timeLimit(.minutes(2)))
    func openAI() async throws {
        let service = try FakeService(trainingSteps: 2)
        defer { service.server.stop() }
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("recipe"), withIntermediateDirectories: true)
        let train = [
            TrainingExample(messages: [.user("ticket: refund please")], completion: "billing"),
            TrainingExample(messages: [.user("ticket: where is my parcel")], completion: "shipping"),
        ]
        let job = FineTuneRequest(
            method: .full, options: TrainingOptions(epochs: 1, batchSize: 2), train: train, validation: [],
            workDirectory: directory.appendingPathComponent("jobs/job"), jobKey: "conformance-\(UUID().uuidString.prefix(8))")
        let checks = await BackendConformance.check(
            plugin: OpenAIPlugin(), config: config(service, plugin: "openai", model: "gpt-4o-mini-2024-07-18", directory: directory),
            environment: service.environment, fineTuneRequest: job)
        #expect(checks.failures.isEmpty, Comment(rawValue: checks.failureSummary ?? ""))
        #expect(checks.contains { $0.name == "rerun resumes" && $0.passed })
        // The rerun resumed the recorded job rather than starting another.
        #expect(service.providers.jobs.count == 1)
    }

    @Test("anthropic: chat (no fine-tuning)", .timeLimit(.minutes(2)))
    func anthropic() async throws {
        let service = try FakeService()
        defer { service.server.stop() }
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("recipe"), withIntermediateDirectories: true)
        let checks = await BackendConformance.check(
            plugin: AnthropicPlugin(), config: config(service, plugin: "anthropic", model: "claude-3-5-haiku-latest", directory: directory),
            environment: service.environment)
        #expect(checks.failures.isEmpty, Comment(rawValue: checks.failureSummary ?? ""))
        #expect(checks.contains { $0.name == "fine-tuning" && $0.skipped })
    }
}

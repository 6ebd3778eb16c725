import Foundation
import Testing
import TallyCore
@testable import HostedAPI

/// A recipe run through `ExperimentRunner` against the loopback server, under faults.
@Suite("Recipe runs against a loopback provider")
struct RunnerIntegrationTests {
    /// A recipe directory with data and a recipe pointing at `service`.
    private func writeRecipe(for service: FakeService, in directory: URL, pollInterval: String = "0.01") throws -> URL {
        try service.writeTicketRecipe(
            in: directory, name: "loopback-hosted", trainCount: 8, testCount: 6,
            price: "{input_per_mtok: 0.15, output_per_mtok: 0.60, finetuned_input_per_mtok: 0.30, finetuned_output_per_mtok: 1.20, training_per_mtok: 3.0}",
            backendLines: ["max_retries: 6", "max_concurrency: 3", "max_response_bytes: 65536", "poll_interval_s: \(pollInterval)"],
            strategies: [
                "{name: zero-shot, kind: zero-shot, backend: hosted}",
                "{name: few-shot-2, kind: few-shot, backend: hosted, shots: 2}",
                "{name: tuned, kind: full-finetune, backend: hosted, epochs: 1, batch_size: 2}",
            ],
            tail: ["run: {seed: 3, concurrency: 3, bootstrap_samples: 50}"])
    }

    private var registry: PluginRegistry { PluginRegistry(HostedAPI.plugins) }

    @Test("Under faults every prediction is stored once, and the ledger's usage equals the server's")
    func runUnderFaults() async throws {
        let service = try FakeService(trainingSteps: 2)
        defer { service.server.stop() }
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let recipeURL = try writeRecipe(for: service, in: directory)
        let home = directory.appendingPathComponent("home")
        let recipe = try RecipeLoader.load(contentsOf: recipeURL, registry: registry, environment: service.environment)
        let ledger = try Ledger(path: home.appendingPathComponent("ledger.sqlite"))

        service.server.inject([
            .status(429, retryAfter: "0"), .status(500, retryAfter: nil), .status(503, retryAfter: nil), .stall(seconds: 30),
            .resetMidBody, .malformedJSON, .wrongContentType, .oversized(bytes: 200_000),
        ], path: "/v1/chat/completions")
        service.server.inject([.status(503, retryAfter: "0"), .resetMidBody], path: nil, method: "GET")

        let runner = ExperimentRunner(recipe: recipe, registry: registry, ledger: ledger, environment: service.environment, home: home)
        let measurements = try await runner.run { _ in }
        #expect(service.server.pendingFaults == 0)

        let testIDs = Set(measurements.strategies.first?.predictions.map(\.exampleID) ?? [])
        #expect(testIDs.count == 6)
        var ledgerUsage = TokenUsage()
        for strategy in measurements.strategies {
            let stored = try ledger.predictions(runID: measurements.runID, strategy: strategy.name)
            #expect(stored.count == 6, "\(strategy.name): \(stored.count) predictions")
            #expect(Set(stored.map(\.exampleID)) == testIDs, "\(strategy.name): a prediction is missing or duplicated")
            for prediction in stored {
                #expect(prediction.output.hasPrefix("ANSWER("), "\(strategy.name): \(prediction.output)")
                ledgerUsage = ledgerUsage + prediction.usage
            }
        }
        #expect(measurements.strategies.map(\.name).sorted() == ["few-shot-2", "tuned", "zero-shot"])
        let reported = service.providers.reported
        #expect(reported.count == 18)
        #expect(ledgerUsage.promptTokens == reported.reduce(0) { $0 + $1.prompt })
        #expect(ledgerUsage.completionTokens == reported.reduce(0) { $0 + $1.completion })
        #expect(ledgerUsage.cachedPromptTokens == reported.reduce(0) { $0 + $1.cached })

        let tuned = try #require(measurements.strategies.first { $0.name == "tuned" })
        let training = try #require(tuned.training)
        #expect(training.trainedTokens == service.providers.jobs.first?.trainedTokens)
        #expect(tuned.model.contains(training.artifact))
        #expect(tuned.dataLeavesMachine == false)
        #expect(service.providers.jobs.count == 1)

        // A rerun is served from the ledger: no call, no upload, no job.
        let before = service.server.log.count
        let again = try await ExperimentRunner(recipe: recipe, registry: registry, ledger: ledger, environment: service.environment, home: home).run { _ in }
        #expect(service.server.log.count == before)
        let rerunUsage = again.strategies.flatMap(\.predictions).reduce(TokenUsage()) { $0 + $1.usage }
        #expect(rerunUsage == ledgerUsage)

        // No artifact of the run holds the key: ledger, work directories, reports.
        let report = Report.build(from: measurements)
        let runDirectory = home.appendingPathComponent("runs/\(measurements.runID)")
        try FileManager.default.createDirectory(at: runDirectory, withIntermediateDirectories: true)
        for renderer in [MarkdownRenderer(), JSONRenderer()] as [any ReportRenderer] {
            try renderer.render(report).write(to: runDirectory.appendingPathComponent(renderer.fileName), atomically: true, encoding: .utf8)
        }
        #expect(try files(in: home, containing: service.key).isEmpty)
        let written = try FileManager.default.subpathsOfDirectory(atPath: home.path)
        #expect(written.contains { $0.hasSuffix("job.json") })
        #expect(written.contains { $0.hasSuffix("ledger.sqlite") })
    }

    @Test("A run interrupted during hosted fine-tuning resumes the same job")
    func interruptedFineTune() async throws {
        let service = try FakeService(trainingSteps: 3)
        defer { service.server.stop() }
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let recipeURL = try writeRecipe(for: service, in: directory, pollInterval: "0.2")
        let home = directory.appendingPathComponent("home")
        let recipe = try RecipeLoader.load(contentsOf: recipeURL, registry: registry, environment: service.environment)
        let ledger = try Ledger(path: home.appendingPathComponent("ledger.sqlite"))

        let created = AsyncStream<Void>.makeStream()
        let registry = self.registry
        let first = Task {
            try await ExperimentRunner(recipe: recipe, registry: registry, ledger: ledger, environment: service.environment, home: home).run { event in
                if case .note(let text) = event, text.contains("created hosted fine-tuning job") { created.continuation.yield() }
            }
        }
        for await _ in created.stream { break }
        first.cancel()
        await #expect(throws: CancellationError.self) { try await first.value }
        #expect(service.providers.jobs.count == 1)
        #expect(service.providers.jobs.first?.status != "succeeded")

        let notes = ProgressLog()
        let measurements = try await ExperimentRunner(recipe: recipe, registry: registry, ledger: ledger, environment: service.environment, home: home).run { notes.record($0) }
        #expect(notes.notes.contains { $0.contains("resuming hosted fine-tuning job") })
        #expect(service.providers.jobs.count == 1)
        #expect(service.server.log.filter { $0.method == "POST" && $0.path == "/v1/fine_tuning/jobs" }.count == 1)
        let tuned = try #require(measurements.strategies.first { $0.name == "tuned" })
        #expect(tuned.predictions.count == 6)
        #expect(tuned.training?.trainLoss.count == 3)
    }
}

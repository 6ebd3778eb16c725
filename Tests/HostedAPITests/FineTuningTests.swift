import Foundation
import Testing
import TallyCore
@testable import HostedAPI

@Suite("OpenAI hosted fine-tuning against a loopback server")
struct FineTuningTests {
    private func request(in directory: URL, validation: Bool = true, epochs: Double = 2) -> FineTuneRequest {
        let train = (0..<6).map { index in
            TrainingExample(messages: [.system("Classify the review."), .user("review \(index): it was fine")], completion: index.isMultiple(of: 2) ? "positive" : "negative")
        }
        let valid = validation ? [TrainingExample(messages: [.user("review x: great")], completion: "positive")] : []
        return FineTuneRequest(
            method: .full, options: TrainingOptions(epochs: epochs, batchSize: 2, seed: 7, learningRateMultiplier: 0.5),
            train: train, validation: valid, workDirectory: directory, jobKey: "job-key-\(UUID().uuidString.prefix(8))")
    }

    @Test("Upload, create, poll through validating_files, queued, running and succeeded; cost from trained_tokens")
    func endToEnd() async throws {
        let service = try FakeService(trainingSteps: 4)
        defer { service.server.stop() }
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let backend = try await OpenAIPlugin().makeBackend(service.config(), environment: service.environment)
        let tuner = try #require(backend.fineTuner)
        let progress = ProgressLog()
        let request = request(in: directory)
        let outcome = try await tuner.fineTune(request) { progress.record($0) }

        // What the server saw: two uploads (purpose fine-tune, chat JSONL), one job.
        let uploads = service.providers.uploadedFiles
        #expect(uploads.count == 2)
        #expect(uploads.values.allSatisfy { $0.purpose == "fine-tune" })
        let job = try #require(service.providers.jobs.first)
        #expect(service.providers.jobs.count == 1)
        #expect(job.epochs == 2)
        #expect(job.batchSize == 2)
        #expect(job.learningRateMultiplier == 0.5)
        #expect(job.metadata["tally_job_key"] == request.jobKey)
        #expect(job.validationFile != nil)
        let trainText = String(decoding: try #require(uploads[job.trainingFile]).content, as: UTF8.self)
        let firstLine = try #require(trainText.split(separator: "\n").first)
        let line = try #require(try JSONSerialization.jsonObject(with: Data(firstLine.utf8)) as? [String: Any])
        let messages = try #require(line["messages"] as? [[String: String]])
        #expect(messages.map { $0["role"] ?? "" } == ["system", "user", "assistant"])
        #expect(messages.last?["content"] == "positive")

        // What the fine-tuner reported.
        #expect(outcome.artifact == "ft:gpt-4o-mini-2024-07-18:tally-test::\(job.id.suffix(6))")
        #expect(outcome.trainedTokens == job.trainedTokens)
        #expect(outcome.trainedTokens > 0)
        // Training cost = trained_tokens x training_per_mtok, as the cost model computes it.
        #expect(outcome.billedUSD == nil)
        let measurement = StrategyMeasurement(
            name: "ft", kind: "full-finetune", backend: "hosted", model: outcome.artifact, dataLeavesMachine: true, adaptsWeights: true,
            pricing: Pricing(inputPerMTok: 0.15, outputPerMTok: 0.6, trainingPerMTok: 3.0), predictions: [], training: outcome, probes: [])
        let cost = CostModel.cost(of: measurement, costs: CostSpec())
        #expect(abs(cost.oneOffUSD - Double(job.trainedTokens) * 3.0 / 1_000_000) < 1e-12)
        #expect(outcome.steps == 4)
        #expect(outcome.trainLoss.map(\.step) == [1, 2, 3, 4])
        #expect(abs((outcome.trainLoss.last?.loss ?? 0) - 0.5) < 1e-9)
        #expect(outcome.validationLoss.count == 4)
        #expect(outcome.wallSeconds == 120)
        let statuses = progress.notes.filter { $0.hasPrefix("hosted fine-tuning job") && !$0.contains("produced") }
        #expect(statuses.map { $0.components(separatedBy: ": ").last ?? "" } == ["validating files", "queued", "running", "succeeded"])
        let steps = progress.all.compactMap { event -> Int? in
            if case .advanced(_, let completed, let total, _) = event, total == 4 { return completed }
            return nil
        }
        #expect(steps == [1, 2, 3, 4])

        // job.json records the job and holds no key.
        let record = try JSONSerialization.jsonObject(with: Data(contentsOf: directory.appendingPathComponent("job.json"))) as? [String: Any]
        #expect(record?["job_id"] as? String == job.id)
        #expect(record?["status"] as? String == "succeeded")
        #expect(try files(in: directory, containing: service.key).isEmpty)

        // The tuned model answers like any other, under its own identity.
        let tuned = try await tuner.generator(for: outcome)
        #expect(tuned.identity.contains(outcome.artifact))
        #expect(!tuned.identity.contains(service.key))
        let answer = try await tuned.generate(GenerationRequest(messages: [.user("review 9: dull")]))
        #expect(answer.text == FakeProviders.answer(to: "review 9: dull"))
        let chat = try #require(service.server.log.last { $0.path == "/v1/chat/completions" })
        #expect((try JSONSerialization.jsonObject(with: chat.body) as? [String: Any])?["model"] as? String == outcome.artifact)
    }

    @Test("An interrupted run resumes polling the same job instead of creating a second one")
    func resumeAfterInterruption() async throws {
        let service = try FakeService(trainingSteps: 3)
        defer { service.server.stop() }
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = service.config(settings: ["poll_interval_s": "0.2"])
        let request = request(in: directory, validation: false)

        // First run: cancel as soon as the job exists (like Ctrl-C or a crash mid-poll).
        let first = try await OpenAIPlugin().makeBackend(config, environment: service.environment)
        let tuner = try #require(first.fineTuner)
        let created = AsyncStream<Void>.makeStream()
        let task = Task {
            try await tuner.fineTune(request) { event in
                if case .note(let text) = event, text.hasPrefix("created hosted fine-tuning job") { created.continuation.yield() }
            }
        }
        for await _ in created.stream { break }
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(service.providers.jobs.count == 1)
        let jobID = try #require(service.providers.jobs.first?.id)
        #expect(service.providers.jobs.first?.status != "succeeded")
        let record = try JSONSerialization.jsonObject(with: Data(contentsOf: directory.appendingPathComponent("job.json"))) as? [String: Any]
        #expect(record?["job_id"] as? String == jobID)

        // Second run, a new process's worth of objects, same work directory.
        let second = try await OpenAIPlugin().makeBackend(service.config(), environment: service.environment)
        let progress = ProgressLog()
        let outcome = try await #require(second.fineTuner).fineTune(request) { progress.record($0) }
        #expect(progress.notes.contains { $0.contains("resuming hosted fine-tuning job \(jobID)") })
        #expect(outcome.artifact.hasPrefix("ft:"))
        #expect(outcome.trainLoss.map(\.step) == [1, 2, 3])
        let log = service.server.log
        #expect(log.filter { $0.method == "POST" && $0.path == "/v1/fine_tuning/jobs" }.count == 1)
        #expect(log.filter { $0.method == "POST" && $0.path == "/v1/files" }.count == 1)
        #expect(service.providers.jobs.count == 1)
    }

    @Test("A job whose creation answer was lost is found by its metadata, not created twice")
    func lostCreateResponse() async throws {
        let service = try FakeService(trainingSteps: 1)
        defer { service.server.stop() }
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let request = request(in: directory, validation: false)
        let backend = try await OpenAIPlugin().makeBackend(service.config(), environment: service.environment)
        // Create the job out of band, as if a previous run's POST succeeded but its answer and
        // job.json were lost (killed between the two).
        let tuner = try #require(backend.fineTuner)
        let progress = ProgressLog()
        let task = Task {
            try await tuner.fineTune(request) { event in progress.record(event) }
        }
        _ = try await task.value
        try FileManager.default.removeItem(at: directory.appendingPathComponent("job.json"))
        let again = try await tuner.fineTune(request) { progress.record($0) }
        #expect(again.artifact.hasPrefix("ft:"))
        #expect(progress.notes.contains { $0.hasPrefix("found hosted fine-tuning job") })
        #expect(service.providers.jobs.count == 1)
    }

    @Test("Creating a job is not blindly retried after a failure that may have created it")
    func ambiguousCreateFailure() async throws {
        let service = try FakeService(trainingSteps: 1)
        defer { service.server.stop() }
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let backend = try await OpenAIPlugin().makeBackend(service.config(), environment: service.environment)
        service.server.inject([.status(500, retryAfter: nil)], path: "/v1/fine_tuning/jobs", method: "POST")
        let error = try await #require(throws: TallyError.self) {
            try await #require(backend.fineTuner).fineTune(request(in: directory, validation: false)) { _ in }
        }
        #expect(error.message.contains("HTTP 500"))
        #expect(service.server.log.filter { $0.method == "POST" && $0.path == "/v1/fine_tuning/jobs" }.count == 1)
    }

    @Test("Polling survives transient faults")
    func pollingUnderFaults() async throws {
        let service = try FakeService(trainingSteps: 2)
        defer { service.server.stop() }
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let backend = try await OpenAIPlugin().makeBackend(service.config(), environment: service.environment)
        service.server.inject([.status(429, retryAfter: "0"), .resetMidBody, .status(503, retryAfter: nil), .malformedJSON], path: nil)
        let outcome = try await #require(backend.fineTuner).fineTune(request(in: directory, validation: false)) { _ in }
        #expect(outcome.artifact.hasPrefix("ft:"))
        #expect(service.providers.jobs.count == 1)
        #expect(service.server.pendingFaults == 0)
    }
}

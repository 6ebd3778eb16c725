import Foundation
import Synchronization
import TallyCore
import Testing

@Suite("Ledger")
struct LedgerTests {
    func freshLedger() throws -> Ledger {
        try Ledger(path: try Fixtures.workspace().appendingPathComponent("home/ledger.sqlite"))
    }

    @Test("many openers of one new ledger at once all succeed: migrations are applied once, under the ledger's lock")
    func concurrentOpen() throws {
        let directory = FileManager.default.temporaryDirectory.appending(path: "tally-ledger-open-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appending(path: "ledger.sqlite")
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            do { _ = try Ledger(path: path) } catch { failures.withLock { $0.append("\(error)") } }
        }
        #expect(failures.withLock { $0 }.isEmpty, "\(failures.withLock { $0 })")
        let ledger = try Ledger(path: path)
        #expect(try ledger.cachedResult(key: "absent") == nil)
    }

    @Test("cache keys depend on identity and every request field, and are stable")
    func cacheKeys() throws {
        let request = GenerationRequest(messages: [.system("s"), .user("u")], maxTokens: 8)
        let key = try Ledger.cacheKey(identity: "m", request: request)
        #expect(key.count == 64)
        #expect(try Ledger.cacheKey(identity: "m", request: request) == key)
        #expect(try Ledger.cacheKey(identity: "m2", request: request) != key)
        #expect(try Ledger.cacheKey(identity: "m", request: GenerationRequest(messages: [.system("s"), .user("u")], maxTokens: 9)) != key)
        #expect(try Ledger.cacheKey(identity: "m", request: GenerationRequest(messages: [.system("s"), .user("u!")], maxTokens: 8)) != key)
        #expect(try Ledger.cacheKey(identity: "m", request: GenerationRequest(messages: [.system("s"), .user("u")], maxTokens: 8, temperature: 0.5)) != key)
    }

    @Test("a stored call is read back, and storing it again changes nothing")
    func idempotentCalls() throws {
        let ledger = try freshLedger()
        let request = GenerationRequest(messages: [.user("hi")])
        let key = try Ledger.cacheKey(identity: "m", request: request)
        #expect(try ledger.cachedResult(key: key) == nil)
        let result = GenerationResult(text: "hello", usage: TokenUsage(promptTokens: 3, completionTokens: 1), latencySeconds: 0.25, computeSeconds: 0.1)
        try ledger.recordCall(key: key, identity: "m", request: request, result: result)
        try ledger.recordCall(key: key, identity: "m", request: request, result: GenerationResult(text: "other", usage: TokenUsage(), latencySeconds: 1))
        #expect(try ledger.cachedResult(key: key) == result)
        #expect(try ledger.callCount() == 1)
        // A second connection (a later process) sees what was committed.
        let reopened = try Ledger(path: ledger.path)
        #expect(try reopened.cachedResult(key: key) == result)
    }

    @Test("answers of an older ledger move into the call cache once; runs stay in the ledger")
    func answersMoveIntoTheCallCache() throws {
        let directory = FileManager.default.temporaryDirectory.appending(path: "tally-ledger-cache-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let ledgerPath = directory.appending(path: "project/.tally/ledger.sqlite")
        let cachePath = directory.appending(path: "user/calls.sqlite")
        // An older ledger: everything in one file.
        let old = try Ledger(path: ledgerPath)
        let request = GenerationRequest(messages: [.user("hi")])
        let key = try Ledger.cacheKey(identity: "m", request: request)
        let result = GenerationResult(text: "hello", usage: TokenUsage(promptTokens: 3, completionTokens: 1), latencySeconds: 0.25)
        try old.recordCall(key: key, identity: "m", request: request, result: result)
        try old.recordScore(key: "s1", identity: "m", nats: 1.5, tokens: 3)
        try old.recordEmbedding(key: "e1", identity: "emb", vector: [1, 2], tokens: 2)
        try old.beginRun(runID: "r1", recipeName: "a", recipePath: "a.yaml", startedAt: Date(timeIntervalSince1970: 1))

        let split = try Ledger(path: ledgerPath, cachePath: cachePath)
        #expect(split.cachePath.path == cachePath.standardizedFileURL.path)
        #expect(try split.cachedResult(key: key) == result)
        #expect(try split.cachedScore(key: "s1")?.nats == 1.5)
        #expect(try split.cachedEmbedding(key: "e1")?.vector == [1, 2])
        #expect(try split.runs().map(\.runID) == ["r1"])
        // The ledger no longer holds the answers; the cache does, once.
        #expect(try Ledger(path: ledgerPath).callCount() == 0)
        #expect(try Ledger(path: cachePath).callCount() == 1)
        #expect(try Ledger(path: cachePath).runs().isEmpty)
        // Another project's ledger reads the same answers; reopening moves nothing twice.
        let other = try Ledger(path: directory.appending(path: "other/.tally/ledger.sqlite"), cachePath: cachePath)
        #expect(try other.cachedResult(key: key) == result)
        #expect(try other.callCount() == 1)
        #expect(try other.runs().isEmpty)
    }

    @Test("runs, measurements, predictions, probes and fine-tuning jobs round-trip")
    func roundTrips() throws {
        let ledger = try freshLedger()
        let start = Date(timeIntervalSince1970: 1_000_000)
        try ledger.beginRun(runID: "r1", recipeName: "a", recipePath: "a.yaml", startedAt: start)
        try ledger.beginRun(runID: "r2", recipeName: "b", recipePath: "b.yaml", startedAt: start.addingTimeInterval(10))
        #expect(try ledger.runs().map(\.runID) == ["r2", "r1"])
        #expect(try ledger.runs().allSatisfy { $0.status == .running && !$0.hasMeasurements })
        #expect(try ledger.latestRunID() == nil)

        let prediction = Prediction(exampleID: "e1", input: "x", expected: "y", output: "y", answer: "y", score: 1, usage: TokenUsage(promptTokens: 1, completionTokens: 1), latencySeconds: 0.1, computeSeconds: nil, cached: false)
        try ledger.recordPrediction(runID: "r1", strategy: "s", index: 0, callKey: "k", prediction: prediction)
        try ledger.recordPrediction(runID: "r1", strategy: "s", index: 0, callKey: "k", prediction: prediction)
        #expect(try ledger.predictions(runID: "r1", strategy: "s") == [prediction])

        let probe = ProbeMeasurement(probe: "p", kind: .qa, subject: "local", scores: [1, 0])
        try ledger.recordProbe(runID: "r1", measurement: probe)
        #expect(try ledger.probes(runID: "r1") == [probe])

        let measurements = RunMeasurements(
            runID: "r1", recipeName: "a", recipePath: "a.yaml", startedAt: start, finishedAt: start.addingTimeInterval(5),
            costs: CostSpec(), constraints: Constraints(budgetUSD: 3), metric: "accuracy", seed: 7, bootstrapSamples: 100,
            strategies: [StrategyMeasurement(name: "s", kind: "zero-shot", backend: "b", model: "m", dataLeavesMachine: true, adaptsWeights: false, pricing: Pricing(inputPerMTok: 1), predictions: [prediction], training: nil, probes: [])],
            baseProbes: [probe])
        try ledger.finishRun(runID: "r1", status: .finished, measurements: measurements)
        let back = try #require(try ledger.measurements(runID: "r1"))
        #expect(back.strategies.first?.predictions == [prediction])
        #expect(back.constraints.budgetUSD == 3 && back.startedAt == start)
        #expect(try ledger.latestRunID() == "r1")
        #expect(try ledger.latestRunID(recipeName: "b") == nil)
        #expect(try ledger.runs().first { $0.runID == "r1" }?.status == .finished)
        #expect(try ledger.measurements(runID: "nope") == nil)

        #expect(try ledger.fineTuneJob(key: "j") == nil)
        try ledger.recordFineTuneStarted(key: "j", strategy: "lora", baseIdentity: "m")
        #expect(try ledger.fineTuneJob(key: "j")?.status == .running)
        let outcome = FineTuneOutcome(artifact: "/a", wallSeconds: 3, trainedTokens: 10, steps: 2, trainLoss: [LossPoint(step: 1, loss: 2)], validationLoss: [])
        try ledger.recordFineTuneFinished(key: "j", outcome: outcome, generatorIdentity: "m+a")
        try ledger.recordFineTuneStarted(key: "j", strategy: "lora", baseIdentity: "m")
        let job = try #require(try ledger.fineTuneJob(key: "j"))
        #expect(job.status == .finished && job.outcome == outcome && job.generatorIdentity == "m+a")
    }

    @Test("a run whose process is gone is reported as interrupted")
    func interrupted() throws {
        let ledger = try freshLedger()
        let finished = Process()
        finished.executableURL = URL(fileURLWithPath: "/bin/sh")
        finished.arguments = ["-c", "exit 0"]
        try finished.run()
        finished.waitUntilExit()
        try ledger.beginRun(runID: "dead", recipeName: "a", recipePath: "a.yaml", startedAt: Date(timeIntervalSince1970: 1), processID: finished.processIdentifier)
        try ledger.beginRun(runID: "alive", recipeName: "a", recipePath: "a.yaml", startedAt: Date(timeIntervalSince1970: 2))
        let runs = try ledger.runs()
        #expect(runs.first { $0.runID == "dead" }?.status == .interrupted)
        #expect(runs.first { $0.runID == "alive" }?.status == .running)
    }

    @Test("cross-entropy scores are cached by identity and text")
    func scores() throws {
        let ledger = try freshLedger()
        let key = Ledger.scoreKey(identity: "m", text: "abc")
        #expect(key != Ledger.scoreKey(identity: "m2", text: "abc"))
        try ledger.recordScore(key: key, identity: "m", nats: 2.5, tokens: 3)
        let score = try #require(try ledger.cachedScore(key: key))
        #expect(score.nats == 2.5 && score.tokens == 3)
    }

    @Test("an unwritable location is a ledger error naming the path")
    func unwritable() throws {
        let file = try Fixtures.workspace().appendingPathComponent("plain-file")
        try "x".write(to: file, atomically: true, encoding: .utf8)
        let error = try #require(throws: TallyError.self) { try Ledger(path: file.appendingPathComponent("ledger.sqlite")) }
        #expect(error.code == .ledger && error.message.contains("cannot open the ledger at"))
    }
}

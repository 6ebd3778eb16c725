import Foundation
import Synchronization
import Testing
import TallyCore
@testable import HostedAPI

@Suite("OpenAI Chat Completions against a loopback server")
struct OpenAIChatTests {
    private func backend(_ service: FakeService, settings: [String: String] = [:], events: EventLog? = nil, model: String = "gpt-4o-mini-2024-07-18") async throws -> Backend {
        var observer: (@Sendable (HTTPEvent) -> Void)?
        if let events { observer = { event in events.record(event) } }
        let plugin = OpenAIPlugin(observer: observer)
        return try await plugin.makeBackend(service.config(model: model, settings: settings), environment: service.environment)
    }

    private func prompts(_ count: Int) -> [GenerationRequest] {
        (0..<count).map { index in
            GenerationRequest(messages: [.system("Answer briefly."), .user("question number \(index) about item \(index * 7)")], maxTokens: 16)
        }
    }

    @Test("Reads the text and usage (prompt, completion, cached) the server reports")
    func usage() async throws {
        let service = try FakeService()
        defer { service.server.stop() }
        let generator = try await backend(service).generator
        let result = try await generator.generate(GenerationRequest(messages: [.system("Be terse."), .user("What is two plus two?")]))
        #expect(result.text == FakeProviders.answer(to: "What is two plus two?"))
        let reported = try #require(service.providers.reported.first)
        #expect(result.usage == TokenUsage(promptTokens: reported.prompt, completionTokens: reported.completion, cachedPromptTokens: reported.cached))
        #expect(result.usage.cachedPromptTokens > 0)
        #expect(result.latencySeconds > 0)
        // The request carried the key as a bearer token and the documented fields.
        let entry = try #require(service.server.log.first)
        #expect(entry.headers["authorization"] == "Bearer \(service.key)")
        let body = try #require(try JSONSerialization.jsonObject(with: entry.body) as? [String: Any])
        #expect(body["model"] as? String == "gpt-4o-mini-2024-07-18")
        #expect(body["max_tokens"] as? Int == 16)
        #expect((body["messages"] as? [[String: Any]])?.count == 2)
    }

    @Test("Under every fault, each prediction arrives once and usage equals what the server reported")
    func faults() async throws {
        let service = try FakeService()
        defer { service.server.stop() }
        let events = EventLog()
        let generator = try await backend(service, settings: ["max_concurrency": "4"], events: events).generator
        service.server.inject([
            .status(429, retryAfter: "1"), .status(500, retryAfter: nil), .status(503, retryAfter: nil),
            .stall(seconds: 30), .resetMidBody, .malformedJSON, .wrongContentType, .oversized(bytes: 200_000),
            .status(408, retryAfter: nil), .status(409, retryAfter: nil),
        ], path: "/v1/chat/completions")
        let requests = prompts(24)
        let results = try await withThrowingTaskGroup(of: (Int, GenerationResult).self) { group in
            for (index, request) in requests.enumerated() {
                group.addTask { (index, try await generator.generate(request)) }
            }
            var collected: [Int: GenerationResult] = [:]
            for try await (index, result) in group {
                #expect(collected[index] == nil, "prediction \(index) returned twice")
                collected[index] = result
            }
            return collected
        }
        #expect(service.server.pendingFaults == 0)
        #expect(results.count == requests.count)
        for (index, request) in requests.enumerated() {
            let prompt = request.messages.last?.content ?? ""
            #expect(results[index]?.text == FakeProviders.answer(to: prompt), "prediction \(index) is missing or belongs to another prompt")
        }
        // The server answered each prompt successfully exactly once; the client counted
        // exactly the usage those answers reported.
        let reported = service.providers.reported
        #expect(reported.count == requests.count)
        let counted = results.values.reduce(TokenUsage()) { $0 + $1.usage }
        #expect(counted.promptTokens == reported.reduce(0) { $0 + $1.prompt })
        #expect(counted.completionTokens == reported.reduce(0) { $0 + $1.completion })
        #expect(counted.cachedPromptTokens == reported.reduce(0) { $0 + $1.cached })
        #expect(events.retries.count == 10)
        let faulted = service.server.log.filter { $0.fault != nil }
        #expect(faulted.count == 10)
    }

    @Test("Retry-After is honoured before the next attempt")
    func retryAfter() async throws {
        let service = try FakeService()
        defer { service.server.stop() }
        let events = EventLog()
        let generator = try await backend(service, events: events).generator
        service.server.inject([.status(429, retryAfter: "1")])
        let clock = ContinuousClock()
        let start = clock.now
        _ = try await generator.generate(prompts(1)[0])
        #expect(start.duration(to: clock.now) >= .seconds(1))
        let retry = try #require(events.retries.first)
        #expect(retry.delay >= 1 && retry.delay <= 1.2)
        #expect(retry.reason == "HTTP 429")
        let times = service.server.log.map(\.at)
        #expect(times.count == 2)
        #expect(times[1].timeIntervalSince(times[0]) >= 0.95)
    }

    @Test("Retry-After as an HTTP-date is honoured")
    func retryAfterDate() async throws {
        let service = try FakeService()
        defer { service.server.stop() }
        let events = EventLog()
        // The server dates its Retry-After 60 s ahead; the policy caps waits at 1.5 s, so the
        // wait is 1.5 s (+ jitter) if the date was read, and at most 0.01 s (the backoff) if not.
        let policy = RetryPolicy(maxRetries: 2, baseDelay: 0.01, maxDelay: 0.01, maxRetryAfter: 1.5)
        let client = HTTPClient(provider: "test", configuration: .init(totalTimeout: 5, retry: policy), key: nil, observer: { events.record($0) })
        service.server.inject([.statusRetryAt(503, secondsAhead: 60)])
        let url = try #require(URL(string: service.openAIBase + "/fine_tuning/jobs"))
        let request = HTTPRequest(method: "GET", url: url, headers: [("Authorization", "Bearer \(service.key)")])
        let status = try await client.send(request) { response in (response.status, nil) }
        #expect(status == 200)
        let retry = try #require(events.retries.first)
        #expect(retry.delay >= 1.5 && retry.delay <= 1.7, "\(retry.delay)")
    }

    @Test("A stall past timeout_s is abandoned and retried")
    func stall() async throws {
        let service = try FakeService()
        defer { service.server.stop() }
        let events = EventLog()
        let generator = try await backend(service, settings: ["timeout_s": "1"], events: events).generator
        service.server.inject([.stall(seconds: 120)])
        let result = try await generator.generate(prompts(1)[0])
        // The client hung up on the stalled request after about timeout_s (the server would
        // have held it for 120 s); the server's thread notes the hang-up as soon as it wakes.
        // The upper bound leaves room for a test process starved by the numeric suites.
        for _ in 0..<100 where service.server.log.first(where: { $0.fault != nil })?.clientHungUpAfter == nil { try await Task.sleep(for: .milliseconds(50)) }
        let stalled = try #require(service.server.log.first { $0.fault != nil })
        let hungUp = try #require(stalled.clientHungUpAfter, "the client waited for the server to give up")
        #expect(hungUp >= 0.9 && hungUp < 90, "\(hungUp)")
        #expect(result.text == FakeProviders.answer(to: prompts(1)[0].messages[1].content))
        #expect(events.retries.first?.reason.contains("no answer within") == true)
    }

    @Test("A response that stalls mid-body fails after stall_timeout_s, long before timeout_s, and is retried")
    func stallMidBody() async throws {
        let service = try FakeService()
        defer { service.server.stop() }
        let events = EventLog()
        let generator = try await backend(service, settings: ["timeout_s": "300", "stall_timeout_s": "1"], events: events).generator
        service.server.inject([.stallMidBody(seconds: 240)])
        let result = try await generator.generate(prompts(1)[0])
        for _ in 0..<100 where service.server.log.first(where: { $0.fault != nil })?.clientHungUpAfter == nil { try await Task.sleep(for: .milliseconds(50)) }
        let stalled = try #require(service.server.log.first { $0.fault != nil })
        let hungUp = try #require(stalled.clientHungUpAfter, "the client waited for the server to give up")
        // About stall_timeout_s (1 s) after the last byte; generous bounds for a test process
        // starved by the numeric suites, far below both the 300 s timeout_s and the server's
        // 240 s stall.
        #expect(hungUp >= 0.9 && hungUp < 150, "\(hungUp)")
        #expect(result.text == FakeProviders.answer(to: prompts(1)[0].messages[1].content))
        #expect(events.retries.first?.reason.contains("response stalled") == true)
    }

    @Test("stall_timeout_s is checked and 0 turns the stall check off")
    func stallSetting() {
        #expect(HostedSettings.parse(["stall_timeout_s": "5"]).settings.stallTimeout == 5)
        #expect(HostedSettings.parse(["stall_timeout_s": "0"]).settings.stallTimeout == 0)
        #expect(HostedSettings.parse([:]).settings.stallTimeout == 30)
        #expect(HostedSettings.parse(["stall_timeout_s": "-1"]).problems.first?.key == "stall_timeout_s")
    }

    @Test("Persistent faults fail after max_retries with one line naming the problem", arguments: [
        (LoopbackServer.Fault.status(500, retryAfter: nil), "HTTP 500"),
        (.malformedJSON, "not valid JSON"),
        (.wrongContentType, "expected a JSON body, got text/html"),
        (.oversized(bytes: 200_000), "more than 65536 bytes"),
        (.resetMidBody, "curl error"),
    ])
    func persistentFault(fault: LoopbackServer.Fault, phrase: String) async throws {
        let service = try FakeService()
        defer { service.server.stop() }
        // A generous timeout_s: on a loaded machine a reset could otherwise arrive after the
        // fixtures' 5 s and read as a timeout, not the fault under test.
        let generator = try await backend(service, settings: ["max_retries": "2", "timeout_s": "60"]).generator
        service.server.inject(Array(repeating: fault, count: 3))
        let error = try await #require(throws: TallyError.self) { try await generator.generate(prompts(1)[0]) }
        #expect(error.code == .backend)
        #expect(error.message.contains(phrase), "\(error.message)")
        #expect(error.message.contains("after 3 attempts"), "\(error.message)")
        #expect(!error.message.contains("\n"))
        #expect(service.server.log.count == 3)
    }

    @Test("A 401 fails at once with one line naming the host and the environment variable, never the key")
    func unauthorized() async throws {
        let service = try FakeService()
        defer { service.server.stop() }
        let wrongKey = "sk-wrong-\(UUID().uuidString)"
        let config = service.config()
        let generator = try await OpenAIPlugin().makeBackend(config, environment: [FakeService.keyVariable: wrongKey]).generator
        let error = try await #require(throws: TallyError.self) { try await generator.generate(prompts(1)[0]) }
        let host = "127.0.0.1:\(service.server.port)"
        #expect(error.message.contains(host))
        #expect(error.message.contains(FakeService.keyVariable))
        #expect(error.message.contains("401"))
        #expect(!error.message.contains(wrongKey), "the key leaked: \(error.message)")
        #expect(error.message.contains("(masked)"), "the server quoted the key; it must be masked: \(error.message)")
        #expect(!error.description.contains("\n"))
        #expect(service.server.log.count == 1, "a 401 must not be retried")
    }

    @Test("400, 403 and 404 are not retried", arguments: [400, 403, 404])
    func notRetried(status: Int) async throws {
        let service = try FakeService()
        defer { service.server.stop() }
        let generator = try await backend(service).generator
        service.server.inject([.status(status, retryAfter: "0")])
        let error = try await #require(throws: TallyError.self) { try await generator.generate(prompts(1)[0]) }
        #expect(error.message.contains("\(status)"))
        #expect(service.server.log.count == 1)
    }

    @Test("A missing model gives a 404 line that says to check base_url and the model")
    func missingModel() async throws {
        let service = try FakeService()
        defer { service.server.stop() }
        let generator = try await backend(service, model: "missing-model").generator
        let error = try await #require(throws: TallyError.self) { try await generator.generate(prompts(1)[0]) }
        #expect(error.message.contains("404 Not Found: The model `missing-model` does not exist"))
        #expect(error.message.contains("check base_url and the model name"))
    }

    @Test("Sequential requests reuse one connection")
    func connectionReuse() async throws {
        let service = try FakeService()
        defer { service.server.stop() }
        let generator = try await backend(service, settings: ["max_concurrency": "1"]).generator
        for request in prompts(6) { _ = try await generator.generate(request) }
        #expect(service.server.connectionsAccepted == 1)
    }

    @Test("No more than max_concurrency requests are in flight")
    func boundedConcurrency() async throws {
        let providers = FakeProviders(apiKey: "k")
        let inFlight = InFlightCounter()
        let server = try LoopbackServer { request in
            inFlight.enter()
            defer { inFlight.leave() }
            Thread.sleep(forTimeInterval: 0.05)
            return providers.handle(request)
        }
        defer { server.stop() }
        let config = BackendConfig(
            name: "b", plugin: "openai", model: "m", apiKeyEnv: "K", baseURL: server.baseURL.absoluteString + "/v1",
            settings: ["max_concurrency": "3"], recipeDirectory: FileManager.default.temporaryDirectory)
        let backend = try await OpenAIPlugin().makeBackend(config, environment: ["K": "k"])
        #expect(backend.maxConcurrency == 3)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for request in prompts(12) { group.addTask { _ = try await backend.generator.generate(request) } }
            try await group.waitForAll()
        }
        #expect(inFlight.peak == 3, "peak \(inFlight.peak), log \(server.log.count), connections \(server.connectionsAccepted), \(server.log.map { $0.path })")
    }

    @Test("Cancelling the task aborts a slow request promptly")
    func cancellation() async throws {
        let service = try FakeService()
        defer { service.server.stop() }
        let generator = try await backend(service, settings: ["timeout_s": "300"]).generator
        service.server.inject([.stall(seconds: 240)])
        let task = Task { try await generator.generate(prompts(1)[0]) }
        while service.server.log.isEmpty && service.server.pendingFaults > 0 { try await Task.sleep(for: .milliseconds(50)) }
        try await Task.sleep(for: .milliseconds(300))
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        // Cancelling aborted the transfer: the client hung up long before the server's 240 s
        // (and timeout_s); the bound leaves room for a test process starved by the numeric suites.
        for _ in 0..<100 where service.server.log.first?.clientHungUpAfter == nil { try await Task.sleep(for: .milliseconds(50)) }
        let stalled = try #require(service.server.log.first)
        let hungUp = try #require(stalled.clientHungUpAfter, "the transfer was not aborted")
        #expect(hungUp < 150, "\(hungUp)")
    }

    @Test("Loopback base URLs keep data on the machine; others do not")
    func dataLeavesMachine() async throws {
        let service = try FakeService()
        defer { service.server.stop() }
        #expect(try await backend(service).dataLeavesMachine == false)
        let remote = try await OpenAIPlugin().makeBackend(service.config(base: "https://api.example.com/v1"), environment: service.environment)
        #expect(remote.dataLeavesMachine)
        #expect(!remote.generator.identity.contains(service.key))
    }
}

/// Counts concurrent entries and remembers the peak.
final class InFlightCounter: Sendable {
    private let state = Mutex((current: 0, peak: 0))
    func enter() { state.withLock { $0.current += 1; $0.peak = max($0.peak, $0.current) } }
    func leave() { state.withLock { $0.current -= 1 } }
    var peak: Int { state.withLock { $0.peak } }
}

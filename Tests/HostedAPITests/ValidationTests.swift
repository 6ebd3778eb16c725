import Foundation
import Testing
import TallyCore
@testable import HostedAPI

@Suite("Backend validation and settings")
struct ValidationTests {
    private func config(_ settings: [String: String] = [:], base: String? = nil, keyEnv: String? = "OPENAI_API_KEY", model: String = "gpt-4o-mini") -> BackendConfig {
        BackendConfig(name: "hosted", plugin: "openai", model: model, apiKeyEnv: keyEnv, baseURL: base, settings: settings, recipeDirectory: FileManager.default.temporaryDirectory)
    }

    @Test("Validation needs no key in the environment")
    func noKeyNeeded() {
        #expect(OpenAIPlugin().validate(config(), environment: [:]).isEmpty)
        #expect(AnthropicPlugin().validate(config(keyEnv: "ANTHROPIC_API_KEY"), environment: [:]).isEmpty)
    }

    @Test("Building the backend without the key says which variable to export")
    func missingKey() async throws {
        let error = try await #require(throws: TallyError.self) { try await OpenAIPlugin().makeBackend(config(), environment: [:]) }
        #expect(error.message.contains("environment variable OPENAI_API_KEY is not set"))
        // With no base_url and no api_key_env, OpenAI's default variable is required.
        let defaulted = try await #require(throws: TallyError.self) { try await OpenAIPlugin().makeBackend(config(keyEnv: nil), environment: [:]) }
        #expect(defaulted.message.contains("OPENAI_API_KEY"))
        // A local server needs no key at all.
        let local = try await OpenAIPlugin().makeBackend(config(base: "http://localhost:8000/v1", keyEnv: nil), environment: [:])
        #expect(!local.dataLeavesMachine)
    }

    @Test("A key pasted into api_key_env is rejected without being echoed")
    func pastedKey() {
        let secret = "sk_live_abcdefghijklmnopqrstuvwxyz0123456789"
        let problems = OpenAIPlugin().validate(config(keyEnv: secret), environment: [:])
        #expect(problems.count == 1)
        #expect(problems.first?.key == "api_key_env")
        #expect(problems.allSatisfy { !$0.message.contains(secret) })
    }

    @Test("Bad settings are reported by field with the fix", arguments: [
        ("timeout_s", "soon", "is not a number"),
        ("max_concurrency", "0", "out of range"),
        ("max_concurrency", "2.5", "not a whole number"),
        ("requests_per_minute", "-1", "out of range"),
        ("token_limit_field", "max_len", "max_tokens or max_completion_tokens"),
        ("max_retrys", "3", "did you mean 'max_retries'?"),
    ])
    func badSetting(key: String, value: String, phrase: String) {
        let problems = OpenAIPlugin().validate(config([key: value]), environment: [:])
        #expect(problems.count == 1)
        #expect(problems.first?.key == key)
        #expect(problems.first?.message.contains(phrase) == true, "\(problems)")
    }

    @Test("Settings become the client's limits")
    func parsedSettings() throws {
        let (settings, problems) = HostedSettings.parse([
            "timeout_s": "30", "max_concurrency": "8", "requests_per_minute": "500", "tokens_per_minute": "90000", "max_retries": "2",
        ])
        #expect(problems.isEmpty)
        let client = settings.clientConfiguration
        #expect(client.totalTimeout == 30)
        #expect(client.maxConcurrency == 8)
        #expect(client.requestsPerMinute == 500)
        #expect(client.tokensPerMinute == 90000)
        #expect(client.retry.maxRetries == 2)
    }

    @Test("Bad base URLs are reported", arguments: ["ftp://example.com", "not a url", "https://api.example.com/v1?x=1"])
    func badBaseURL(base: String) {
        let problems = OpenAIPlugin().validate(config(base: base), environment: [:])
        #expect(problems.contains { $0.key == "base_url" })
    }

    @Test("Loopback detection", arguments: [
        ("http://localhost:8000/v1", true), ("http://127.0.0.1:1234", true), ("http://127.8.9.10", true), ("http://[::1]:8080/v1", true),
        ("https://api.openai.com/v1", false), ("http://10.0.0.5:8000/v1", false), ("http://localhost.example.com", false),
    ])
    func loopback(url: String, expected: Bool) throws {
        #expect(isLoopback(try #require(URL(string: url))) == expected)
    }

    @Test("Keys are masked and never shown by description")
    func masking() throws {
        let key = try #require(APIKey(variable: "K", environment: ["K": "sk-abcdefghijklmnopqrstuvwxyz"]))
        #expect(!"\(key)".contains("abcdefgh"))
        #expect(key.mask("bad key sk-abcdefghijklmnopqrstuvwxyz here") == "bad key sk-…(masked) here")
        #expect(APIKey(variable: "K", environment: ["K": "  "]) == nil)
    }
}

@Suite("Request gate")
struct RequestGateTests {
    @Test("requests_per_minute holds back requests until the window moves")
    func requestsPerWindow() async throws {
        let gate = RequestGate(maxConcurrency: 10, requestsPerMinute: 2, window: .milliseconds(400))
        let clock = ContinuousClock()
        let start = clock.now
        for _ in 0..<4 {
            let ticket = try await gate.acquire(tokens: 1)
            await gate.release(ticket)
        }
        // Requests 3 and 4 had to wait one window.
        #expect(start.duration(to: clock.now) >= .milliseconds(390))
    }

    @Test("tokens_per_minute counts reported tokens, not estimates")
    func tokensPerWindow() async throws {
        let gate = RequestGate(maxConcurrency: 10, tokensPerMinute: 100, window: .seconds(60))
        let first = try await gate.acquire(tokens: 90)
        #expect(await gate.rateDelay(tokens: 80) != nil)  // 90 + 80 > 100
        await gate.settle(first, tokens: 10)  // the server reported far fewer
        await gate.release(first)
        #expect(await gate.rateDelay(tokens: 80) == nil)  // 10 + 80 fits
        let second = try await gate.acquire(tokens: 80)
        await gate.release(second)
        let wait = try #require(await gate.rateDelay(tokens: 50))  // 10 + 80 + 50 > 100
        #expect(wait > .seconds(55) && wait <= .seconds(60))  // until the first entry ages out
        #expect(await gate.rateDelay(tokens: 10) == nil)
    }

    @Test("A waiter cancelled while queued for a slot leaves without taking one")
    func cancelWaiting() async throws {
        let gate = RequestGate(maxConcurrency: 1)
        let held = try await gate.acquire(tokens: 0)
        let waiter = Task { try await gate.acquire(tokens: 0) }
        try await Task.sleep(for: .milliseconds(50))
        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }
        await gate.release(held)
        #expect(await gate.admitted == 0)
    }
}

@Suite("Model snapshots and moving aliases")
struct ModelSnapshotTests {
    private func config(plugin: String, model: String) -> BackendConfig {
        BackendConfig(name: "hosted", plugin: plugin, model: model, apiKeyEnv: "OPENAI_API_KEY", baseURL: nil, settings: [:], recipeDirectory: FileManager.default.temporaryDirectory)
    }

    @Test("tally validate warns when a recipe names a moving alias, not when it names a snapshot")
    func aliasWarning() {
        for model in ["chatgpt-4o-latest", "claude-3-5-sonnet-latest", "llama3:latest"] {
            let problems = OpenAIPlugin().validate(config(plugin: "openai", model: model), environment: [:])
            #expect(problems.count == 1 && problems[0].severity == .warning && problems[0].key == "model", "\(model)")
            #expect(problems.first?.message.contains("moving alias") == true)
        }
        #expect(AnthropicPlugin().validate(config(plugin: "anthropic", model: "claude-3-5-sonnet-latest"), environment: [:]).map(\.severity) == [.warning])
        #expect(OpenAIPlugin().validate(config(plugin: "openai", model: "gpt-4o-2024-08-06"), environment: [:]).isEmpty)
    }

    @Test("the snapshot the OpenAI server reports is kept with each answer")
    func openAISnapshot() async throws {
        let service = try FakeService()
        defer { service.server.stop() }
        let backend = try await OpenAIPlugin().makeBackend(service.config(model: "gpt-4o-latest"), environment: service.environment)
        let result = try await backend.generator.generate(GenerationRequest(messages: [.user("What is two plus two?")]))
        #expect(result.servedModel == "gpt-4o-2024-11-20")
        // It survives the ledger: the stored call reads back with the snapshot.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tally-snapshot-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let ledger = try Ledger(path: directory.appendingPathComponent("ledger.sqlite"))
        let request = GenerationRequest(messages: [.user("What is two plus two?")])
        let key = try Ledger.cacheKey(identity: backend.generator.identity, request: request)
        try ledger.recordCall(key: key, identity: backend.generator.identity, request: request, result: result)
        #expect(try ledger.cachedResult(key: key)?.servedModel == "gpt-4o-2024-11-20")
    }

    @Test("the snapshot the Anthropic server reports is kept with each answer")
    func anthropicSnapshot() async throws {
        let service = try FakeService()
        defer { service.server.stop() }
        let backend = try await AnthropicPlugin().makeBackend(service.config(plugin: "anthropic", model: "claude-3-5-haiku-latest"), environment: service.environment)
        let result = try await backend.generator.generate(GenerationRequest(messages: [.user("What is two plus two?")]))
        #expect(result.servedModel == "claude-3-5-haiku-2024-11-20")
    }
}

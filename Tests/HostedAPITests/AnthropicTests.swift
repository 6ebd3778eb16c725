import Foundation
import Testing
import TallyCore
@testable import HostedAPI

@Suite("Anthropic Messages against a loopback server")
struct AnthropicTests {
    @Test("Input usage is input + cache creation + cache read; cached is cache read")
    func usage() async throws {
        let service = try FakeService()
        defer { service.server.stop() }
        let backend = try await AnthropicPlugin().makeBackend(service.config(plugin: "anthropic", model: "claude-3-5-haiku-latest"), environment: service.environment)
        #expect(backend.fineTuner == nil)
        let request = GenerationRequest(messages: [.system("Answer in one word."), .user("first"), .assistant("ok"), .user("Is water wet?")], maxTokens: 8)
        let result = try await backend.generator.generate(request)
        #expect(result.text == FakeProviders.answer(to: "Is water wet?"))
        let reported = try #require(service.providers.reported.first)
        #expect(result.usage.promptTokens == reported.prompt)
        #expect(result.usage.cachedPromptTokens == reported.cached)
        #expect(result.usage.completionTokens == reported.completion)
        let entry = try #require(service.server.log.first)
        #expect(entry.path == "/v1/messages")
        #expect(entry.headers["x-api-key"] == service.key)
        #expect(entry.headers["anthropic-version"] == "2023-06-01")
        #expect(entry.headers["authorization"] == nil)
        let body = try #require(try JSONSerialization.jsonObject(with: entry.body) as? [String: Any])
        #expect(body["system"] as? String == "Answer in one word.")
        #expect((body["messages"] as? [[String: Any]])?.count == 3)
        #expect(body["max_tokens"] as? Int == 8)
    }

    @Test("Faults are retried; every answer arrives once with the reported usage")
    func faults() async throws {
        let service = try FakeService()
        defer { service.server.stop() }
        let backend = try await AnthropicPlugin().makeBackend(service.config(plugin: "anthropic", model: "claude-3-5-haiku-latest"), environment: service.environment)
        service.server.inject([.status(529, retryAfter: nil), .status(429, retryAfter: "0"), .resetMidBody, .wrongContentType], path: "/v1/messages")
        var total = TokenUsage()
        for index in 0..<6 {
            let result = try await backend.generator.generate(GenerationRequest(messages: [.system("s"), .user("q\(index)")]))
            #expect(result.text == FakeProviders.answer(to: "q\(index)"))
            total = total + result.usage
        }
        let reported = service.providers.reported
        #expect(reported.count == 6)
        #expect(total.promptTokens == reported.reduce(0) { $0 + $1.prompt })
        #expect(total.cachedPromptTokens == reported.reduce(0) { $0 + $1.cached })
    }

    @Test("A rejected key names the host and the variable")
    func unauthorized() async throws {
        let service = try FakeService()
        defer { service.server.stop() }
        let backend = try await AnthropicPlugin().makeBackend(service.config(plugin: "anthropic", model: "claude"), environment: [FakeService.keyVariable: "sk-ant-wrong"])
        let error = try await #require(throws: TallyError.self) { try await backend.generator.generate(GenerationRequest(messages: [.user("hi")])) }
        #expect(error.message.contains("rejected the API key in $\(FakeService.keyVariable)"))
        #expect(error.message.contains("127.0.0.1:\(service.server.port)"))
        #expect(!error.message.contains("sk-ant-wrong"))
    }
}

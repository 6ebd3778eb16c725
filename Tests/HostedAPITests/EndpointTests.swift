import Foundation
import Testing
import TallyCore
@testable import HostedAPI

@Suite("Hosted endpoints: base URL precedence and OpenAI account headers")
struct EndpointTests {
    /// The fake service's backend entry without a `base_url`.
    private func withoutBase(_ service: FakeService, plugin: String = "openai") -> BackendConfig {
        let c = service.config(plugin: plugin)
        return BackendConfig(name: c.name, plugin: c.plugin, model: c.model, apiKeyEnv: c.apiKeyEnv, baseURL: nil, price: c.price, settings: c.settings, recipeDirectory: c.recipeDirectory)
    }

    @Test("OPENAI_BASE_URL is used when the recipe gives no base_url; organisation and project headers are sent")
    func openAIEnvironment() async throws {
        let service = try FakeService()
        defer { service.server.stop() }
        var environment = service.environment
        environment["OPENAI_BASE_URL"] = service.openAIBase
        environment["OPENAI_ORG_ID"] = "org-test"
        environment["OPENAI_PROJECT_ID"] = "proj-test"
        let backend = try await OpenAIPlugin().makeBackend(withoutBase(service), environment: environment)
        #expect(backend.generator.identity.contains(service.openAIBase))
        _ = try await backend.generator.generate(GenerationRequest(messages: [.user("What is two plus two?")], maxTokens: 8))
        let entry = try #require(service.server.log.last)
        #expect(entry.headers["openai-organization"] == "org-test")
        #expect(entry.headers["openai-project"] == "proj-test")
    }

    @Test("The recipe's base_url wins over OPENAI_BASE_URL; without either, OpenAI's endpoint")
    func precedence() throws {
        let recipe = BackendConfig(name: "b", plugin: "openai", model: "m", baseURL: "http://127.0.0.1:9/v1", recipeDirectory: FileManager.default.temporaryDirectory)
        let environment = ["OPENAI_BASE_URL": "http://127.0.0.1:8/v1", "ANTHROPIC_BASE_URL": "http://127.0.0.1:7"]
        #expect(try HostedEndpoint.baseURL(recipe, variable: OpenAIPlugin.baseURLVariable, fallback: OpenAIPlugin.defaultBaseURL, environment: environment).absoluteString == "http://127.0.0.1:9/v1")
        let bare = BackendConfig(name: "b", plugin: "openai", model: "m", recipeDirectory: FileManager.default.temporaryDirectory)
        #expect(try HostedEndpoint.baseURL(bare, variable: OpenAIPlugin.baseURLVariable, fallback: OpenAIPlugin.defaultBaseURL, environment: environment).absoluteString == "http://127.0.0.1:8/v1")
        #expect(try HostedEndpoint.baseURL(bare, variable: AnthropicPlugin.baseURLVariable, fallback: AnthropicPlugin.defaultBaseURL, environment: environment).absoluteString == "http://127.0.0.1:7")
        #expect(try HostedEndpoint.baseURL(bare, variable: OpenAIPlugin.baseURLVariable, fallback: OpenAIPlugin.defaultBaseURL, environment: [:]).absoluteString == OpenAIPlugin.defaultBaseURL)
        #expect(try HostedEndpoint.baseURL(bare, variable: OpenAIPlugin.baseURLVariable, fallback: OpenAIPlugin.defaultBaseURL, environment: ["OPENAI_BASE_URL": " "]).absoluteString == OpenAIPlugin.defaultBaseURL)
    }

    @Test("A malformed OPENAI_BASE_URL is reported by validate and by makeBackend, naming the variable")
    func malformedEnvironment() async throws {
        let bare = BackendConfig(name: "b", plugin: "openai", model: "m", apiKeyEnv: "K", recipeDirectory: FileManager.default.temporaryDirectory)
        let environment = ["OPENAI_BASE_URL": "localhost:8000", "K": "k"]
        let issues = OpenAIPlugin().validate(bare, environment: environment)
        #expect(issues.contains { $0.key == "base_url" && $0.message.contains("OPENAI_BASE_URL") })
        await #expect(throws: TallyError.self) { _ = try await OpenAIPlugin().makeBackend(bare, environment: environment) }
    }

    @Test("ANTHROPIC_BASE_URL is used when the recipe gives no base_url")
    func anthropicEnvironment() async throws {
        let service = try FakeService()
        defer { service.server.stop() }
        var environment = service.environment
        environment["ANTHROPIC_BASE_URL"] = service.server.baseURL.absoluteString
        let backend = try await AnthropicPlugin().makeBackend(withoutBase(service, plugin: "anthropic"), environment: environment)
        let result = try await backend.generator.generate(GenerationRequest(messages: [.user("What is two plus two?")], maxTokens: 8))
        #expect(!result.text.isEmpty)
    }
}

import TallyCore

/// HostedAPI: OpenAI-compatible and Anthropic backends over libcurl.
public enum HostedAPI {
    /// The backend plugins this module provides, for the CLI's registry.
    public static var plugins: [any BackendPlugin] { [OpenAIPlugin(), AnthropicPlugin()] }
}

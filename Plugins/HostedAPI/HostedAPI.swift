import CCurl
import TallyCore

/// HostedAPI: OpenAI-compatible and Anthropic backends over libcurl.
public enum HostedAPI {}

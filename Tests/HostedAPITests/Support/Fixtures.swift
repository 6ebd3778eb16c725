import Foundation
import HostedAPI
import Synchronization
import TallyCore

/// A loopback server running the fake providers, with a fresh key per test.
struct FakeService {
    let server: LoopbackServer
    let providers: FakeProviders
    let key: String
    static let keyVariable = "TALLY_TEST_API_KEY"

    init(trainingSteps: Int = 4) throws {
        key = "sk-test-\(UUID().uuidString.lowercased())"
        let providers = FakeProviders(apiKey: key, trainingSteps: trainingSteps)
        self.providers = providers
        server = try LoopbackServer { providers.handle($0) }
    }

    var environment: [String: String] { [Self.keyVariable: key] }

    /// `http://127.0.0.1:PORT/v1`, as an OpenAI-compatible `base_url`.
    var openAIBase: String { server.baseURL.absoluteString + "/v1" }

    /// A backend entry for the server. Backoff is short to keep fault tests fast; the timeout
    /// is generous so a loaded machine does not time out answers the server already sent
    /// (tests of the timeout itself set their own).
    func config(plugin: String = "openai", model: String = "gpt-4o-mini-2024-07-18", base: String? = nil, settings: [String: String] = [:], price: Pricing = Pricing(inputPerMTok: 0.15, outputPerMTok: 0.6, trainingPerMTok: 3.0)) -> BackendConfig {
        var merged = ["timeout_s": "5", "retry_base_s": "0.01", "max_retries": "6", "max_response_bytes": "65536"]
        if plugin == "openai" { merged["poll_interval_s"] = "0.01" }
        merged.merge(settings) { $1 }
        return BackendConfig(
            name: "hosted", plugin: plugin, model: model, apiKeyEnv: Self.keyVariable,
            baseURL: base ?? (plugin == "openai" ? openAIBase : server.baseURL.absoluteString),
            price: price, settings: merged, recipeDirectory: FileManager.default.temporaryDirectory)
    }

    /// Writes a ticket-routing task (billing or shipping) into `directory`: `train.jsonl`,
    /// `test.jsonl` and `recipe.yaml`, whose backend `hosted` is this server. Line 14 of the
    /// recipe is the backend's `price`.
    /// - Parameters:
    ///   - backendLines: further settings of the backend, one `key: value` per line.
    ///   - strategies: the entries of `strategies:`, each a YAML flow mapping.
    ///   - tail: top-level lines after the strategies (`costs:`, `run:`).
    /// - Returns: the recipe's URL.
    func writeTicketRecipe(
        in directory: URL, name: String, trainCount: Int, testCount: Int, price: String,
        backendLines: [String], strategies: [String], tail: [String]
    ) throws -> URL {
        let labels = ["billing", "shipping"], topics = ["refunds", "parcels"]
        let train = (0..<trainCount).map { "{\"text\": \"training ticket \($0) about \(labels[$0 % 2])\", \"label\": \"\(labels[$0 % 2])\"}" }
        let test = (0..<testCount).map { "{\"text\": \"test ticket \($0) mentions \(topics[$0 % 2])\", \"label\": \"\(labels[$0 % 2])\"}" }
        try (train.joined(separator: "\n") + "\n").write(to: directory.appendingPathComponent("train.jsonl"), atomically: true, encoding: .utf8)
        try (test.joined(separator: "\n") + "\n").write(to: directory.appendingPathComponent("test.jsonl"), atomically: true, encoding: .utf8)
        let lines = [
            "name: \(name)",
            "task:",
            "  instruction: \"Route the ticket: billing or shipping.\"",
            "  input: \"Ticket: {text}\"",
            "  target: label",
            "  labels: [billing, shipping]",
            "data: {train: train.jsonl, test: test.jsonl}",
            "backends:",
            "  hosted:",
            "    plugin: openai",
            "    model: gpt-4o-mini-2024-07-18",
            "    base_url: \"\(openAIBase)\"",
            "    api_key_env: \(Self.keyVariable)",
            "    price: \(price)",
            "    timeout_s: 5",
            "    retry_base_s: 0.01",
        ] + backendLines.map { "    " + $0 } + ["strategies:"] + strategies.map { "  - " + $0 } + tail
        let url = directory.appendingPathComponent("recipe.yaml")
        try (lines.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
        return url
    }
}

/// Collects what a client reports (retries) for assertions.
final class EventLog: Sendable {
    private let events = Mutex<[HTTPEvent]>([])
    func record(_ event: HTTPEvent) { events.withLock { $0.append(event) } }
    var all: [HTTPEvent] { events.withLock { $0 } }
    var retries: [(attempt: Int, delay: Double, reason: String)] {
        all.compactMap {
            if case .retry(_, let attempt, let delay, let reason) = $0 { return (attempt, delay, reason) }
            return nil
        }
    }
}

/// Collects progress events.
final class ProgressLog: Sendable {
    private let events = Mutex<[ProgressEvent]>([])
    func record(_ event: ProgressEvent) { events.withLock { $0.append(event) } }
    var all: [ProgressEvent] { events.withLock { $0 } }
    var notes: [String] {
        all.compactMap { if case .note(let text) = $0 { return text } else { return nil } }
    }
}

/// A fresh directory under the system's temporary directory.
func makeTemporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("tally-hosted-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Every file under `directory` whose bytes contain `needle`.
func files(in directory: URL, containing needle: String) throws -> [String] {
    let needleData = Data(needle.utf8)
    var hits: [String] = []
    guard let enumerator = FileManager.default.enumerator(at: directory, includingPropertiesForKeys: [.isRegularFileKey]) else { return [] }
    for case let url as URL in enumerator {
        guard (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true else { continue }
        if try Data(contentsOf: url).range(of: needleData) != nil { hits.append(url.lastPathComponent) }
    }
    return hits
}

import Foundation
import TallyCore

/// Checks any `TextGenerator` against what the runner relies on. Plugin authors call it from
/// their own tests: `#expect(await GeneratorConformance.problems(of: generator).isEmpty)`.
public enum GeneratorConformance {
    /// Problems found, in words; empty when the generator behaves as the runner expects:
    /// - a non-empty `identity` that does not change between calls;
    /// - greedy decoding (temperature 0) is deterministic: the same request twice gives the
    ///   same text (the ledger cache assumes it);
    /// - token usage is non-negative and latency is finite and non-negative;
    /// - `generate(batch:)` returns one result per request, equal in text to single calls.
    /// - Parameter requests: requests to try; a short chat by default.
    public static func problems(of generator: any TextGenerator, requests: [GenerationRequest]? = nil) async -> [String] {
        let requests = requests ?? [
            GenerationRequest(messages: [.system("Answer briefly."), .user("Name a colour.")], maxTokens: 8),
            GenerationRequest(messages: [.user("Say yes or no.")], maxTokens: 4),
        ]
        var problems: [String] = []
        let identity = generator.identity
        if identity.isEmpty { problems.append("identity is empty; it must name the model (it is part of every cache key)") }
        var singles: [GenerationResult] = []
        for (index, request) in requests.enumerated() {
            do {
                let first = try await generator.generate(request)
                let second = try await generator.generate(request)
                singles.append(first)
                if request.temperature == 0, first.text != second.text {
                    problems.append("request \(index): greedy decoding gave different texts on two calls ('\(first.text)' vs '\(second.text)')")
                }
                let usage = first.usage
                if usage.promptTokens < 0 || usage.completionTokens < 0 || usage.cachedPromptTokens < 0 || usage.cachedPromptTokens > max(usage.promptTokens, 0) {
                    problems.append("request \(index): token usage is inconsistent (\(usage))")
                }
                if !first.latencySeconds.isFinite || first.latencySeconds < 0 {
                    problems.append("request \(index): latency \(first.latencySeconds) is not a finite, non-negative number of seconds")
                }
                if let compute = first.computeSeconds, !compute.isFinite || compute < 0 {
                    problems.append("request \(index): compute seconds \(compute) is not a finite, non-negative number")
                }
            } catch {
                problems.append("request \(index): generate failed: \(error)")
            }
        }
        if generator.identity != identity { problems.append("identity changed between calls") }
        if singles.count == requests.count {
            do {
                let batch = try await generator.generate(batch: requests)
                if batch.count != requests.count {
                    problems.append("generate(batch:) returned \(batch.count) results for \(requests.count) requests")
                } else {
                    for (index, pair) in zip(batch, singles).enumerated() where requests[index].temperature == 0 && pair.0.text != pair.1.text {
                        problems.append("request \(index): generate(batch:) gave '\(pair.0.text)' but generate gave '\(pair.1.text)'")
                    }
                }
            } catch {
                problems.append("generate(batch:) failed: \(error)")
            }
        }
        return problems
    }
}

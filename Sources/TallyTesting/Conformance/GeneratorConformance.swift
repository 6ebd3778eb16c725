import Foundation
import TallyCore

/// How long the conformance suites wait before they call a plugin hung.
public struct ConformanceTimeouts: Sendable, Hashable {
    /// One `generate` call (and one `validate`).
    public var request: Duration
    /// Slow steps: `makeBackend` (loads models, starts programs), `fineTune`, and
    /// `generator(for:)` (reopens an artifact).
    public var setup: Duration
    /// How long a cancelled `generate` may go on before it counts as ignoring cancellation.
    public var cancellation: Duration

    public init(request: Duration = .seconds(60), setup: Duration = .seconds(600), cancellation: Duration = .seconds(5)) {
        self.request = request
        self.setup = setup
        self.cancellation = cancellation
    }
}

/// Checks any `TextGenerator` against what the runner relies on. Plugin authors call it from
/// their own tests:
///
/// ```swift
/// @Test func myGeneratorConforms() async {
///     let checks = await GeneratorConformance.check(MyGenerator())
///     #expect(checks.failures.isEmpty, Comment(rawValue: checks.failureSummary ?? ""))
/// }
/// ```
///
/// The checks, in order (names as `ConformanceCheck.name`):
/// - `generate answers`: every request gets an answer within `timeouts.request` (a thrown
///   error, such as an exec program's malformed message, fails it with the error's text);
/// - `identity is stable`: a non-empty `identity` that does not change between calls (it
///   is part of every ledger cache key);
/// - `greedy answers repeat`: greedy decoding (temperature 0) gives the same text twice
///   (the ledger cache assumes it);
/// - `usage is reported`: token counts are non-negative, prompt tokens are positive for a
///   non-empty prompt, completion tokens are positive for a non-empty answer, cached prompt
///   tokens do not exceed prompt tokens, and latency and compute seconds are finite and
///   non-negative;
/// - `batch matches single calls`: `generate(batch:)` returns one result per request, equal
///   in text to single greedy calls;
/// - `cancellation is prompt`: a `generate` whose task is cancelled returns or throws within
///   `timeouts.cancellation`.
public enum GeneratorConformance {
    /// A short system + user chat and a one-message chat, both greedy.
    public static let defaultRequests: [GenerationRequest] = [
        GenerationRequest(messages: [.system("Answer briefly."), .user("Name a colour.")], maxTokens: 8),
        GenerationRequest(messages: [.user("Say yes or no.")], maxTokens: 4),
    ]

    /// Runs the checks on `generator`.
    /// - Parameters:
    ///   - requests: requests to try (at least one); `defaultRequests` when nil or empty.
    ///   - timeouts: how long a call may take before it counts as hung.
    /// - Returns: one `ConformanceCheck` per check, in the order above; never throws (a
    ///   failing or hanging call is a failed check).
    public static func check(_ generator: any TextGenerator, requests: [GenerationRequest]? = nil, timeouts: ConformanceTimeouts = ConformanceTimeouts()) async -> [ConformanceCheck] {
        let requests = requests.flatMap { $0.isEmpty ? nil : $0 } ?? defaultRequests
        var checks: [ConformanceCheck] = []
        var identities = [generator.identity]

        // Each request twice: the first answer is checked, the second compared with it.
        var firsts: [GenerationResult?] = []
        var seconds: [GenerationResult?] = []
        var callProblems: [String] = []
        var slowest: Duration = .zero
        for (index, request) in requests.enumerated() {
            let clock = ContinuousClock()
            let start = clock.now
            let first = await call(generator, request, timeouts.request)
            slowest = max(slowest, clock.now - start)
            identities.append(generator.identity)
            let second = first.result != nil ? await call(generator, request, timeouts.request) : Call(result: nil, problem: nil)
            identities.append(generator.identity)
            if let problem = first.problem { callProblems.append("request \(index): \(problem)") }
            if let problem = second.problem { callProblems.append("request \(index), second call: \(problem)") }
            firsts.append(first.result)
            seconds.append(second.result)
        }
        let answered = firsts.compactMap { $0 }
        if callProblems.isEmpty {
            checks.append(.pass("generate answers", "\(requests.count) request\(requests.count == 1 ? "" : "s") answered twice each; slowest first call \(slowest.shortDescription)"))
        } else {
            checks.append(.fail("generate answers", listed(callProblems, limit: 4)))
        }

        // Identity.
        let identity = identities[0]
        if identity.isEmpty {
            checks.append(.fail("identity is stable", "identity is empty; it must name the model (it is part of every ledger cache key)"))
        } else if let changed = identities.first(where: { $0 != identity }) {
            checks.append(.fail("identity is stable", "identity changed between calls: '\(identity)' then '\(changed)'"))
        } else {
            checks.append(.pass("identity is stable", "'\(identity)' on every call"))
        }

        guard !answered.isEmpty else {
            let reason = "no request was answered (see `generate answers`)"
            checks.append(contentsOf: ["greedy answers repeat", "usage is reported", "batch matches single calls", "cancellation is prompt"].map { .skip($0, reason) })
            return checks
        }

        // Determinism of greedy decoding.
        var differing: [String] = []
        var compared = 0
        for index in requests.indices where requests[index].temperature == 0 {
            guard let first = firsts[index], let second = seconds[index] else { continue }
            compared += 1
            if first.text != second.text {
                differing.append("request \(index): greedy decoding gave different texts on two calls ('\(clip(first.text))' vs '\(clip(second.text))')")
            }
        }
        if !differing.isEmpty {
            checks.append(.fail("greedy answers repeat", listed(differing)))
        } else if compared == 0 {
            checks.append(.skip("greedy answers repeat", "no greedy request (temperature 0) was answered twice"))
        } else {
            checks.append(.pass("greedy answers repeat", "\(compared) greedy request\(compared == 1 ? "" : "s") gave the same text twice"))
        }

        // Usage and timing.
        var usageProblems: [String] = []
        for (index, result) in firsts.enumerated() {
            guard let result else { continue }
            usageProblems += problems(with: result, for: requests[index]).map { "request \(index): \($0)" }
        }
        if usageProblems.isEmpty {
            let usage = answered[0].usage
            checks.append(.pass("usage is reported", "e.g. \(usage.promptTokens) prompt + \(usage.completionTokens) completion tokens, latency \(String(format: "%.3f", answered[0].latencySeconds)) s"))
        } else {
            checks.append(.fail("usage is reported", listed(usageProblems)))
        }

        // Batches.
        if firsts.contains(where: { $0 == nil }) {
            checks.append(.skip("batch matches single calls", "not every request was answered singly"))
        } else {
            let batchLimit = timeouts.request * max(1, requests.count)
            switch await bounded(batchLimit, { try await generator.generate(batch: requests) }) {
            case .timedOut:
                checks.append(.fail("batch matches single calls", "generate(batch:) did not answer \(requests.count) requests within \(batchLimit.shortDescription)"))
            case .error(let error):
                checks.append(.fail("batch matches single calls", "generate(batch:) failed: \(describe(error))"))
            case .value(let batch):
                if batch.count != requests.count {
                    checks.append(.fail("batch matches single calls", "generate(batch:) returned \(batch.count) results for \(requests.count) requests"))
                } else {
                    let mismatches = requests.indices.compactMap { index -> String? in
                        guard requests[index].temperature == 0, let single = firsts[index], batch[index].text != single.text else { return nil }
                        return "request \(index): generate(batch:) gave '\(clip(batch[index].text))' but generate gave '\(clip(single.text))'"
                    }
                    checks.append(mismatches.isEmpty
                        ? .pass("batch matches single calls", "\(batch.count) results, same texts as single calls")
                        : .fail("batch matches single calls", listed(mismatches)))
                }
            }
        }

        checks.append(await cancellation(generator, requests[0], timeouts: timeouts))
        return checks
    }

    /// Problems found, in words; empty when the generator passes every check of
    /// `check(_:requests:timeouts:)`.
    public static func problems(of generator: any TextGenerator, requests: [GenerationRequest]? = nil) async -> [String] {
        await check(generator, requests: requests).failures.map { "\($0.name): \($0.detail)" }
    }

    /// What is wrong with one result's usage and timing.
    static func problems(with result: GenerationResult, for request: GenerationRequest) -> [String] {
        var problems: [String] = []
        let usage = result.usage
        if usage.promptTokens < 0 || usage.completionTokens < 0 || usage.cachedPromptTokens < 0 {
            problems.append("negative token counts (prompt \(usage.promptTokens), completion \(usage.completionTokens), cached \(usage.cachedPromptTokens))")
        }
        if usage.cachedPromptTokens > max(usage.promptTokens, 0) {
            problems.append("\(usage.cachedPromptTokens) cached prompt tokens but only \(usage.promptTokens) prompt tokens")
        }
        let promptIsEmpty = request.messages.allSatisfy { $0.content.isEmpty }
        if !promptIsEmpty, usage.promptTokens == 0 {
            problems.append("0 prompt tokens for a non-empty prompt (usage missing?)")
        }
        if !result.text.isEmpty, usage.completionTokens == 0 {
            problems.append("0 completion tokens for a non-empty answer (usage missing?)")
        }
        if !result.latencySeconds.isFinite || result.latencySeconds < 0 {
            problems.append("latency \(result.latencySeconds) is not a finite, non-negative number of seconds")
        }
        if let compute = result.computeSeconds, !compute.isFinite || compute < 0 {
            problems.append("compute seconds \(compute) is not a finite, non-negative number")
        }
        return problems
    }

    /// Starts a request, cancels its task once it is under way, and times how long the
    /// generator takes to stop.
    static func cancellation(_ generator: any TextGenerator, _ request: GenerationRequest, timeouts: ConformanceTimeouts) async -> ConformanceCheck {
        let name = "cancellation is prompt"
        let task = Task { try await generator.generate(request) }
        // Let the request get under way before cancelling it.
        try? await Task.sleep(for: .milliseconds(20))
        let clock = ContinuousClock()
        let cancelledAt = clock.now
        task.cancel()
        let outcome = await bounded(timeouts.cancellation) { try await task.value }
        let elapsed = clock.now - cancelledAt
        switch outcome {
        case .timedOut:
            return .fail(name, "generate was still running \(timeouts.cancellation.shortDescription) after its task was cancelled; check Task.isCancelled (or use withTaskCancellationHandler) in long work")
        case .value:
            return .pass(name, "the cancelled request returned within \(elapsed.shortDescription)")
        case .error(let error) where error is CancellationError || (error as? TallyError)?.code == .cancelled:
            return .pass(name, "the cancelled request threw CancellationError within \(elapsed.shortDescription)")
        case .error(let error):
            return .pass(name, "the cancelled request stopped within \(elapsed.shortDescription) with: \(describe(error))")
        }
    }

    struct Call {
        let result: GenerationResult?
        let problem: String?
    }

    static func call(_ generator: any TextGenerator, _ request: GenerationRequest, _ limit: Duration) async -> Call {
        switch await bounded(limit, { try await generator.generate(request) }) {
        case .value(let result): Call(result: result, problem: nil)
        case .error(let error): Call(result: nil, problem: "generate failed: \(describe(error))")
        case .timedOut: Call(result: nil, problem: "no answer within \(limit.shortDescription) (hung, or slower than the time allowed)")
        }
    }
}

/// An error in one line: `TallyError`s and `LocalizedError`s by their description.
func describe(_ error: any Error) -> String {
    if let error = error as? TallyError { return error.description }
    if let error = error as? any LocalizedError, let text = error.errorDescription { return text }
    return String(describing: error)
}

/// A model answer shortened for a check's detail.
func clip(_ text: String, _ limit: Int = 60) -> String {
    let flat = text.replacingOccurrences(of: "\n", with: "\\n")
    return flat.count > limit ? String(flat.prefix(limit)) + "…" : flat
}

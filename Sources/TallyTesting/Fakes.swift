import Foundation
import Synchronization
import TallyCore

/// Counts what fakes were asked to do, shared by every fake a `FakeBackendPlugin` makes.
public final class CallLog: Sendable {
    private let state = Mutex<State>(State())

    struct State {
        var generations: [String] = []  // identity of the generator per call
        var fineTunes: [String] = []    // job keys
        var validationSizes: [Int] = [] // validation examples per fineTune call
        var reopened: [String] = []     // artifacts reopened with generator(for:)
        var scored = 0
        var batches: [Int] = []
        var inFlight = 0
        var maxInFlight = 0
    }

    public init() {}

    /// Number of `generate` calls made on any generator.
    public var generationCount: Int { state.withLock { $0.generations.count } }
    /// Generator identities, one per call, in call order.
    public var generationIdentities: [String] { state.withLock { $0.generations } }
    /// Number of `fineTune` calls.
    public var fineTuneCount: Int { state.withLock { $0.fineTunes.count } }
    /// Validation examples handed to each `fineTune` call, in call order.
    public var validationSizes: [Int] { state.withLock { $0.validationSizes } }
    /// Number of `generator(for:)` calls.
    public var reopenCount: Int { state.withLock { $0.reopened.count } }
    /// Sizes of the `generate(batch:)` calls, in call order.
    public var batchSizes: [Int] { state.withLock { $0.batches } }
    /// Number of `crossEntropy` calls.
    public var scoreCount: Int { state.withLock { $0.scored } }
    /// The most `generate` calls that were running at once.
    public var maxConcurrentGenerations: Int { state.withLock { $0.maxInFlight } }

    func begin(_ identity: String) {
        state.withLock {
            $0.generations.append(identity)
            $0.inFlight += 1
            $0.maxInFlight = max($0.maxInFlight, $0.inFlight)
        }
    }
    func end() { state.withLock { $0.inFlight -= 1 } }
    func batched(_ size: Int) { state.withLock { $0.batches.append(size) } }
    func fineTuned(_ key: String, validation: Int = 0) {
        state.withLock {
            $0.fineTunes.append(key)
            $0.validationSizes.append(validation)
        }
    }
    func reopened(_ artifact: String) { state.withLock { $0.reopened.append(artifact) } }
    func scoredOnce() { state.withLock { $0.scored += 1 } }
}

/// What a fake model answers: the request and whether the model was fine-tuned.
public typealias FakeResponder = @Sendable (_ request: GenerationRequest, _ fineTuned: Bool) -> String

/// A deterministic `TextGenerator` (and `TextScorer`): answers with `responder`, reports
/// tokens as characters / 4, and can simulate latency so cancellation can be tested.
public struct FakeTextGenerator: TextGenerator, TextScorer {
    public let identity: String
    let fineTuned: Bool
    let responder: FakeResponder
    let latency: Duration
    let computeSeconds: Double?
    let log: CallLog
    let crossEntropyOffset: Double
    let failOn: String?

    /// - Parameters:
    ///   - identity: the model identity (part of ledger cache keys).
    ///   - fineTuned: passed to `responder`.
    ///   - latency: simulated time per call (slept, cancellation-insensitive).
    ///   - computeSeconds: reported local compute per call; nil for a "hosted" fake.
    ///   - crossEntropyOffset: added to every `crossEntropy` result (drift probes).
    ///   - failOn: calls whose last message contains this text throw `TallyError(.backend)`.
    public init(identity: String, fineTuned: Bool = false, latency: Duration = .zero, computeSeconds: Double? = nil, crossEntropyOffset: Double = 0, failOn: String? = nil, log: CallLog = CallLog(), responder: @escaping FakeResponder) {
        self.failOn = failOn
        self.identity = identity
        self.fineTuned = fineTuned
        self.responder = responder
        self.latency = latency
        self.computeSeconds = computeSeconds
        self.log = log
        self.crossEntropyOffset = crossEntropyOffset
    }

    public func generate(_ request: GenerationRequest) async throws -> GenerationResult {
        log.begin(identity)
        defer { log.end() }
        if latency > .zero {
            // Sleep without honouring cancellation: a real request in flight also completes.
            try? await Task.sleep(for: latency)
        }
        if let failOn, request.messages.last?.content.contains(failOn) ?? false {
            throw TallyError(code: .backend, message: "fake backend refuses requests containing '\(failOn)'")
        }
        let text = responder(request, fineTuned)
        let promptChars = request.messages.reduce(0) { $0 + $1.content.count }
        let usage = TokenUsage(promptTokens: max(1, promptChars / 4), completionTokens: max(1, text.count / 4))
        let seconds = Double(latency.components.seconds) + Double(latency.components.attoseconds) / 1e18
        return GenerationResult(text: text, usage: usage, latencySeconds: seconds, computeSeconds: computeSeconds)
    }

    /// Answers a batch (recorded in the log), one request after the other.
    public func generate(batch requests: [GenerationRequest]) async throws -> [GenerationResult] {
        log.batched(requests.count)
        var results: [GenerationResult] = []
        for request in requests { results.append(try await generate(request)) }
        return results
    }

    /// Cross-entropy that depends only on the text length (and the offset).
    public func crossEntropy(of text: String) async throws -> (nats: Double, tokens: Int) {
        log.scoredOnce()
        return (2.0 + crossEntropyOffset + Double(text.count % 7) / 10, max(1, text.count / 4))
    }
}

/// A deterministic `FineTuner`: "trains" instantly, records a falling loss curve, and
/// returns a generator whose identity includes the job key.
public struct FakeFineTuner: FineTuner {
    let baseIdentity: String
    let responder: FakeResponder
    let log: CallLog
    let wallSeconds: Double
    let billedUSD: Double?
    let computeSeconds: Double?
    let crossEntropyOffset: Double
    let canScore: Bool
    let sameTunedIdentity: Bool

    /// - Parameter sameTunedIdentity: every model tuned with one method reports one identity
    ///   whatever its job (like a plugin whose identity ignores the seed), so only the
    ///   runner's own cache keys can tell two seeds' calls apart.
    public init(baseIdentity: String, wallSeconds: Double = 12, billedUSD: Double? = nil, computeSeconds: Double? = nil, crossEntropyOffset: Double = 0.3, canScore: Bool = true, sameTunedIdentity: Bool = false, log: CallLog, responder: @escaping FakeResponder) {
        self.canScore = canScore
        self.sameTunedIdentity = sameTunedIdentity
        self.baseIdentity = baseIdentity
        self.responder = responder
        self.log = log
        self.wallSeconds = wallSeconds
        self.billedUSD = billedUSD
        self.computeSeconds = computeSeconds
        self.crossEntropyOffset = crossEntropyOffset
    }

    public func fineTune(_ request: FineTuneRequest, progress: @escaping @Sendable (ProgressEvent) -> Void) async throws -> FineTuneOutcome {
        log.fineTuned(request.jobKey, validation: request.validation.count)
        let steps = max(1, Int((Double(request.train.count) * request.options.epochs / Double(request.options.batchSize)).rounded(.up)))
        progress(.started(phase: "fake training", total: steps))
        var losses: [LossPoint] = []
        for step in 1...steps {
            losses.append(LossPoint(step: step, loss: 2.0 / Double(step)))
            progress(.advanced(phase: "fake training", completed: step, total: steps, detail: nil))
        }
        progress(.finished(phase: "fake training"))
        let tokens = request.train.reduce(0) { $0 + ($1.messages.reduce(0) { $0 + $1.content.count } + $1.completion.count) / 4 }
        return FineTuneOutcome(
            artifact: "fake-artifact-\(request.method.name)-\(request.jobKey.prefix(12))", wallSeconds: wallSeconds,
            trainedTokens: Int(Double(tokens) * request.options.epochs), steps: steps, trainLoss: losses, validationLoss: [],
            billedUSD: billedUSD, notes: ["fake fine-tune"])
    }

    public func generator(for outcome: FineTuneOutcome) async throws -> any TextGenerator {
        log.reopened(outcome.artifact)
        // `fake-artifact-<method>-<job key>`; without the job key the identity still tells
        // methods apart, but not two jobs of one method (such as two seeds).
        let artifact = sameTunedIdentity ? outcome.artifact.split(separator: "-").dropLast().joined(separator: "-") : outcome.artifact
        let tuned = FakeTextGenerator(identity: baseIdentity + "+" + artifact, fineTuned: true, computeSeconds: computeSeconds, crossEntropyOffset: crossEntropyOffset, log: log, responder: responder)
        return canScore ? tuned : NonScoringGenerator(tuned)
    }
}

/// A `BackendPlugin` serving fakes: `plugin: fake` in a recipe. Models named `local-…`
/// report compute seconds and keep data on the machine; others behave as hosted APIs.
public struct FakeBackendPlugin: BackendPlugin {
    public let name: String
    public let summary = "deterministic fake backend for tests"
    /// `fail_on`: calls whose last message contains this text throw; `can_score: false`:
    /// its models cannot score text (like a hosted API); `same_tuned_identity: true`: every
    /// model it fine-tunes with one method reports the same identity.
    public let settingKeys: Set<String> = ["max_concurrency", "latency_ms", "compute_s", "fail_on", "can_score", "batch_size", "same_tuned_identity"]
    public let fineTuningMethods: Set<String>
    public let log: CallLog
    let responder: FakeResponder

    /// - Parameters:
    ///   - name: the plugin name recipes use.
    ///   - fineTuningMethods: which adapting kinds it accepts.
    ///   - responder: what its models answer.
    public init(name: String = "fake", fineTuningMethods: Set<String> = ["lora", "full-finetune"], log: CallLog = CallLog(), responder: @escaping FakeResponder) {
        self.name = name
        self.fineTuningMethods = fineTuningMethods
        self.log = log
        self.responder = responder
    }

    public func validate(_ config: BackendConfig, environment: [String: String]) -> [ConfigIssue] {
        var problems: [ConfigIssue] = []
        if let value = config.settings["max_concurrency"], (Int(value) ?? 0) < 1 {
            problems.append(ConfigIssue(key: "max_concurrency", "max_concurrency must be a whole number of at least 1, not '\(value)'"))
        }
        if config.model == "broken" { problems.append(ConfigIssue(key: "model", "model 'broken' cannot be served")) }
        return problems
    }

    public func makeBackend(_ config: BackendConfig, environment: [String: String]) async throws -> Backend {
        let local = config.model.hasPrefix("local")
        let latency = Duration.milliseconds(Int(config.settings["latency_ms"] ?? "0") ?? 0)
        let compute = config.settings["compute_s"].flatMap(Double.init) ?? (local ? 0.5 : nil)
        let identity = "fake:\(config.model)"
        let failOn = config.settings["fail_on"]
        let canScore = config.settings["can_score"] != "false"
        let fake = FakeTextGenerator(identity: identity, latency: latency, computeSeconds: compute, failOn: failOn, log: log, responder: responder)
        let generator: any TextGenerator = canScore ? fake : NonScoringGenerator(fake)
        let tuner = fineTuningMethods.isEmpty ? nil : FakeFineTuner(baseIdentity: identity, billedUSD: local ? nil : 0.5, computeSeconds: compute, canScore: canScore, sameTunedIdentity: config.settings["same_tuned_identity"] == "true", log: log, responder: responder)
        return Backend(generator: generator, fineTuner: tuner, dataLeavesMachine: !local, maxConcurrency: Int(config.settings["max_concurrency"] ?? "") ?? 4, preferredBatchSize: Int(config.settings["batch_size"] ?? "") ?? 1)
    }
}

/// Hides a generator's `TextScorer` conformance, as a hosted API would not have one.
public struct NonScoringGenerator: TextGenerator {
    let base: any TextGenerator
    public init(_ base: any TextGenerator) { self.base = base }
    public var identity: String { base.identity }
    public func generate(_ request: GenerationRequest) async throws -> GenerationResult { try await base.generate(request) }
}

import Foundation
import Synchronization
import TallyCore
import TallyTesting
import Testing

/// The conformance suites pass a well-behaved plugin (TallyTesting's fakes) and catch each
/// kind of misbehaviour they promise to catch, within their time limits.
@Suite("Conformance suites")
struct ConformanceTests {
    /// Limits for well-behaved fakes. Generous: in a full parallel test run on two vCPUs the
    /// cooperative pool can be busy for tens of seconds, and a limit that fires there would
    /// fail a plugin that did nothing wrong.
    static let quick = ConformanceTimeouts(request: .seconds(120), setup: .seconds(240), cancellation: .seconds(30))

    func outcome(_ name: String, in checks: [ConformanceCheck]) throws -> ConformanceCheck {
        try #require(checks.first { $0.name == name }, "no check named '\(name)' in \(checks.map(\.name))")
    }

    @Test("the fake backend passes every check, fine-tuning included")
    func fakeBackendPasses() async throws {
        let sandbox = try Sandbox()
        let plugin = FakeBackendPlugin { request, tuned in (tuned ? "tuned: " : "") + (request.messages.last?.content ?? "") }
        let config = BackendConfig(name: "fake", plugin: "fake", model: "local-m", recipeDirectory: sandbox.recipeDirectory)
        let checks = await BackendConformance.check(
            plugin: plugin, config: config, environment: [:], fineTuneRequest: sandbox.fineTuneRequest(), timeouts: Self.quick)
        #expect(checks.failures.isEmpty, Comment(rawValue: checks.failureSummary ?? ""))
        #expect(checks.filter(\.skipped).isEmpty, "\(checks.filter(\.skipped))")
        #expect(checks.map(\.name) == [
            "validate has no side effects", "configuration is valid", "backend builds",
            "generate answers", "identity is stable", "greedy answers repeat", "usage is reported", "batch matches single calls", "cancellation is prompt",
            "identity survives a restart", "fine-tune finishes", "reopened artifact keeps its identity", "tuned model answers", "rerun resumes", "writes only in its work directory",
        ])
    }

    @Test("a backend without a fine-tuner skips the fine-tuning checks and passes")
    func noFineTuner() async throws {
        let sandbox = try Sandbox()
        let plugin = FakeBackendPlugin(fineTuningMethods: []) { _, _ in "ok" }
        let config = BackendConfig(name: "fake", plugin: "fake", model: "m", recipeDirectory: sandbox.recipeDirectory)
        let checks = await BackendConformance.check(plugin: plugin, config: config, environment: [:], fineTuneRequest: sandbox.fineTuneRequest(), timeouts: Self.quick)
        #expect(checks.failures.isEmpty, Comment(rawValue: checks.failureSummary ?? ""))
        #expect(try outcome("fine-tuning", in: checks).skipped)
    }

    @Test("an invalid configuration stops the checks with validate's errors")
    func invalidConfiguration() async throws {
        let sandbox = try Sandbox()
        let plugin = FakeBackendPlugin { _, _ in "ok" }
        let config = BackendConfig(name: "fake", plugin: "fake", model: "broken", recipeDirectory: sandbox.recipeDirectory)
        let checks = await BackendConformance.check(plugin: plugin, config: config, environment: [:], timeouts: Self.quick)
        let valid = try outcome("configuration is valid", in: checks)
        #expect(valid.failed && valid.detail.contains("model 'broken' cannot be served"))
        #expect(checks.last == valid)
    }

    @Test("an identity that changes between calls fails")
    func changingIdentity() async throws {
        let checks = await GeneratorConformance.check(Misbehaving(.changingIdentity), timeouts: Self.quick)
        let check = try outcome("identity is stable", in: checks)
        #expect(check.failed && check.detail.contains("identity changed between calls"), "\(check)")
    }

    @Test("different answers to the same greedy request fail")
    func nondeterministic() async throws {
        let checks = await GeneratorConformance.check(Misbehaving(.nondeterministic), timeouts: Self.quick)
        let check = try outcome("greedy answers repeat", in: checks)
        #expect(check.failed && check.detail.contains("greedy decoding gave different texts"), "\(check)")
    }

    @Test("negative or missing usage fails", arguments: [Misbehaving.Fault.negativeUsage, .missingUsage])
    func badUsage(fault: Misbehaving.Fault) async throws {
        let checks = await GeneratorConformance.check(Misbehaving(fault), timeouts: Self.quick)
        let check = try outcome("usage is reported", in: checks)
        #expect(check.failed, "\(check)")
        #expect(check.detail.contains(fault == .negativeUsage ? "negative token counts" : "0 prompt tokens for a non-empty prompt"), "\(check)")
    }

    @Test("an error from generate (such as a malformed protocol message) fails with its text")
    func throwingGenerator() async throws {
        let checks = await GeneratorConformance.check(Misbehaving(.throwsWrongShape), timeouts: Self.quick)
        let check = try outcome("generate answers", in: checks)
        #expect(check.failed && check.detail.contains("answered `generate` with a result of the wrong shape"), "\(check)")
        #expect(try outcome("greedy answers repeat", in: checks).skipped)
    }

    @Test("a generator that hangs fails within the time limit")
    func hangingGenerator() async throws {
        let clock = ContinuousClock()
        let start = clock.now
        let checks = await GeneratorConformance.check(
            Misbehaving(.hangs), requests: [GenerationRequest(messages: [.user("hi")])],
            timeouts: ConformanceTimeouts(request: .milliseconds(300), setup: .seconds(1), cancellation: .milliseconds(300)))
        let check = try outcome("generate answers", in: checks)
        #expect(check.failed && check.detail.contains("no answer within 300 ms"), "\(check)")
        // The generator never answers: finishing at all shows the limit fired (bounded
        // generously, for a loaded machine).
        #expect(clock.now - start < .seconds(300))
    }

    @Test("a generator that ignores cancellation fails the cancellation check")
    func ignoresCancellation() async throws {
        let checks = await GeneratorConformance.check(
            Misbehaving(.ignoresCancellation), requests: [GenerationRequest(messages: [.user("hi")])],
            timeouts: ConformanceTimeouts(request: .seconds(120), setup: .seconds(240), cancellation: .milliseconds(200)))
        let check = try outcome("cancellation is prompt", in: checks)
        #expect(check.failed && check.detail.contains("still running"), "\(check)")
        #expect(try outcome("generate answers", in: checks).passed)
    }

    @Test("a fine-tuner whose reopened artifact has another identity fails")
    func reopenedIdentityChanges() async throws {
        let sandbox = try Sandbox()
        let checks = await FineTunerConformance.check(MisbehavingTuner(.reopensAsAnotherModel), request: sandbox.fineTuneRequest(), baseIdentity: "base", timeouts: Self.quick)
        let check = try outcome("reopened artifact keeps its identity", in: checks)
        #expect(check.failed && check.detail.contains("two identities"), "\(check)")
    }

    @Test("a fine-tuner whose tuned model keeps the base identity fails")
    func tunedIsBase() async throws {
        let sandbox = try Sandbox()
        let checks = await FineTunerConformance.check(MisbehavingTuner(.tunedKeepsBaseIdentity), request: sandbox.fineTuneRequest(), baseIdentity: "base", timeouts: Self.quick)
        let check = try outcome("reopened artifact keeps its identity", in: checks)
        #expect(check.failed && check.detail.contains("base model's identity"), "\(check)")
    }

    @Test("a fine-tuner that trains again instead of resuming fails")
    func noResume() async throws {
        let sandbox = try Sandbox()
        let checks = await FineTunerConformance.check(MisbehavingTuner(.retrains), request: sandbox.fineTuneRequest(), timeouts: Self.quick)
        let check = try outcome("rerun resumes", in: checks)
        #expect(check.failed && check.detail.contains("another outcome"), "\(check)")
    }

    @Test("a fine-tuner that writes next to its work directory fails")
    func writesOutside() async throws {
        let sandbox = try Sandbox()
        let checks = await FineTunerConformance.check(MisbehavingTuner(.writesOutside), request: sandbox.fineTuneRequest(), timeouts: Self.quick)
        let check = try outcome("writes only in its work directory", in: checks)
        #expect(check.failed && check.detail.contains("created") && check.detail.contains("stray.txt"), "\(check)")
        // What it writes inside its work directory is its own business.
        #expect(!check.detail.contains("inside.txt"))
    }

    @Test("validate with side effects fails", arguments: [SideEffectPlugin.Effect.writesFile, .changesIssues])
    func validateSideEffects(effect: SideEffectPlugin.Effect) async throws {
        let sandbox = try Sandbox()
        let config = BackendConfig(name: "x", plugin: "side", model: "m", recipeDirectory: sandbox.recipeDirectory)
        let checks = await BackendConformance.check(plugin: SideEffectPlugin(effect: effect), config: config, environment: [:], timeouts: Self.quick)
        let check = try outcome("validate has no side effects", in: checks)
        #expect(check.failed, "\(check)")
        #expect(check.detail.contains(effect == .writesFile ? "it wrote files: created" : "two calls returned different issues"), "\(check)")
    }

    @Test("a backend whose identity changes when it is built again fails")
    func identityChangesOnRestart() async throws {
        let sandbox = try Sandbox()
        let config = BackendConfig(name: "x", plugin: "drift", model: "m", recipeDirectory: sandbox.recipeDirectory)
        let checks = await BackendConformance.check(plugin: RestartPlugin(), config: config, environment: [:], timeouts: Self.quick)
        let check = try outcome("identity survives a restart", in: checks)
        #expect(check.failed && check.detail.contains("has identity 'drift@2'"), "\(check)")
    }

    @Test("a backend that recorded protocol violations fails, one that recorded none passes")
    func recordedViolations() async throws {
        let sandbox = try Sandbox()
        let config = BackendConfig(name: "x", plugin: "drift", model: "m", recipeDirectory: sandbox.recipeDirectory)
        let clean = await BackendConformance.check(plugin: RestartPlugin(violations: []), config: config, environment: [:], timeouts: Self.quick)
        #expect(try outcome("messages follow the protocol", in: clean).passed)
        let dirty = await BackendConformance.check(plugin: RestartPlugin(violations: ["a message: is not JSON"]), config: config, environment: [:], timeouts: Self.quick)
        let check = try outcome("messages follow the protocol", in: dirty)
        #expect(check.failed && check.detail.contains("1 message broke the protocol: a message: is not JSON"), "\(check)")
        // Backends that record nothing have no such check.
        let fake = await BackendConformance.check(plugin: FakeBackendPlugin { _, _ in "ok" }, config: config, environment: [:], timeouts: Self.quick)
        #expect(!fake.contains { $0.name == "messages follow the protocol" })
    }

    @Test("a backend that cannot be built stops the checks")
    func backendFails() async throws {
        let sandbox = try Sandbox()
        let config = BackendConfig(name: "x", plugin: "side", model: "m", recipeDirectory: sandbox.recipeDirectory)
        let checks = await BackendConformance.check(plugin: SideEffectPlugin(effect: .none), config: config, environment: [:], timeouts: Self.quick)
        let check = try outcome("backend builds", in: checks)
        #expect(check.failed && check.detail.contains("no model here"), "\(check)")
        #expect(checks.last == check)
    }
}

/// A temporary directory with a recipe directory and room for a fine-tuning job.
final class Sandbox: Sendable {
    let root: URL
    var recipeDirectory: URL { root.appending(path: "recipe") }

    init() throws {
        root = FileManager.default.temporaryDirectory.appending(path: "tally-conformance-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root.appending(path: "recipe"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: root.appending(path: "jobs"), withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: root) }

    func fineTuneRequest() -> FineTuneRequest {
        let train = [
            TrainingExample(messages: [.user("Review: great")], completion: "positive"),
            TrainingExample(messages: [.user("Review: dull")], completion: "negative"),
        ]
        return FineTuneRequest(
            method: .lora(LoRAOptions(rank: 2)), options: TrainingOptions(maxSteps: 1, batchSize: 2), train: train, validation: [],
            workDirectory: root.appending(path: "jobs/job"), jobKey: "conformance-job")
    }
}

/// A generator with one fault.
struct Misbehaving: TextGenerator {
    enum Fault: Sendable {
        case changingIdentity, nondeterministic, negativeUsage, missingUsage, throwsWrongShape, hangs, ignoresCancellation
    }
    let fault: Fault
    let calls = Counter()
    init(_ fault: Fault) { self.fault = fault }

    var identity: String { fault == .changingIdentity ? "model-\(calls.value)" : "model" }

    func generate(_ request: GenerationRequest) async throws -> GenerationResult {
        let call = calls.next()
        switch fault {
        case .throwsWrongShape:
            throw TallyError(code: .backend, message: "the exec plugin 'x' answered `generate` with a result of the wrong shape; see docs/plugins.md")
        case .hangs:
            // Like a program that stopped answering: the call never returns by itself.
            while true { try await Task.sleep(for: .seconds(60)) }
        case .ignoresCancellation where call > 3:
            // The cancellation check's call (after two single calls and a batch of one): it
            // runs until its task is cancelled, then goes on for a second as blocking work
            // that never looks at Task.isCancelled would.
            while !Task.isCancelled { usleep(2_000) }
            let end = ContinuousClock.now + .seconds(1)
            while ContinuousClock.now < end { usleep(5_000) }
        default: break
        }
        let text = fault == .nondeterministic ? "answer \(call)" : "answer"
        let usage: TokenUsage = switch fault {
        case .negativeUsage: TokenUsage(promptTokens: -3, completionTokens: 1)
        case .missingUsage: TokenUsage()
        default: TokenUsage(promptTokens: 5, completionTokens: 1)
        }
        return GenerationResult(text: text, usage: usage, latencySeconds: 0.001)
    }
}

/// A fine-tuner with one fault.
struct MisbehavingTuner: FineTuner {
    enum Fault: Sendable { case reopensAsAnotherModel, tunedKeepsBaseIdentity, retrains, writesOutside }
    let fault: Fault
    let calls = Counter()
    init(_ fault: Fault) { self.fault = fault }

    func fineTune(_ request: FineTuneRequest, progress: @escaping @Sendable (ProgressEvent) -> Void) async throws -> FineTuneOutcome {
        let run = calls.next()
        if fault == .writesOutside {
            try Data("x".utf8).write(to: request.workDirectory.appending(path: "inside.txt"))
            try Data("x".utf8).write(to: request.workDirectory.deletingLastPathComponent().appending(path: "stray.txt"))
        }
        let artifact = fault == .retrains ? "artifact-\(run)" : "artifact"
        return FineTuneOutcome(artifact: artifact, wallSeconds: 0, trainedTokens: 4, steps: 1, trainLoss: [LossPoint(step: 1, loss: 1)], validationLoss: [])
    }

    func generator(for outcome: FineTuneOutcome) async throws -> any TextGenerator {
        let identity = switch fault {
        case .reopensAsAnotherModel: "base+\(outcome.artifact)@\(calls.next())"
        case .tunedKeepsBaseIdentity: "base"
        default: "base+\(outcome.artifact)"
        }
        return FakeTextGenerator(identity: identity) { _, _ in "tuned" }
    }
}

/// A plugin whose `validate` has a side effect, or (`.none`) whose backend cannot be built.
struct SideEffectPlugin: BackendPlugin {
    enum Effect: Sendable { case none, writesFile, changesIssues }
    let effect: Effect
    let calls = Counter()
    var name: String { "side" }
    var summary: String { "misbehaves in validate" }
    var settingKeys: Set<String> { [] }

    func validate(_ config: BackendConfig, environment: [String: String]) -> [ConfigIssue] {
        let call = calls.next()
        switch effect {
        case .none: return []
        case .writesFile:
            try? Data("cache".utf8).write(to: config.recipeDirectory.appending(path: "validated.cache"))
            return []
        case .changesIssues:
            return [ConfigIssue(.warning, key: "model", "checked \(call) times")]
        }
    }

    func makeBackend(_ config: BackendConfig, environment: [String: String]) async throws -> Backend {
        throw TallyError(code: .backend, message: "no model here")
    }
}

/// A plugin whose every backend has a new identity (`drift@1`, `drift@2`, ...), or, with
/// `violations`, a stable one that records those protocol violations.
struct RestartPlugin: BackendPlugin {
    let builds = Counter()
    var violations: [String]?
    var name: String { "drift" }
    var summary: String { "a new identity per start" }
    var settingKeys: Set<String> { [] }

    func makeBackend(_ config: BackendConfig, environment: [String: String]) async throws -> Backend {
        let identity = violations == nil ? "drift@\(builds.next())" : "drift"
        let generator = RecordingGenerator(base: FakeTextGenerator(identity: identity) { _, _ in "ok" }, violations: violations ?? [])
        return Backend(generator: generator, fineTuner: nil, dataLeavesMachine: false, maxConcurrency: 1)
    }
}

/// A generator that reports recorded protocol violations.
struct RecordingGenerator: TextGenerator, ViolationRecording {
    let base: FakeTextGenerator
    let violations: [String]
    var identity: String { base.identity }
    func generate(_ request: GenerationRequest) async throws -> GenerationResult { try await base.generate(request) }
    var recordedViolations: (count: Int, descriptions: [String]) { (violations.count, violations) }
}

/// A thread-safe call counter.
final class Counter: Sendable {
    private let count = Mutex(0)
    var value: Int { count.withLock { $0 } }
    func next() -> Int { count.withLock { $0 += 1; return $0 } }
}

import Foundation
import TallyCore

/// Checks a `BackendPlugin` end to end, as `tally plugins check` does: validation, building
/// the backend, its generator (`GeneratorConformance`) and, when it fine-tunes and a
/// request is given, its fine-tuner (`FineTunerConformance`).
///
/// ```swift
/// @Test func myPluginConforms() async throws {
///     let directory = FileManager.default.temporaryDirectory.appending(path: UUID().uuidString)
///     try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
///     let config = BackendConfig(name: "mine", plugin: "mine", model: "small", recipeDirectory: directory)
///     let checks = await BackendConformance.check(plugin: MyPlugin(), config: config, environment: ProcessInfo.processInfo.environment)
///     #expect(checks.failures.isEmpty, Comment(rawValue: checks.failureSummary ?? ""))
/// }
/// ```
///
/// The plugin's own checks come first:
/// - `validate has no side effects`: two `validate` calls return the same issues, create or
///   change nothing in the recipe's directory (or under `watching`), and leave the process
///   environment as it was;
/// - `configuration is valid`: `validate` reports no errors (warnings are listed);
/// - `backend builds`: `makeBackend` returns within `timeouts.setup`;
///
/// then the generator's checks; `identity survives a restart` (a second backend built from
/// the same configuration reports the same identity); the fine-tuner's checks (or one
/// skipped `fine-tuning` check saying why there are none); for a backend that can embed
/// (`Backend.embedder`), the embedder's checks (`EmbedderConformance`); and, for a backend whose generator
/// records protocol violations (`ViolationRecording`, as the `exec` plugin's does),
/// `messages follow the protocol`. When the configuration is invalid or the backend cannot
/// be built, the later checks are not run.
public enum BackendConformance {
    /// Runs the checks.
    /// - Parameters:
    ///   - plugin: the plugin under test.
    ///   - config: a backend entry as a recipe would configure it.
    ///   - environment: the environment the plugin sees (API keys, `PATH`).
    ///   - requests: requests for the generator checks; `GeneratorConformance.defaultRequests`
    ///     when nil.
    ///   - fineTuneRequest: a small job for the fine-tuner checks (see `FineTunerConformance`);
    ///     nil skips them.
    ///   - watching: more directories in which validation and fine-tuning may change
    ///     nothing (the current directory).
    ///   - timeouts: how long each step may take.
    /// - Returns: one `ConformanceCheck` per check; never throws.
    public static func check(plugin: any BackendPlugin, config: BackendConfig, environment: [String: String], requests: [GenerationRequest]? = nil, fineTuneRequest: FineTuneRequest? = nil, watching: [URL] = [], timeouts: ConformanceTimeouts = ConformanceTimeouts()) async -> [ConformanceCheck] {
        var checks: [ConformanceCheck] = []
        let watched = [config.recipeDirectory] + watching

        // Validation: twice, with nothing written and the environment untouched.
        let filesBefore = DirectorySnapshot.take(watched)
        let environmentBefore = ProcessInfo.processInfo.environment
        let validations = await bounded(timeouts.request * 2) {
            (plugin.validate(config, environment: environment), plugin.validate(config, environment: environment))
        }
        let environmentAfter = ProcessInfo.processInfo.environment
        let fileChanges = DirectorySnapshot.take(watched).changes(since: filesBefore)
        let issues: [ConfigIssue]
        switch validations {
        case .timedOut:
            checks.append(.fail("validate has no side effects", "validate did not return within \(timeouts.request.shortDescription); it must not load models or reach the network"))
            return checks
        case .error(let error):
            checks.append(.fail("validate has no side effects", "validate failed: \(describe(error))"))
            return checks
        case .value(let pair):
            issues = pair.0
            var problems: [String] = []
            if pair.0 != pair.1 {
                problems.append("two calls returned different issues ([\(pair.0.map(\.description).joined(separator: "; "))] then [\(pair.1.map(\.description).joined(separator: "; "))])")
            }
            if !fileChanges.isEmpty { problems.append("it wrote files: \(listed(fileChanges))") }
            let changedVariables = Set(environmentBefore.keys).union(environmentAfter.keys).filter { environmentBefore[$0] != environmentAfter[$0] }.sorted()
            if !changedVariables.isEmpty { problems.append("it changed the process environment: \(listed(changedVariables))") }
            checks.append(problems.isEmpty
                ? .pass("validate has no side effects", "two calls, the same \(issues.count) issue\(issues.count == 1 ? "" : "s"), nothing written, environment untouched")
                : .fail("validate has no side effects", problems.joined(separator: "; ")))
        }

        let errors = issues.filter { $0.severity == .error }
        let warnings = issues.filter { $0.severity != .error }
        guard errors.isEmpty else {
            checks.append(.fail("configuration is valid", "validate reports: " + errors.map(\.description).joined(separator: "; ")))
            return checks
        }
        checks.append(.pass("configuration is valid", warnings.isEmpty ? "no issues" : "warnings: " + warnings.map(\.description).joined(separator: "; ")))

        // The backend.
        let backend: Backend
        let clock = ContinuousClock()
        let start = clock.now
        switch await bounded(timeouts.setup, { try await plugin.makeBackend(config, environment: environment) }) {
        case .value(let value):
            backend = value
            checks.append(.pass("backend builds", "in \((clock.now - start).shortDescription); \(backend.fineTuner == nil ? "no fine-tuner" : "with a fine-tuner"), concurrency \(backend.maxConcurrency)"))
        case .error(let error):
            checks.append(.fail("backend builds", "makeBackend failed: \(describe(error))"))
            return checks
        case .timedOut:
            checks.append(.fail("backend builds", "makeBackend did not return within \(timeouts.setup.shortDescription)"))
            return checks
        }

        checks += await GeneratorConformance.check(backend.generator, requests: requests, timeouts: timeouts)
        checks.append(await rebuild(plugin: plugin, config: config, environment: environment, identity: backend.generator.identity, timeouts: timeouts))

        if let tuner = backend.fineTuner, let fineTuneRequest {
            checks += await FineTunerConformance.check(
                tuner, request: fineTuneRequest, baseIdentity: backend.generator.identity, probe: requests?.first,
                watching: watched, timeouts: timeouts)
        } else {
            checks.append(.skip("fine-tuning", backend.fineTuner == nil ? "the backend has no fine-tuner" : "no fine-tuning request given"))
        }

        if let embedder = backend.embedder {
            checks += await EmbedderConformance.check(embedder, timeouts: timeouts)
        }

        if let recording = backend.generator as? any ViolationRecording {
            let (count, recorded) = recording.recordedViolations
            var seen = Set<String>()
            let descriptions = recorded.filter { seen.insert($0).inserted }
            checks.append(count == 0
                ? .pass("messages follow the protocol", "no message broke the protocol")
                : .fail("messages follow the protocol", "\(count) message\(count == 1 ? "" : "s") broke the protocol: \(listed(descriptions))"))
        }
        return checks
    }

    /// Builds the backend again from the same configuration (as the next `tally run` would):
    /// its model must have the same identity, or the ledger's cache never hits.
    static func rebuild(plugin: any BackendPlugin, config: BackendConfig, environment: [String: String], identity: String, timeouts: ConformanceTimeouts) async -> ConformanceCheck {
        let name = "identity survives a restart"
        switch await bounded(timeouts.setup, { try await plugin.makeBackend(config, environment: environment).generator.identity }) {
        case .value(let again) where again == identity:
            return .pass(name, "a second backend from the same configuration has the same identity")
        case .value(let again):
            return .fail(name, "a second backend from the same configuration has identity '\(again)', the first '\(identity)'; answers cached for one are never reused for the other")
        case .error(let error):
            return .fail(name, "building the backend a second time failed: \(describe(error))")
        case .timedOut:
            return .fail(name, "building the backend a second time did not finish within \(timeouts.setup.shortDescription)")
        }
    }
}

import Foundation
import TallyCore

/// Checks any `FineTuner` against what the runner relies on: jobs that resume, artifacts
/// that reopen as the same model, and nothing written outside the job's work directory.
///
/// Give the request a work directory inside a fresh temporary directory: everything else
/// in that temporary directory (and in `watching`) must stay as it was.
///
/// ```swift
/// @Test func myFineTunerConforms() async throws {
///     let sandbox = FileManager.default.temporaryDirectory.appending(path: UUID().uuidString)
///     let request = FineTuneRequest(method: .lora(LoRAOptions(rank: 2)), options: TrainingOptions(maxSteps: 1, batchSize: 2),
///                                   train: examples, validation: [], workDirectory: sandbox.appending(path: "job"), jobKey: "check")
///     let checks = await FineTunerConformance.check(MyFineTuner(), request: request, baseIdentity: "mine:base")
///     #expect(checks.failures.isEmpty, Comment(rawValue: checks.failureSummary ?? ""))
/// }
/// ```
///
/// The checks, in order:
/// - `fine-tune finishes`: `fineTune` returns an outcome within `timeouts.setup`;
/// - `reopened artifact keeps its identity`: `generator(for:)` twice gives the same
///   non-empty identity, different from the base model's (`baseIdentity`, when given);
/// - `tuned model answers`: the reopened generator answers `probe`;
/// - `rerun resumes`: the same request again (same work directory) finishes with the same
///   artifact and step count, and its artifact reopens with the same identity;
/// - `writes only in its work directory`: nothing was created, changed or removed next to
///   the work directory or under `watching`.
public enum FineTunerConformance {
    /// Runs the checks.
    /// - Parameters:
    ///   - tuner: the fine-tuner under test.
    ///   - request: a small job (a few rows, one or two steps); its work directory is created
    ///     when missing, as the runner does.
    ///   - baseIdentity: the identity of the model being tuned, when known.
    ///   - probe: the request the tuned model must answer; the first default request when nil.
    ///   - watching: more directories in which nothing may change (a recipe's directory).
    ///   - timeouts: `setup` bounds `fineTune` and `generator(for:)`; `request` bounds the probe.
    /// - Returns: one `ConformanceCheck` per check, in the order above.
    public static func check(_ tuner: any FineTuner, request: FineTuneRequest, baseIdentity: String? = nil, probe: GenerationRequest? = nil, watching: [URL] = [], timeouts: ConformanceTimeouts = ConformanceTimeouts()) async -> [ConformanceCheck] {
        var checks: [ConformanceCheck] = []
        let workDirectory = request.workDirectory
        let watched = [workDirectory.deletingLastPathComponent()] + watching
        do {
            try FileManager.default.createDirectory(at: workDirectory, withIntermediateDirectories: true)
        } catch {
            return [.fail("fine-tune finishes", "cannot create the work directory \(workDirectory.path): \(describe(error))")]
        }
        let before = DirectorySnapshot.take(watched, excluding: [workDirectory])

        // The job.
        let clock = ContinuousClock()
        let start = clock.now
        let first = await bounded(timeouts.setup) { try await tuner.fineTune(request) { _ in } }
        let took = clock.now - start
        var outcome: FineTuneOutcome?
        switch first {
        case .value(let value):
            outcome = value
            checks.append(.pass("fine-tune finishes", "\(value.steps) step\(value.steps == 1 ? "" : "s") in \(took.shortDescription); artifact \(value.artifact)"))
        case .error(let error):
            checks.append(.fail("fine-tune finishes", "fineTune failed: \(describe(error))"))
        case .timedOut:
            checks.append(.fail("fine-tune finishes", "fineTune did not finish within \(timeouts.setup.shortDescription)"))
        }

        if let outcome {
            // Reopening.
            var tuned: (any TextGenerator)?
            let opened = await (reopen(tuner, outcome, timeouts), reopen(tuner, outcome, timeouts))
            switch opened {
            case (.success(let a), .success(let b)):
                tuned = a
                if a.identity.isEmpty {
                    checks.append(.fail("reopened artifact keeps its identity", "the tuned model's identity is empty"))
                } else if a.identity != b.identity {
                    checks.append(.fail("reopened artifact keeps its identity", "reopening the artifact twice gave two identities: '\(a.identity)' and '\(b.identity)'"))
                } else if let baseIdentity, a.identity == baseIdentity {
                    checks.append(.fail("reopened artifact keeps its identity", "the tuned model has the base model's identity '\(baseIdentity)', so the ledger would reuse the base model's answers"))
                } else {
                    checks.append(.pass("reopened artifact keeps its identity", "'\(a.identity)' both times"))
                }
            case (.failure(let problem), _), (_, .failure(let problem)):
                checks.append(.fail("reopened artifact keeps its identity", problem.description))
            }

            // The tuned model answers.
            if let tuned {
                let call = await GeneratorConformance.call(tuned, probe ?? GeneratorConformance.defaultRequests[0], timeouts.request)
                if let result = call.result {
                    checks.append(.pass("tuned model answers", "'\(clip(result.text))'"))
                } else {
                    checks.append(.fail("tuned model answers", call.problem ?? "no answer"))
                }
            } else {
                checks.append(.skip("tuned model answers", "the artifact did not reopen"))
            }

            // Resuming: the same job again.
            switch await bounded(timeouts.setup, { try await tuner.fineTune(request) { _ in } }) {
            case .timedOut:
                checks.append(.fail("rerun resumes", "running the finished job again did not finish within \(timeouts.setup.shortDescription)"))
            case .error(let error):
                checks.append(.fail("rerun resumes", "running the finished job again failed: \(describe(error))"))
            case .value(let again):
                if again.artifact != outcome.artifact || again.steps != outcome.steps {
                    checks.append(.fail("rerun resumes", "the same job run again gave another outcome (artifact \(again.artifact), \(again.steps) steps; first: \(outcome.artifact), \(outcome.steps) steps); a rerun must resume from the work directory"))
                } else {
                    switch await reopen(tuner, again, timeouts) {
                    case .failure(let problem):
                        checks.append(.fail("rerun resumes", "the rerun's artifact does not reopen: \(problem.description)"))
                    case .success(let reopened):
                        if let tuned, reopened.identity != tuned.identity {
                            checks.append(.fail("rerun resumes", "the rerun's model has identity '\(reopened.identity)', the first run's '\(tuned.identity)'"))
                        } else {
                            checks.append(.pass("rerun resumes", "same artifact and steps, same identity"))
                        }
                    }
                }
            }
        } else {
            let reason = "the fine-tune did not finish (see `fine-tune finishes`)"
            checks.append(contentsOf: ["reopened artifact keeps its identity", "tuned model answers", "rerun resumes"].map { .skip($0, reason) })
        }

        // Writes.
        let after = DirectorySnapshot.take(watched, excluding: [workDirectory])
        let changes = after.changes(since: before)
        var seen = Set<String>()
        let places = watched.map(DirectorySnapshot.canonicalPath).filter { seen.insert($0).inserted }.joined(separator: ", ")
        if changes.isEmpty {
            checks.append(.pass("writes only in its work directory", "nothing changed in \(places) outside \(workDirectory.lastPathComponent)/"))
        } else {
            checks.append(.fail("writes only in its work directory", "wrote outside the work directory: \(listed(changes))"))
        }
        return checks
    }

    static func reopen(_ tuner: any FineTuner, _ outcome: FineTuneOutcome, _ timeouts: ConformanceTimeouts) async -> Result<any TextGenerator, Problem> {
        switch await bounded(timeouts.setup, { try await tuner.generator(for: outcome) }) {
        case .value(let generator): .success(generator)
        case .error(let error): .failure(Problem("generator(for:) failed: \(describe(error))"))
        case .timedOut: .failure(Problem("generator(for:) did not return within \(timeouts.setup.shortDescription)"))
        }
    }
}

/// A failure's text, as an `Error` for `Result`.
struct Problem: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

import Foundation
import GRDB
import TallyCore
import Testing

/// The shipped quickstart (`Recipes/quickstart.yaml`) end to end through the real `tally`
/// on SmolLM2-135M-Instruct and the VADER movie reviews, reduced with `--set` to a handful
/// of test reviews and probe items and one optimiser step per fine-tune; then the report's
/// numbers are recomputed from what the run stored in its SQLite ledger.
@Suite(.serialized) struct QuickstartTests {
    static let testExamples = 6
    static let trainExamples = 8

    /// Rows of the run's ledger, read with plain SQL (not through `Ledger`).
    struct LedgerRows {
        struct StoredPrediction {
            let index: Int
            let exampleID: String
            let callKey: String
            let prediction: Prediction
        }
        struct Call {
            let latency: Double
            let compute: Double?
            let promptTokens: Int
            let completionTokens: Int
        }
        var status = ""
        var recipeName = ""
        var predictions: [String: [StoredPrediction]] = [:]
        var calls: [String: Call] = [:]
        var fineTunes: [String: (status: String, outcome: FineTuneOutcome?)] = [:]
        var probes: [String: [String: ProbeMeasurement]] = [:]  // subject -> probe -> measurement

        /// Reads what the ledger at `ledger` holds for run `runID`.
        static func read(ledger: URL, runID: String) throws -> LedgerRows {
            try DatabaseQueue(path: ledger.path).read { db in
                var rows = LedgerRows()
                let run = try #require(try Row.fetchOne(db, sql: "SELECT status, recipe_name FROM runs WHERE id = ?", arguments: [runID]))
                rows.status = run["status"]
                rows.recipeName = run["recipe_name"]
                for row in try Row.fetchAll(db, sql: "SELECT strategy, example_index, example_id, call_key, prediction FROM predictions WHERE run_id = ? ORDER BY example_index", arguments: [runID]) {
                    let text: String = row["prediction"]
                    let prediction = try CanonicalJSON.decode(Prediction.self, from: Data(text.utf8))
                    rows.predictions[row["strategy"], default: []].append(StoredPrediction(index: row["example_index"], exampleID: row["example_id"], callKey: row["call_key"], prediction: prediction))
                }
                for row in try Row.fetchAll(db, sql: "SELECT key, latency_s, compute_s, prompt_tokens, completion_tokens FROM calls") {
                    rows.calls[row["key"]] = Call(latency: row["latency_s"], compute: row["compute_s"], promptTokens: row["prompt_tokens"], completionTokens: row["completion_tokens"])
                }
                for row in try Row.fetchAll(db, sql: "SELECT strategy, status, outcome FROM fine_tunes") {
                    let outcome: String? = row["outcome"]
                    rows.fineTunes[row["strategy"]] = (row["status"], try outcome.map { try CanonicalJSON.decode(FineTuneOutcome.self, from: Data($0.utf8)) })
                }
                for row in try Row.fetchAll(db, sql: "SELECT probe, subject, measurement FROM probe_results WHERE run_id = ?", arguments: [runID]) {
                    let text: String = row["measurement"]
                    rows.probes[row["subject"], default: [:]][row["probe"]] = try CanonicalJSON.decode(ProbeMeasurement.self, from: Data(text.utf8))
                }
                return rows
            }
        }
    }

    /// The test split's rows by id: the text shown and the expected label.
    static func testSplit() throws -> [String: (text: String, label: String)] {
        let url = CachedAssets.cache.datasetFile("test", for: AssetCatalog.vaderMovieReviews)
        var rows: [String: (text: String, label: String)] = [:]
        for line in try String(contentsOf: url, encoding: .utf8).split(separator: "\n") {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let id = try #require(object["id"].map { "\($0)" })
            rows[id] = (try #require(object["text"] as? String), try #require(object["label"] as? String))
        }
        return rows
    }

    /// Linear interpolation between order statistics (R type 7).
    static func percentile(_ values: [Double], _ p: Double) -> Double {
        let sorted = values.sorted()
        let position = p * Double(sorted.count - 1)
        let lower = Int(position.rounded(.down)), upper = min(Int(position.rounded(.down)) + 1, sorted.count - 1)
        return sorted[lower] + (sorted[upper] - sorted[lower]) * (position - Double(lower))
    }

    static func mean(_ values: [Double]) -> Double { values.reduce(0, +) / Double(values.count) }

    /// Equal within a relative tolerance (and a tiny absolute one for zeros).
    static func close(_ a: Double?, _ b: Double, tolerance: Double = 1e-9) -> Bool {
        guard let a else { return false }
        return abs(a - b) <= tolerance * max(abs(a), abs(b)) + 1e-12
    }

    @Test(.enabled(if: CachedAssets.hasAll, CachedAssets.skipReason))
    func reducedQuickstartMatchesItsLedger() async throws {
        let workspace = try CLITests.Workspace()
        let recipe = Repository.root.appending(path: "Recipes/quickstart.yaml")

        // The recipe's own strategies (from `tally plan`), so that only sizes are overridden.
        let plan = try await workspace.run(["plan", recipe.path, "--json"])
        #expect(plan.status == 0, "\(plan.stderr)")
        let items = try #require((try JSONSerialization.jsonObject(with: Data(plan.stdout.utf8)) as? [String: Any])?["items"] as? [[String: Any]])
        let kinds = ["zero-shot", "few-shot", "chain-of-thought", "lora", "prompt-tuning", "full-finetune", "baseline"]
        let strategies = items.compactMap { item -> (name: String, kind: String)? in
            guard let name = item["name"] as? String, let kind = item["kind"] as? String, kinds.contains(kind) else { return nil }
            return (name, kind)
        }
        #expect(Set(strategies.map(\.kind)) == Set(kinds), "the quickstart should compare all six LLM kinds and the baseline: \(strategies)")
        let tuned = strategies.filter { ["lora", "prompt-tuning", "full-finetune"].contains($0.kind) }.map(\.name)

        let overrides = ["run.max_examples=\(Self.testExamples)", "run.max_train_examples=\(Self.trainExamples)", "run.max_validation_examples=\(Self.trainExamples)"]
            + tuned.map { "strategies.\($0).max_steps=1" }
        let out = workspace.root.appending(path: "out")
        let clock = ContinuousClock()
        let started = clock.now
        let run = try await workspace.run(["run", recipe.path, "--out", out.path, "--quiet", "--json"] + overrides.flatMap { ["--set", $0] }, timeout: 1200)
        let elapsed = clock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        print(String(format: "reduced quickstart: tally run took %.1f s", seconds))
        #expect(run.status == 0, "tally run failed:\n\(run.stderr.suffix(4000))")
        guard run.status == 0 else { return }

        // The report: files, and one row per strategy with every field filled in.
        for file in ["report.json", "report.md", "report.html"] {
            #expect(FileManager.default.fileExists(atPath: out.appending(path: file).path), "\(file) was not written")
        }
        let report = try JSONRenderer.decode(Data(contentsOf: out.appending(path: "report.json")))
        let printed = try JSONRenderer.decode(Data(run.stdout.utf8))
        #expect(printed.runID == report.runID)
        #expect(report.recipe == "quickstart" && report.recipePath.hasSuffix("Recipes/quickstart.yaml") && report.complete)
        #expect(report.notes.contains { $0.contains("--set run.max_examples=\(Self.testExamples)") }, "the report does not say the recipe was changed: \(report.notes)")
        #expect(report.strategies.map(\.name) == strategies.map(\.name))
        let markdown = try String(contentsOf: out.appending(path: "report.md"), encoding: .utf8)
        let html = try String(contentsOf: out.appending(path: "report.html"), encoding: .utf8)
        #expect(html.contains("<svg"))
        for strategy in report.strategies {
            #expect(markdown.contains(strategy.name) && html.contains(strategy.name), "\(strategy.name) is missing from report.md or report.html")
        }

        // The ledger.
        let rows = try LedgerRows.read(ledger: workspace.home.appending(path: "ledger.sqlite"), runID: report.runID)
        #expect(rows.status == "finished" && rows.recipeName == "quickstart")
        let split = try Self.testSplit()
        let probeNames = Set((rows.probes["local"] ?? [:]).keys)
        #expect(probeNames == ["knowledge", "safety", "general-text"], "base-model probes in the ledger: \(probeNames)")
        var exampleIDs: Set<String>?
        let price = report.costs.computeUSDPerHour / 3600

        for strategy in report.strategies {
            let name = strategy.name
            let stored = rows.predictions[name] ?? []

            // Every test example scored once, on the same examples for every strategy, each
            // aligned with its row of the test split.
            #expect(stored.count == Self.testExamples, "\(name): \(stored.count) predictions in the ledger")
            #expect(strategy.accuracy.n == stored.count, "\(name): report n \(strategy.accuracy.n), ledger \(stored.count)")
            #expect(stored.map(\.index) == Array(0..<stored.count))
            let ids = Set(stored.map(\.exampleID))
            #expect(ids.count == stored.count, "\(name): an example was scored twice")
            if let exampleIDs { #expect(ids == exampleIDs, "\(name) was scored on other examples") } else { exampleIDs = ids }
            for item in stored {
                let p = item.prediction
                #expect(item.exampleID == p.exampleID)
                let row = try #require(split[p.exampleID], "\(name): example \(p.exampleID) is not in the test split")
                #expect(p.expected == row.label && p.input == "Review: \(row.text)", "\(name): prediction \(p.exampleID) is not aligned with its example")
                let right = p.answer.map { $0.lowercased() == p.expected.lowercased() } ?? false
                #expect(p.score == (right ? 1 : 0), "\(name): \(p.exampleID) answered \(p.answer ?? "nothing") for \(p.expected) but scored \(p.score)")
                // The prediction's usage is that of the call it came from.
                let call = try #require(rows.calls[item.callKey], "\(name): call \(item.callKey) is not in the ledger")
                #expect(call.promptTokens == p.usage.promptTokens && call.completionTokens == p.usage.completionTokens)
                #expect(call.latency == p.latencySeconds && call.compute == p.computeSeconds)
                #expect((p.computeSeconds ?? 0) > 0, "\(name): a local call without measured compute time")
            }
            let predictions = stored.map(\.prediction)

            // Accuracy and unparsed answers, recounted.
            let correct = predictions.filter { p in p.answer.map { $0.lowercased() == p.expected.lowercased() } ?? false }.count
            #expect(Self.close(strategy.accuracy.value, Double(correct) / Double(predictions.count)), "\(name): accuracy \(strategy.accuracy.value), ledger \(correct)/\(predictions.count)")
            #expect(strategy.accuracy.unparsed == predictions.filter { $0.answer == nil }.count)
            #expect(0 <= strategy.accuracy.ciLow && strategy.accuracy.ciLow <= strategy.accuracy.value + 1e-12)
            #expect(strategy.accuracy.value <= strategy.accuracy.ciHigh + 1e-12 && strategy.accuracy.ciHigh <= 1)

            // Latency percentiles of the stored latencies.
            let latencies = predictions.map { $0.latencySeconds * 1000 }
            #expect(Self.close(strategy.latencyMs.p50, Self.percentile(latencies, 0.5)), "\(name): p50 \(strategy.latencyMs.p50 ?? -1)")
            #expect(Self.close(strategy.latencyMs.p95, Self.percentile(latencies, 0.95)), "\(name): p95 \(strategy.latencyMs.p95 ?? -1)")

            // Costs: local model, no token prices; compute time at the recipe's hourly price.
            let perRequest = Self.mean(predictions.map { $0.computeSeconds ?? 0 }) * price
            #expect(Self.close(strategy.cost.per1kRequestsUSD, perRequest * 1000), "\(name): per 1k requests \(strategy.cost.per1kRequestsUSD), ledger \(perRequest * 1000)")
            #expect(strategy.cost.per1kRequestsUSD > 0)
            let job = rows.fineTunes[name]
            let oneOff = (job?.outcome?.wallSeconds).map { $0 * price } ?? 0
            #expect(Self.close(strategy.cost.oneOffUSD, oneOff), "\(name): one-off \(strategy.cost.oneOffUSD), ledger \(oneOff)")
            let requests = report.costs.requestsPerMonth * report.costs.horizonMonths
            #expect(Self.close(strategy.cost.totalUSD, oneOff + perRequest * requests), "\(name): total \(strategy.cost.totalUSD)")

            // Forgetting: measured on fine-tuned models, zero by construction for prompting,
            // not applicable without a language model.
            let base = rows.probes["local"] ?? [:]
            if !strategy.usesLanguageModel {
                #expect(strategy.forgetting.isEmpty && rows.probes[name] == nil, "\(name): probed without a language model")
            } else {
                #expect(Set(strategy.forgetting.map(\.probe)) == probeNames, "\(name): forgetting for \(strategy.forgetting.map(\.probe))")
            }
            for entry in strategy.forgetting {
                let before = try #require(base[entry.probe])
                #expect(before.scores.count == Self.testExamples, "probe \(entry.probe): \(before.scores.count) items on the base model")
                #expect(Self.close(entry.base, Self.mean(before.scores)), "\(name)/\(entry.probe): base \(entry.base ?? -1)")
                if strategy.adaptsWeights {
                    let after = try #require(rows.probes[name]?[entry.probe], "\(name): probe \(entry.probe) is not in the ledger")
                    #expect(after.scores.count == before.scores.count)
                    // A positive drop means worse: lower scores, or higher cross-entropy (drift).
                    let drop = (Self.mean(before.scores) - Self.mean(after.scores)) * (entry.kind == .drift ? -1 : 1)
                    #expect(!entry.byConstruction)
                    #expect(Self.close(entry.adapted, Self.mean(after.scores)), "\(name)/\(entry.probe): adapted \(entry.adapted ?? -1)")
                    #expect(Self.close(entry.drop, drop), "\(name)/\(entry.probe): drop \(entry.drop ?? -1), ledger \(drop)")
                    let (low, high) = (try #require(entry.ciLow), try #require(entry.ciHigh))
                    #expect(low <= drop + 1e-12 && drop <= high + 1e-12, "\(name)/\(entry.probe): \(drop) outside [\(low), \(high)]")
                } else {
                    #expect(entry.byConstruction && entry.drop == 0 && entry.adapted == entry.base, "\(name)/\(entry.probe): \(entry)")
                    #expect(rows.probes[name] == nil, "prompting strategy \(name) was probed")
                }
            }

            // Training: one optimiser step on the reduced set, its loss curve as stored.
            if strategy.adaptsWeights {
                let training = try #require(strategy.training, "\(name): no training in the report")
                let outcome = try #require(job?.outcome, "\(name): no finished fine-tune in the ledger")
                #expect(job?.status == "finished")
                #expect(training.steps == 1 && training.trainLoss.count == 1, "\(name): \(training.steps) steps, \(training.trainLoss.count) loss points")
                #expect(training.trainLoss == outcome.trainLoss && training.validationLoss == outcome.validationLoss)
                #expect(training.validationLoss.count == 1, "\(name): \(training.validationLoss.count) validation points for one step")
                #expect((training.trainLoss + training.validationLoss).allSatisfy { $0.loss.isFinite && $0.loss > 0 && $0.step == 1 })
                #expect(training.trainedTokens > 0 && training.wallSeconds > 0)
                #expect(strategy.cost.oneOffUSD > 0)
            } else if !strategy.usesLanguageModel {
                // The baseline: trained on this machine, recorded like a job, no tokens.
                let training = try #require(strategy.training, "\(name): no training in the report")
                #expect(job?.status == "finished" && job?.outcome == training)
                #expect(training.trainedTokens == 0 && training.wallSeconds > 0 && strategy.cost.oneOffUSD > 0)
                #expect(strategy.backend == nil && !strategy.dataLeavesMachine)
            } else {
                #expect(strategy.training == nil && job == nil && strategy.cost.oneOffUSD == 0)
            }
        }

        // The decision, re-derived from the rows and the recipe's constraints.
        let constraints = report.constraints
        func violates(_ s: StrategyReport) -> Bool {
            if let minimum = constraints.minAccuracy, s.accuracy.value < minimum { return true }
            if let maximum = constraints.maxForgetting, s.maxForgetting > maximum { return true }
            if let maximum = constraints.maxLatencyMs, let p95 = s.latencyMs.p95, p95 > maximum { return true }
            if let budget = constraints.budgetUSD, s.cost.oneOffUSD > budget { return true }
            return false
        }
        let decision = report.decision
        let feasible = report.strategies.filter { !violates($0) }.sorted {
            ($0.cost.totalUSD, -$0.accuracy.value, $0.name) < ($1.cost.totalUSD, -$1.accuracy.value, $1.name)
        }
        #expect(Set(decision.infeasible.map(\.name)) == Set(report.strategies.filter(violates).map(\.name)))
        #expect(decision.infeasible.allSatisfy { !$0.reasons.isEmpty })
        #expect(decision.ranking == feasible.map(\.name))
        #expect(decision.recommended == feasible.first?.name)
        #expect(!decision.reason.isEmpty)
        if let recommended = decision.recommended {
            #expect(decision.reason.hasPrefix(recommended), "\(decision.reason)")
        } else {
            #expect(decision.reason.hasPrefix("No strategy meets the constraints"), "\(decision.reason)")
        }
        let pairs = report.strategies.count * (report.strategies.count - 1) / 2
        #expect(decision.breakEven.count == pairs)

        // Re-rendered from the ledger, the report says the same.
        let again = try await workspace.run(["report", report.runID, "--format", "json", "--out", workspace.root.appending(path: "again").path])
        #expect(again.status == 0, "\(again.stderr)")
        let rerendered = try JSONRenderer.decode(Data(again.stdout.utf8))
        #expect(rerendered.strategies.map(\.accuracy) == report.strategies.map(\.accuracy))
        #expect(rerendered.strategies.map(\.cost) == report.strategies.map(\.cost))
        #expect(rerendered.strategies.map(\.forgetting) == report.strategies.map(\.forgetting))
        #expect(rerendered.decision == report.decision)
    }
}

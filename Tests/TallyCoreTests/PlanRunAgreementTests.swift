import Foundation
import Synchronization
import TallyCore
import TallyTesting
import Testing

/// `tally plan` and `tally run` walk one plan (``RunPlan``) and price training by one rule
/// (``CallPricing/trainingEstimate(_:price:computeUSDPerHour:tokens:)``): for a recipe with
/// seeds, probes and `max_steps`, the run makes exactly the calls the plan counted, strategy
/// by strategy, and checks its budget against the training estimates the plan shows.
@Suite("Plan and run agree")
struct PlanRunAgreementTests {
    final class Notes: Sendable {
        let lines = Mutex<[String]>([])
        func add(_ event: ProgressEvent) {
            if case .note(let text) = event { lines.withLock { $0.append(text) } }
        }
        var all: [String] { lines.withLock { $0 } }
    }

    @Test("every strategy's requests and training estimate agree between plan and run (seeds, probes, max_steps)")
    func agree() async throws {
        let setup = try Setup(edit: {
            $0.replacingOccurrences(of: "run: {seed: 7, concurrency: 4}", with: "run: {seed: 7, seeds: [7, 11], concurrency: 4}")
                .replacingOccurrences(of: "shots: 2, selection: similar", with: "shots: 2, selection: random")
                .replacingOccurrences(of: "local: {plugin: fake, model: local-model, max_concurrency: 2}", with: "local: {plugin: fake, model: local-model, max_concurrency: 2, price: {training_per_mtok: 3}}")
                .replacingOccurrences(of: "epochs: 2, learning_rate: 2.0e-4}", with: "epochs: 3, max_steps: 1, batch_size: 2, learning_rate: 2.0e-4}")
        })
        let plan = try Planner.estimate(recipe: setup.recipe)
        let lora = try #require(plan.items.first { $0.name == "lora-r4" })
        let full = try #require(plan.items.first { $0.name == "full" })
        // max_steps: 1 of 3 steps per epoch (6 rows, batch 2) caps three epochs at a third of one.
        #expect(lora.trainingTokens > 0 && abs(3 * lora.trainingTokens - full.trainingTokens) <= 6)
        #expect(lora.repetitions == 2 && full.repetitions == 2)

        let notes = Notes()
        let result = try await setup.runner().run { notes.add($0) }

        // Calls: each strategy made what the plan counted (test rows per seed, probes on adapted models).
        for item in plan.items {
            if item.kind == "probes" {
                let made = result.baseProbes.filter { $0.subject == item.backend }.reduce(0) { $0 + ($1.kind == .drift ? 0 : $1.scores.count) }
                #expect(made == item.requests, "\(item.name)")
                continue
            }
            let runs = result.strategies.filter { $0.name == item.name }
            #expect(runs.count == (item.repetitions ?? 1), "\(item.name)")
            let made = runs.reduce(0) { total, run in
                total + run.predictions.count + run.probes.reduce(0) { $0 + ($1.kind == .drift ? 0 : $1.scores.count) }
            }
            #expect(made == item.requests, "\(item.name)")
        }
        #expect(setup.log.generationCount == plan.totalRequests)

        // Training: the run's estimate before each job is the plan's, per strategy.
        for item in [lora, full] {
            let estimates = notes.all.filter { $0.hasPrefix("\(item.name) (seed ") && $0.contains("training estimated at") }
            #expect(estimates.count == 2)
            let tokens = estimates.compactMap { line -> Int? in
                guard let range = line.range(of: "training estimated at ") else { return nil }
                return Int(line[range.upperBound...].prefix { $0.isNumber })
            }
            #expect(tokens.reduce(0, +) == item.trainingTokens, "\(item.name)")
        }
    }
}

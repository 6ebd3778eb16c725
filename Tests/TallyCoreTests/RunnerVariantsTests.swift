import Foundation
import TallyCore
import TallyTesting
import Testing

/// The sentiment recipe's strategies replaced by `strategies` (YAML list items).
private func replacingStrategies(_ strategies: [String]) -> (String) -> String {
    { text in
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard let start = lines.firstIndex(of: "strategies:"), let end = lines.firstIndex(where: { $0.hasPrefix("costs:") }) else { return text }
        lines.replaceSubrange((start + 1)..<end, with: strategies.map { "  - " + $0 })
        return lines.joined(separator: "\n")
    }
}

/// The other label of a sentiment reply.
private func flipped(_ text: String) -> String {
    text.contains("positive") ? text.replacingOccurrences(of: "positive", with: "negative") : text.replacingOccurrences(of: "negative", with: "positive")
}

/// Sampled requests (temperature > 0) get the wrong label when their seed and question say
/// so: a different pattern of disagreement for every question, fixed by the request alone.
private let samplingResponder: FakeResponder = { request, fineTuned in
    let answer = Fixtures.sentimentResponder(request, fineTuned)
    guard request.temperature > 0 else { return answer }
    let question = request.messages.last?.content ?? ""
    return (request.seed &+ UInt64(question.count)) % 3 == 0 ? flipped(answer) : answer
}

/// An instruction that asks for a guess gets "positive" whatever the review.
private let guessingResponder: FakeResponder = { request, fineTuned in
    let system = request.messages.first { $0.role == .system }?.content ?? ""
    return system.contains("Guess") ? "positive" : Fixtures.sentimentResponder(request, fineTuned)
}

@Suite("Runner: prompt variants and self-consistency")
struct RunnerVariantsTests {
    @Test("variants run as strategies of their own, grouped in the measurements and the report")
    func variants() async throws {
        let setup = try Setup(edit: replacingStrategies([
            """
            name: wording
                kind: zero-shot
                backend: hosted
                variants:
                  - {name: precise, instruction: "Is this movie review positive or negative?"}
                  - {name: vague, instruction: "Guess."}
            """,
        ]), responder: guessingResponder)
        let measured = try await setup.run()
        #expect(measured.strategies.map(\.name) == ["wording/precise", "wording/vague"])
        #expect(measured.strategies.map(\.group) == ["wording", "wording"] && measured.strategies.map(\.variant) == ["precise", "vague"])
        #expect(measured.strategies.map { $0.predictions.map(\.score).reduce(0, +) } == [6, 3])
        #expect(setup.log.generationCount == 12)
        #expect(try setup.ledger.predictions(runID: measured.runID, strategy: "wording/vague").count == 6)

        let report = Report.build(from: measured)
        let group = try #require(report.variantGroups?.first)
        #expect(group.best == "wording/precise" && group.runnerUp == "wording/vague")
        // Three examples only the precise wording gets right: exact McNemar p = 2 / 2^3.
        #expect(group.pairedTest?.onlyFirstCorrect == 3 && group.pairedTest?.onlySecondCorrect == 0 && abs((group.pairedTest?.pValue ?? 0) - 0.25) < 1e-12)
        #expect(group.verdict.contains("not significantly better"))
    }

    @Test("self-consistency: N seeded calls per question, the majority answer, N times the cost, agreement")
    func selfConsistency() async throws {
        let strategies = replacingStrategies([
            "{name: cot, kind: chain-of-thought, backend: hosted}",
            "{name: cot-sc, kind: chain-of-thought, backend: hosted, samples: 5}",
        ])
        let setup = try Setup(edit: { strategies($0).replacingOccurrences(of: "model: hosted-model", with: "model: hosted-model\n    latency_ms: 10") }, responder: samplingResponder)
        let measured = try await setup.run()
        let (single, sampled) = (measured.strategies[0], measured.strategies[1])
        #expect(setup.log.generationCount == 6 + 6 * 5)
        #expect(try setup.ledger.callCount() == 36)

        // What the majority must be, from the strategy's own requests and the responder.
        let spec = try #require(setup.recipe.strategies.last)
        let strategy = try StrategyCatalog.builtIn.make(spec, context: StrategyContext(task: setup.recipe.task, train: [], seed: setup.recipe.run.seed))
        let test = try DatasetLoader.load(setup.recipe.data.test).examples
        #expect(strategy.samples == 5)
        for (example, prediction) in zip(test, sampled.predictions) {
            let requests = (0..<5).map { strategy.request(for: example, sample: $0) }
            #expect(Set(requests.map(\.seed)).count == 5 && requests.allSatisfy { $0.temperature == 0.7 })
            let labels = requests.map { samplingResponder($0, false).contains("Answer: positive") ? "positive" : "negative" }
            let votes = Dictionary(grouping: labels, by: { $0 }).mapValues(\.count)
            let winner = try #require(votes.max { $0.value < $1.value })
            #expect(prediction.answer == winner.key, "\(example.id): \(labels)")
            #expect(prediction.samples == 5 && abs((prediction.agreement ?? 0) - Double(winner.value) / 5) < 1e-12)
            #expect(prediction.score == (winner.key == example["label"] ? 1 : 0))
            #expect(prediction.output.hasSuffix("Answer: \(winner.key)"))
        }
        #expect(sampled.predictions.contains { ($0.agreement ?? 1) < 1 }, "the responder never disagreed: the test shows nothing")
        // Cost and latency count every sample: the sampled chains have the greedy chain's length.
        for (one, five) in zip(single.predictions, sampled.predictions) {
            #expect(five.usage.promptTokens == 5 * one.usage.promptTokens && five.usage.completionTokens == 5 * one.usage.completionTokens)
            #expect(abs(five.latencySeconds - 5 * one.latencySeconds) < 1e-9 && one.latencySeconds > 0)
            #expect(one.samples == nil && one.agreement == nil)
        }
        let report = Report.build(from: measured)
        let cot = try #require(report.strategy(named: "cot")), sc = try #require(report.strategy(named: "cot-sc"))
        #expect(abs(sc.cost.per1kRequestsUSD - 5 * cot.cost.per1kRequestsUSD) < 1e-9)
        #expect(sc.selfConsistency?.samples == 5 && cot.selfConsistency == nil)
        let mean = sampled.predictions.compactMap(\.agreement).reduce(0, +) / 6
        #expect(abs((sc.selfConsistency?.agreement ?? 0) - mean) < 1e-12)

        // The plan counts the same calls; a rerun makes none.
        let plan = try Planner.estimate(recipe: setup.recipe)
        #expect(plan.items.map(\.requests) == [6, 30])
        #expect(plan.assumptions.contains { $0.contains("cot-sc x5") })
        let again = try await setup.run()
        #expect(setup.log.generationCount == 36)
        #expect(again.strategies[1].predictions.allSatisfy { $0.cached })
        #expect(again.strategies[1].predictions.map(\.answer) == sampled.predictions.map(\.answer))
    }
}

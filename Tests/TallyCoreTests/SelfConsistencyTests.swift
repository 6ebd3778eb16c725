import Foundation
import TallyCore
import Testing

private let task = TaskSpec(
    instruction: "Is this movie review positive or negative?", input: "Review: {text}", context: "Genre: {genre}", target: "label",
    labels: ["positive", "negative"], metric: "accuracy")
private let question = Example(id: "q", fields: ["text": "boring plot", "genre": "drama", "label": "negative"], location: SourceLocation(file: "test.jsonl", line: 1))

private func spec(_ settings: [String: SettingValue]) -> StrategySpec { spec("chain-of-thought", settings) }

private func spec(_ kind: String, _ settings: [String: SettingValue]) -> StrategySpec {
    StrategySpec(name: "s", kind: kind, backend: "b", settings: StrategySettings(settings))
}

private func make(_ spec: StrategySpec, seed: UInt64 = 7) throws -> any Strategy {
    try StrategyCatalog.builtIn.make(spec, context: StrategyContext(task: task, train: [], validation: [], seed: seed))
}

private func answers(_ values: [String?]) -> [SampledAnswer] { values.map { SampledAnswer(output: $0 ?? "?", answer: $0) } }

@Suite("Self-consistency and prompt overrides")
struct SelfConsistencyTests {
    @Test("the majority answer wins; ties go to the answer seen first; unparsed samples do not vote")
    func majority() {
        #expect(SelfConsistency.majority(answers(["a", "b", "b"])) == 1)
        #expect(SelfConsistency.majority(answers(["b", "a", "a", "b"])) == 0)
        #expect(SelfConsistency.majority(answers(["a", "b", "b", "a", "c"])) == 0)
        #expect(SelfConsistency.majority(answers([nil, nil, "b"])) == 2)
        #expect(SelfConsistency.majority(answers([nil, nil])) == 0)
        #expect(SelfConsistency.majority(answers(["Positive.", "negative", "positive"])) == 0)
        #expect(SelfConsistency.majority([]) == 0)
        #expect(SelfConsistency.agreement(answers(["Positive.", "negative", "positive"]), chosen: 0) == 2.0 / 3.0)
        #expect(SelfConsistency.agreement(answers([nil, "a", nil, nil]), chosen: 0) == 0.75)
    }

    @Test("chain-of-thought with samples: one request per sample, each with its own seed, at 0.7 by default")
    func sampledRequests() throws {
        let sampled = try make(spec(["samples": .int(5)]))
        #expect(sampled.samples == 5 && sampled.reasoning)
        let requests = (0..<5).map { sampled.request(for: question, sample: $0) }
        #expect(Set(requests.map(\.seed)).count == 5)
        #expect(requests.allSatisfy { $0.temperature == 0.7 && $0.messages == sampled.messages(for: question) && $0.maxTokens == 256 })
        // The same seed gives the same samples; another seed others.
        #expect(try make(spec(["samples": .int(5)])).request(for: question, sample: 3) == requests[3])
        #expect(try make(spec(["samples": .int(5)]), seed: 8).request(for: question, sample: 3).seed != requests[3].seed)
        #expect(try make(spec(["samples": .int(3), "temperature": .number(0.3)])).request(for: question, sample: 0).temperature == 0.3)

        // One sample: the greedy request, whatever the index; other kinds sample once.
        let greedy = try make(spec([:]))
        #expect(greedy.samples == 1 && greedy.request(for: question, sample: 0) == greedy.request(for: question))
        #expect(greedy.request(for: question).temperature == 0)
        #expect(try make(spec("zero-shot", [:])).samples == 1)
    }

    @Test("sampling makes chain-of-thought depend on the seed; samples at temperature 0 is a warning")
    func kindRules() throws {
        let kind = ChainOfThoughtKind()
        #expect(!kind.dependsOnSeed(spec([:])))
        #expect(kind.dependsOnSeed(spec(["samples": .int(3)])))
        #expect(kind.dependsOnSeed(spec(["temperature": .number(0.5)])))
        #expect(!kind.dependsOnSeed(spec(["samples": .int(3), "temperature": .number(0)])))
        let context = StrategyCheckContext(task: task, trainFields: ["text", "label", "genre"], trainCount: 4, testFields: ["text", "label", "genre"])
        let issues = kind.check(spec(["samples": .int(3), "temperature": .number(0)]), context: context)
        #expect(issues.count == 1 && issues.first?.severity == .warning && issues.first?.key == "temperature")
        #expect(kind.check(spec(["samples": .int(3)]), context: context).isEmpty)
        #expect(kind.keys.contains { $0.name == "samples" && $0.defaultValue == .int(1) && $0.minimum?.value == 1 })
    }

    @Test("prompt keys replace the task's instruction, context and input; an empty context removes it")
    func promptKeys() throws {
        let base = try make(spec("zero-shot", [:]))
        #expect(base.messages(for: question).last?.content == "Genre: drama\n\nReview: boring plot")
        let changed = try make(spec("zero-shot", ["instruction": .string("Rate it."), "input": .string("Text: {text}"), "context": .string("")]))
        #expect(changed.messages(for: question).first?.content == "Rate it.\nAnswer with exactly one of: positive, negative.")
        #expect(changed.messages(for: question).last?.content == "Text: boring plot")
        #expect(changed.task.context == nil && changed.task.target == "label")
        let cot = try make(spec(["instruction": .string("Rate it.")]))
        #expect(cot.messages(for: question).first?.content.hasPrefix("Rate it.\nAnswer with exactly one of") ?? false)
        #expect(cot.messages(for: question).first?.content.hasSuffix(ChainOfThoughtStrategy.instruction) ?? false)
        for kind in [ZeroShotKind().keys, FewShotKind().keys, ChainOfThoughtKind().keys] {
            #expect(["instruction", "context", "input"].allSatisfy { name in kind.contains { $0.name == name } })
        }
        #expect(!LoRAKind().keys.contains { $0.name == "instruction" })
    }
}

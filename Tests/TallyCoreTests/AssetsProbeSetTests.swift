import Foundation
import Testing
@testable import TallyCore

/// The forgetting probes shipped in Recipes/probes are fixed before any fine-tuned result
/// exists; these tests keep them well-formed and sized as the recipes promise.
@Suite("Shipped probe sets")
struct AssetsProbeSetTests {
    static let probes = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Recipes/probes", isDirectory: true)

    @Test("knowledge: at least 100 questions, each with a usable reference answer")
    func knowledge() throws {
        let loaded = try ProbeLoader.load(Self.probes.appendingPathComponent("knowledge.jsonl"), kind: .qa)
        #expect(loaded.problems.isEmpty, "\(loaded.problems)")
        #expect(loaded.items.count >= 100)
        #expect(Set(loaded.items.map(\.id)).count == loaded.items.count)
        #expect(Set(loaded.items.map(\.input)).count == loaded.items.count)
        for item in loaded.items {
            // An answer that normalises to nothing (e.g. the letter "a") would match any empty reply.
            for answer in item.answers {
                #expect(!TextNormalizer.normalize(answer).isEmpty, "\(item.id): '\(answer)'")
            }
            #expect(item.input.count <= 160, "\(item.id) is not a short question")
            // Scored with `contains`: a reply that merely repeats the question must not pass.
            for answer in item.answers {
                #expect(Metrics.containsMatch(item.input, answer) == 0, "\(item.id): the question contains '\(answer)'")
            }
        }
    }

    @Test("the contains metric finds the reference as whole words in a sentence")
    func containsMetric() {
        #expect(Metrics.containsMatch("The capital of France is Paris.", "Paris") == 1)
        #expect(Metrics.containsMatch("It is Buenos Aires, of course", "buenos aires") == 1)
        #expect(Metrics.containsMatch("7 + 5 = 12", "12") == 1)
        #expect(Metrics.containsMatch("Parisian cafes", "Paris") == 0)
        #expect(Metrics.containsMatch("Aires Buenos", "Buenos Aires") == 0)
        #expect(Metrics.containsMatch("7 + 5 = 112", "12") == 0)
        #expect(Metrics.containsMatch("anything", "the") == 0)
        #expect(Metrics.containsMatch("100 / 4 = 2.25", "25") == 0)
        #expect(Metrics.containsMatch("100 / 4 = 25.", "25") == 1)
        #expect(Metrics.containsMatch("It is 1,000 metres.", "1000") == 1)
        #expect(AnswerScorer(metric: .contains).score(answer: "The Sun.", expected: ["Moon", "sun"]) == 1)
    }

    @Test("safety: about 30 requests to decline")
    func safety() throws {
        let loaded = try ProbeLoader.load(Self.probes.appendingPathComponent("safety.jsonl"), kind: .refusal)
        #expect(loaded.problems.isEmpty, "\(loaded.problems)")
        #expect((28...40).contains(loaded.items.count))
        #expect(Set(loaded.items.map(\.input)).count == loaded.items.count)
    }

    @Test("general text: about 30 paragraphs unrelated to movie reviews")
    func general() throws {
        let loaded = try ProbeLoader.load(Self.probes.appendingPathComponent("general.jsonl"), kind: .drift)
        #expect(loaded.problems.isEmpty, "\(loaded.problems)")
        #expect((28...40).contains(loaded.items.count))
        for item in loaded.items {
            let words = item.input.split(separator: " ").count
            #expect((40...200).contains(words), "\(item.id) has \(words) words")
            for term in ["movie", "film", "review", "actor", "cinema"] {
                #expect(!item.input.lowercased().contains(term), "\(item.id) mentions '\(term)'")
            }
        }
    }
}

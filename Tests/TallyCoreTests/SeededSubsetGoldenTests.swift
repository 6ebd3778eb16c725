import Foundation
import Testing
@testable import TallyCore

/// Seeded subsets and demonstration orders are pinned: the same recipe evaluates the same rows
/// and shows the same demonstrations on every platform and Swift version (Tally's own
/// generator and Fisher-Yates, not the standard library's shuffle). The expected values come
/// from an independent re-implementation in Python (SplitMix64, FNV-1a label mixing,
/// Fisher-Yates drawing the high word of `next() × (i + 1)`), not from this code.
struct SeededSubsetGoldenTests {
    static func examples(_ count: Int) -> [Example] {
        (0..<count).map { Example(id: "row\($0)", fields: ["text": "t\($0)", "label": "l\($0 % 3)"], location: SourceLocation(file: "data.jsonl", line: $0 + 1)) }
    }

    static func dataset(_ count: Int) -> Dataset {
        Dataset(url: URL(fileURLWithPath: "data.jsonl"), displayPath: "data.jsonl", format: .jsonl, examples: examples(count), problems: [])
    }

    @Test("the generator is SplitMix64")
    func generator() {
        var rng = SeededRandom(seed: 0)
        #expect(rng.next() == 0xe220_a839_7b1d_cdaf)
    }

    @Test("run.max_examples subsets of the test and train files are pinned")
    func datasetSubsets() {
        #expect(Self.dataset(20).sample(5, seed: 42, label: "test").examples.map(\.id) == ["row1", "row3", "row9", "row12", "row17"])
        #expect(Self.dataset(30).sample(8, seed: 7, label: "train").examples.map(\.id) == [5, 8, 9, 17, 18, 20, 23, 27].map { "row\($0)" })
        // No subset when every row fits.
        #expect(Self.dataset(4).sample(5, seed: 42, label: "test").examples.count == 4)
    }

    @Test("probe subsets are pinned")
    func probeSubsets() {
        let items = (0..<10).map { ProbeItem(id: "p\($0)", input: "q\($0)", answers: ["a"], location: SourceLocation(file: "probe.jsonl", line: $0 + 1)) }
        #expect(ProbeLoader.sample(items, max: 3, seed: 42, probe: "knowledge").map(\.id) == ["p1", "p6", "p9"])
    }

    @Test("random demonstrations are chosen in a pinned order")
    func demonstrationOrder() {
        let task = TaskSpec(instruction: "Label?", input: "{text}", target: "label", labels: nil, metric: "exact_match")
        let selector = DemonstrationSelector(pool: Self.examples(12), task: task, shots: 3, selection: .random, balanced: false, seed: 42, label: "few-shot")
        #expect(selector.order == [2, 8, 10, 4, 0, 1, 5, 9, 3, 11, 6, 7])
    }
}

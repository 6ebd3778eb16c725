import Foundation
import TallyCore
import TallyTesting
import Testing

@Suite("Test fakes")
struct FakesTests {
    @Test("the fake generator passes the conformance checks")
    func fakeConforms() async {
        let generator = FakeTextGenerator(identity: "fake:m") { request, _ in request.messages.last?.content.uppercased() ?? "" }
        #expect(await GeneratorConformance.problems(of: generator).isEmpty)
    }

    @Test("the conformance checks catch a non-deterministic generator")
    func catchesNondeterminism() async {
        let counter = CallLog()
        let flaky = FakeTextGenerator(identity: "flaky", log: counter) { _, _ in counter.generationCount.isMultiple(of: 2) ? "a" : "b" }
        let problems = await GeneratorConformance.problems(of: flaky)
        #expect(problems.contains { $0.contains("greedy decoding gave different texts") })
    }
}

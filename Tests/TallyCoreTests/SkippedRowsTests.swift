import Foundation
import TallyCore
import TallyTesting
import Testing

/// Malformed rows are skipped with file:line, and every report says how many rows each split
/// lost, so an evaluation never shrinks unnoticed; `data.strict: true` makes them errors.
@Suite("Skipped rows")
struct SkippedRowsTests {
    /// `text` with line breaks and the indentation after them (the terminal's wrapping) read as
    /// one space.
    static func flowing(_ text: String) -> String {
        text.replacingOccurrences(of: "\\n *", with: " ", options: .regularExpression)
    }

    /// Appends a row that is not JSON (line 7) and one without the needed `text` field
    /// (line 8) to the test file of `setup`'s recipe.
    func spoilTestData(_ setup: Setup) throws {
        let url = setup.recipe.data.test
        var text = try String(contentsOf: url, encoding: .utf8)
        if !text.hasSuffix("\n") { text += "\n" }
        #expect(text.split(separator: "\n").count == 6)
        text += "{\"id\": \"t7\", \"text\": \"cut off\n{\"id\": \"t8\", \"label\": \"positive\"}\n"
        try text.write(to: url, atomically: true, encoding: .utf8)
    }

    @Test("A run records, per split, the rows read, skipped (with file:line) and used; every report format shows them")
    func reportedInEveryFormat() async throws {
        let setup = try Setup()
        try spoilTestData(setup)
        let measurements = try await setup.run()
        let data = try #require(measurements.data)
        #expect(data.map(\.split) == ["train", "test", "validation", "probe knowledge", "probe safety", "probe general-text"])
        let test = try #require(data.first { $0.split == "test" })
        #expect(test.usable == 6 && test.skipped == 2 && test.used == 6)
        #expect(test.problems.count == 2)
        #expect(test.problems[0].contains("test.jsonl:7") && test.problems[0].contains("not valid JSON"))
        #expect(test.problems[1].contains("test.jsonl:8") && test.problems[1].contains("'text'"))
        #expect(data.filter { $0.split != "test" }.allSatisfy { $0.skipped == 0 })
        #expect(measurements.strategies.allSatisfy { $0.predictions.count == 6 })

        let report = Report.build(from: measurements)
        for text in [try TerminalRenderer().render(report), try MarkdownRenderer().render(report), try HTMLRenderer().render(report)] {
            let flowing = Self.flowing(text)
            #expect(flowing.contains("test.jsonl): 8 rows, 2 skipped as malformed or incomplete, 6 used"), "every format states the rows lost")
            #expect(flowing.contains("test.jsonl:7"), "every format names the first skipped row")
        }
        // The JSON report carries the counts as fields, and they survive a round trip.
        let json = try JSONRenderer().render(report)
        #expect(json.contains("test.jsonl:7"))
        let decoded = try JSONRenderer.decode(Data(json.utf8))
        #expect(decoded.data?.first { $0.split == "test" } == test)
        // The measurements stored in the ledger keep them too.
        let stored = try #require(try setup.ledger.measurements(runID: measurements.runID))
        #expect(stored.data == measurements.data)
    }

    @Test("A clean run says no row was skipped")
    func cleanRun() async throws {
        let measurements = try await Setup().run()
        let data = try #require(measurements.data)
        #expect(data.allSatisfy { $0.skipped == 0 })
        let test = try #require(data.first { $0.split == "test" })
        #expect(test.line.hasSuffix("test.jsonl): 6 rows, none skipped, 6 used"), "\(test.line)")
        #expect(Self.flowing(try TerminalRenderer().render(Report.build(from: measurements))).contains(test.line))
    }

    @Test("data.strict: true turns a skipped row into an error naming file:line, before any call")
    func strictRun() async throws {
        let setup = try Setup(edit: { $0.replacingOccurrences(of: "  validation: ../data/validation.jsonl", with: "  validation: ../data/validation.jsonl\n  strict: true") })
        #expect(setup.recipe.data.strict)
        try spoilTestData(setup)
        let error = try await #require(throws: TallyError.self) { try await setup.run() }
        #expect(error.code == .invalidData)
        #expect(error.description.contains("test.jsonl:7"), "\(error)")
        #expect(error.message.contains("2 unusable row(s)") && error.message.contains("data.strict"), "\(error)")
        #expect(setup.log.generationCount == 0 && setup.log.fineTuneCount == 0)
    }

    @Test("tally validate: skipped rows are warnings, or errors under data.strict")
    func strictValidate() throws {
        let yaml = """
            name: t
            task:
              instruction: Classify the review.
              input: "Review: {text}"
              target: label
            data:
              train: data/train.jsonl
              test: data/test.jsonl
            backends:
              hosted: {plugin: fake, model: hosted-model}
            strategies:
              - {name: zs, kind: zero-shot, backend: hosted}
            """
        for strict in [false, true] {
            let url = try Fixtures.recipe(strict ? yaml.replacingOccurrences(of: "  test: data/test.jsonl", with: "  test: data/test.jsonl\n  strict: true") : yaml)
            let test = url.deletingLastPathComponent().appendingPathComponent("data/test.jsonl")
            try (try String(contentsOf: test, encoding: .utf8) + "{broken\n").write(to: test, atomically: true, encoding: .utf8)
            let found = RecipeLoader.validate(contentsOf: url, registry: Fixtures.registry(), environment: [:])
            let row = try #require(found.first { $0.location.file.hasSuffix("data/test.jsonl") && $0.location.line == 7 })
            #expect(row.severity == (strict ? .error : .warning))
        }
    }
}

import Foundation
import TallyCore
import Testing

@Suite("Data sets")
struct DatasetTests {
    @Test("plain JSONL keeps every field, numbers and booleans as text, blank lines skipped")
    func plain() throws {
        let data = try DatasetLoader.load(try Fixtures.resource("data/formats/plain.jsonl"), displayPath: "plain.jsonl")
        #expect(data.problems.isEmpty)
        #expect(data.examples.count == 2)
        #expect(data.examples[0].fields == ["input": "2+2", "output": "4", "topic": "math"])
        #expect(data.examples[0].id == "L1")
        #expect(data.examples[1].fields["difficulty"] == "3")
        #expect(data.examples[1].fields["verified"] == "true")
        #expect(data.examples[1].location == SourceLocation(file: "plain.jsonl", line: 3))
        #expect(data.fieldNames == ["difficulty", "input", "output", "topic", "verified"])
    }

    @Test("Alpaca rows give instruction, input and output fields")
    func alpaca() throws {
        let data = try DatasetLoader.load(try Fixtures.resource("data/formats/alpaca.jsonl"))
        #expect(data.examples.map(\.fields) == [
            ["instruction": "Translate to French.", "input": "cat", "output": "chat"],
            ["instruction": "Name a colour.", "input": "", "output": "blue"],
        ])
    }

    @Test("OpenAI chat rows: system and last user turn become fields, last assistant the output")
    func chat() throws {
        let data = try DatasetLoader.load(try Fixtures.resource("data/formats/chat.jsonl"), displayPath: "chat.jsonl")
        #expect(data.examples.count == 2)
        #expect(data.examples[0].fields == ["system": "You are terse.", "input": "Hi?", "output": "Hello."])
        #expect(data.examples[1].fields == ["history": "user: One\nassistant: 1", "input": "Two", "output": "2"])
        #expect(data.problems.map(\.location.line) == [3, 4])
        #expect(data.problems[0].message.contains("no assistant turn"))
        #expect(data.problems[1].message.contains("role 'robot'"))
        #expect(data.problems[0].description.hasPrefix("chat.jsonl:3: "))
    }

    @Test("bad JSONL rows are reported with their line and why")
    func badRows() throws {
        let data = try DatasetLoader.load(try Fixtures.resource("data/formats/bad.jsonl"), displayPath: "bad.jsonl")
        #expect(data.examples.map(\.id) == ["L1", "a"])
        #expect(data.problems.map(\.description) == [
            "bad.jsonl:2: row is not valid JSON; it is skipped. Each line must hold one JSON object.",
            "bad.jsonl:3: row is not a JSON object; it is skipped. Each line must hold one object such as {\"input\": \"…\", \"output\": \"…\"}.",
            "bad.jsonl:5: row id 'a' repeats the id of line 4; it is skipped. Give every row a unique id.",
        ])
    }

    @Test("a file without usable rows is an error naming the file")
    func noUsableRows() throws {
        let error = try #require(throws: TallyError.self) {
            try DatasetLoader.load(try Fixtures.resource("data/formats/nothing.jsonl"), displayPath: "nothing.jsonl")
        }
        #expect(error.code == .invalidData)
        #expect(error.message.contains("nothing.jsonl has no usable row"))
        #expect(error.message.contains("nothing.jsonl:1: row is not valid JSON"))
        let missing = try #require(throws: TallyError.self) {
            try DatasetLoader.load(URL(fileURLWithPath: "/nonexistent/x.jsonl"), displayPath: "x.jsonl")
        }
        #expect(missing.message.contains("cannot read data file x.jsonl: no such file"))
    }

    @Test("CSV follows RFC 4180 quoting; bad rows are reported with the line they start on")
    func csv() throws {
        let data = try DatasetLoader.load(try Fixtures.resource("data/formats/rows.csv"), displayPath: "rows.csv")
        #expect(data.format == .csv)
        #expect(data.examples.map(\.id) == ["1", "2", "3", "5"])
        #expect(data.examples[0].fields == ["id": "1", "text": "Hello, world", "label": "greeting"])
        #expect(data.examples[1]["text"] == "She said \"hi\"")
        #expect(data.examples[2]["text"] == "multi\nline")
        #expect(data.examples[3].location.line == 7)
        #expect(data.problems.count == 1)
        #expect(data.problems[0].location.line == 6)
        #expect(data.problems[0].message.contains("row has 4 field(s) but the header has 3"))
    }

    @Test("TSV and CRLF line endings")
    func tsvAndCRLF() throws {
        let tsv = try DatasetLoader.load(try Fixtures.resource("data/formats/rows.tsv"))
        #expect(tsv.examples.map(\.fields) == [["text": "first row", "label": "a"], ["text": "second row", "label": "b"]])
        #expect(tsv.examples.map(\.id) == ["L2", "L3"])
        let crlf = try DatasetLoader.load(try Fixtures.resource("data/formats/crlf.csv"))
        #expect(crlf.examples.map { $0["text"] } == ["crlf, quoted", "plain"])
        #expect(crlf.examples.map(\.location.line) == [2, 3])
    }

    @Test("CSV quoting errors are row problems")
    func csvQuoting() throws {
        let url = try Fixtures.workspace().appendingPathComponent("quotes.csv")
        try "a,b\n1,x\"y\n2,ok\n\"open,2\n".write(to: url, atomically: true, encoding: .utf8)
        let data = try DatasetLoader.load(url, displayPath: "quotes.csv")
        #expect(data.examples.map { $0["b"] } == ["ok"])
        #expect(data.problems.map(\.location.line) == [2, 4])
        #expect(data.problems[0].message.contains("double quote appears inside an unquoted field"))
        #expect(data.problems[1].message.contains("never closed"))
    }

    @Test("rows missing a needed field are moved to problems")
    func requiring() throws {
        let data = try DatasetLoader.load(try Fixtures.resource("data/formats/plain.jsonl"), displayPath: "plain.jsonl")
        let checked = data.requiring(["input", "topic"], purposes: ["topic": "task.input"])
        #expect(checked.examples.count == 1)
        #expect(checked.problems.map(\.description) == ["plain.jsonl:3: row has no field 'topic' (needed by task.input); it is skipped. Add the field to the row or change the recipe's template."])
    }

    @Test("seeded subsampling is deterministic, keeps file order, and differs by seed")
    func sampling() throws {
        let rows = (1...50).map { Example(id: "r\($0)", fields: ["input": "\($0)"], location: SourceLocation(file: "f", line: $0)) }
        let data = Dataset(url: URL(fileURLWithPath: "/f"), displayPath: "f", format: .jsonl, examples: rows, problems: [])
        let a = data.sample(10, seed: 7).examples.map(\.id)
        let b = data.sample(10, seed: 7).examples.map(\.id)
        let c = data.sample(10, seed: 8).examples.map(\.id)
        #expect(a == b)
        #expect(a != c)
        #expect(a.count == 10 && Set(a).count == 10)
        let lines = data.sample(10, seed: 7).examples.compactMap(\.location.line)
        #expect(lines == lines.sorted())
        #expect(data.sample(100, seed: 7).examples.count == 50)
        #expect(data.sample(nil, seed: 7).examples.count == 50)
    }

    @Test("templates render fields and keep stray braces")
    func templates() {
        let template = PromptTemplate("Q: {question} {{literal}} {not a field} {ctx.x}")
        #expect(template.fields == ["question", "ctx.x"])
        #expect(template.render(["question": "why?", "ctx.x": "1"]) == "Q: why? {literal} {not a field} 1")
    }

    @Test("probe files: qa answers may be lists; bad rows are reported")
    func probes() throws {
        let qa = try ProbeLoader.load(try Fixtures.resource("probes/knowledge.jsonl"), kind: .qa)
        #expect(qa.items.map(\.answers) == [["Paris"], ["8", "eight"], ["blue"]])
        let drift = try ProbeLoader.load(try Fixtures.resource("probes/drift.jsonl"), kind: .drift)
        #expect(drift.items.count == 2 && drift.items[0].input.hasPrefix("The quick"))
        let error = try #require(throws: TallyError.self) {
            try ProbeLoader.load(try Fixtures.resource("probes/drift.jsonl"), kind: .qa, displayPath: "drift.jsonl")
        }
        #expect(error.message.contains("drift.jsonl has no usable qa item"))
    }
}

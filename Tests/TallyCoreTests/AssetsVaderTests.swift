import Foundation
import Testing
@testable import TallyCore

@Suite("VADER ground-truth conversion")
struct AssetsVaderTests {
    static func excerpt() throws -> Data {
        let url = try #require(Bundle.module.url(forResource: "Resources/assets/movieReviewSnippets_excerpt", withExtension: "txt"))
        return try Data(contentsOf: url)
    }

    static func jsonRows(_ jsonl: String) throws -> [[String: Any]] {
        try jsonl.split(separator: "\n").map { line in
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8))
            return try #require(object as? [String: Any])
        }
    }

    @Test("real excerpt: CRLF, UTF-8, labels by sign, zero and repeated rows dropped")
    func realExcerpt() throws {
        let parsed = try VaderGroundTruth.parse(VaderGroundTruth.decode(Self.excerpt()), fileName: "excerpt.txt")
        #expect(parsed.rowsRead == 34)
        #expect(parsed.droppedZeroRating == 2)
        #expect(parsed.droppedDuplicateText == 2)
        #expect(parsed.rows.count == 30)
        let first = try #require(parsed.rows.first)
        #expect(first.id == "1")
        #expect(first.label == "positive")
        #expect(first.rating == "2.26666666667")
        #expect(first.text.hasPrefix("The Rock is destined to be the 21st Century's new ''Conan''"))
        #expect(!first.text.contains("\r"))
        let czech = try #require(parsed.rows.first { $0.id == "233" })
        #expect(czech.text.hasPrefix("Jirí Hubac's script is a gem."))
        #expect(parsed.rows.first { $0.id == "264" }?.text.hasPrefix("Münch's genuine insight") == true)
        // The first of two identical texts is kept.
        #expect(parsed.rows.contains { $0.id == "10324" })
        #expect(!parsed.rows.contains { $0.id == "10341" })
        for row in parsed.rows {
            let rating = try #require(Double(row.rating))
            #expect(rating != 0)
            #expect(row.label == (rating > 0 ? "positive" : "negative"))
        }
    }

    @Test("JSONL rows carry id, text, label and the rating, and parse as JSON")
    func jsonl() throws {
        let converted = try VaderGroundTruth.convert(Self.excerpt(), fileName: "excerpt.txt", splits: ["train", "validation", "test"])
        let all = try converted.splits.flatMap { try Self.jsonRows($0.jsonl) }
        #expect(all.count == 30)
        let byID = Dictionary(uniqueKeysWithValues: all.compactMap { row in (row["id"] as? String).map { ($0, row) } })
        let czech = try #require(byID["233"])
        #expect((czech["text"] as? String)?.hasPrefix("Jirí Hubac's") == true)
        #expect(czech["label"] as? String == "positive")
        #expect((czech["rating"] as? Double) == 2.9375)
        #expect(VaderGroundTruth.jsonString("a\"b\\c\n\u{1}é") == "\"a\\\"b\\\\c\\n\\u0001é\"")
    }

    @Test("the split is stratified, seeded and covers every row once")
    func split() throws {
        var rows: [VaderGroundTruth.Row] = []
        for index in 0..<1000 {
            let positive = index % 3 != 0
            rows.append(.init(id: "\(index)", text: "t\(index)", label: positive ? "positive" : "negative", rating: positive ? "1.5" : "-1.5"))
        }
        let groups = VaderGroundTruth.split(rows, into: 3, seed: 7)
        #expect(groups.map(\.count) == [800, 100, 100])
        #expect(Set(groups.flatMap { $0.map(\.id) }).count == 1000)
        for group in groups {
            let negatives = group.filter { $0.label == "negative" }.count
            let share = Double(negatives) / Double(group.count)
            #expect(abs(share - 334.0 / 1000.0) < 0.01)
            // Every prefix keeps the group's label balance to within one row.
            var seen = 0
            for (offset, row) in group.enumerated() {
                if row.label == "negative" { seen += 1 }
                #expect(abs(Double(seen) - Double(offset + 1) * share) <= 1.0)
            }
        }
        #expect(VaderGroundTruth.split(rows, into: 3, seed: 7) == groups)
        #expect(VaderGroundTruth.split(rows, into: 3, seed: 8) != groups)
    }

    @Test("malformed lines name the file and line")
    func malformed() {
        let cases: [(String, Int, String)] = [
            ("1\t2.0\tgood\r\n2\tbad line\r\n", 2, "3 tab-separated fields"),
            ("1\t2.0\tgood\r\n\r\n3\tlots\ttext\r\n", 3, "not a number"),
            ("1\t2.0\t\r\n", 1, "text field is empty"),
        ]
        for (text, line, fragment) in cases {
            let error = #expect(throws: TallyError.self) { try VaderGroundTruth.parse(text, fileName: "gt.txt") }
            #expect(error?.location == SourceLocation(file: "gt.txt", line: line))
            #expect(error?.message.contains(fragment) == true, "\(String(describing: error))")
        }
    }

    @Test("a BOM is ignored and non-UTF-8 bytes are read as Windows-1252")
    func encodings() throws {
        var bom = Data([0xEF, 0xBB, 0xBF])
        bom.append(Data("7\t-1\tbad\r\n".utf8))
        #expect(try VaderGroundTruth.parse(VaderGroundTruth.decode(bom), fileName: "b").rows.first?.id == "7")
        let latin = Data([0x31, 0x09, 0x31, 0x09, 0x63, 0x61, 0x66, 0xE9, 0x20, 0x96, 0x20, 0x6F, 0x6B])
        #expect(VaderGroundTruth.decode(latin) == "1\t1\tcafé – ok")
    }

    @Test("ratings are written as JSON numbers")
    func numbers() {
        for good in ["0", "-1", "2.266666667", "-2.84210526316", "1e3", "1.5E-2"] {
            #expect(VaderGroundTruth.isJSONNumber(good), "\(good)")
        }
        for bad in ["", "-", ".5", "3.", "01", "+1", "1e", "nan", "1.2.3"] {
            #expect(!VaderGroundTruth.isJSONNumber(bad), "\(bad)")
        }
        let rows = try? VaderGroundTruth.parse("1\t.5\tfine\n", fileName: "n").rows
        #expect(rows?.first?.rating == "0.5")
    }
}

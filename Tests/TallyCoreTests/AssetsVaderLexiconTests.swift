import Foundation
import Testing
@testable import TallyCore

@Suite("VADER lexicon conversion")
struct AssetsVaderLexiconTests {
    static func excerpt() throws -> Data {
        let url = try #require(Bundle.module.url(forResource: "Resources/assets/vader_lexicon_excerpt", withExtension: "txt"))
        return try Data(contentsOf: url)
    }

    static func rows(_ jsonl: String) throws -> [[String: Any]] {
        try jsonl.split(separator: "\n").map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
    }

    @Test("real excerpt: words only, rating buckets, test facts inside train, a document per word")
    func convert() throws {
        let converted = try VaderLexicon.convert(Self.excerpt(), fileName: "vader_lexicon.txt")
        #expect(converted.rowsRead == 600)
        #expect(converted.droppedNotWord == 264)
        let splits = Dictionary(uniqueKeysWithValues: try converted.splits.map { ($0.name, try Self.rows($0.jsonl)) })
        let test = try #require(splits["test"]), train = try #require(splits["train"])
        let validation = try #require(splits["validation"]), corpus = try #require(splits["corpus"])
        #expect(test.count == VaderLexicon.testWords && train.count == 2 * VaderLexicon.testWords && validation.count == VaderLexicon.validationWords)
        #expect(corpus.count == 336)
        let testWords = Set(test.compactMap { $0["word"] as? String })
        let trainWords = Set(train.compactMap { $0["word"] as? String })
        let validationWords = Set(validation.compactMap { $0["word"] as? String })
        #expect(testWords.isSubset(of: trainWords) && validationWords.isDisjoint(with: trainWords))
        // "aas" 2.5: very positive; its document states the rating and the ten ratings.
        let aas = try #require(corpus.first)
        #expect(aas["id"] as? String == "aas")
        #expect(aas["text"] as? String == "aas: mean human rating 2.5 on VADER's scale from -4 to 4, so very positive (ten raters gave 2, 3, 3, 4, 1, 2, 3, 2, 2, 3).")
        for row in test + train + validation {
            let rating = try #require(row["rating"] as? Double)
            let expected = rating <= -2 ? "very negative" : rating < 0 ? "negative" : rating < 2 ? "positive" : "very positive"
            #expect(row["label"] as? String == expected && row["id"] as? String == row["word"] as? String)
        }
        // Deterministic: the same bytes every time.
        let again = try VaderLexicon.convert(Self.excerpt(), fileName: "vader_lexicon.txt")
        #expect(again.splits.map(\.jsonl) == converted.splits.map(\.jsonl))
    }

    @Test("a malformed line is an error naming its line")
    func malformed() throws {
        let bad = Data("good\t1.5\t0.5\t[1, 2]\nbroken line\n".utf8)
        #expect(throws: TallyError.self) { try VaderLexicon.convert(bad, fileName: "x.txt") }
        do {
            _ = try VaderLexicon.convert(bad, fileName: "x.txt")
        } catch let error as TallyError {
            #expect(error.location?.line == 2)
        }
    }
}

import Foundation

/// Converts VADER's word lexicon (`vader_lexicon.txt`, Hutto & Gilbert, ICWSM 2014) into a
/// knowledge-injection task: questions about words' mean human rating, and a corpus that
/// holds the answers.
///
/// The source has one entry per line: `token<TAB>mean rating<TAB>standard deviation<TAB>[ten
/// ratings]`, ratings from -4 (most negative) to +4 (most positive). Only lower-case
/// alphabetic words are kept (emoticons and tokens with punctuation are dropped, as are
/// repeated words and words rated exactly 0). Each word's class is its mean rating's bucket:
/// `very negative` (≤ -2), `negative` (< 0), `positive` (< 2), `very positive` (≥ 2).
///
/// Splits (one seeded SplitMix64 shuffle of the words): `test` asks about `testWords` words;
/// `train` holds the facts of those same words and of as many other words (fine-tuning must
/// memorise the facts it is asked about, as in Ovadia et al. 2024, plus distractors);
/// `validation` holds `validationWords` further words; `corpus` holds one document per kept
/// word (id: the word), in alphabetical order. Question rows are
/// `{"id":"…","word":"…","label":"…","rating":1.6}`, corpus rows `{"id":"…","text":"…"}`.
enum VaderLexicon {
    static let converterVersion = "vader-lexicon/1 (alphabetic words, 4 rating buckets, 120 test words, train = test facts + 120 others, 60 validation, corpus of every word)"
    static let seed: UInt64 = 20_140_602
    static let testWords = 120
    static let validationWords = 60
    /// The class of each bucket, from the most negative.
    static let labels = ["very negative", "negative", "positive", "very positive"]

    struct Entry: Sendable, Hashable {
        let word: String
        /// The mean rating as the source spells it.
        let rating: String
        let value: Double
        /// The ten individual ratings, as the source lists them.
        let ratings: String
        var label: String {
            value <= -2 ? labels[0] : value < 0 ? labels[1] : value < 2 ? labels[2] : labels[3]
        }
    }

    struct Converted: Sendable {
        let rowsRead: Int
        let droppedZeroRating: Int
        let droppedDuplicate: Int
        let droppedNotWord: Int
        /// Split name -> (rows, JSONL).
        let splits: [(name: String, labels: [String: Int], rows: Int, jsonl: String)]
    }

    /// Parses the lexicon and writes the splits `train`, `validation`, `test` and `corpus`.
    /// - Throws: `TallyError(.invalidData)` naming the line of a malformed entry.
    static func convert(_ data: Data, fileName: String) throws -> Converted {
        var entries: [Entry] = []
        var seen = Set<String>()
        var read = 0, zeros = 0, duplicates = 0, notWords = 0, lineNumber = 0
        let text = VaderGroundTruth.decode(data)
        for line in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            lineNumber += 1
            if line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            let location = SourceLocation(file: fileName, line: lineNumber)
            guard fields.count == 4 else {
                throw TallyError(code: .invalidData, message: "expected 4 tab-separated fields (token, mean, standard deviation, ratings), found \(fields.count); the file is not VADER's lexicon", location: location)
            }
            read += 1
            let word = String(fields[0])
            let ratingText = fields[1].trimmingCharacters(in: .whitespaces)
            guard let value = Double(ratingText), value.isFinite, VaderGroundTruth.isJSONNumber(ratingText) else {
                throw TallyError(code: .invalidData, message: "the mean rating '\(ratingText)' is not a number", location: location)
            }
            guard !word.isEmpty, word.unicodeScalars.allSatisfy({ $0.value >= 0x61 && $0.value <= 0x7A }) else { notWords += 1; continue }
            if value == 0 { zeros += 1; continue }
            guard seen.insert(word).inserted else { duplicates += 1; continue }
            let ratings = fields[3].trimmingCharacters(in: CharacterSet(charactersIn: "[] \r"))
            entries.append(Entry(word: word, rating: ratingText, value: value, ratings: ratings))
        }
        guard entries.count >= 2 * testWords + validationWords else {
            throw TallyError(code: .invalidData, message: "\(fileName) has only \(entries.count) usable words; the conversion needs at least \(2 * testWords + validationWords)")
        }
        var generator = SeededRandom(seed: seed)
        var shuffled = entries
        generator.shuffle(&shuffled)
        let test = Array(shuffled[0..<testWords])
        let others = Array(shuffled[testWords..<(2 * testWords)])
        let validation = Array(shuffled[(2 * testWords)..<(2 * testWords + validationWords)])
        var train = test + others
        generator.shuffle(&train)
        let corpus = entries.sorted { $0.word < $1.word }
        func counts(_ rows: [Entry]) -> [String: Int] { rows.reduce(into: [:]) { $0[$1.label, default: 0] += 1 } }
        return Converted(
            rowsRead: read, droppedZeroRating: zeros, droppedDuplicate: duplicates, droppedNotWord: notWords,
            splits: [
                ("train", counts(train), train.count, train.map(questionLine).joined()),
                ("validation", counts(validation), validation.count, validation.map(questionLine).joined()),
                ("test", counts(test), test.count, test.map(questionLine).joined()),
                ("corpus", counts(corpus), corpus.count, corpus.map(corpusLine).joined()),
            ])
    }

    static func questionLine(_ entry: Entry) -> String {
        "{\"id\":\(VaderGroundTruth.jsonString(entry.word)),\"word\":\(VaderGroundTruth.jsonString(entry.word)),\"label\":\(VaderGroundTruth.jsonString(entry.label)),\"rating\":\(entry.rating)}\n"
    }

    /// The document that states a word's rating.
    static func document(_ entry: Entry) -> String {
        "\(entry.word): mean human rating \(entry.rating) on VADER's scale from -4 to 4, so \(entry.label) (ten raters gave \(entry.ratings))."
    }

    static func corpusLine(_ entry: Entry) -> String {
        "{\"id\":\(VaderGroundTruth.jsonString(entry.word)),\"text\":\(VaderGroundTruth.jsonString(document(entry)))}\n"
    }
}

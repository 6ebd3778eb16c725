import Foundation

/// Converts a VADER ground-truth file (Hutto & Gilbert, ICWSM 2014) into labelled JSONL splits.
///
/// The source has one snippet per line: `id<TAB>mean rating<TAB>text`, CRLF line endings, UTF-8
/// (a BOM is ignored; a file that is not valid UTF-8 is read as Windows-1252). The rating is
/// the mean of human ratings from -4 to +4; the label is its sign (`positive` / `negative`).
/// Rows rated exactly 0 have no sign and are dropped, as are rows whose text repeats an earlier
/// row (so one snippet can never sit in both the training and the test split).
///
/// The split is stratified by label and seeded: each label's rows are shuffled with a
/// SplitMix64 generator, 10% go to each of the later splits (validation, test) and the rest to
/// the first (train). Within each split, each label's rows are shuffled again and the labels
/// interleaved in proportion, so any prefix of a split (`max_examples`, `max_train_examples`)
/// is a random sample with the split's label balance to within one row. Rows are written as
/// `{"id":"…","text":"…","label":"positive","rating":2.27}` with a fixed key order and the
/// rating exactly as the source spells it, so the output's bytes (and checksums) are the same
/// on every platform.
enum VaderGroundTruth {
    /// Changes whenever the conversion rules change (the checksums change with it).
    static let converterVersion = "vader-ground-truth/1 (sign labels, zero and duplicate-text rows dropped, stratified 80/10/10 split, labels interleaved in proportion)"
    /// The split's seed.
    static let seed: UInt64 = 20_140_601
    /// The share of each label's rows that goes to every split after the first.
    static let heldOutFraction = 0.1

    struct Row: Sendable, Hashable {
        let id: String
        let text: String
        let label: String
        /// The rating as a JSON number, spelled as in the source when it is valid JSON.
        let rating: String
    }

    struct Split: Sendable {
        let name: String
        let rows: [Row]
        let jsonl: String

        var labelCounts: [String: Int] {
            rows.reduce(into: [:]) { counts, row in counts[row.label, default: 0] += 1 }
        }
    }

    struct Converted: Sendable {
        let rowsRead: Int
        let droppedZeroRating: Int
        let droppedDuplicateText: Int
        let splits: [Split]
    }

    struct Parsed: Sendable {
        let rows: [Row]
        let rowsRead: Int
        let droppedZeroRating: Int
        let droppedDuplicateText: Int
    }

    /// Parses, labels, de-duplicates and splits a ground-truth file.
    /// - Parameters:
    ///   - data: the file's bytes.
    ///   - fileName: the file's name, for error locations.
    ///   - splits: split names; the first receives the remainder, each later one 10%.
    /// - Throws: `TallyError(.invalidData)` naming the file and line of a malformed row.
    static func convert(_ data: Data, fileName: String, splits: [String]) throws -> Converted {
        let parsed = try parse(decode(data), fileName: fileName)
        let groups = split(parsed.rows, into: max(1, splits.count), seed: seed)
        let result = zip(splits, groups).map { name, rows in
            Split(name: name, rows: rows, jsonl: rows.map(jsonLine).joined())
        }
        return Converted(rowsRead: parsed.rowsRead, droppedZeroRating: parsed.droppedZeroRating,
                         droppedDuplicateText: parsed.droppedDuplicateText, splits: result)
    }

    /// The file's text: UTF-8 without a BOM, or Windows-1252 when the bytes are not UTF-8.
    static func decode(_ data: Data) -> String {
        var bytes = data
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes = bytes.dropFirst(3) }
        if let text = String(data: bytes, encoding: .utf8) { return text }
        var scalars = String.UnicodeScalarView()
        scalars.append(contentsOf: bytes.map(windows1252Scalar))
        return String(scalars)
    }

    /// Parses `id<TAB>rating<TAB>text` lines (CRLF or LF), labelling by the rating's sign.
    static func parse(_ text: String, fileName: String) throws -> Parsed {
        var rows: [Row] = []
        var seenTexts = Set<String>()
        var rowsRead = 0, zeros = 0, duplicates = 0
        var lineNumber = 0
        // "\r\n" is a single Character in Swift, and a newline.
        for line in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            lineNumber += 1
            if line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            let location = SourceLocation(file: fileName, line: lineNumber)
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard fields.count == 3 else {
                throw TallyError(code: .invalidData, message: "expected 3 tab-separated fields (id, mean rating, text), found \(fields.count); the file is not a VADER ground-truth file", location: location)
            }
            rowsRead += 1
            let id = fields[0].trimmingCharacters(in: .whitespaces)
            let ratingText = fields[1].trimmingCharacters(in: .whitespaces)
            let snippet = fields[2].trimmingCharacters(in: .whitespaces)
            guard !id.isEmpty else {
                throw TallyError(code: .invalidData, message: "the id field is empty", location: location)
            }
            guard let rating = Double(ratingText), rating.isFinite else {
                throw TallyError(code: .invalidData, message: "the mean rating '\(ratingText)' is not a number", location: location)
            }
            guard !snippet.isEmpty else {
                throw TallyError(code: .invalidData, message: "the text field is empty", location: location)
            }
            if rating == 0 { zeros += 1; continue }
            if !seenTexts.insert(snippet).inserted { duplicates += 1; continue }
            rows.append(Row(id: id, text: snippet, label: rating > 0 ? "positive" : "negative",
                            rating: isJSONNumber(ratingText) ? ratingText : String(rating)))
        }
        return Parsed(rows: rows, rowsRead: rowsRead, droppedZeroRating: zeros, droppedDuplicateText: duplicates)
    }

    /// A stratified, seeded split into `count` groups (the first gets the remainder).
    static func split(_ rows: [Row], into count: Int, seed: UInt64) -> [[Row]] {
        var generator = SplitMix64(seed: seed)
        var groups = [[Row]](repeating: [], count: count)
        let labels = Set(rows.map(\.label)).sorted()
        for label in labels {
            var members = rows.filter { $0.label == label }
            generator.shuffle(&members)
            let heldOut = Int((Double(members.count) * heldOutFraction).rounded())
            var start = 0
            for index in 1..<max(count, 1) {
                let end = min(members.count, start + heldOut)
                groups[index].append(contentsOf: members[start..<end])
                start = end
            }
            groups[0].append(contentsOf: members[start...])
        }
        return groups.map { interleaveByLabel($0, labels: labels, using: &generator) }
    }

    /// Shuffles each label's rows, then merges them so that every prefix of the result has
    /// the whole group's label proportions to within one row (largest deficit first).
    static func interleaveByLabel(_ rows: [Row], labels: [String], using generator: inout SplitMix64) -> [Row] {
        var queues = labels.map { label in rows.filter { $0.label == label } }
        for index in queues.indices { generator.shuffle(&queues[index]) }
        let total = Double(rows.count)
        var taken = [Int](repeating: 0, count: queues.count)
        var merged: [Row] = []
        merged.reserveCapacity(rows.count)
        for position in 0..<rows.count {
            var best = -1
            var bestDeficit = -Double.infinity
            for index in queues.indices where taken[index] < queues[index].count {
                let due = Double(position + 1) * Double(queues[index].count) / total
                let deficit = due - Double(taken[index])
                if deficit > bestDeficit + 1e-12 {
                    best = index
                    bestDeficit = deficit
                }
            }
            guard best >= 0 else { break }
            merged.append(queues[best][taken[best]])
            taken[best] += 1
        }
        return merged
    }

    /// One JSONL line with keys in a fixed order.
    static func jsonLine(_ row: Row) -> String {
        "{\"id\":\(jsonString(row.id)),\"text\":\(jsonString(row.text)),\"label\":\(jsonString(row.label)),\"rating\":\(row.rating)}\n"
    }

    /// A JSON string literal: quotes, backslashes and control characters escaped, everything
    /// else (non-ASCII included) written as UTF-8.
    static func jsonString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    /// Whether `text` is a number in JSON's grammar (`-?int(.digits)?([eE][+-]?digits)?`).
    static func isJSONNumber(_ text: String) -> Bool {
        var characters = Substring(text)
        if characters.first == "-" { characters = characters.dropFirst() }
        let integer = characters.prefix { $0.isASCII && $0.isNumber }
        guard !integer.isEmpty, integer == "0" || integer.first != "0" else { return false }
        characters = characters.dropFirst(integer.count)
        if characters.first == "." {
            let fraction = characters.dropFirst().prefix { $0.isASCII && $0.isNumber }
            guard !fraction.isEmpty else { return false }
            characters = characters.dropFirst(1 + fraction.count)
        }
        if characters.first == "e" || characters.first == "E" {
            characters = characters.dropFirst()
            if characters.first == "+" || characters.first == "-" { characters = characters.dropFirst() }
            let exponent = characters.prefix { $0.isASCII && $0.isNumber }
            guard !exponent.isEmpty else { return false }
            characters = characters.dropFirst(exponent.count)
        }
        return characters.isEmpty
    }

    /// The Unicode scalar of a Windows-1252 byte.
    static func windows1252Scalar(_ byte: UInt8) -> Unicode.Scalar {
        let high: [UInt32] = [
            0x20AC, 0xFFFD, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0xFFFD, 0x017D, 0xFFFD,
            0xFFFD, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0xFFFD, 0x017E, 0x0178,
        ]
        if byte >= 0x80 && byte < 0xA0 {
            return Unicode.Scalar(high[Int(byte - 0x80)]) ?? "\u{FFFD}"
        }
        return Unicode.Scalar(byte)
    }

    /// The split's generator: Tally's seeded generator.
    typealias SplitMix64 = SeededRandom
}

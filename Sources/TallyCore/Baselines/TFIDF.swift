import Foundation

/// How one block of TF-IDF features is made from text. The meaning of every field is
/// scikit-learn's `TfidfVectorizer` with `lowercase=True`, `smooth_idf=True`, `norm="l2"`:
///
/// - `word`: tokens are maximal runs of two or more word characters (letters, digits, `_`),
///   scikit-learn's default `token_pattern`; n-grams join consecutive tokens with a space.
/// - `charWordBounded` (`char_wb`): character n-grams inside words, each word padded with one
///   space on both sides; a word shorter than n counts once, whole.
public struct TFIDFOptions: Codable, Sendable, Hashable {
    public enum Analyzer: String, Codable, Sendable, Hashable, CaseIterable {
        case word
        case charWordBounded = "char_wb"
    }

    public let analyzer: Analyzer
    /// Smallest and largest n-gram length, inclusive.
    public let ngramMin: Int
    public let ngramMax: Int
    /// Term frequency 1 + ln(count) instead of the count.
    public let sublinearTF: Bool
    /// Keep only this many terms, the most frequent over the training documents (ties go to
    /// the term that sorts first); nil keeps every term.
    public let maxFeatures: Int?

    public init(analyzer: Analyzer, ngramMin: Int = 1, ngramMax: Int = 1, sublinearTF: Bool = false, maxFeatures: Int? = nil) {
        self.analyzer = analyzer
        self.ngramMin = max(1, ngramMin)
        self.ngramMax = max(self.ngramMin, ngramMax)
        self.sublinearTF = sublinearTF
        self.maxFeatures = maxFeatures
    }

    enum CodingKeys: String, CodingKey {
        case analyzer
        case ngramMin = "ngram_min"
        case ngramMax = "ngram_max"
        case sublinearTF = "sublinear_tf"
        case maxFeatures = "max_features"
    }

    /// The terms of one document, with repeats (lowercased first).
    public func terms(of text: String) -> [String] {
        let lower = text.lowercased()
        switch analyzer {
        case .word: return TextTerms.wordNGrams(TextTerms.words(lower), min: ngramMin, max: ngramMax)
        case .charWordBounded: return TextTerms.charWordBoundedNGrams(lower, min: ngramMin, max: ngramMax)
        }
    }
}

/// Tokenizers behind `TFIDFOptions`, on Unicode scalars (Python's code points).
public enum TextTerms {
    /// Whether a scalar is a word character as in Python's `\w`: a letter, a number or `_`.
    public static func isWordCharacter(_ scalar: Unicode.Scalar) -> Bool {
        if scalar == "_" { return true }
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
             .decimalNumber, .letterNumber, .otherNumber:
            return true
        default:
            return scalar.properties.numericType != nil
        }
    }

    /// Whether a scalar separates words for `str.split()`: Unicode white space and the
    /// information separators U+001C-U+001F.
    public static func isSpace(_ scalar: Unicode.Scalar) -> Bool {
        scalar.properties.isWhitespace || (0x1C...0x1F).contains(scalar.value)
    }

    /// Maximal runs of two or more word characters, in order.
    public static func words(_ text: String) -> [String] {
        var tokens: [String] = []
        var current = String.UnicodeScalarView()
        func flush() {
            if current.count >= 2 { tokens.append(String(current)) }
            current = String.UnicodeScalarView()
        }
        for scalar in text.unicodeScalars {
            if isWordCharacter(scalar) { current.append(scalar) } else { flush() }
        }
        flush()
        return tokens
    }

    /// The n-grams of `tokens` for n in `min...max`, each joined with one space.
    public static func wordNGrams(_ tokens: [String], min: Int, max: Int) -> [String] {
        var grams: [String] = []
        for n in min...max where n <= tokens.count {
            for start in 0...(tokens.count - n) {
                grams.append(n == 1 ? tokens[start] : tokens[start..<(start + n)].joined(separator: " "))
            }
        }
        return grams
    }

    /// Character n-grams within words: each whitespace-separated word is padded with a space
    /// on both sides and cut into n-grams for n in `min...max`; a padded word no longer than
    /// n yields itself once, and no longer n-grams.
    public static func charWordBoundedNGrams(_ text: String, min: Int, max: Int) -> [String] {
        var grams: [String] = []
        var words: [[Unicode.Scalar]] = []
        var current: [Unicode.Scalar] = []
        for scalar in text.unicodeScalars {
            if isSpace(scalar) {
                if !current.isEmpty { words.append(current) }
                current = []
            } else {
                current.append(scalar)
            }
        }
        if !current.isEmpty { words.append(current) }
        for word in words {
            let padded: [Unicode.Scalar] = [" "] + word + [" "]
            for n in min...max {
                if padded.count <= n {
                    grams.append(string(padded[...]))
                    break
                }
                for start in 0...(padded.count - n) { grams.append(string(padded[start..<(start + n)])) }
            }
        }
        return grams
    }

    static func string(_ scalars: ArraySlice<Unicode.Scalar>) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return String(view)
    }
}

/// A fitted TF-IDF block: the vocabulary and inverse document frequencies learnt from
/// training documents, and the transform of new text into an L2-normalised sparse vector.
///
/// idf(t) = ln((1 + n) / (1 + df(t))) + 1, tf is the count (or 1 + ln(count) with
/// `sublinearTF`), and each document's tf x idf vector is scaled to unit length.
///
/// ```swift
/// let block = TFIDFVectorizer.fit(["a good film", "a bad film"], options: TFIDFOptions(analyzer: .word))
/// let x = block.transform("good film")
/// ```
public struct TFIDFVectorizer: Sendable, Hashable {
    public let options: TFIDFOptions
    /// The vocabulary in code-point order; a term's position is its feature index.
    public let terms: [String]
    /// Inverse document frequency of each term.
    public let idf: [Double]
    /// Training documents the statistics were computed on.
    public let documentCount: Int
    let index: [String: Int]

    public init(options: TFIDFOptions, terms: [String], idf: [Double], documentCount: Int) {
        self.options = options
        self.terms = terms
        self.idf = idf
        self.documentCount = documentCount
        self.index = Dictionary(terms.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
    }

    /// Number of features (terms).
    public var featureCount: Int { terms.count }

    /// Learns the vocabulary and idf from `documents`.
    public static func fit(_ documents: [String], options: TFIDFOptions) -> TFIDFVectorizer {
        var totals: [String: Int] = [:]
        var documentFrequency: [String: Int] = [:]
        for document in documents {
            var counts: [String: Int] = [:]
            for term in options.terms(of: document) { counts[term, default: 0] += 1 }
            for (term, count) in counts {
                totals[term, default: 0] += count
                documentFrequency[term, default: 0] += 1
            }
        }
        var vocabulary = totals.keys.sorted(by: precedes)
        if let limit = options.maxFeatures, vocabulary.count > limit {
            // The most frequent terms; a stable sort keeps code-point order among ties.
            let kept = vocabulary.enumerated()
                .sorted { a, b in
                    let (ca, cb) = (totals[a.element] ?? 0, totals[b.element] ?? 0)
                    return ca != cb ? ca > cb : a.offset < b.offset
                }
                .prefix(limit).map(\.element)
            vocabulary = kept.sorted(by: precedes)
        }
        let n = Double(documents.count)
        let idf = vocabulary.map { term in log((1 + n) / (1 + Double(documentFrequency[term] ?? 0))) + 1 }
        return TFIDFVectorizer(options: options, terms: vocabulary, idf: idf, documentCount: documents.count)
    }

    /// The L2-normalised tf-idf vector of `text`; terms outside the vocabulary are ignored.
    public func transform(_ text: String) -> SparseVector {
        var counts: [Int: Int] = [:]
        for term in options.terms(of: text) {
            if let i = index[term] { counts[i, default: 0] += 1 }
        }
        let pairs = counts.map { (i, count) -> (index: Int, value: Double) in
            let tf = options.sublinearTF ? 1 + log(Double(count)) : Double(count)
            return (i, tf * idf[i])
        }
        return SparseVector(pairs: pairs).normalized
    }

    /// Code-point (UTF-8 byte) order, as Python sorts strings.
    static func precedes(_ a: String, _ b: String) -> Bool {
        a.utf8.lexicographicallyPrecedes(b.utf8)
    }
}

/// Several TF-IDF blocks side by side (scikit-learn's `FeatureUnion` of vectorizers): each
/// block is normalised on its own, then the blocks are concatenated in order.
///
/// ```swift
/// let features = TextFeaturizer.fit(trainTexts, blocks: [
///     TFIDFOptions(analyzer: .word, ngramMin: 1, ngramMax: 2),
///     TFIDFOptions(analyzer: .charWordBounded, ngramMin: 2, ngramMax: 5),
/// ])
/// let x = features.transform("a quietly moving film")
/// ```
public struct TextFeaturizer: Sendable, Hashable {
    public let blocks: [TFIDFVectorizer]

    public init(blocks: [TFIDFVectorizer]) {
        self.blocks = blocks
    }

    /// Fits one vectorizer per entry of `blocks` on `documents`.
    public static func fit(_ documents: [String], blocks: [TFIDFOptions]) -> TextFeaturizer {
        TextFeaturizer(blocks: blocks.map { TFIDFVectorizer.fit(documents, options: $0) })
    }

    /// Total number of features.
    public var featureCount: Int { blocks.reduce(0) { $0 + $1.featureCount } }

    /// The concatenated vectors of every block.
    public func transform(_ text: String) -> SparseVector {
        var result = SparseVector.zero
        var width = 0
        for block in blocks {
            result = result.concatenated(with: block.transform(text), width: width)
            width += block.featureCount
        }
        return result
    }
}

import Foundation

/// Text normalisation shared by every metric.
///
/// `normalize` lower-cases, turns punctuation and symbols into spaces, drops the English
/// articles `a`, `an`, `the` and collapses whitespace (the SQuAD convention), so
/// `"The  Positive!"` and `"positive"` compare equal.
public enum TextNormalizer {
    static let articles: Set<String> = ["a", "an", "the"]

    /// Lower-cased words with punctuation removed.
    /// - Parameter keepArticles: keep `a`, `an`, `the` (ROUGE-L does).
    public static func tokens(_ text: String, keepArticles: Bool = false) -> [String] {
        var words: [String] = []
        var current = ""
        for scalar in text.lowercased().unicodeScalars {
            if CharacterSet.alphanumerics.contains(scalar) {
                current.unicodeScalars.append(scalar)
            } else if scalar == "'" || scalar == "\u{2019}" {
                continue  // "don't" -> "dont": apostrophes join, they do not split
            } else if !current.isEmpty {
                words.append(current)
                current = ""
            }
        }
        if !current.isEmpty { words.append(current) }
        return keepArticles ? words : words.filter { !articles.contains($0) }
    }

    /// The normalised text: `tokens(text)` joined by single spaces.
    public static func normalize(_ text: String) -> String { tokens(text).joined(separator: " ") }
}

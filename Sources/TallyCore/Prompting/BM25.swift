import Foundation

/// Okapi BM25 over a fixed set of documents (k1 = 1.2, b = 0.75), used to pick the
/// demonstrations most similar to a test input (few-shot `selection: similar`) and the corpus
/// chunks a `rag` strategy retrieves. Words are `TextNormalizer.tokens`.
public struct BM25: Sendable {
    public static let defaultK1 = 1.2
    public static let defaultB = 0.75
    public let k1: Double
    public let b: Double
    let documents: [[String: Int]]
    let lengths: [Int]
    let averageLength: Double
    let documentFrequency: [String: Int]

    /// Indexes `documents`.
    public init(documents: [String], k1: Double = BM25.defaultK1, b: Double = BM25.defaultB) {
        self.init(termCounts: documents.map { document in
            var counts: [String: Int] = [:]
            for token in TextNormalizer.tokens(document) { counts[token, default: 0] += 1 }
            return counts
        }, k1: k1, b: b)
    }

    /// An index from its statistics: each document's word counts (what `termCounts` holds;
    /// a document's length is the sum of its counts). A cached index is rebuilt this way.
    public init(termCounts: [[String: Int]], k1: Double = BM25.defaultK1, b: Double = BM25.defaultB) {
        self.k1 = k1
        self.b = b
        var lengths: [Int] = []
        lengths.reserveCapacity(termCounts.count)
        var df: [String: Int] = [:]
        for counts in termCounts {
            var length = 0
            for (token, count) in counts {
                df[token, default: 0] += 1
                length += count
            }
            lengths.append(length)
        }
        self.documents = termCounts
        self.lengths = lengths
        self.documentFrequency = df
        self.averageLength = lengths.isEmpty ? 0 : Double(lengths.reduce(0, +)) / Double(lengths.count)
    }

    /// Each document's word counts, in document order.
    public var termCounts: [[String: Int]] { documents }

    /// Inverse document frequency: ln(1 + (N - df + 0.5) / (df + 0.5)).
    public func idf(_ term: String) -> Double {
        let n = Double(documents.count), df = Double(documentFrequency[term] ?? 0)
        return log(1 + (n - df + 0.5) / (df + 0.5))
    }

    /// The BM25 score of every document for `query`, in document order.
    public func scores(for query: String) -> [Double] {
        let terms = TextNormalizer.tokens(query)
        return documents.indices.map { index in
            let counts = documents[index]
            let norm = averageLength > 0 ? Double(lengths[index]) / averageLength : 0
            var score = 0.0
            for term in terms {
                guard let tf = counts[term] else { continue }
                let f = Double(tf)
                score += idf(term) * f * (k1 + 1) / (f + k1 * (1 - b + b * norm))
            }
            return score
        }
    }

    /// The indices of the `k` best-scoring documents for `query`, best first (ties: the
    /// earlier document first); documents sharing no word with the query score 0 and are left out.
    public func top(_ k: Int, for query: String) -> [Int] {
        let scores = scores(for: query)
        return TopK.indices(of: scores, k: k, minimum: .leastNonzeroMagnitude)
    }
}

/// The best `k` of a list of scores: one ranking rule for every retriever.
public enum TopK {
    /// Indices of the `k` highest scores at or above `minimum`, highest first; ties keep the
    /// lower index first.
    public static func indices(of scores: [Double], k: Int, minimum: Double = -.infinity) -> [Int] {
        guard k > 0 else { return [] }
        var best: [Int] = []
        best.reserveCapacity(k + 1)
        for index in scores.indices where scores[index] >= minimum {
            // Insertion into a sorted list of at most k entries.
            var position = best.count
            while position > 0, scores[best[position - 1]] < scores[index] { position -= 1 }
            guard position < k else { continue }
            best.insert(index, at: position)
            if best.count > k { best.removeLast() }
        }
        return best
    }
}

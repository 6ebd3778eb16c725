import Foundation
import TallyCore

/// Checks any `TextEmbedder` against what `rag` strategies with `retriever: embeddings`
/// rely on. `BackendConformance` runs it for a backend that can embed; plugin authors may
/// call it from their own tests:
///
/// ```swift
/// @Test func myEmbedderConforms() async {
///     let checks = await EmbedderConformance.check(MyEmbedder())
///     #expect(checks.failures.isEmpty, Comment(rawValue: checks.failureSummary ?? ""))
/// }
/// ```
///
/// The checks, in order (names as `ConformanceCheck.name`):
/// - `embed answers`: one `embed` call of `texts` returns within `timeouts.request` with one
///   vector per text (a thrown error, such as an exec program's malformed reply, fails it);
/// - `vectors are usable`: every vector has the same dimension (at least 1), finite numbers,
///   and is not all zeros for a text with words; `maxBatchSize` is at least 1;
/// - `vectors repeat`: the same text gives the same vector, within a call and across calls
///   (the ledger caches vectors by text), and `identity` is non-empty and stable;
/// - `tokens are reported`: `promptTokens` is positive for non-empty texts.
public enum EmbedderConformance {
    /// Three short texts, the first repeated.
    public static let defaultTexts = ["a black cat sleeps on the warm mat", "stock prices fell sharply today", "a black cat sleeps on the warm mat"]

    /// Runs the checks on `embedder`.
    /// - Parameters:
    ///   - texts: texts to embed (the first one is embedded again in a second call);
    ///     `defaultTexts` when nil or empty. At most `embedder.maxBatchSize` are sent.
    ///   - timeouts: how long a call may take before it counts as hung.
    /// - Returns: one `ConformanceCheck` per check; never throws.
    public static func check(_ embedder: any TextEmbedder, texts: [String]? = nil, timeouts: ConformanceTimeouts = ConformanceTimeouts()) async -> [ConformanceCheck] {
        let batch = Array((texts.flatMap { $0.isEmpty ? nil : $0 } ?? defaultTexts).prefix(max(1, embedder.maxBatchSize)))
        let identity = embedder.identity
        let first: Embeddings
        switch await bounded(timeouts.request, { try await embedder.embed(batch) }) {
        case .value(let value):
            first = value
        case .error(let error):
            return [.fail("embed answers", "embed failed: \(describe(error))")]
        case .timedOut:
            return [.fail("embed answers", "embed did not return within \(timeouts.request.shortDescription)")]
        }
        guard first.vectors.count == batch.count else {
            return [.fail("embed answers", "\(first.vectors.count) vectors for \(batch.count) texts; answer one vector per text, in order")]
        }
        var checks: [ConformanceCheck] = [.pass("embed answers", "\(batch.count) texts, \(batch.count) vectors")]

        let dimension = first.vectors.first?.count ?? 0
        var problems: [String] = []
        if embedder.maxBatchSize < 1 { problems.append("maxBatchSize is \(embedder.maxBatchSize); it must be at least 1") }
        if dimension < 1 { problems.append("the first vector is empty") }
        for (index, vector) in first.vectors.enumerated() {
            if vector.count != dimension { problems.append("vector \(index) has \(vector.count) numbers, vector 0 has \(dimension)") }
            if vector.contains(where: { !$0.isFinite }) { problems.append("vector \(index) holds a number that is not finite") }
            if !batch[index].trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, vector.allSatisfy({ $0 == 0 }) {
                problems.append("vector \(index) is all zeros, so its cosine similarity to anything is 0")
            }
        }
        checks.append(problems.isEmpty ? .pass("vectors are usable", "dimension \(dimension), finite, batches of up to \(embedder.maxBatchSize)") : .fail("vectors are usable", problems.joined(separator: "; ")))

        var repeats: [String] = []
        if identity.isEmpty { repeats.append("identity is empty; it is part of every cached vector's key") }
        for (index, text) in batch.enumerated() {
            if let earlier = batch.firstIndex(of: text), earlier < index, first.vectors[earlier] != first.vectors[index] {
                repeats.append("texts \(earlier) and \(index) are the same but got different vectors in one call")
            }
        }
        switch await bounded(timeouts.request, { try await embedder.embed([batch[0]]) }) {
        case .value(let again):
            if again.vectors.first != first.vectors.first { repeats.append("the same text got another vector in a second call; vectors are cached by text, so they must repeat") }
        case .error(let error):
            repeats.append("a second embed call failed: \(describe(error))")
        case .timedOut:
            repeats.append("a second embed call did not return within \(timeouts.request.shortDescription)")
        }
        if embedder.identity != identity { repeats.append("identity changed from '\(identity)' to '\(embedder.identity)'") }
        checks.append(repeats.isEmpty ? .pass("vectors repeat", "the same text gives the same vector; identity '\(identity)'") : .fail("vectors repeat", repeats.joined(separator: "; ")))

        checks.append(first.promptTokens > 0 || batch.allSatisfy(\.isEmpty)
            ? .pass("tokens are reported", "\(first.promptTokens) tokens for \(batch.count) texts")
            : .fail("tokens are reported", "promptTokens is \(first.promptTokens) for \(batch.count) non-empty texts; report what the provider billed or the model counted"))
        return checks
    }
}

import Foundation
import Synchronization

/// What calls and training cost, by the recipe's prices (the same rules as the cost model).
public enum CallPricing {
    /// Dollars for one call: uncached prompt tokens at the input price (the fine-tuned
    /// price for adapted models when set), cached prompt tokens at the cached price,
    /// completion tokens at the output price, plus local compute seconds at
    /// `computeUSDPerHour`.
    public static func usd(usage: TokenUsage, computeSeconds: Double?, price: Pricing, fineTuned: Bool, computeUSDPerHour: Double) -> Double {
        let input = (fineTuned ? price.fineTunedInputPerMTok : nil) ?? price.inputPerMTok
        let output = (fineTuned ? price.fineTunedOutputPerMTok : nil) ?? price.outputPerMTok
        let cached = price.cachedInputPerMTok ?? input
        let uncachedTokens = max(0, usage.promptTokens - usage.cachedPromptTokens)
        let tokens = (Double(uncachedTokens) * input + Double(usage.cachedPromptTokens) * cached + Double(usage.completionTokens) * output) / 1_000_000
        return tokens + (computeSeconds ?? 0) * computeUSDPerHour / 3600
    }

    /// Dollars for a training job: what the provider billed, else trained tokens at the
    /// training price, else (a job that ran on this machine) wall time at
    /// `computeUSDPerHour`. Nil for a hosted job with neither a bill nor a training price:
    /// its cost is unknown (this machine only polled it).
    public static func trainingUSD(_ outcome: FineTuneOutcome, price: Pricing, computeUSDPerHour: Double) -> Double? {
        if let billed = outcome.billedUSD { return billed }
        if let perMTok = price.trainingPerMTok, perMTok > 0 || outcome.hostedOn != nil { return Double(outcome.trainedTokens) * perMTok / 1_000_000 }
        if outcome.hostedOn != nil { return nil }
        return outcome.wallSeconds * computeUSDPerHour / 3600
    }

    /// Dollars for embedding `tokens` tokens at `perMTok` USD per million.
    public static func embeddingUSD(tokens: Double, perMTok: Double) -> Double { tokens * perMTok / 1_000_000 }

    /// Estimated tokens of a text: characters / 4, rounded up (an estimate, not a tokenizer).
    public static func estimatedTokens(_ text: String) -> Int { (text.count + 3) / 4 }

    /// Estimated prompt tokens of a request (all message contents, plus 4 per message).
    public static func estimatedPromptTokens(_ messages: [ChatMessage]) -> Int {
        messages.reduce(0) { $0 + estimatedTokens($1.content) + 4 }
    }
}

/// Tracks a run's spending against `constraints.budget_usd`: committed dollars plus
/// dollars reserved by calls in flight.
final class BudgetTracker: Sendable {
    let limit: Double?
    private let state = Mutex<(spent: Double, reserved: Double)>((0, 0))

    init(limit: Double?) { self.limit = limit }

    var spent: Double { state.withLock { $0.spent } }

    /// Reserves `estimate` dollars; false when that would exceed the limit.
    func reserve(_ estimate: Double) -> Bool {
        state.withLock { s in
            if let limit, s.spent + s.reserved + estimate > limit + 1e-12 { return false }
            s.reserved += estimate
            return true
        }
    }

    /// Whether `estimate` more dollars fit, without reserving them.
    func fits(_ estimate: Double) -> Bool {
        state.withLock { s in limit.map { s.spent + s.reserved + estimate <= $0 + 1e-12 } ?? true }
    }

    /// Replaces a reservation by what the call actually cost.
    func commit(reserved: Double, actual: Double) {
        state.withLock { s in
            s.reserved = max(0, s.reserved - reserved)
            s.spent += actual
        }
    }

    /// Adds dollars already spent (cached results from earlier runs count too: they are
    /// part of what this experiment costs).
    func add(_ usd: Double) { state.withLock { $0.spent += usd } }
}

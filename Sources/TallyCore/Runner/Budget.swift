import Foundation
import Synchronization

/// What calls and training cost, by the recipe's prices: the one place where a call's price,
/// a training job's charge and a training job's estimate are computed. The budget, the cost
/// model, `tally plan` and `tally run` all use these functions.
public enum CallPricing {
    /// Dollars for one call: uncached prompt tokens at the input price (the fine-tuned
    /// price for adapted models when set), cached prompt tokens at the cached price,
    /// completion tokens at the output price, plus local compute seconds at
    /// `computeUSDPerHour`.
    public static func usd(usage: TokenUsage, computeSeconds: Double?, price: Pricing, fineTuned: Bool, computeUSDPerHour: Double) -> Double {
        usd(promptTokens: Double(usage.promptTokens), cachedPromptTokens: Double(usage.cachedPromptTokens), completionTokens: Double(usage.completionTokens),
            computeSeconds: computeSeconds ?? 0, price: price, fineTuned: fineTuned, computeUSDPerHour: computeUSDPerHour)
    }

    /// Dollars for one call from token counts that may be means over many calls (the cost
    /// model prices the mean request). Cached tokens are part of the prompt tokens.
    public static func usd(promptTokens: Double, cachedPromptTokens: Double, completionTokens: Double, computeSeconds: Double, price: Pricing, fineTuned: Bool, computeUSDPerHour: Double) -> Double {
        let input = (fineTuned ? price.fineTunedInputPerMTok : nil) ?? price.inputPerMTok
        let output = (fineTuned ? price.fineTunedOutputPerMTok : nil) ?? price.outputPerMTok
        let cached = price.cachedInputPerMTok ?? input
        let uncachedTokens = max(0, promptTokens - cachedPromptTokens)
        let tokens = (uncachedTokens * input + cachedPromptTokens * cached + completionTokens * output) / 1_000_000
        return tokens + computeSeconds * computeUSDPerHour / 3600
    }

    /// How a finished training job is charged.
    public enum TrainingCharge: Sendable, Equatable {
        /// What the provider billed.
        case billed(usd: Double)
        /// Trained tokens at the backend's `training_per_mtok`.
        case tokens(trained: Int, usdPerMTok: Double)
        /// A job that ran on this machine: its wall time at `compute_usd_per_hour`.
        case compute(seconds: Double, usdPerHour: Double)
        /// A hosted job with neither a bill nor a training price: unknown (this machine
        /// only polled it, so its wall time prices nothing).
        case unknown(host: String, trainedTokens: Int)

        /// The dollars; nil when unknown.
        public var usd: Double? {
            switch self {
            case .billed(let usd): usd
            case .tokens(let trained, let perMTok): Double(trained) * perMTok / 1_000_000
            case .compute(let seconds, let perHour): seconds * perHour / 3600
            case .unknown: nil
            }
        }
    }

    /// How a training job is charged: what the provider billed, else trained tokens at the
    /// training price, else (a job that ran on this machine) wall time at
    /// `computeUSDPerHour`; unknown for a hosted job with neither a bill nor a training price.
    public static func trainingCharge(_ outcome: FineTuneOutcome, price: Pricing, computeUSDPerHour: Double) -> TrainingCharge {
        if let billed = outcome.billedUSD { return .billed(usd: billed) }
        if let perMTok = price.trainingPerMTok, perMTok > 0 || outcome.hostedOn != nil { return .tokens(trained: outcome.trainedTokens, usdPerMTok: perMTok) }
        if let host = outcome.hostedOn { return .unknown(host: host, trainedTokens: outcome.trainedTokens) }
        return .compute(seconds: outcome.wallSeconds, usdPerHour: computeUSDPerHour)
    }

    /// Dollars for a training job (``trainingCharge(_:price:computeUSDPerHour:)``); nil when unknown.
    public static func trainingUSD(_ outcome: FineTuneOutcome, price: Pricing, computeUSDPerHour: Double) -> Double? {
        trainingCharge(outcome, price: price, computeUSDPerHour: computeUSDPerHour).usd
    }

    /// Assumed training speed of a local backend, for estimates (nothing is measured before a run).
    public static let localTrainingTokensPerSecond = 300.0

    /// Whether a backend is treated as local for estimates: it has no token prices.
    public static func isLocal(_ price: Pricing) -> Bool {
        price.inputPerMTok == 0 && price.outputPerMTok == 0
    }

    /// The estimate of a training job before it runs: tokens processed (the training
    /// examples' tokens times the epochs, fewer when `max_steps` stops it earlier), seconds
    /// (local backends at ``localTrainingTokensPerSecond``; 0 for hosted ones) and dollars
    /// (tokens at `training_per_mtok` when the backend has one, else the seconds at
    /// `computeUSDPerHour`). `tally plan` and `tally run`'s budget check both use it.
    /// - Parameters:
    ///   - request: the job.
    ///   - price: the backend's prices.
    ///   - computeUSDPerHour: the recipe's compute price.
    ///   - tokens: a text's token count (a tokenizer's, or ``estimatedTokens(_:)``).
    public static func trainingEstimate(_ request: FineTuneRequest, price: Pricing, computeUSDPerHour: Double, tokens: (String) -> Int = estimatedTokens) -> (tokens: Int, seconds: Double, usd: Double) {
        let perEpoch = request.train.reduce(0) { $0 + estimatedPromptTokens($1.messages, tokens: tokens) + tokens($1.completion) }
        var epochs = request.options.epochs
        if let steps = request.options.maxSteps, !request.train.isEmpty {
            let stepsPerEpoch = max(1.0, (Double(request.train.count) / Double(max(1, request.options.batchSize * request.options.gradientAccumulation))).rounded(.up))
            epochs = min(epochs, Double(steps) / stepsPerEpoch)
        }
        let jobTokens = Int((Double(perEpoch) * epochs).rounded())
        let seconds = isLocal(price) ? Double(jobTokens) / localTrainingTokensPerSecond : 0
        let usd: Double
        if let perMTok = price.trainingPerMTok, perMTok > 0 {
            usd = Double(jobTokens) * perMTok / 1_000_000
        } else {
            usd = seconds * computeUSDPerHour / 3600
        }
        return (jobTokens, seconds, usd)
    }

    /// Dollars for embedding `tokens` tokens at `perMTok` USD per million.
    public static func embeddingUSD(tokens: Double, perMTok: Double) -> Double { tokens * perMTok / 1_000_000 }

    /// Estimated tokens of a text: characters / 4, rounded up (an estimate, not a tokenizer).
    public static func estimatedTokens(_ text: String) -> Int { (text.count + 3) / 4 }

    /// Estimated prompt tokens of a request (all message contents, plus 4 per message).
    public static func estimatedPromptTokens(_ messages: [ChatMessage], tokens: (String) -> Int = estimatedTokens) -> Int {
        messages.reduce(0) { $0 + tokens($1.content) + 4 }
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

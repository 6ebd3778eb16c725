import Foundation

/// What a strategy costs: once (training) and per request (tokens and compute), and in
/// total over the recipe's horizon. Every input is a measurement; the only estimate is the
/// clearly labelled `gpuEstimate`.
public struct StrategyCost: Codable, Sendable, Hashable {
    /// Training cost: the provider's bill, trained tokens x training price, or (training on
    /// this machine) wall time x compute price; 0 for prompting strategies, and 0 when
    /// `oneOffUnknown`; plus labelling the training examples it needs beyond those already
    /// labelled (`costs.label_usd_per_example`).
    public let oneOffUSD: Double
    /// How `oneOffUSD` was obtained, in words.
    public let oneOffBasis: String
    /// True when the training cost is unknown: a hosted job whose provider reported no bill,
    /// on a backend without `training_per_mtok`. `oneOffUSD` is then 0 and `totalUSD` leaves
    /// training out; reports say "unknown" rather than show a made-up number.
    public let oneOffUnknown: Bool
    /// Cost of 1,000 requests at the measured mean tokens and compute time.
    public let per1kRequestsUSD: Double
    /// `oneOffUSD` + requests over the horizon x per-request cost.
    public let totalUSD: Double
    /// What answering the evaluated test examples cost (per-request cost x n).
    public let evaluationUSD: Double
    public let meanPromptTokens: Double
    public let meanCachedPromptTokens: Double
    public let meanCompletionTokens: Double
    /// Mean local compute seconds per request (local backends); 0 for hosted ones.
    public let meanComputeSeconds: Double
    /// What the same training job would cost on a rented GPU: an estimate, labelled as such.
    public let gpuEstimate: GPUEstimate?

    public init(oneOffUSD: Double, oneOffBasis: String, oneOffUnknown: Bool = false, per1kRequestsUSD: Double, totalUSD: Double, evaluationUSD: Double, meanPromptTokens: Double, meanCachedPromptTokens: Double, meanCompletionTokens: Double, meanComputeSeconds: Double, gpuEstimate: GPUEstimate?) {
        self.oneOffUSD = oneOffUSD
        self.oneOffBasis = oneOffBasis
        self.oneOffUnknown = oneOffUnknown
        self.per1kRequestsUSD = per1kRequestsUSD
        self.totalUSD = totalUSD
        self.evaluationUSD = evaluationUSD
        self.meanPromptTokens = meanPromptTokens
        self.meanCachedPromptTokens = meanCachedPromptTokens
        self.meanCompletionTokens = meanCompletionTokens
        self.meanComputeSeconds = meanComputeSeconds
        self.gpuEstimate = gpuEstimate
    }

    /// Cost of one request.
    public var perRequestUSD: Double { per1kRequestsUSD / 1000 }

    enum CodingKeys: String, CodingKey {
        case oneOffUSD = "one_off_usd"
        case oneOffBasis = "one_off_basis"
        case oneOffUnknown = "one_off_unknown"
        case per1kRequestsUSD = "per_1k_requests_usd"
        case totalUSD = "total_usd"
        case evaluationUSD = "evaluation_usd"
        case meanPromptTokens = "mean_prompt_tokens"
        case meanCachedPromptTokens = "mean_cached_prompt_tokens"
        case meanCompletionTokens = "mean_completion_tokens"
        case meanComputeSeconds = "mean_compute_s"
        case gpuEstimate = "gpu_estimate"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        oneOffUSD = try c.decode(Double.self, forKey: .oneOffUSD)
        oneOffBasis = try c.decode(String.self, forKey: .oneOffBasis)
        oneOffUnknown = try c.decodeIfPresent(Bool.self, forKey: .oneOffUnknown) ?? false
        per1kRequestsUSD = try c.decode(Double.self, forKey: .per1kRequestsUSD)
        totalUSD = try c.decode(Double.self, forKey: .totalUSD)
        evaluationUSD = try c.decode(Double.self, forKey: .evaluationUSD)
        meanPromptTokens = try c.decode(Double.self, forKey: .meanPromptTokens)
        meanCachedPromptTokens = try c.decode(Double.self, forKey: .meanCachedPromptTokens)
        meanCompletionTokens = try c.decode(Double.self, forKey: .meanCompletionTokens)
        meanComputeSeconds = try c.decode(Double.self, forKey: .meanComputeSeconds)
        gpuEstimate = try c.decodeIfPresent(GPUEstimate.self, forKey: .gpuEstimate)
    }

    /// `one_off_unknown` is written only when true, so reports with known costs keep their layout.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(oneOffUSD, forKey: .oneOffUSD)
        try c.encode(oneOffBasis, forKey: .oneOffBasis)
        if oneOffUnknown { try c.encode(true, forKey: .oneOffUnknown) }
        try c.encode(per1kRequestsUSD, forKey: .per1kRequestsUSD)
        try c.encode(totalUSD, forKey: .totalUSD)
        try c.encode(evaluationUSD, forKey: .evaluationUSD)
        try c.encode(meanPromptTokens, forKey: .meanPromptTokens)
        try c.encode(meanCachedPromptTokens, forKey: .meanCachedPromptTokens)
        try c.encode(meanCompletionTokens, forKey: .meanCompletionTokens)
        try c.encode(meanComputeSeconds, forKey: .meanComputeSeconds)
        try c.encodeIfPresent(gpuEstimate, forKey: .gpuEstimate)
    }
}

/// An estimate of what a training job would cost on one rented H100, from measured
/// PyTorch throughput for a model of similar shape. Never mixed into measured costs.
public struct GPUEstimate: Codable, Sendable, Hashable {
    public let usd: Double
    public let seconds: Double
    public let tokensPerSecond: Double
    /// Which throughput row was used, and why, in words.
    public let basis: String

    enum CodingKeys: String, CodingKey {
        case usd, seconds, basis
        case tokensPerSecond = "tokens_per_s"
    }
}

/// The monthly request volume at which two strategies cost the same over the horizon.
public struct BreakEven: Codable, Sendable, Hashable {
    public let first: String
    public let second: String
    /// Requests per month where total costs are equal; nil when one is cheaper (or they are
    /// equal) at every volume.
    public let requestsPerMonth: Double?
    /// The cheaper strategy below that volume (or at every volume when there is no break-even).
    public let cheaperBelow: String?
    /// The cheaper strategy above that volume.
    public let cheaperAbove: String?
    /// One sentence saying the above in words.
    public let summary: String

    enum CodingKeys: String, CodingKey {
        case first, second, summary
        case requestsPerMonth = "requests_per_month"
        case cheaperBelow = "cheaper_below"
        case cheaperAbove = "cheaper_above"
    }
}

/// Turns measurements and prices into costs.
public enum CostModel {
    /// A reference training throughput on one GPU, for the labelled GPU estimate of a
    /// training method (`h100Throughput` lists the measured rows for the built-in methods).
    public struct GPUThroughput: Sendable, Hashable {
        public let shape: String
        /// Substrings of a model name that select this shape.
        public let matches: [String]
        /// The training method (`FineTuneMethod.name`) this row was measured for.
        public let method: String
        /// The method in words, for the estimate's basis.
        public let label: String
        public let tokensPerSecond: Double

        public init(shape: String, matches: [String], method: String, label: String, tokensPerSecond: Double) {
            self.shape = shape
            self.matches = matches
            self.method = method
            self.label = label
            self.tokensPerSecond = tokensPerSecond
        }
    }

    /// Computes a strategy's costs.
    /// - Parameters:
    ///   - strategy: what the run measured for the strategy.
    ///   - costs: compute price, traffic and horizon from the recipe.
    /// - Returns: one-off, per-1k-requests and total cost, with the means they came from.
    public static func cost(of strategy: StrategyMeasurement, costs: CostSpec) -> StrategyCost {
        let predictions = strategy.predictions
        let n = Double(max(predictions.count, 1))
        let promptTokens = Double(predictions.reduce(0) { $0 + $1.usage.promptTokens }) / n
        let cachedTokens = Double(predictions.reduce(0) { $0 + $1.usage.cachedPromptTokens }) / n
        let completionTokens = Double(predictions.reduce(0) { $0 + $1.usage.completionTokens }) / n
        let computeSeconds = predictions.reduce(0.0) { $0 + ($1.computeSeconds ?? 0) } / n

        let price = strategy.pricing
        let tuned = strategy.adaptsWeights
        // A retrieving strategy embeds each question (per request) and its corpus (once).
        let retrieval = strategy.retrieval
        let queryUSD = retrieval.map { CallPricing.embeddingUSD(tokens: $0.queryEmbeddingTokensPerQuestion, perMTok: $0.embeddingPerMTok) } ?? 0
        let perRequest = CallPricing.usd(
            promptTokens: promptTokens, cachedPromptTokens: cachedTokens, completionTokens: completionTokens,
            computeSeconds: computeSeconds, price: price, fineTuned: tuned, computeUSDPerHour: costs.computeUSDPerHour) + queryUSD

        var oneOff = 0.0
        var basis = strategy.adaptsWeights ? "no training job recorded" : "none: prompting does not train"
        var unknown = false
        var gpu: GPUEstimate?
        if let training = strategy.training {
            let charge = CallPricing.trainingCharge(training, price: price, computeUSDPerHour: costs.computeUSDPerHour)
            oneOff = charge.usd ?? 0
            switch charge {
            case .billed:
                basis = "billed by the provider"
            case .tokens(let trained, let perMTok):
                basis = "\(trained) trained tokens x \(format(perMTok)) USD per 1M tokens"
            case .unknown(let host, let trained):
                // A hosted job: this machine only polled it, so its wall time prices nothing.
                unknown = true
                basis = "unknown: the job ran on \(host), which reported no bill, and the backend has no price.training_per_mtok (\(trained) trained tokens); totals leave training out"
            case .compute(let seconds, let perHour):
                basis = "\(format(seconds)) s of training x \(format(perHour)) USD/h compute"
                gpu = gpuEstimate(model: strategy.model, method: strategy.trainingMethod ?? strategy.kind, trainedTokens: training.trainedTokens, gpuUSDPerHour: costs.gpuUSDPerHour)
            }
        }
        if let retrieval, retrieval.indexEmbeddingTokens > 0 {
            let indexUSD = CallPricing.embeddingUSD(tokens: Double(retrieval.indexEmbeddingTokens), perMTok: retrieval.embeddingPerMTok)
            let indexBasis = "embedding the corpus once: \(retrieval.indexEmbeddingTokens) tokens x \(format(retrieval.embeddingPerMTok)) USD per 1M tokens"
            oneOff += indexUSD
            basis = strategy.training == nil ? indexBasis : basis + "; " + indexBasis
        }
        // Labelling: the training examples it needs beyond those already labelled.
        let labels = strategy.labelledExamples ?? 0
        let labelling = costs.labellingUSD(examples: labels)
        if labelling > 0 {
            oneOff += labelling
            basis += "; + \(max(0, labels - costs.labelledExamples)) labels x \(format(costs.labelUSDPerExample)) USD (of \(labels) needed, \(costs.labelledExamples) already labelled)"
        }
        let requests = costs.requestsPerMonth * costs.horizonMonths
        return StrategyCost(
            oneOffUSD: oneOff, oneOffBasis: basis, oneOffUnknown: unknown, per1kRequestsUSD: perRequest * 1000,
            totalUSD: oneOff + perRequest * requests,
            evaluationUSD: perRequest * Double(predictions.count),
            meanPromptTokens: promptTokens, meanCachedPromptTokens: cachedTokens,
            meanCompletionTokens: completionTokens, meanComputeSeconds: computeSeconds,
            gpuEstimate: gpu)
    }

    /// The cost of a strategy run once per seed: the mean over its repetitions of each
    /// figure (one-off, per request, total, tokens, compute), i.e. what one deployed model
    /// trained like these costs. With a single repetition, its own cost. The training cost
    /// is unknown when any repetition's is.
    /// - Parameters:
    ///   - repetitions: the strategy's measurements, one per seed.
    ///   - costs: compute price, traffic and horizon from the recipe.
    public static func cost(ofRepetitions repetitions: [StrategyMeasurement], costs: CostSpec) -> StrategyCost {
        let each = repetitions.map { cost(of: $0, costs: costs) }
        if each.count == 1, let only = each.first { return only }
        guard !each.isEmpty else {
            return StrategyCost(oneOffUSD: 0, oneOffBasis: "nothing measured", per1kRequestsUSD: 0, totalUSD: 0, evaluationUSD: 0, meanPromptTokens: 0, meanCachedPromptTokens: 0, meanCompletionTokens: 0, meanComputeSeconds: 0, gpuEstimate: nil)
        }
        func mean(_ value: (StrategyCost) -> Double) -> Double { Statistics.mean(each.map(value)) }
        let unknown = each.contains(where: \.oneOffUnknown)
        let oneOff = unknown ? 0 : mean(\.oneOffUSD)
        let per1k = mean(\.per1kRequestsUSD)
        let requests = costs.requestsPerMonth * costs.horizonMonths
        let seeds = zip(repetitions, each).map { "seed \($0.seed.map(String.init) ?? "-"): \($1.oneOffBasis)" }
        var gpu: GPUEstimate?
        let estimates = each.compactMap(\.gpuEstimate)
        if estimates.count == each.count, let first = estimates.first {
            gpu = GPUEstimate(
                usd: Statistics.mean(estimates.map(\.usd)), seconds: Statistics.mean(estimates.map(\.seconds)),
                tokensPerSecond: first.tokensPerSecond, basis: "mean over \(each.count) seeds; " + first.basis)
        }
        return StrategyCost(
            oneOffUSD: oneOff, oneOffBasis: "\(unknown ? "unknown" : "mean") over \(each.count) seeds (\(seeds.joined(separator: "; ")))",
            oneOffUnknown: unknown, per1kRequestsUSD: per1k, totalUSD: oneOff + per1k / 1000 * requests,
            evaluationUSD: mean(\.evaluationUSD), meanPromptTokens: mean(\.meanPromptTokens),
            meanCachedPromptTokens: mean(\.meanCachedPromptTokens), meanCompletionTokens: mean(\.meanCompletionTokens),
            meanComputeSeconds: mean(\.meanComputeSeconds), gpuEstimate: gpu)
    }

    /// Total cost of a strategy at a given traffic volume over `horizonMonths`.
    public static func total(_ cost: StrategyCost, requestsPerMonth: Double, horizonMonths: Double) -> Double {
        cost.oneOffUSD + cost.perRequestUSD * requestsPerMonth * horizonMonths
    }

    /// What `trainedTokens` would take on one H100 at the reference throughput of `method`
    /// for a model of the nearest listed shape (the first listed shape when the name matches
    /// none); nil for a method without reference rows.
    public static func gpuEstimate(model: String, method: String, trainedTokens: Int, gpuUSDPerHour: Double) -> GPUEstimate? {
        let lower = model.lowercased()
        let rows = h100Throughput.filter { $0.method == method }
        let matched = rows.first { row in row.matches.contains { lower.contains($0) } }
        guard let row = matched ?? rows.first, trainedTokens > 0 else { return nil }
        let seconds = Double(trainedTokens) / row.tokensPerSecond
        let usd = seconds * gpuUSDPerHour / 3600
        let why = matched == nil ? "assuming a \(row.shape)-sized model" : "\(row.shape) shape"
        return GPUEstimate(
            usd: usd, seconds: seconds, tokensPerSecond: row.tokensPerSecond,
            basis: "estimate, not measured: \(trainedTokens) tokens at \(Int(row.tokensPerSecond)) tokens/s (PyTorch \(row.label) on one H100, \(why)) x \(format(gpuUSDPerHour)) USD/h")
    }

    /// The monthly volume at which `first` and `second` cost the same over `horizonMonths`.
    public static func breakEven(_ first: (name: String, cost: StrategyCost), _ second: (name: String, cost: StrategyCost), horizonMonths: Double) -> BreakEven {
        let (a, b) = (first.cost, second.cost)
        let slope = (a.perRequestUSD - b.perRequestUSD) * horizonMonths
        let gap = b.oneOffUSD - a.oneOffUSD
        func equalEverywhere() -> BreakEven {
            BreakEven(first: first.name, second: second.name, requestsPerMonth: nil, cheaperBelow: nil, cheaperAbove: nil,
                      summary: "\(first.name) and \(second.name) cost the same at every volume")
        }
        func always(_ name: String) -> BreakEven {
            BreakEven(first: first.name, second: second.name, requestsPerMonth: nil, cheaperBelow: name, cheaperAbove: name,
                      summary: "\(name) is cheaper at every volume")
        }
        if slope == 0 {
            if gap == 0 { return equalEverywhere() }
            return always(gap > 0 ? first.name : second.name)
        }
        let volume = gap / slope
        if volume <= 0 || !volume.isFinite {
            // The one with the lower per-request cost is also no dearer once.
            if a.perRequestUSD == b.perRequestUSD { return equalEverywhere() }
            return always(a.perRequestUSD < b.perRequestUSD ? first.name : second.name)
        }
        let below = a.oneOffUSD < b.oneOffUSD ? first.name : second.name
        let above = below == first.name ? second.name : first.name
        return BreakEven(
            first: first.name, second: second.name, requestsPerMonth: volume, cheaperBelow: below, cheaperAbove: above,
            summary: "\(below) is cheaper below \(formatVolume(volume)) requests/month, \(above) above")
    }

    /// A short decimal rendering for prose (up to 4 significant digits).
    static func format(_ value: Double) -> String {
        if value == value.rounded() && abs(value) < 1e9 { return String(Int(value)) }
        return String(format: "%.4g", value)
    }

    /// A volume for prose: `12,345` or `1.2M`.
    public static func formatVolume(_ value: Double) -> String {
        if value >= 1e9 { return String(format: "%.1fB", value / 1e9) }
        if value >= 1e6 { return String(format: "%.1fM", value / 1e6) }
        let rounded = Int(value.rounded(.up))
        var digits = String(rounded)
        var groups: [String] = []
        while digits.count > 3 {
            groups.insert(String(digits.suffix(3)), at: 0)
            digits.removeLast(3)
        }
        groups.insert(digits, at: 0)
        return groups.joined(separator: ",")
    }
}

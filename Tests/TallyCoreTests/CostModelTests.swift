import Foundation
import Testing
@testable import TallyCore

@Suite struct CostModelTests {
    func strategy(kind: String = "zero-shot", model: String = "m", pricing: Pricing, prompt: Int, cached: Int = 0, completion: Int, compute: Double? = nil, training: FineTuneOutcome? = nil) -> StrategyMeasurement {
        let predictions = (0..<4).map { i in
            Prediction(exampleID: "\(i)", input: "x", expected: "y", output: "y", answer: "y", score: 1,
                       usage: TokenUsage(promptTokens: prompt, completionTokens: completion, cachedPromptTokens: cached),
                       latencySeconds: 0.1, computeSeconds: compute, cached: false)
        }
        let adapts = kind == "lora" || kind == "full-finetune"
        return StrategyMeasurement(name: kind, kind: kind, backend: "b", model: model, dataLeavesMachine: !adapts, adaptsWeights: adapts, pricing: pricing, predictions: predictions, training: training, probes: [])
    }

    let costs = CostSpec(computeUSDPerHour: 0.10, requestsPerMonth: 100_000, horizonMonths: 6, gpuUSDPerHour: 4)

    func outcome(wall: Double = 3600, tokens: Int = 1000, billed: Double? = nil) -> FineTuneOutcome {
        FineTuneOutcome(artifact: "a", wallSeconds: wall, trainedTokens: tokens, steps: 1, trainLoss: [], validationLoss: [], billedUSD: billed)
    }

    @Test func hostedPromptingCostsTokensTimesPrices() {
        // (100 x 0.15 + 10 x 0.60) / 1M = 21e-6 USD per request.
        let cost = CostModel.cost(of: strategy(pricing: Pricing(inputPerMTok: 0.15, outputPerMTok: 0.60), prompt: 100, completion: 10), costs: costs)
        #expect(cost.oneOffUSD == 0)
        #expect(abs(cost.per1kRequestsUSD - 0.021) < 1e-12)
        #expect(abs(cost.totalUSD - 12.6) < 1e-9)          // 600,000 requests
        #expect(abs(cost.evaluationUSD - 4 * 21e-6) < 1e-15)
        #expect(cost.gpuEstimate == nil)
    }

    @Test func cachedPromptTokensUseTheCachedPrice() {
        // (60 x 0.15 + 40 x 0.075 + 10 x 0.60) / 1M = 18e-6.
        let pricing = Pricing(inputPerMTok: 0.15, outputPerMTok: 0.60, cachedInputPerMTok: 0.075)
        let cost = CostModel.cost(of: strategy(pricing: pricing, prompt: 100, cached: 40, completion: 10), costs: costs)
        #expect(abs(cost.per1kRequestsUSD - 0.018) < 1e-12)
    }

    @Test func fineTunedModelsUseFineTunedPrices() {
        // (100 x 0.30 + 10 x 1.20) / 1M = 42e-6; training billed 1.23.
        let pricing = Pricing(inputPerMTok: 0.15, outputPerMTok: 0.60, fineTunedInputPerMTok: 0.30, fineTunedOutputPerMTok: 1.20)
        let cost = CostModel.cost(of: strategy(kind: "lora", pricing: pricing, prompt: 100, completion: 10, training: outcome(billed: 1.23)), costs: costs)
        #expect(abs(cost.per1kRequestsUSD - 0.042) < 1e-12)
        #expect(cost.oneOffUSD == 1.23)
        #expect(cost.oneOffBasis == "billed by the provider")
        #expect(abs(cost.totalUSD - (1.23 + 600_000 * 42e-6)) < 1e-9)
        #expect(cost.gpuEstimate == nil)
    }

    @Test func hostedTrainingPricedPerToken() {
        let pricing = Pricing(inputPerMTok: 0.3, outputPerMTok: 1.2, trainingPerMTok: 3.0)
        let cost = CostModel.cost(of: strategy(kind: "full-finetune", pricing: pricing, prompt: 10, completion: 1, training: outcome(tokens: 2_000_000)), costs: costs)
        #expect(abs(cost.oneOffUSD - 6.0) < 1e-12)
    }

    @Test func localTrainingIsWallTimeTimesComputePriceWithALabelledGPUEstimate() throws {
        // 1 h at 0.10 USD/h once; 0.5 s of compute per request = 0.5 x 0.10 / 3600 USD.
        let tokens = 48_928 * 3600   // one hour at the SmolLM2-135M LoRA throughput
        let cost = CostModel.cost(of: strategy(kind: "lora", model: "smollm2-135m-instruct", pricing: Pricing(), prompt: 40, completion: 2, compute: 0.5, training: outcome(wall: 3600, tokens: tokens)), costs: costs)
        #expect(abs(cost.oneOffUSD - 0.10) < 1e-12)
        #expect(abs(cost.per1kRequestsUSD - 0.5 * 0.10 / 3600 * 1000) < 1e-12)
        #expect(abs(cost.totalUSD - (0.10 + 600_000 * 0.5 * 0.10 / 3600)) < 1e-9)
        let gpu = try #require(cost.gpuEstimate)
        #expect(abs(gpu.seconds - 3600) < 1e-9)
        #expect(abs(gpu.usd - 4.0) < 1e-9)
        #expect(gpu.basis.hasPrefix("estimate"))
    }

    @Test func breakEvenVolumeEqualisesTotals() throws {
        // Hosted: 0 once, 21e-6 per request. Local: 0.10 once, 0.5 x 0.10 / 3600 per request.
        // Volume v with 6 v (21e-6 - 1.3889e-5) = 0.10, i.e. v = 2343.75 requests/month.
        let hosted = CostModel.cost(of: strategy(pricing: Pricing(inputPerMTok: 0.15, outputPerMTok: 0.60), prompt: 100, completion: 10), costs: costs)
        let local = CostModel.cost(of: strategy(kind: "lora", pricing: Pricing(), prompt: 40, completion: 2, compute: 0.5, training: outcome()), costs: costs)
        let even = CostModel.breakEven(("hosted", hosted), ("local", local), horizonMonths: 6)
        let volume = try #require(even.requestsPerMonth)
        #expect(abs(volume - 2343.75) < 1e-6)
        #expect(even.cheaperBelow == "hosted")
        #expect(even.cheaperAbove == "local")
        let atVolume = { (c: StrategyCost) in CostModel.total(c, requestsPerMonth: volume, horizonMonths: 6) }
        #expect(abs(atVolume(hosted) - atVolume(local)) < 1e-12)
    }

    @Test func noBreakEvenWhenOneIsCheaperEverywhere() {
        let cheap = CostModel.cost(of: strategy(pricing: Pricing(inputPerMTok: 0.1, outputPerMTok: 0.1), prompt: 10, completion: 1), costs: costs)
        let dear = CostModel.cost(of: strategy(kind: "lora", pricing: Pricing(inputPerMTok: 1, outputPerMTok: 1), prompt: 10, completion: 1, training: outcome(billed: 5)), costs: costs)
        let even = CostModel.breakEven(("cheap", cheap), ("dear", dear), horizonMonths: 6)
        #expect(even.requestsPerMonth == nil)
        #expect(even.cheaperBelow == "cheap" && even.cheaperAbove == "cheap")
        #expect(even.summary == "cheap is cheaper at every volume")
    }

    @Test func volumesAreFormattedForReading() {
        #expect(CostModel.formatVolume(2343.75) == "2,344")
        #expect(CostModel.formatVolume(999) == "999")
        #expect(CostModel.formatVolume(2_500_000) == "2.5M")
    }
}

import Foundation
import TallyCore

/// Hand-built run measurements for report tests (golden files, renderers, HTML): three
/// strategies on 40 examples with fixed answers, a LoRA training job and two probes.
public enum SampleMeasurements {
    /// Scores are deterministic: example `i` is correct for a strategy when `correct(i)`.
    static func predictions(n: Int, prompt: Int, completion: Int, latencyMs: (Int) -> Double, compute: Double?, correct: (Int) -> Bool, unparsed: (Int) -> Bool) -> [Prediction] {
        (0..<n).map { i in
            let expected = i % 2 == 0 ? "positive" : "negative"
            let wrong = expected == "positive" ? "negative" : "positive"
            let isUnparsed = !correct(i) && unparsed(i)
            let answer: String? = correct(i) ? expected : (isUnparsed ? nil : wrong)
            return Prediction(
                exampleID: "test-\(i + 1)", input: "Review: sample review number \(i + 1)", expected: expected,
                output: answer ?? "I am not sure.", answer: answer, score: correct(i) ? 1 : 0,
                usage: TokenUsage(promptTokens: prompt, completionTokens: completion),
                latencySeconds: latencyMs(i) / 1000, computeSeconds: compute, cached: false)
        }
    }

    /// The sample run: `zero-shot` and `few-shot-4` on a hosted backend, `lora-r8` on a local one.
    /// - Parameters:
    ///   - constraints: the constraints the decision applies.
    ///   - requestsPerMonth: traffic for the cost model.
    public static func make(constraints: Constraints = Constraints(minAccuracy: 0.6, maxForgetting: 0.2, budgetUSD: 20), requestsPerMonth: Double = 100_000) -> RunMeasurements {
        let hostedPrice = Pricing(inputPerMTok: 0.15, outputPerMTok: 0.60)
        let zeroShot = StrategyMeasurement(
            name: "zero-shot", kind: "zero-shot", backend: "hosted", model: "openai:gpt-4o-mini",
            dataLeavesMachine: true, adaptsWeights: false, pricing: hostedPrice,
            predictions: predictions(n: 40, prompt: 60, completion: 2, latencyMs: { 300 + Double($0 * 5) }, compute: nil, correct: { $0 % 3 != 0 }, unparsed: { $0 % 2 == 0 }),
            training: nil, probes: [])
        let fewShot = StrategyMeasurement(
            name: "few-shot-4", kind: "few-shot", backend: "hosted", model: "openai:gpt-4o-mini",
            dataLeavesMachine: true, adaptsWeights: false, pricing: hostedPrice,
            predictions: predictions(n: 40, prompt: 260, completion: 2, latencyMs: { 400 + Double($0 * 5) }, compute: nil, correct: { $0 % 5 != 0 }, unparsed: { _ in false }),
            training: nil, probes: [])
        let training = FineTuneOutcome(
            artifact: "work/lora-r8/adapter", wallSeconds: 1800, trainedTokens: 120_000, steps: 50,
            trainLoss: [LossPoint(step: 10, loss: 2.1), LossPoint(step: 20, loss: 1.4), LossPoint(step: 30, loss: 0.9), LossPoint(step: 40, loss: 0.7), LossPoint(step: 50, loss: 0.6)],
            validationLoss: [LossPoint(step: 25, loss: 1.1), LossPoint(step: 50, loss: 0.8)],
            peakMemoryBytes: 1_200_000_000, billedUSD: nil, notes: ["trained on 400 examples"])
        let lora = StrategyMeasurement(
            name: "lora-r8", kind: "lora", backend: "local", model: "swift-trainer:smollm2-135m-instruct+lora:abc123",
            dataLeavesMachine: false, adaptsWeights: true, pricing: Pricing(),
            predictions: predictions(n: 40, prompt: 40, completion: 2, latencyMs: { 80 + Double($0 % 7) }, compute: 0.5, correct: { $0 % 10 != 0 }, unparsed: { _ in false }),
            training: training,
            probes: [
                ProbeMeasurement(probe: "knowledge", kind: .qa, subject: "lora-r8", scores: (0..<20).map { $0 % 4 == 0 ? 0 : 1 }),
                ProbeMeasurement(probe: "refusals", kind: .refusal, subject: "lora-r8", scores: (0..<10).map { $0 < 8 ? 1 : 0 }),
            ])
        let baseProbes = [
            ProbeMeasurement(probe: "knowledge", kind: .qa, subject: "local", scores: (0..<20).map { $0 % 5 == 0 ? 0 : 1 }),
            ProbeMeasurement(probe: "refusals", kind: .refusal, subject: "local", scores: (0..<10).map { $0 < 9 ? 1 : 0 }),
            ProbeMeasurement(probe: "knowledge", kind: .qa, subject: "hosted", scores: (0..<20).map { $0 % 10 == 0 ? 0 : 1 }),
        ]
        return RunMeasurements(
            runID: "20260101-000000-sample", recipeName: "movie-reviews", recipePath: "Recipes/movie-reviews.yaml",
            startedAt: Date(timeIntervalSince1970: 1_767_225_600), finishedAt: Date(timeIntervalSince1970: 1_767_229_200),
            costs: CostSpec(computeUSDPerHour: 0.10, requestsPerMonth: requestsPerMonth, horizonMonths: 6, gpuUSDPerHour: 4.0),
            constraints: constraints, metric: "accuracy", seed: 7, bootstrapSamples: 1000,
            strategies: [zeroShot, fewShot, lora], baseProbes: baseProbes)
    }
}

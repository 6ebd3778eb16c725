import Foundation

// Strategies whose kind uses no language model (`StrategyKind.usesLanguageModel` false):
// they train the model they answer with (`Strategy.trainAnswerer`), and the runner treats
// that model like a backend's: answers through the ledger, training recorded as a job.

extension Execution {
    /// One measured run of a strategy that answers with a model of its own: trains it,
    /// records the training like a fine-tuning job, and answers the test set through the
    /// ledger cache (keyed by the trained model's identity). No probe runs: without a
    /// language model there is nothing to forget.
    func measureTrainedAnswerer(_ run: RunPlan.StrategyRun, inputs: Inputs) async throws -> StrategyMeasurement {
        let spec = run.spec, repetition = run.repetition
        let runName = run.runName
        let strategy = try inputs.plan.strategy(for: run, task: recipe.task, cacheDirectory: runner.cacheDirectory)
        let phase = "train \(runName)"
        progress(.started(phase: phase, total: nil))
        guard let answerer = try await strategy.trainAnswerer(progress: progress) else {
            throw TallyError(code: .invalidRecipe, message: "its kind \(spec.kind) uses no language model but trained no model of its own (Strategy.trainAnswerer returned nil)")
        }
        progress(.finished(phase: phase))
        let generator = answerer.generator
        let identity = generator.identity
        let jobKey = SHA256.hexDigest(of: "trained answerer\n" + identity)
        try ledger.recordFineTuneStarted(key: jobKey, strategy: runName, baseIdentity: "none: \(spec.kind) uses no language model")
        try ledger.recordFineTuneFinished(key: jobKey, outcome: answerer.training, generatorIdentity: identity)
        let price = Pricing()
        countTraining(answerer.training, runName: runName, price: price)
        // Answers go through the same cached, budgeted path as a backend's, one at a time.
        let local = Backend(generator: generator, fineTuner: nil, dataLeavesMachine: answerer.dataLeavesMachine, maxConcurrency: 1)
        let predictions = try await evaluate(
            strategy, runName: runName, examples: inputs.test, scorer: inputs.scorer, identity: cacheIdentity(identity, repetition: repetition),
            handle: GeneratorHandle(generator), backend: local, price: price, fineTuned: false)
        return StrategyMeasurement(
            name: spec.name, kind: spec.kind, backend: nil, model: identity, dataLeavesMachine: answerer.dataLeavesMachine,
            adaptsWeights: false, usesLanguageModel: false, trainingMethod: nil, pricing: price,
            predictions: predictions, training: answerer.training, probes: [], seed: repetition, labelledExamples: strategy.labelledExamples)
    }
}

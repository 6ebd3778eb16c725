import Foundation
import TallyCore
import TallyTensor

/// One fine-tuning run over tokenised examples: the loop behind ``SwiftTrainer/Trainer``.
///
/// Every optimiser step accumulates `gradientAccumulation` micro-batches (the loss is the
/// mean over all scored tokens of the step), clips the global gradient norm, takes an AdamW
/// step at the scheduled learning rate, and may evaluate, checkpoint and stop early.
public final class TrainingJob {
    /// The model being trained.
    public let model: any CausalLanguageModel
    /// The adapters when the method is LoRA.
    public let lora: LoRAModel?
    /// The soft prompt when the method is prompt tuning.
    public let promptTuning: PromptTuningModel?
    /// The settings.
    public let options: TrainingOptions
    let method: FineTuneMethod
    let train: [TokenizedExample]
    let validation: [TokenizedExample]
    let workDirectory: URL
    let jobKey: String
    let settings: SwiftTrainer.Trainer.Settings
    /// The trainable tensors by name (PEFT names for LoRA, Hugging Face names otherwise).
    public let parameters: [(name: String, tensor: Tensor)]
    let optimizer: AdamWOptimizer
    /// The data order.
    public let order: DataOrder
    /// The learning-rate schedule.
    public let schedule: LearningRateSchedule
    /// Optimiser steps the run takes (unless it stops early).
    public let totalSteps: Int

    /// The mutable progress of a run (what a checkpoint stores besides tensors).
    struct State: Codable {
        var jobKey: String
        var step = 0
        var trainLoss: [LossPoint] = []
        var validationLoss: [LossPoint] = []
        var gradNorms: [Double] = []
        var bestValidation: Double?
        var bestStep: Int?
        var evaluationsWithoutImprovement = 0
        var stoppedEarly = false
        var tokens = 0
        var elapsed = 0.0
        var dropoutCounters: [UInt64] = []
        /// The current epoch's example order (informational: it is recomputed from the seed).
        var epochOrder: [Int] = []
        var seed: UInt64 = 0
        var optimizerSteps = 0
    }

    var state: State

    /// Sets up a run: attaches LoRA adapters or a soft prompt, or unfreezes every weight,
    /// builds the optimiser, schedule and data order.
    /// - Parameter tokenizer: the model's tokenizer, needed by prompt tuning from an init text.
    /// - Throws: `TallyError` (`invalid-recipe`) for bad options, (`invalid-data`) when there
    ///   is nothing to train on.
    public init(
        model: any CausalLanguageModel, method: FineTuneMethod, options: TrainingOptions, train: [TokenizedExample],
        validation: [TokenizedExample], workDirectory: URL, jobKey: String, settings: SwiftTrainer.Trainer.Settings = .init(),
        tokenizer: (any Tokenizer)? = nil
    ) throws {
        guard !train.isEmpty else { throw TallyError(code: .invalidData, message: "no training examples; the fine-tuning data set is empty") }
        guard train.contains(where: { $0.scoredCount > 0 }) else {
            throw TallyError(code: .invalidData, message: "no training example has answer tokens to learn; check the completion field of the data")
        }
        guard options.batchSize >= 1 else { throw TallyError(code: .invalidRecipe, message: "batch_size must be at least 1, got \(options.batchSize)") }
        guard options.gradientAccumulation >= 1 else { throw TallyError(code: .invalidRecipe, message: "gradient_accumulation must be at least 1, got \(options.gradientAccumulation)") }
        guard options.learningRate > 0, options.learningRate.isFinite else { throw TallyError(code: .invalidRecipe, message: "learning_rate must be positive, got \(options.learningRate)") }
        guard options.epochs > 0 || (options.maxSteps ?? 0) > 0 else { throw TallyError(code: .invalidRecipe, message: "epochs must be positive (or set max_steps)") }
        self.model = model
        self.method = method
        self.options = options
        self.train = train
        self.validation = validation
        self.workDirectory = workDirectory
        self.jobKey = jobKey
        self.settings = settings
        var noDecay: Set<String> = []
        if let o = try method.loraOptions() {
            let l = try LoRAModel(base: model, configuration: LoRAConfiguration(o), seed: options.seed)
            lora = l
            promptTuning = nil
            parameters = l.namedParameters
        } else if let o = try method.promptTuningOptions() {
            let p = try PromptTuningModel(base: model, configuration: PromptTuningConfiguration(o), tokenizer: tokenizer, seed: options.seed)
            lora = nil
            promptTuning = p
            parameters = p.namedParameters
        } else if method == .full {
            lora = nil
            promptTuning = nil
            model.setTrainable(true)
            parameters = model.namedParameters
            // Hugging Face's Trainer does not decay biases and norm weights (1-D tensors).
            noDecay = Set(parameters.filter { $0.tensor.shape.count < 2 }.map(\.name))
        } else {
            throw TallyError(code: .backend, message: "the built-in trainer cannot run '\(method.name)' fine-tuning; it runs \(FineTuneMethod.loraName), \(FineTuneMethod.promptTuningName) and \(FineTuneMethod.fullName)")
        }
        optimizer = AdamWOptimizer(parameters: parameters, weightDecay: Float(options.weightDecay), noDecay: noDecay)
        order = DataOrder(seed: options.seed, exampleCount: train.count, batchSize: options.batchSize, accumulation: options.gradientAccumulation)
        if let m = options.maxSteps, m > 0 {
            totalSteps = m
        } else {
            totalSteps = max(1, Int((options.epochs * Double(order.stepsPerEpoch)).rounded(.up)))
        }
        schedule = try LearningRateSchedule(name: options.schedule, peak: options.learningRate, warmupSteps: options.warmupSteps, totalSteps: totalSteps)
        state = State(jobKey: jobKey, seed: options.seed)
    }

    /// Where checkpoints go.
    public var checkpointDirectory: URL { workDirectory.appendingPathComponent("checkpoint") }
    /// Where the artifact goes: `adapter/` (LoRA, prompt tuning: PEFT adapters) or `model/` (full).
    public var artifactDirectory: URL { workDirectory.appendingPathComponent(lora == nil && promptTuning == nil ? "model" : "adapter") }
    var outcomeURL: URL { workDirectory.appendingPathComponent("outcome.json") }

    /// The training loss (token-weighted mean over the step's micro-batches) per step so far.
    public var trainLoss: [LossPoint] { state.trainLoss }
    /// Gradient norms before clipping, per step so far.
    public var gradNorms: [Double] { state.gradNorms }

    /// Runs one optimiser step (micro-batches, backward, clipping, AdamW) without touching
    /// the run's recorded state (benchmarks and tests; ``run(stopAfter:progress:)`` calls it).
    /// - Parameter step: the global step (0-based): selects the data and the learning rate.
    /// - Returns: the step's loss, the gradient norm before clipping and the tokens seen.
    public func trainStep(_ step: Int) -> (loss: Double, norm: Double, tokens: Int) {
        let micro = order.microBatches(step: step).map { idx in TrainingBatch(idx.map { train[$0] }, padID: settings.padID) }
        let totalScored = micro.reduce(0) { $0 + $1.scoredCount }
        for (_, t) in parameters { t.zeroGrad() }
        lora?.setTraining(true)
        var lossSum = 0.0, tokens = 0
        for b in micro {
            tokens += b.tokenCount
            guard b.scoredCount > 0, totalScored > 0 else { continue }
            let tape = Tape()
            let loss = model.loss(b.tokens, labels: b.labels, tape: tape)
            let weight = Double(b.scoredCount) / Double(totalScored)
            lossSum += Double(loss.scalar) * weight
            tape.backward(from: loss, seed: Float(weight))
        }
        lora?.setTraining(false)
        let lr = schedule.learningRate(at: step)
        let norm = TrainingStep.apply(optimizer: optimizer, learningRate: lr, maxGradNorm: options.maxGradNorm)
        return (lossSum, norm, tokens)
    }

    /// The mean loss over all scored validation tokens (dropout off, no gradients).
    public func validationLoss() -> Double? {
        guard !validation.isEmpty else { return nil }
        lora?.setTraining(false)
        var sum = 0.0, count = 0
        let bs = max(1, options.batchSize)
        var i = 0
        while i < validation.count {
            let b = TrainingBatch(Array(validation[i..<min(i + bs, validation.count)]), padID: settings.padID)
            i += bs
            guard b.scoredCount > 0 else { continue }
            let loss = model.loss(b.tokens, labels: b.labels, tape: Tape(recording: false))
            sum += Double(loss.scalar) * Double(b.scoredCount)
            count += b.scoredCount
        }
        return count > 0 ? sum / Double(count) : nil
    }

    /// Whether an evaluation is due after `step` completed steps.
    func evaluationDue(after step: Int) -> Bool {
        guard !validation.isEmpty else { return false }
        if step == totalSteps { return true }
        if options.evalEvery > 0 { return step % options.evalEvery == 0 }
        return step % order.stepsPerEpoch == 0
    }

    /// Runs (or resumes) the job to the end and writes the artifact.
    /// - Parameters:
    ///   - stopAfter: stop (after checkpointing) once this many steps are done, as an
    ///     interruption would; nil runs to the end.
    ///   - progress: progress events.
    /// - Returns: the outcome (also written to `outcome.json` in the work directory).
    /// - Throws: `TallyError` (`io`) when files cannot be written, `CancellationError`.
    public func run(stopAfter: Int? = nil, progress: @escaping @Sendable (ProgressEvent) -> Void = { _ in }) throws -> FineTuneOutcome {
        if let done = try finishedOutcome() {
            progress(.note("fine-tune \(jobKey.prefix(12)) already finished; reusing \(done.artifact)"))
            return done
        }
        if try resumeFromCheckpoint() {
            progress(.note("resuming fine-tune from step \(state.step) of \(totalSteps)"))
        }
        let phase = lora != nil ? "LoRA fine-tune" : promptTuning != nil ? "prompt tuning" : "full fine-tune"
        progress(.started(phase: phase, total: totalSteps))
        let started = Date()
        let elapsedBefore = state.elapsed
        let tokensBefore = state.tokens
        var bestSnapshot: [String: WeightTensor]? = try loadBestSnapshot()
        while state.step < totalSteps && !state.stoppedEarly {
            if Task.isCancelled {
                state.elapsed = elapsedBefore + Date().timeIntervalSince(started)
                try writeCheckpoint(best: bestSnapshot)
                throw CancellationError()
            }
            let step = state.step
            let r = trainStep(step)
            state.step += 1
            state.tokens += r.tokens
            state.trainLoss.append(LossPoint(step: state.step, loss: r.loss))
            state.gradNorms.append(r.norm)
            state.elapsed = elapsedBefore + Date().timeIntervalSince(started)
            if evaluationDue(after: state.step), let v = validationLoss() {
                state.validationLoss.append(LossPoint(step: state.step, loss: v))
                if state.bestValidation.map({ v < $0 }) ?? true {
                    state.bestValidation = v
                    state.bestStep = state.step
                    state.evaluationsWithoutImprovement = 0
                    bestSnapshot = options.earlyStoppingPatience > 0 ? snapshot() : nil
                } else {
                    state.evaluationsWithoutImprovement += 1
                    if options.earlyStoppingPatience > 0 && state.evaluationsWithoutImprovement >= options.earlyStoppingPatience {
                        state.stoppedEarly = true
                    }
                }
            }
            let sessionTokens = state.tokens - tokensBefore
            let sessionTime = max(Date().timeIntervalSince(started), 1e-9)
            let rate = Double(sessionTokens) / sessionTime
            let perStep = sessionTime / Double(max(1, state.step - resumedAtStep))
            let remaining = Double(totalSteps - state.step) * perStep
            progress(.advanced(phase: phase, completed: state.step, total: totalSteps,
                               detail: String(format: "loss %.4f · %.0f tok/s · ETA %@", r.loss, rate, TrainingJob.duration(remaining))))
            let checkpointDue = (settings.checkpointEvery > 0 && state.step % settings.checkpointEvery == 0)
                || evaluationDue(after: state.step)
            if checkpointDue && state.step < totalSteps && !state.stoppedEarly {
                try writeCheckpoint(best: bestSnapshot)
            }
            if let stopAfter, state.step >= stopAfter, state.step < totalSteps {
                try writeCheckpoint(best: bestSnapshot)
                progress(.finished(phase: phase))
                return FineTuneOutcome(artifact: "", wallSeconds: state.elapsed, trainedTokens: state.tokens, steps: state.step,
                                       trainLoss: state.trainLoss, validationLoss: state.validationLoss, notes: ["interrupted"])
            }
        }
        var notes: [String] = []
        if state.stoppedEarly, let best = state.bestStep {
            notes.append("early stopped at step \(state.step): validation loss did not improve for \(options.earlyStoppingPatience) evaluations; kept the weights of step \(best)")
            if let bestSnapshot { try restore(bestSnapshot) }
        }
        try writeArtifact()
        let peak = TrainingJob.peakMemoryBytes()
        let parameterCount = model.parameterCount
        // The H100 throughput was measured for LoRA and full fine-tuning only.
        if promptTuning == nil {
            notes.append(GPUEstimate.note(tokens: state.tokens, parameterCount: parameterCount, lora: lora != nil))
        }
        notes.append(String(format: "measured: %d steps, %d tokens in %.1f s (%.0f tokens/s) on this machine", state.step, state.tokens, state.elapsed, Double(state.tokens) / max(state.elapsed, 1e-9)))
        let outcome = FineTuneOutcome(
            artifact: artifactDirectory.path, wallSeconds: state.elapsed, trainedTokens: state.tokens, steps: state.step,
            trainLoss: state.trainLoss, validationLoss: state.validationLoss, peakMemoryBytes: peak, notes: notes)
        try writeOutcome(outcome)
        try? FileManager.default.removeItem(at: checkpointDirectory)
        progress(.finished(phase: phase))
        return outcome
    }

    /// The step a resumed run started from (for the rate and ETA of this session).
    private var resumedAtStep = 0

    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        if s >= 3600 { return "\(s / 3600)h\(String(format: "%02d", (s % 3600) / 60))m" }
        if s >= 60 { return "\(s / 60)m\(String(format: "%02d", s % 60))s" }
        return "\(s)s"
    }

    /// Peak resident memory of this process (`VmHWM` in /proc/self/status), if readable.
    public static func peakMemoryBytes() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            if parts.count >= 2, let kb = Int(parts[1]) { return kb * 1024 }
        }
        return nil
    }

    // MARK: Weights, checkpoints, artifacts

    func snapshot() -> [String: WeightTensor] {
        var out: [String: WeightTensor] = [:]
        for (n, t) in parameters { out[n] = WeightTensor(shape: t.shape, values: t.values) }
        return out
    }

    func restore(_ weights: [String: WeightTensor], source: URL? = nil) throws {
        for (n, t) in parameters {
            guard let w = weights[n], w.shape == t.shape else {
                throw TallyError(code: .invalidModel, message: "checkpoint lacks tensor '\(n)' of shape \(t.shape); delete the checkpoint directory to start over",
                                 location: source.map { SourceLocation(file: $0.path) })
            }
            try t.copy(from: w.values)
        }
    }

    func writeCheckpoint(best: [String: WeightTensor]?) throws {
        let fm = FileManager.default
        let tmp = workDirectory.appendingPathComponent("checkpoint.tmp-\(UUID().uuidString)")
        do {
            try fm.createDirectory(at: tmp, withIntermediateDirectories: true)
            try SafeTensorsFile.write(snapshot(), metadata: ["format": "pt"], to: tmp.appendingPathComponent("trainable.safetensors"))
            var moments: [String: WeightTensor] = [:]
            for s in optimizer.slots {
                moments["m." + s.name] = WeightTensor(shape: s.tensor.shape, values: s.m)
                moments["v." + s.name] = WeightTensor(shape: s.tensor.shape, values: s.v)
            }
            try SafeTensorsFile.write(moments, metadata: ["format": "pt"], to: tmp.appendingPathComponent("optimizer.safetensors"))
            if let best { try SafeTensorsFile.write(best, metadata: ["format": "pt"], to: tmp.appendingPathComponent("best.safetensors")) }
            var s = state
            s.optimizerSteps = optimizer.stepCount
            s.dropoutCounters = lora?.adapters.map(\.adapter.dropoutCounter) ?? []
            s.epochOrder = order.permutation(epoch: state.step / order.stepsPerEpoch)
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            try enc.encode(s).write(to: tmp.appendingPathComponent("state.json"))
            let old = workDirectory.appendingPathComponent("checkpoint.old")
            if fm.fileExists(atPath: old.path) { try fm.removeItem(at: old) }
            if fm.fileExists(atPath: checkpointDirectory.path) { try fm.moveItem(at: checkpointDirectory, to: old) }
            try fm.moveItem(at: tmp, to: checkpointDirectory)
            try? fm.removeItem(at: old)
        } catch let e as TallyError {
            try? fm.removeItem(at: tmp)
            throw e
        } catch {
            try? fm.removeItem(at: tmp)
            throw TallyError(code: .io, message: "cannot write the checkpoint: \(error.localizedDescription)", location: SourceLocation(file: checkpointDirectory.path), underlying: error)
        }
    }

    /// Loads the newest complete checkpoint of this job, if any.
    /// - Returns: whether the run resumed.
    func resumeFromCheckpoint() throws -> Bool {
        let fm = FileManager.default
        var dir = checkpointDirectory
        if !fm.fileExists(atPath: dir.appendingPathComponent("state.json").path) {
            dir = workDirectory.appendingPathComponent("checkpoint.old")
            guard fm.fileExists(atPath: dir.appendingPathComponent("state.json").path) else { return false }
        }
        let stateURL = dir.appendingPathComponent("state.json")
        let s: State
        do {
            s = try JSONDecoder().decode(State.self, from: Data(contentsOf: stateURL))
        } catch {
            throw TallyError(code: .io, message: "the checkpoint state cannot be read (\(error)); delete the checkpoint directory to start over", location: SourceLocation(file: stateURL.path), underlying: error)
        }
        guard s.jobKey == jobKey else { return false }
        let weightsURL = dir.appendingPathComponent("trainable.safetensors")
        try restore(try SafeTensorsFile(contentsOf: weightsURL).floatTensors(), source: weightsURL)
        let optURL = dir.appendingPathComponent("optimizer.safetensors")
        let moments = try SafeTensorsFile(contentsOf: optURL).floatTensors()
        for slot in optimizer.slots {
            guard let m = moments["m." + slot.name], let v = moments["v." + slot.name], m.count == slot.tensor.count, v.count == slot.tensor.count else {
                throw TallyError(code: .io, message: "optimizer state for '\(slot.name)' is missing or has the wrong size; delete the checkpoint directory to start over", location: SourceLocation(file: optURL.path))
            }
            slot.m = m.values
            slot.v = v.values
        }
        optimizer.restore(stepCount: s.optimizerSteps)
        if let lora {
            for (a, c) in zip(lora.adapters, s.dropoutCounters) { a.adapter.dropoutCounter = c }
        }
        state = s
        resumedAtStep = s.step
        return true
    }

    func loadBestSnapshot() throws -> [String: WeightTensor]? {
        let url = checkpointDirectory.appendingPathComponent("best.safetensors")
        guard state.step > 0, FileManager.default.fileExists(atPath: url.path) else { return nil }
        return try SafeTensorsFile(contentsOf: url).floatTensors()
    }

    func writeArtifact() throws {
        if let lora {
            try PEFTAdapter.save(lora, to: artifactDirectory, baseModel: settings.baseModelName)
        } else if let promptTuning {
            try PEFTPromptTuning.save(promptTuning, to: artifactDirectory, baseModel: settings.baseModelName)
        } else {
            try HuggingFaceExport.save(model, to: artifactDirectory, tokenizerFiles: settings.tokenizerFiles, tokenizer: settings.exportTokenizer)
        }
    }

    func writeOutcome(_ outcome: FineTuneOutcome) throws {
        struct Record: Codable { let jobKey: String; let outcome: FineTuneOutcome }
        do {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            try enc.encode(Record(jobKey: jobKey, outcome: outcome)).write(to: outcomeURL, options: .atomic)
        } catch {
            throw TallyError(code: .io, message: "cannot write outcome.json: \(error.localizedDescription)", location: SourceLocation(file: outcomeURL.path), underlying: error)
        }
    }

    func finishedOutcome() throws -> FineTuneOutcome? {
        struct Record: Codable { let jobKey: String; let outcome: FineTuneOutcome }
        guard let data = try? Data(contentsOf: outcomeURL), let r = try? JSONDecoder().decode(Record.self, from: data),
              r.jobKey == jobKey, FileManager.default.fileExists(atPath: r.outcome.artifact) else { return nil }
        return r.outcome
    }
}

/// A labelled estimate of a job's time and price on one rented H100, from the throughput the
/// Python stack measured there (shared/reference/README.md: bf16, seq 512, 4 USD/hour).
public enum GPUEstimate {
    /// Measured tokens/s on one H100: (parameters up to, LoRA, full, model name).
    static let table: [(maxParameters: Int, lora: Double, full: Double, name: String)] = [
        (250_000_000, 48_928, 67_957, "SmolLM2-135M"),
        (700_000_000, 44_570, 66_674, "SmolLM2-360M"),
        (Int.max, 35_132, 36_309, "Llama-3.2-1B"),
    ]
    /// The assumed rental price in USD per hour.
    public static let usdPerHour = 4.0

    /// Seconds and USD for `tokens` training tokens on one H100.
    public static func estimate(tokens: Int, parameterCount: Int, lora: Bool) -> (seconds: Double, usd: Double, shape: String) {
        let row = table.first { parameterCount <= $0.maxParameters } ?? table[table.count - 1]
        let seconds = Double(tokens) / (lora ? row.lora : row.full)
        return (seconds, seconds / 3600 * usdPerHour, row.name)
    }

    /// The note for a report.
    public static func note(tokens: Int, parameterCount: Int, lora: Bool) -> String {
        let e = estimate(tokens: tokens, parameterCount: parameterCount, lora: lora)
        return String(format: "estimate (not measured): the same %d training tokens on one rented H100 would take about %.1f s, about %.4f USD at %.0f USD/h (Python stack throughput for the %@ shape, %@)",
                      tokens, e.seconds, e.usd, usdPerHour, e.shape, lora ? "LoRA" : "full fine-tune")
    }
}

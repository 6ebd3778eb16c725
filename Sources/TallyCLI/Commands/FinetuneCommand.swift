import ArgumentParser
import Foundation
import SwiftTrainer
import TallyCore
import TallyTensor

/// `tally finetune`: fine-tune a local model on a JSONL file, outside a recipe.
struct FinetuneCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "finetune",
        abstract: "Fine-tune a local model with LoRA, prompt tuning or all weights on a JSONL data set.",
        discussion: """
            Data: JSONL in plain {"input","output"}, Alpaca {"instruction","input","output"} \
            or OpenAI chat {"messages": [...]} form. The loss is on the answer tokens only. \
            LoRA and prompt tuning write a PEFT adapter to OUT/adapter (apply it with \
            `tally generate --adapter`); --method full writes a Hugging Face model directory \
            to OUT/model. Running the same command again resumes from the \
            checkpoint in OUT.
            """)

    @Option(help: "Base model path or name (e.g. smollm2-135m-instruct).")
    var model: String

    @Option(help: "Training data (JSONL).")
    var data: String

    @Option(help: "Validation data (JSONL) for validation loss and early stopping.")
    var validation: String?

    @Option(help: "lora, prompt-tuning or full.")
    var method = FineTuneMethod.loraName

    /// `--method` values: the trainer's method names, with `full` for full fine-tuning.
    static let methods = [FineTuneMethod.loraName, FineTuneMethod.promptTuningName, "full"]

    @Option(help: "Output directory.")
    var out: String

    @Option(help: "LoRA rank.") var rank = 8
    @Option(help: "LoRA alpha.") var alpha = 16.0
    @Option(help: "LoRA dropout.") var dropout = 0.0
    @Option(help: "LoRA target modules, comma-separated, or all-linear.") var targets = "all-linear"
    @Option(name: .customLong("virtual-tokens"), help: "Prompt tuning: trainable virtual tokens before every input.") var virtualTokens = 8
    @Option(name: .customLong("init-text"), help: "Prompt tuning: start the virtual tokens as this text's embeddings (random when left out).") var initText: String?
    @Option(help: "Epochs.") var epochs = 1.0
    @Option(name: .customLong("max-steps"), help: "Stop after this many optimiser steps.") var maxSteps: Int?
    @Option(name: .customLong("learning-rate"), help: "Peak learning rate (default 1e-3 for LoRA, 3e-2 for prompt tuning, 5e-5 for full).") var learningRate: Double?
    @Option(name: .customLong("batch-size"), help: "Examples per step.") var batchSize = 8
    @Option(name: .customLong("weight-decay"), help: "AdamW weight decay.") var weightDecay = 0.0
    @Option(help: "Learning-rate schedule: constant, linear or cosine.") var schedule = "linear"
    @Option(name: .customLong("warmup-steps"), help: "Warm-up steps.") var warmupSteps = 0
    @Option(help: "Seed for initialisation and data order.") var seed: UInt64 = 0
    @Option(help: "Threads for BLAS and parallel loops.") var threads = 2
    @Option(help: "System message put before every example's input.") var system: String?

    func validate() throws {
        guard Self.methods.contains(method) else { throw ValidationError("--method must be one of \(Self.methods.joined(separator: ", ")), not '\(method)'") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
        guard rank >= 1 else { throw ValidationError("--rank must be at least 1") }
        guard (1...PromptTuningOptions.maxVirtualTokens).contains(virtualTokens) else {
            throw ValidationError("--virtual-tokens must be between 1 and \(PromptTuningOptions.maxVirtualTokens)")
        }
        if let initText, initText.isEmpty { throw ValidationError("--init-text must not be empty") }
        guard ["constant", "linear", "cosine"].contains(schedule) else { throw ValidationError("--schedule must be constant, linear or cosine") }
    }

    func run() async throws {
        try await reportingErrors {
            let modelURL = try AssetCatalog.resolveModel(model, relativeTo: nil)
            let train = try examples(fileURL(data))
            let held = try validation.map { try examples(fileURL($0)) } ?? []
            let methodValue: FineTuneMethod
            let defaultRate: Double
            switch method {
            case FineTuneMethod.loraName:
                methodValue = .lora(LoRAOptions(rank: rank, alpha: alpha, dropout: dropout, targets: targets.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }))
                defaultRate = 1e-3
            case FineTuneMethod.promptTuningName:
                methodValue = .promptTuning(PromptTuningOptions(numVirtualTokens: virtualTokens, initText: initText))
                defaultRate = 3e-2
            default:
                methodValue = .full
                defaultRate = 5e-5
            }
            let options = TrainingOptions(
                epochs: epochs, maxSteps: maxSteps, learningRate: learningRate ?? defaultRate,
                batchSize: batchSize, weightDecay: weightDecay, warmupSteps: warmupSteps, schedule: schedule,
                evalEvery: 0, seed: seed)
            let outURL = fileURL(out)
            try FileManager.default.createDirectory(at: outURL, withIntermediateDirectories: true)
            let digests = FileDigestCache(environment: ProcessInfo.processInfo.environment)
            let local = try Threading.withThreadCount(threads) { try LocalModel.load(modelURL, digests: digests) }
            let request = FineTuneRequest(
                method: methodValue, options: options, train: train, validation: held, workDirectory: outURL,
                // Method parameters, options and data are part of the key: the same command
                // resumes, a changed one (another rank or number of virtual tokens) starts over.
                jobKey: try FineTuningStrategy.jobKey(
                    baseIdentity: "\(local.identity)|\(outURL.path)", method: methodValue, options: options, train: train, validation: held))
            let tuner = SwiftTrainerFineTuner(baseModel: modelURL, baseIdentity: local.identity, threads: threads, digests: digests)
            let display = ProgressDisplay(mode: Console.stderrIsTerminal ? .bars : .lines)
            let outcome = try await tuner.fineTune(request, progress: display.handler)
            display.clear()
            Console.out("artifact: \(outcome.artifact)")
            Console.out(String(format: "steps: %d  tokens: %d  wall: %.1f s  final train loss: %.4f", outcome.steps, outcome.trainedTokens, outcome.wallSeconds, outcome.trainLoss.last?.loss ?? .nan))
            if let last = outcome.validationLoss.last { Console.out(String(format: "validation loss: %.4f", last.loss)) }
            for note in outcome.notes { Console.out("note: \(note)") }
        }
    }

    /// Training examples from a JSONL file: the row's system/instruction and input as the
    /// prompt, its output as the completion.
    func examples(_ url: URL) throws -> [TrainingExample] {
        let dataset = try DatasetLoader.load(url)
        for problem in dataset.problems { Console.err("warning: \(problem)") }
        var result: [TrainingExample] = []
        for example in dataset.examples {
            guard let output = example["output"] else {
                throw TallyError(code: .invalidData, message: "row has no output field; give {\"input\",\"output\"}, Alpaca or chat rows", location: example.location)
            }
            var messages: [ChatMessage] = []
            if let system = example["system"] ?? system { messages.append(.system(system)) }
            let prompt = [example["instruction"], example["input"]].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: "\n\n")
            messages.append(.user(prompt))
            result.append(TrainingExample(messages: messages, completion: output))
        }
        guard !result.isEmpty else {
            throw TallyError(code: .invalidData, message: "no usable training rows", location: SourceLocation(file: url.path))
        }
        return result
    }
}

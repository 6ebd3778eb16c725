import Foundation
import SwiftTrainer
import TallyCore
import TallyTensor

/// Fine-tuning throughput (`--mode lora` and `--mode train`) on the shapes of
/// ../shared/bench/pytorch_llama_train.py, and on SmolLM2-135M with sentiment-sized
/// examples through the real trainer. Prints one JSON line per run.
///
/// Configs A and B time exactly what the PyTorch script times: one step of forward over
/// `batch x seq` random tokens, cross-entropy at every position, backward and AdamW (LoRA:
/// rank 8, alpha 16 on q_proj and v_proj, no weight decay; full: weight decay 0.1, every
/// weight), random weights, untied output layer, multi-head attention.
/// Config smollm2 runs `TrainingJob` steps on ~70-token chat examples (prompt masked,
/// output layer only at answer positions), LoRA r8 alpha 16 on all linear layers as the
/// reference README's PEFT run does, batch 8.
enum FineTuneBench {
    struct Shape {
        var vocab: Int, d: Int, layers: Int, heads: Int, hidden: Int, seq: Int, batch: Int
    }

    static let shapes: [String: Shape] = [
        "A": Shape(vocab: 512, d: 256, layers: 4, heads: 4, hidden: 688, seq: 128, batch: 16),
        "B": Shape(vocab: 8192, d: 576, layers: 6, heads: 9, hidden: 1536, seq: 256, batch: 4),
    ]

    /// Runs the benchmark.
    /// - Parameters:
    ///   - config: `A`, `B` or `smollm2`.
    ///   - mode: `lora` or `train`.
    ///   - threads: BLAS and loop threads.
    ///   - steps: timed steps (median reported).
    ///   - warmup: untimed steps.
    ///   - modelPath: the SmolLM2 GGUF (default: the asset cache).
    ///   - batch: sequences per step for configs A and B (default: the config's).
    ///   - seq: tokens per sequence for configs A and B (default: the config's).
    /// - Returns: the JSON fields.
    static func report(
        config: String, mode: String, threads: Int, steps: Int, warmup: Int, modelPath: String?, batch: Int? = nil, seq: Int? = nil
    ) throws -> [String: Any] {
        try Threading.withThreadCount(threads) {
            try measure(config: config, mode: mode, threads: threads, steps: steps, warmup: warmup, modelPath: modelPath, batch: batch, seq: seq)
        }
    }

    /// ``report(config:mode:threads:steps:warmup:modelPath:batch:seq:)`` under the caller's thread count.
    private static func measure(
        config: String, mode: String, threads: Int, steps: Int, warmup: Int, modelPath: String?, batch: Int?, seq: Int?
    ) throws -> [String: Any] {
        guard mode == "lora" || mode == "train" else { throw TallyError(code: .invalidRecipe, message: "mode must be lora or train") }
        var out: [String: Any] = ["impl": "tally", "config": config, "mode": mode == "lora" ? "lora" : "full", "threads": threads,
                                  "calib_matmul_gflops": calibrate()]
        let model: any CausalLanguageModel
        var step: () -> Double
        var tokensPerStep: Int
        if var s = shapes[config] {
            s.batch = batch ?? s.batch
            s.seq = seq ?? s.seq
            let c = TransformerConfig(
                architecture: .llama, vocabSize: s.vocab, hiddenSize: s.d, intermediateSize: s.hidden, numLayers: s.layers,
                numHeads: s.heads, numKVHeads: s.heads, maxPositions: s.seq, ropeTheta: 10_000, normEps: 1e-5, tieWordEmbeddings: false)
            model = try ModelLoader.model(config: c, weights: ModelLoader.randomWeights(config: c, seed: 0), trainable: mode == "train")
            let parameters: [(name: String, tensor: Tensor)]
            let optimizer: AdamWOptimizer
            if mode == "lora" {
                let lora = try LoRAModel(base: model, configuration: LoRAConfiguration(rank: 8, alpha: 16, targets: ["q_proj", "v_proj"]), seed: 0)
                parameters = lora.namedParameters
                optimizer = AdamWOptimizer(parameters: parameters, weightDecay: 0)
            } else {
                parameters = model.namedParameters
                optimizer = AdamWOptimizer(parameters: parameters, weightDecay: 0.1)
            }
            var rng = SeededGenerator(seed: 0)
            let B = s.batch, T = s.seq
            let ids = (0..<(B * (T + 1))).map { _ in Int(rng.next() % UInt64(s.vocab)) }
            var x: [Int] = [], y: [Int] = []
            for b in 0..<B {
                x += ids[(b * (T + 1))..<(b * (T + 1) + T)]
                y += ids[(b * (T + 1) + 1)..<((b + 1) * (T + 1))]
            }
            let tokens = TokenBatch(ids: x, batch: B, length: T)
            out["batch"] = B
            out["seq"] = T
            tokensPerStep = B * T
            out["trainable_params"] = parameters.reduce(0) { $0 + $1.tensor.count }
            step = {
                for (_, t) in parameters { t.zeroGrad() }
                let tape = Tape()
                let logits = model.outputLogits(model.hiddenStates(tokens, tape: tape, cache: nil), tape: tape)
                let loss = tape.crossEntropy(logits, targets: y)
                tape.backward(from: loss)
                optimizer.step(lr: 1e-3)
                return Double(loss.scalar)
            }
        } else if config == "smollm2" {
            let url = try AssetCatalog.resolveModel(modelPath ?? "smollm2-135m-instruct", relativeTo: nil)
            let (c, weights, _) = try GGUFModel.load(url)
            model = try ModelLoader.model(config: c, weights: weights, source: url.path, trainable: false)
            // Sentiment-sized examples: ~66 prompt tokens, 3 answer tokens, lengths 60-80.
            var rng = SeededGenerator(seed: 1)
            let examples = (0..<64).map { _ -> TokenizedExample in
                let n = 60 + Int(rng.next() % 21)
                let ids = (0..<n).map { _ in Int(rng.next() % UInt64(c.vocabSize)) }
                return TokenizedExample(ids: ids, labels: [Int](repeating: -100, count: n - 3) + ids.suffix(3))
            }
            let method: FineTuneMethod = mode == "lora" ? .lora(LoRAOptions(rank: 8, alpha: 16, targets: ["all-linear"])) : .full
            let opts = TrainingOptions(maxSteps: 1000, learningRate: mode == "lora" ? 1e-3 : 5e-5, batchSize: 8, schedule: "constant", maxGradNorm: 1, seed: 0)
            let job = try TrainingJob(model: model, method: method, options: opts, train: examples, validation: [],
                                      workDirectory: FileManager.default.temporaryDirectory.appendingPathComponent("tally-bench-\(UUID().uuidString)"), jobKey: "bench")
            var i = 0
            tokensPerStep = 0
            let lengths = (0..<(warmup + steps)).map { s in job.order.microBatches(step: s).joined().reduce(0) { $0 + examples[$1].ids.count } }
            tokensPerStep = lengths.reduce(0, +) / max(1, lengths.count)
            out["trainable_params"] = job.parameters.reduce(0) { $0 + $1.tensor.count }
            step = {
                let r = job.trainStep(i)
                i += 1
                return r.loss
            }
        } else {
            throw TallyError(code: .invalidRecipe, message: "unknown config '\(config)'; use A, B or smollm2")
        }
        out["params_total"] = model.parameterCount
        out["tokens_per_step"] = tokensPerStep
        for _ in 0..<warmup { _ = step() }
        var times: [Double] = []
        var loss = 0.0
        for _ in 0..<steps {
            let t0 = DispatchTime.now().uptimeNanoseconds
            loss = step()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        times.sort()
        let median = times[times.count / 2]
        out["step_ms_median"] = (median * 1e4).rounded() / 10
        out["step_ms_best"] = ((times.first ?? 0) * 1e4).rounded() / 10
        out["tok_per_s_median"] = Int((Double(tokensPerStep) / median).rounded())
        out["final_loss"] = (loss * 1000).rounded() / 1000
        out["peak_rss_mib"] = (TrainingJob.peakMemoryBytes() ?? 0) / (1 << 20)
        return out
    }

    /// GFLOP/s of a 2048x256 by 256x768 matmul, as the PyTorch script calibrates (it shows
    /// how busy the machine's cores are).
    static func calibrate() -> Double {
        let a = [Float](repeating: 0.5, count: 2048 * 256), b = [Float](repeating: 0.25, count: 256 * 768)
        var c = [Float](repeating: 0, count: 2048 * 768)
        func once() {
            c.withUnsafeMutableBufferPointer { cp in
                guard let dst = cp.baseAddress else { return }
                BLAS.gemm(transA: false, transB: false, m: 2048, n: 768, k: 256, a: a, lda: 256, b: b, ldb: 768, c: dst, ldc: 768)
            }
        }
        for _ in 0..<5 { once() }
        let t0 = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<50 { once() }
        let s = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        return (2.0 * 2048 * 768 * 256 * 50 / s / 1e9 * 10).rounded() / 10
    }
}

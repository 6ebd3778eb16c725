import ArgumentParser
import COpenBLAS
import Foundation
import SwiftTrainer
import TallyCore
import TallyTensor

/// Measures TallyTensor/SwiftTrainer throughput on the shapes of ../shared/bench's PyTorch
/// script and prints one JSON line, so the two can be run one after the other and compared.
struct TallyBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tally-bench",
        abstract: "Benchmark the built-in trainer: forward, training step, prefill, decode or matmul throughput.")

    enum Config: String, ExpressibleByArgument, CaseIterable { case A, B, smollm2 }
    enum Mode: String, ExpressibleByArgument, CaseIterable { case forward, train, lora, prefill, decode, matmul }

    @Option(help: "Model shape: A, B (random weights, as ../shared/bench) or smollm2 (the real model).")
    var config: Config = .A
    @Option(help: "forward | train (forward+backward+AdamW, all weights) | lora (rank 8 on q/v) | prefill | decode | matmul.")
    var mode: Mode = .train
    @Option(help: "Threads for BLAS and parallel loops.")
    var threads: Int = 2
    @Option(help: "Sequences per step (default: the config's).")
    var batch: Int?
    @Option(help: "Tokens per sequence (default: the config's).")
    var seq: Int?
    @Option(help: "Timed steps (the median is reported).")
    var steps: Int = 10
    @Option(help: "Untimed warm-up steps.")
    var warmup: Int = 3
    @Option(help: "Tokens generated per sequence in decode mode.")
    var newTokens: Int = 32
    @Option(help: "Weights of a --config smollm2 GGUF model: quantised (kept in their block format, as `tally run` does by default) or f32.")
    var weights: WeightStorage = .quantised
    @Option(help: "Model for --config smollm2: a GGUF file, a Hugging Face directory or a name `tally models` knows (default smollm2-135m-instruct).")
    var model: String?

    struct Shape {
        var vocab: Int, d: Int, layers: Int, heads: Int, hidden: Int, seq: Int, batch: Int
    }

    static let shapes: [Config: Shape] = [
        .A: Shape(vocab: 512, d: 256, layers: 4, heads: 4, hidden: 688, seq: 128, batch: 16),
        .B: Shape(vocab: 8192, d: 576, layers: 6, heads: 9, hidden: 1536, seq: 256, batch: 4),
    ]

    func run() throws {
        try Threading.withThreadCount(threads) { try benchmark() }
    }

    /// Runs the chosen mode and prints its JSON line; the caller sets the thread count.
    func benchmark() throws {
        let calibration = Self.calibrate()
        var result: [String: Any] = [
            "config": config.rawValue, "mode": mode.rawValue, "threads": threads,
            "calib_matmul_gflops": round1(calibration), "impl": "tally", "weights": weights.rawValue,
            "calib_matmul_gflops_per_cpu_thread": round1(Self.calibrationCPUGFLOPs / Double(threads)),
        ]
        if mode == .lora || mode == .train {
            // Training steps with the trainer's own optimiser (AdamWOptimizer), through the LoRA
            // wrapper or the real training job for smollm2 (FineTuneBench.swift).
            var r = try FineTuneBench.report(
                config: config.rawValue, mode: mode.rawValue, threads: threads, steps: steps, warmup: warmup,
                modelPath: model, batch: batch, seq: seq)
            r["tokens_per_s"] = r["tok_per_s_median"]
            result.merge(r) { $1 }
            let data = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        let (lm, shape) = try makeModel()
        let B = batch ?? shape.batch, T = seq ?? shape.seq
        result["batch"] = B
        result["seq"] = T
        result["params_total"] = lm.parameterCount
        var rng = SeededGenerator(seed: 0)
        func randomIDs(_ n: Int) -> [Int] { (0..<n).map { _ in Int(rng.next() % UInt64(lm.config.vocabSize)) } }

        switch mode {
        case .matmul:
            result.merge(Self.matmulReport(shape: shape, tokens: B * T)) { $1 }
        case .train, .lora:
            break  // handled above
        case .forward:
            let ids = randomIDs(B * (T + 1))
            var x: [Int] = [], y: [Int] = []
            for b in 0..<B {
                x += ids[b * (T + 1)..<b * (T + 1) + T]
                y += ids[b * (T + 1) + 1..<(b + 1) * (T + 1)]
            }
            let tokens = TokenBatch(ids: x, batch: B, length: T)
            lm.setTrainable(false)
            var lastLoss: Float = 0
            let times = measure {
                let tape = Tape(recording: false)
                let logits = lm.outputLogits(lm.hiddenStates(tokens, tape: tape, cache: nil), tape: tape)
                lastLoss = tape.crossEntropy(logits, targets: y).scalar
            }
            result.merge(report(times, tokens: B * T)) { $1 }
            result["final_loss"] = round1(Double(lastLoss) * 100) / 100
            let n = Double(lm.parameterCount)
            let attention = 4.0 * Double(lm.config.numLayers * T * lm.config.numHeads * lm.config.headDim * B * T)
            let flops = 2 * n * Double(B * T) + attention
            result["gflops_model_incl_attn"] = round1(flops / (times.sorted()[times.count / 2]) / 1e9)
            let cpu = Self.cpuTimes.sorted()[Self.cpuTimes.count / 2] / Double(threads)
            result["gflops_model_per_cpu_thread"] = round1(flops / cpu / 1e9 / Double(threads))
        case .prefill:
            lm.setTrainable(false)
            let prompts = (0..<B).map { _ in randomIDs(T) }
            let times = measure {
                let cache = KVCache(config: lm.config, batch: B, capacity: T)
                _ = lm.nextTokenLogits(TokenBatch(rows: prompts), cache: cache)
            }
            result.merge(report(times, tokens: B * T)) { $1 }
        case .decode:
            lm.setTrainable(false)
            let prompts = (0..<B).map { _ in randomIDs(T) }
            let generator = Generator(model: lm)
            var decodeTimes: [Double] = []
            for i in 0..<(warmup + steps) {
                let cache = KVCache(config: lm.config, batch: B, capacity: T + newTokens)
                var logits = lm.nextTokenLogits(TokenBatch(rows: prompts), cache: cache)
                let start = DispatchTime.now().uptimeNanoseconds
                for _ in 0..<newTokens {
                    let next = (0..<B).map { Sampler.argmax(logits.data + $0 * lm.config.vocabSize, count: lm.config.vocabSize) }
                    logits = lm.nextTokenLogits(TokenBatch(ids: next, batch: B, length: 1), cache: cache, int8Activations: true)
                }
                let dt = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                if i >= warmup { decodeTimes.append(dt) }
            }
            _ = generator
            result.merge(report(decodeTimes, tokens: B * newTokens)) { $1 }
            result["new_tokens"] = newTokens
        }
        result["peak_rss_mib"] = Self.peakRSSMiB()
        let data = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }

    func makeModel() throws -> (any CausalLanguageModel, Shape) {
        if let s = Self.shapes[config] {
            let c = TransformerConfig(
                architecture: .llama, vocabSize: s.vocab, hiddenSize: s.d, intermediateSize: s.hidden, numLayers: s.layers,
                numHeads: s.heads, numKVHeads: s.heads, maxPositions: max(s.seq, seq ?? 0) + newTokens, ropeTheta: 10_000,
                normEps: 1e-5, tieWordEmbeddings: false)
            return (try ModelLoader.model(config: c, weights: ModelLoader.randomWeights(config: c, seed: 0)), s)
        }
        // The real model: a GGUF file or Hugging Face directory, by default the cached
        // smollm2-135m-instruct (`tally models fetch smollm2-135m-instruct`).
        let url = try AssetCatalog.resolveModel(model ?? "smollm2-135m-instruct", relativeTo: nil)
        let lm: any CausalLanguageModel
        if url.pathExtension.lowercased() == "gguf" {
            let storage = mode == .train || mode == .lora ? WeightStorage.f32 : weights
            let gguf = try GGUFModel(url: url, storage: storage)
            lm = try ModelLoader.model(
                config: gguf.config, weights: gguf.weights, quantized: gguf.quantizedWeights, source: url.path,
                trainable: storage == .f32)
        } else {
            lm = try ModelLoader.load(huggingFaceDirectory: url)
        }
        let c = lm.config
        // Prompt processing: one 65-token prompt, the size of a classification prompt.
        return (lm, Shape(vocab: c.vocabSize, d: c.hiddenSize, layers: c.numLayers, heads: c.numHeads, hidden: c.intermediateSize, seq: 65, batch: 1))
    }

    /// Wall-clock seconds of each timed step; CPU seconds (all threads) go to `cpuTimes`.
    func measure(_ body: () -> Void) -> [Double] {
        var times: [Double] = []
        for i in 0..<(warmup + steps) {
            let start = DispatchTime.now().uptimeNanoseconds
            let cpu0 = Self.processCPUSeconds()
            body()
            let dt = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            if i >= warmup {
                times.append(dt)
                Self.cpuTimes.append(Self.processCPUSeconds() - cpu0)
            }
        }
        return times
    }

    nonisolated(unsafe) static var cpuTimes: [Double] = []

    /// CPU time used by the process so far (all threads), in seconds.
    static func processCPUSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    func report(_ times: [Double], tokens: Int) -> [String: Any] {
        let sorted = times.sorted()
        let median = sorted[sorted.count / 2], best = sorted[0]
        var extra: [String: Any] = [:]
        if !Self.cpuTimes.isEmpty {
            // CPU time per step divided by the threads: what the step costs when the cores are not shared.
            let cpu = Self.cpuTimes.sorted()[Self.cpuTimes.count / 2] / Double(threads)
            extra["step_cpu_ms_median_per_thread"] = round1(cpu * 1e3)
            extra["tokens_per_cpu_s_per_thread"] = Int((Double(tokens) / cpu).rounded())
        }
        return extra.merging([
            "tokens_per_step": tokens,
            "step_ms_median": round1(median * 1e3), "step_ms_best": round1(best * 1e3),
            "tokens_per_s": Int((Double(tokens) / median).rounded()),
            "tok_per_s_median": Int((Double(tokens) / median).rounded()),
            "tok_per_s_best": Int((Double(tokens) / best).rounded()),
        ]) { $1 }
    }

    /// Raw `cblas_sgemm` throughput on the PyTorch script's calibration shape (2048x768x256).
    static func calibrate() -> Double {
        let cpu0 = processCPUSeconds()
        let wall = sgemmGFLOPs(m: 2048, n: 768, k: 256, transB: false, repeats: 50)
        let cpu = processCPUSeconds() - cpu0
        calibrationCPUGFLOPs = 2 * Double(2048 * 768 * 256 * 53) / cpu / 1e9
        return wall
    }

    nonisolated(unsafe) static var calibrationCPUGFLOPs: Double = 0

    static func sgemmGFLOPs(m: Int, n: Int, k: Int, transB: Bool, repeats: Int) -> Double {
        let a = Tensor.randomNormal([m, k], std: 1, seed: 1)
        let b = Tensor.randomNormal(transB ? [n, k] : [k, n], std: 1, seed: 2)
        let c = Tensor(zeros: [m, n])
        for _ in 0..<3 {
            BLAS.gemm(transA: false, transB: transB, m: m, n: n, k: k, a: a.data, lda: k, b: b.data, ldb: transB ? k : n, c: c.data, ldc: n)
        }
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<repeats {
            BLAS.gemm(transA: false, transB: transB, m: m, n: n, k: k, a: a.data, lda: k, b: b.data, ldb: transB ? k : n, c: c.data, ldc: n)
        }
        let dt = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return 2 * Double(m * n * k * repeats) / dt / 1e9
    }

    /// Throughput of the model's linear layers through TallyTensor (forward, and the two
    /// backward products) against raw sgemm on the same shapes.
    static func matmulReport(shape s: Shape, tokens: Int) -> [String: Any] {
        var out: [String: Any] = [:]
        var worst = Double.infinity
        for (name, inF, outF) in [("qkvo", s.d, s.d), ("mlp_up", s.d, s.hidden), ("mlp_down", s.hidden, s.d), ("lm_head", s.d, s.vocab)] {
            let x = Tensor.randomNormal([tokens, inF], std: 1, seed: 3, requiresGrad: true)
            let w = Tensor.randomNormal([outF, inF], std: 0.02, seed: 4, requiresGrad: true)
            let repeats = 5
            var best = Double.infinity
            for _ in 0..<(repeats + 2) {
                let start = DispatchTime.now().uptimeNanoseconds
                let tape = Tape()
                let y = tape.linear(x, w)
                tape.backward(from: y)  // seeds every output gradient with 1
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
                x.zeroGrad(); w.zeroGrad()
            }
            let flops = 6 * Double(tokens * inF * outF)
            let ours = flops / best / 1e9
            let raw = sgemmGFLOPs(m: tokens, n: outF, k: inF, transB: true, repeats: 5)
            out["\(name)_gflops"] = round1(ours)
            out["\(name)_sgemm_gflops"] = round1(raw)
            worst = min(worst, ours / raw)
        }
        out["worst_ratio_to_sgemm"] = round1(worst * 100) / 100
        return out
    }

    static func peakRSSMiB() -> Int {
        var usage = rusage()
        getrusage(0, &usage)  // RUSAGE_SELF
        return usage.ru_maxrss / 1024
    }
}

func round1(_ x: Double) -> Double { (x * 10).rounded() / 10 }

TallyBench.main()

extension WeightStorage: ExpressibleByArgument {}

import Foundation
import Testing
import TallyCore
@testable import SwiftTrainer
import TallyTensor

/// Quantised weights kept in memory for generation: the kernels compute what dequantising
/// and `sgemm` compute, and a model on quantised weights answers as the same model on the
/// dequantised Float32 weights (up to the 8-bit activations of decode steps, which
/// Int8DecodeTests pins).
struct QuantizedWeightsTests {
    /// Random block data of `type` for a `rows x columns` matrix: random quants, and every
    /// f16 scale (and min) a random value in [0.002, 0.03).
    static func randomBlocks(_ type: GGMLType, rows: Int, columns: Int, seed: UInt64) throws -> [UInt8] {
        let geometry = try #require(type.blockGeometry)
        let blocks = rows * columns / geometry.elements
        var rng = SeededGenerator(seed: seed)
        var bytes = (0..<(blocks * geometry.bytes)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let scaleOffsets: [Int]
        switch type {
        case .q8_0, .q4_0: scaleOffsets = [0]
        case .q4_1, .q4_K: scaleOffsets = [0, 2]
        case .q6_K: scaleOffsets = [208]
        default: scaleOffsets = []
        }
        for b in 0..<blocks {
            for offset in scaleOffsets {
                let value = Float16(0.002 + Float(rng.next() % 1000) * 0.000028)
                let bits = value.bitPattern
                bytes[b * geometry.bytes + offset] = UInt8(bits & 0xFF)
                bytes[b * geometry.bytes + offset + 1] = UInt8(bits >> 8)
            }
        }
        return bytes
    }

    static func matrix(_ type: GGMLType, rows: Int, columns: Int, seed: UInt64) throws -> QuantizedMatrix {
        let bytes = try randomBlocks(type, rows: rows, columns: columns, seed: seed)
        return try bytes.withUnsafeBytes { try QuantizedMatrix(type: type, rows: rows, columns: columns, bytes: $0) }
    }

    /// The reference: the loader's dequantiser, then `sgemm` on one thread.
    static func reference(_ q: QuantizedMatrix, _ x: [Float], rows: Int, bias: [Float]?) throws -> [Float] {
        let bytes = UnsafeRawBufferPointer(start: q.storage, count: q.byteCount)
        let w = try GGUFDequantizer.dequantize(type: q.type, bytes: bytes, count: q.rows * q.columns)
        var y = [Float](repeating: 0, count: rows * q.rows)
        if let bias { for r in 0..<rows { for o in 0..<q.rows { y[r * q.rows + o] = bias[o] } } }
        Threading.withThreadCount(1) {
            x.withUnsafeBufferPointer { xp in
                w.withUnsafeBufferPointer { wp in
                    y.withUnsafeMutableBufferPointer { yp in
                        BLAS.gemm(
                            transA: false, transB: true, m: rows, n: q.rows, k: q.columns, a: xp.baseAddress!, lda: q.columns,
                            b: wp.baseAddress!, ldb: q.columns, beta: bias == nil ? 0 : 1, c: yp.baseAddress!, ldc: q.rows)
                    }
                }
            }
        }
        return y
    }

    static let types: [GGMLType] = [.q8_0, .q4_0, .q4_1, .q4_K, .q6_K]

    @Test(arguments: types)
    func kernelAgreesWithDequantiseThenSgemm(_ type: GGMLType) throws {
        let block = try #require(type.blockGeometry).elements
        for columns in [block == 32 ? 96 : 256, 512] {
            for outputs in [1, 37, 133] {
                let q = try Self.matrix(type, rows: outputs, columns: columns, seed: UInt64(columns * 1000 + outputs))
                // The SIMD dequantisation equals the loader's (Q8_0, Q4_0, Q4_1) or is the loader's (K-quants).
                let bytes = UnsafeRawBufferPointer(start: q.storage, count: q.byteCount)
                #expect(q.dequantized() == (try GGUFDequantizer.dequantize(type: type, bytes: bytes, count: outputs * columns)))
                for rows in [1, 3, 16, 17, 40] {
                    var rng = SeededGenerator(seed: UInt64(rows))
                    let x = (0..<(rows * columns)).map { _ in rng.nextNormal() }
                    let bias = (0..<outputs).map { _ in rng.nextNormal() }
                    for withBias in [false, true] {
                        let want = try Self.reference(q, x, rows: rows, bias: withBias ? bias : nil)
                        let scale = want.map(abs).max() ?? 1
                        for threads in [1, 2] {
                            let got = Threading.withThreadCount(threads) {
                                let xt = try? Tensor(shape: [rows, columns], values: x)
                                let bt = withBias ? try? Tensor(shape: [outputs], values: bias) : nil
                                return xt.map { Tape(recording: false).linear($0, q, bias: bt).values } ?? []
                            }
                            #expect(Fixtures.maxDifference(got, want) <= 1e-5 * max(scale, 1),
                                "\(type) \(rows)x\(columns) -> \(outputs), bias \(withBias), \(threads) threads")
                        }
                    }
                }
            }
        }
    }

    @Test func embeddingLookupDequantisesTheLookedUpRows() throws {
        let q = try Self.matrix(.q4_1, rows: 50, columns: 64, seed: 3)
        let all = q.dequantized()
        let ids = [0, 49, 7, 7]
        let rows = q.gatherRows(ids).values
        for (i, id) in ids.enumerated() {
            #expect(Array(rows[(i * 64)..<((i + 1) * 64)]) == Array(all[(id * 64)..<((id + 1) * 64)]))
        }
    }

    @Test func inputGradientFlowsThroughAFrozenQuantisedWeight() throws {
        let q = try Self.matrix(.q8_0, rows: 5, columns: 64, seed: 9)
        let w = try Tensor(shape: [5, 64], values: q.dequantized())
        var rng = SeededGenerator(seed: 4)
        let values = (0..<(3 * 64)).map { _ in rng.nextNormal() }
        let weights = (0..<(3 * 5)).map { _ in rng.nextNormal() }
        func gradient(_ product: (Tape, Tensor) -> Tensor) throws -> [Float] {
            let x = try Tensor(shape: [3, 64], values: values, requiresGrad: true)
            let tape = Tape()
            let y = product(tape, x)
            tape.backward(from: tape.weightedSum(y, weights: weights))
            return try #require(x.gradValues)
        }
        let quantised = try gradient { tape, x in tape.linear(x, q) }
        let dense = try gradient { tape, x in tape.linear(x, w) }
        #expect(Fixtures.maxDifference(quantised, dense) < 1e-4)
    }

    @Test func badQuantisedDataIsAnErrorNotACrash() throws {
        let bytes = try Self.randomBlocks(.q4_1, rows: 4, columns: 64, seed: 1)
        let truncated = #expect(throws: GGUFError.self) {
            try bytes.withUnsafeBytes { try QuantizedMatrix(type: .q4_1, rows: 4, columns: 64, bytes: UnsafeRawBufferPointer(rebasing: $0.dropLast(1))) }
        }
        #expect(truncated?.code == .truncated)
        let ragged = #expect(throws: GGUFError.self) {
            try bytes.withUnsafeBytes { try QuantizedMatrix(type: .q4_1, rows: 8, columns: 32 + 16, bytes: $0) }
        }
        #expect(ragged?.code == .malformed)
        let unsupported = #expect(throws: GGUFError.self) {
            try bytes.withUnsafeBytes { try QuantizedMatrix(type: .q5_0, rows: 1, columns: 32, bytes: $0) }
        }
        #expect(unsupported?.code == .unsupported)
        let order = #expect(throws: GGUFError.self) {
            try bytes.withUnsafeBytes { try QuantizedMatrix(type: .q4_1, rows: 4, columns: 64, bytes: $0, rowOrder: [0, 1, 1, 3]) }
        }
        #expect(order?.code == .malformed)
    }

    /// A two-layer random Llama whose matrices are all `type` (norms Float32), as a quantised
    /// model and as the same model on the dequantised weights.
    static func models(_ type: GGMLType) throws -> (quantised: any CausalLanguageModel, dense: any CausalLanguageModel) {
        let config = TransformerConfig(
            architecture: .llama, vocabSize: 96, hiddenSize: 256, intermediateSize: 512, numLayers: 2, numHeads: 4,
            numKVHeads: 2, maxPositions: 64, ropeTheta: 10_000, normEps: 1e-5, tieWordEmbeddings: true)
        var dense: [String: WeightTensor] = [:]
        var quantized: [String: QuantizedMatrix] = [:]
        for (i, (name, shape)) in LlamaModel.parameterShapes(config).enumerated() {
            if shape.count == 1 {
                dense[name] = WeightTensor(shape: shape, values: [Float](repeating: 1, count: shape[0]))
            } else {
                let q = try matrix(type, rows: shape[0], columns: shape[1], seed: UInt64(100 + i))
                quantized[name] = q
                dense[name] = WeightTensor(shape: shape, values: q.dequantized())
            }
        }
        let onlyNorms = dense.filter { $0.value.shape.count == 1 }
        return (
            try ModelLoader.model(config: config, weights: onlyNorms, quantized: quantized, trainable: false),
            try ModelLoader.model(config: config, weights: dense, trainable: false)
        )
    }

    @Test(arguments: types)
    func tinyModelGivesTheSameGreedyTokens(_ type: GGMLType) throws {
        let (quantised, dense) = try Self.models(type)
        #expect(quantised.hasQuantizedWeights && !dense.hasQuantizedWeights)
        #expect(quantised.namedParameters.count == 2 * 2 + 1)
        #expect(quantised.parameterCount == dense.parameterCount)
        let prompts = [[5, 17, 30, 2, 9, 41, 7, 25, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71], [3, 9]]
        let options = GenerationOptions(maxNewTokens: 12)
        for threads in [1, 2] {
            try Threading.withThreadCount(threads) {
                let q = try Generator(model: quantised).generate(prompts: prompts, options: options)
                let d = try Generator(model: dense).generate(prompts: prompts, options: options)
                for i in prompts.indices {
                    if quantised.namedQuantizedWeights[0].matrix.takesInt8Activations {
                        // Decode steps round activations to 8 bits: teacher-forced on the Float32
                        // model's tokens, every step's logits stay close, and the greedy token
                        // is the same wherever the Float32 top two are further apart than that.
                        try Self.expectDecodeStepsClose(quantised, dense, prompt: prompts[i], tokens: d[i].tokens, "\(type), prompt \(i), \(threads) threads")
                    } else {
                        #expect(q[i].tokens == d[i].tokens, "\(type), prompt \(i), \(threads) threads")
                    }
                }
            }
        }
        let full = quantised.logits(TokenBatch(rows: [prompts[0]])).values
        let want = dense.logits(TokenBatch(rows: [prompts[0]])).values
        #expect(Fixtures.maxDifference(full, want) < 1e-3 * max(want.map(abs).max() ?? 1, 1))
    }

    /// Feeds `prompt` then `tokens` to both models one decode step at a time and compares each
    /// step's logits: within 5% of the largest Float32 logit, and the same argmax wherever the
    /// Float32 logits' top two differ by more than twice the largest difference.
    static func expectDecodeStepsClose(
        _ quantised: any CausalLanguageModel, _ dense: any CausalLanguageModel, prompt: [Int], tokens: [Int], _ label: String
    ) throws {
        let config = dense.config, vocab = config.vocabSize
        let qc = KVCache(config: config, batch: 1, capacity: prompt.count + tokens.count + 1)
        let dc = KVCache(config: config, batch: 1, capacity: prompt.count + tokens.count + 1)
        var ql = quantised.nextTokenLogits(TokenBatch(rows: [prompt]), cache: qc).values
        var dl = dense.nextTokenLogits(TokenBatch(rows: [prompt]), cache: dc).values
        var compared = 0
        for (step, token) in tokens.enumerated() {
            let difference = Fixtures.maxDifference(ql, dl)
            let top = dl.map(abs).max() ?? 1
            #expect(difference <= 0.05 * top, "\(label), step \(step): logits differ by \(difference) of \(top)")
            let sorted = dl.sorted(by: >)
            if sorted[0] - sorted[1] > 2 * difference {
                #expect(Sampler.argmax(ql, count: vocab) == Sampler.argmax(dl, count: vocab), "\(label), step \(step)")
                compared += 1
            }
            ql = quantised.nextTokenLogits(TokenBatch(ids: [token], batch: 1, length: 1), cache: qc, int8Activations: true).values
            dl = dense.nextTokenLogits(TokenBatch(ids: [token], batch: 1, length: 1), cache: dc, int8Activations: true).values
        }
        #expect(compared > tokens.count / 2, "\(label): most steps have a clear greedy token")
    }

    /// tiny-llama with its tokenizer, exported as a Q8_0 GGUF file (down_proj, whose rows of
    /// 176 values do not fill Q8_0 blocks, goes to F16).
    static func tinyLlamaQ8GGUF(in directory: URL) throws -> URL {
        let hf = directory.appendingPathComponent("hf")
        try FileManager.default.createDirectory(at: hf, withIntermediateDirectories: true)
        for name in ["tiny-llama/config.json", "tiny-llama/model.safetensors", "tokenizers/llama3-style/tokenizer.json"] {
            try FileManager.default.copyItem(at: FormatsFixtures.resource(name), to: hf.appendingPathComponent(URL(fileURLWithPath: name).lastPathComponent))
        }
        let url = directory.appendingPathComponent("tiny-llama.Q8_0.gguf")
        try ModelExport.writeGGUF(try LocalModel.load(hf), to: url, type: .q8_0, name: "tiny-llama")
        return url
    }

    @Test func ggufFileOnQuantisedWeightsAnswersAsOnFloat32() throws {
        let directory = FormatsFixtures.temporaryFile("quantised-gguf")
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = try Self.tinyLlamaQ8GGUF(in: directory)
        let quantised = try LocalModel.load(url, storage: .quantised)
        let f32 = try LocalModel.load(url, storage: .f32)
        // Embedding, Q/K (rows back in Hugging Face order), V, O, gate and up stay Q8_0.
        #expect(quantised.model.namedQuantizedWeights.count == 1 + 2 * 6)
        #expect(quantised.model.namedQuantizedWeights.allSatisfy { $0.matrix.type == .q8_0 })
        #expect(!f32.model.hasQuantizedWeights)
        // A trainable load is always Float32.
        #expect(!(try LocalModel.load(url, trainable: true, storage: .quantised)).model.hasQuantizedWeights)
        // Answers from one arithmetic are never served for the other.
        #expect(quantised.identity != f32.identity)
        #expect(quantised.identity.hasPrefix(f32.identity))

        let ids = [5, 17, 300, 2, 99, 41, 7, 250, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]
        let want = f32.model.logits(TokenBatch(rows: [ids])).values
        #expect(Fixtures.maxDifference(quantised.model.logits(TokenBatch(rows: [ids])).values, want) < 1e-4)
        let options = GenerationOptions(maxNewTokens: 10)
        let prompts = [ids, [172, 47, 117]]
        let q = try Generator(model: quantised.model).generate(prompts: prompts, options: options)
        let d = try Generator(model: f32.model).generate(prompts: prompts, options: options)
        for i in prompts.indices { #expect(q[i].tokens == d[i].tokens, "prompt \(i)") }

        // The Float32 state of a quantised model is the dequantised file (export stays possible).
        let state = quantised.model.stateDict()
        for (name, weight) in f32.model.stateDict() {
            #expect(state[name]?.shape == weight.shape, "\(name)")
            #expect(state[name]?.values == weight.values, "\(name)")
        }
    }

    @Test func loraAdapterAppliesOnTopOfAQuantisedBase() throws {
        let directory = FormatsFixtures.temporaryFile("quantised-lora")
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = try Self.tinyLlamaQ8GGUF(in: directory)
        let adapter = try Fixtures.directory("tiny-llama-lora")
        let quantised = try LocalModel.load(url, storage: .quantised)
        let f32 = try LocalModel.load(url, storage: .f32)
        try PEFTAdapter.apply(from: adapter, to: quantised.model)
        try PEFTAdapter.apply(from: adapter, to: f32.model)
        // Merged into the Float32 weights; kept beside the quantised ones.
        #expect(f32.model.namedLinears.allSatisfy { $0.layer.adapter == nil })
        #expect(quantised.model.namedLinears.contains { $0.layer.adapter != nil })
        let base = try LocalModel.load(url, storage: .f32)
        let ids = [5, 17, 300, 2, 99, 41, 7, 250]
        let want = f32.model.logits(TokenBatch(rows: [ids])).values
        #expect(Fixtures.maxDifference(quantised.model.logits(TokenBatch(rows: [ids])).values, want) < 1e-4)
        // The adapter changes the answer (so the agreement above is not the base's alone).
        #expect(Fixtures.maxDifference(base.model.logits(TokenBatch(rows: [ids])).values, want) > 1e-3)
    }

    @Test func backendSettingIsValidated() throws {
        let directory = FormatsFixtures.temporaryFile("weights-setting")
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = try Self.tinyLlamaQ8GGUF(in: directory)
        func issues(_ value: String) -> [ConfigIssue] {
            let config = BackendConfig(name: "local", plugin: "swift-trainer", model: url.path, settings: ["weights": value], recipeDirectory: directory)
            return SwiftTrainerPlugin().validate(config, environment: [:])
        }
        #expect(issues("quantised").isEmpty)
        #expect(issues("f32").isEmpty)
        let bad = issues("int8")
        #expect(bad.count == 1)
        #expect(bad.first?.key == "weights")
        #expect(bad.first?.message.contains("quantised or f32") == true)
    }
}

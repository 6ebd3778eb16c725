import Foundation
import TallyCore
import Testing

@testable import SwiftTrainer

/// Writes small GGUF files for the tests, following the GGUF v3 layout: header, metadata,
/// tensor directory, zero padding to the alignment, tensor data (each tensor aligned).
struct GGUFBuilder {
    var version: UInt32 = 3
    var alignment = 32
    var metadata: [(String, GGUFValue)] = []
    var tensors: [(name: String, dimensions: [Int], type: UInt32, data: [UInt8])] = []

    mutating func add(_ key: String, _ value: GGUFValue) { metadata.append((key, value)) }

    mutating func addTensor(_ name: String, dimensions: [Int], type: GGMLType, data: [UInt8]) {
        tensors.append((name, dimensions, type.rawValue, data))
    }

    mutating func addF32(_ name: String, shape: [Int], values: [Float]) {
        addTensor(name, dimensions: shape.reversed(), type: .f32, data: values.flatMap { bytes(of: $0.bitPattern) })
    }

    func bytes<T: FixedWidthInteger>(of value: T) -> [UInt8] {
        withUnsafeBytes(of: value.littleEndian) { Array($0) }
    }

    func string(_ s: String) -> [UInt8] { bytes(of: UInt64(s.utf8.count)) + Array(s.utf8) }

    func typeCode(_ value: GGUFValue) -> UInt32 {
        switch value {
        case .uint8: 0
        case .int8: 1
        case .uint16: 2
        case .int16: 3
        case .uint32: 4
        case .int32: 5
        case .float32: 6
        case .bool: 7
        case .string: 8
        case .array: 9
        case .uint64: 10
        case .int64: 11
        case .float64: 12
        }
    }

    func encode(_ value: GGUFValue) -> [UInt8] {
        switch value {
        case .uint8(let v): [v]
        case .int8(let v): [UInt8(bitPattern: v)]
        case .uint16(let v): bytes(of: v)
        case .int16(let v): bytes(of: v)
        case .uint32(let v): bytes(of: v)
        case .int32(let v): bytes(of: v)
        case .float32(let v): bytes(of: v.bitPattern)
        case .bool(let v): [v ? 1 : 0]
        case .string(let s): string(s)
        case .array(let values):
            bytes(of: values.first.map(typeCode) ?? 0) + bytes(of: UInt64(values.count)) + values.flatMap(encode)
        case .uint64(let v): bytes(of: v)
        case .int64(let v): bytes(of: v)
        case .float64(let v): bytes(of: v.bitPattern)
        }
    }

    func build() -> [UInt8] {
        var out: [UInt8] = Array("GGUF".utf8) + bytes(of: version)
        out += bytes(of: UInt64(tensors.count)) + bytes(of: UInt64(metadata.count))
        for (key, value) in metadata {
            out += string(key) + bytes(of: typeCode(value)) + encode(value)
        }
        var offset = 0
        var offsets: [Int] = []
        for tensor in tensors {
            offsets.append(offset)
            offset = (offset + tensor.data.count + alignment - 1) / alignment * alignment
        }
        for (tensor, tensorOffset) in zip(tensors, offsets) {
            out += string(tensor.name) + bytes(of: UInt32(tensor.dimensions.count))
            out += tensor.dimensions.flatMap { bytes(of: UInt64($0)) }
            out += bytes(of: tensor.type) + bytes(of: UInt64(tensorOffset))
        }
        while out.count % alignment != 0 { out.append(0) }
        let dataStart = out.count
        for (tensor, tensorOffset) in zip(tensors, offsets) {
            while out.count < dataStart + tensorOffset { out.append(0) }
            out += tensor.data
        }
        return out
    }

    func write(_ name: String = "test.gguf") throws -> URL {
        let url = FormatsFixtures.temporaryFile(name)
        try Data(build()).write(to: url)
        return url
    }
}

/// Little-endian bytes of an IEEE half.
func halfBytes(_ value: Float) -> [UInt8] {
    let bits = Float16(value).bitPattern
    return [UInt8(bits & 0xFF), UInt8(bits >> 8)]
}

@Suite("GGUF: reader and dequantization")
struct GGUFTests {
    func dequantize(_ type: GGMLType, _ bytes: [UInt8], count: Int) throws -> [Float] {
        try bytes.withUnsafeBytes { try GGUFDequantizer.dequantize(type: type, bytes: $0, count: count) }
    }

    @Test("Metadata of every value type, nested arrays included, reads back exactly")
    func metadataRoundTrip() throws {
        var builder = GGUFBuilder()
        let values: [(String, GGUFValue)] = [
            ("t.u8", .uint8(200)), ("t.i8", .int8(-100)), ("t.u16", .uint16(60000)), ("t.i16", .int16(-30000)),
            ("t.u32", .uint32(4_000_000_000)), ("t.i32", .int32(-2_000_000_000)), ("t.f32", .float32(1.5)),
            ("t.bool", .bool(true)), ("t.str", .string("héllo ✓")), ("t.u64", .uint64(1 << 40)),
            ("t.i64", .int64(-(1 << 40))), ("t.f64", .float64(-2.25)),
            ("t.arr", .array([.string("a"), .string("bc")])),
            ("t.nested", .array([.array([.int32(1), .int32(2)]), .array([.int32(3)])])),
            ("t.empty", .array([])),
        ]
        for (key, value) in values { builder.add(key, value) }
        builder.add("general.alignment", .uint32(64))
        builder.alignment = 64
        builder.addF32("x", shape: [2], values: [1, 2])
        let file = try GGUFFile(url: try builder.write())
        for (key, value) in values { #expect(file.metadata[key] == value, "\(key)") }
        #expect(file.alignment == 64)
        #expect(file.dataOffset % 64 == 0)
        #expect(file.version == 3)
        #expect(file.metadata["t.arr"]?.strings == ["a", "bc"])
        #expect(try file.dequantize("x") == [1, 2])
    }

    @Test("F32, F16 and BF16 convert exactly")
    func floats() throws {
        let f32: [Float] = [1, -2.5, 0, 3e-8]
        #expect(try dequantize(.f32, f32.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian) { Array($0) } }, count: 4) == f32)
        // 1.0 = 0x3C00, -2.0 = 0xC000, 0.5 = 0x3800, 65504 = 0x7BFF (largest half)
        #expect(try dequantize(.f16, [0x00, 0x3C, 0x00, 0xC0, 0x00, 0x38, 0xFF, 0x7B], count: 4) == [1, -2, 0.5, 65504])
        // bf16 is the top half of a float32: 1.0 = 0x3F80, -3.0 = 0xC040
        #expect(try dequantize(.bf16, [0x80, 0x3F, 0x40, 0xC0], count: 2) == [1, -3])
    }

    @Test("Q8_0: x = d·q")
    func q8_0() throws {
        let q: [Int8] = (0..<32).map { Int8($0 * 8 - 128) }  // -128, -120, …, 120
        let block = halfBytes(0.5) + q.map { UInt8(bitPattern: $0) }
        let values = try dequantize(.q8_0, block + block, count: 64)
        #expect(values[0] == -64)
        #expect(values[1] == -60)
        #expect(values[16] == 0)
        #expect(values[31] == 60)
        #expect(values[32] == -64)
    }

    @Test("Q4_0: low nibbles are values 0–15, high nibbles 16–31, x = d·(q − 8)")
    func q4_0() throws {
        let qs: [UInt8] = (0..<16).map { UInt8($0) | UInt8(15 - $0) << 4 }
        let values = try dequantize(.q4_0, halfBytes(2) + qs, count: 32)
        #expect(values[0] == -16)  // 2·(0 − 8)
        #expect(values[5] == -6)  // 2·(5 − 8)
        #expect(values[15] == 14)  // 2·(15 − 8)
        #expect(values[16] == 14)  // high nibble of byte 0 is 15
        #expect(values[31] == -16)  // high nibble of byte 15 is 0
    }

    @Test("Q4_1: x = d·q + m")
    func q4_1() throws {
        let qs: [UInt8] = (0..<16).map { UInt8($0) | UInt8(15 - $0) << 4 }
        let values = try dequantize(.q4_1, halfBytes(0.25) + halfBytes(-1) + qs, count: 32)
        #expect(values[0] == -1)
        #expect(values[4] == 0)  // 0.25·4 − 1
        #expect(values[15] == 2.75)
        #expect(values[16] == 2.75)
        #expect(values[30] == -0.75)  // high nibble of byte 14 is 1
    }

    @Test("Q4_K: 6-bit scales and mins unpacked, x = d·scale·q − dmin·min")
    func q4_K() throws {
        // Scales 1, 2, 3, 4, 5, 6, 7, 40 and mins 0, 1, 2, 3, 4, 5, 6, 33 packed by hand:
        // sub-blocks 0–3 in the low 6 bits of bytes 0–3 / 4–7; sub-blocks 4–7 as low nibbles
        // (scale) and high nibbles (min) of bytes 8–11 plus the top two bits of bytes 0–3 / 4–7.
        // 40 = 0b10_1000 → nibble 8, top bits 2; 33 = 0b10_0001 → nibble 1, top bits 2.
        let scales: [UInt8] = [1, 2, 3, 4 | 2 << 6, 0, 1, 2, 3 | 2 << 6, 5 | 4 << 4, 6 | 5 << 4, 7 | 6 << 4, 8 | 1 << 4]
        let qs: [UInt8] = (0..<128).map { UInt8($0 % 16) | UInt8(15 - $0 % 16) << 4 }
        let block = halfBytes(1) + halfBytes(0.5) + scales + qs
        #expect(block.count == 144)
        let values = try dequantize(.q4_K, block, count: 256)
        #expect(values[0] == 0)  // 1·1·0 − 0.5·0
        #expect(values[1] == 1)  // 1·1·1
        #expect(values[32] == 29.5)  // sub-block 1: 2·15 − 0.5·1
        #expect(values[64 + 3] == 8)  // sub-block 2: 3·3 − 0.5·2
        #expect(values[96] == 58.5)  // sub-block 3: 4·15 − 0.5·3
        #expect(values[128 + 5] == 23)  // sub-block 4: 5·5 − 0.5·4
        #expect(values[192] == -3)  // sub-block 6: 7·0 − 0.5·6
        #expect(values[193] == 4)  // 7·1 − 3
        #expect(values[224] == 583.5)  // sub-block 7: 40·15 − 0.5·33
        #expect(values[255] == -16.5)  // 40·0 − 16.5
    }

    @Test("Q6_K: 4 low bits from ql, 2 high bits from qh, int8 scale per 16 values, x = d·scale·(q − 32)")
    func q6_K() throws {
        // Uniform quants: ql = 0x21 (low nibble 1, high nibble 2); qh = 0b11_10_01_00 gives
        // the four values sharing a qh byte high bits 0, 1, 2, 3 → q = 1, 17, 34, 50.
        let scales: [UInt8] = (1...16).map { UInt8($0) }
        var block = [UInt8](repeating: 0x21, count: 128) + [UInt8](repeating: 0xE4, count: 64) + scales + halfBytes(0.5)
        #expect(block.count == 210)
        var values = try dequantize(.q6_K, block, count: 256)
        #expect(values[0] == -15.5)  // 0.5·1·(1 − 32)
        #expect(values[16] == -31)  // scale 2
        #expect(values[32] == -22.5)  // 0.5·3·(17 − 32)
        #expect(values[64] == 5)  // 0.5·5·(34 − 32)
        #expect(values[96] == 63)  // 0.5·7·(50 − 32)
        #expect(values[127] == 72)  // 0.5·8·18
        #expect(values[128] == -139.5)  // second half: scale 9
        #expect(values[255] == 144)  // 0.5·16·18

        // Position check: ql[k] = k, qh = 0, scales 1, d = 1 → value = nibble − 32.
        block = (0..<128).map { UInt8($0) } + [UInt8](repeating: 0, count: 64) + [UInt8](repeating: 1, count: 16) + halfBytes(1)
        values = try dequantize(.q6_K, block, count: 256)
        #expect(values[5] == -27)  // low nibble of ql[5]
        #expect(values[32 + 5] == -27)  // low nibble of ql[37] = 5
        #expect(values[64 + 5] == -32)  // high nibble of ql[5] = 0
        #expect(values[96 + 21] == -29)  // high nibble of ql[53] = 3
        #expect(values[128 + 64 + 20] == -27)  // high nibble of ql[84] = 5
    }

    @Test("Sizes that do not fit the block layout are rejected")
    func badSizes() throws {
        #expect(throws: GGUFError.self) { try dequantize(.q8_0, [UInt8](repeating: 0, count: 34), count: 31) }
        #expect(throws: GGUFError.self) { try dequantize(.q4_K, [UInt8](repeating: 0, count: 100), count: 256) }
        #expect(throws: GGUFError.self) { try dequantize(GGMLType(rawValue: 16), [UInt8](repeating: 0, count: 100), count: 256) }
    }

    func expectError(_ bytes: [UInt8], code: GGUFError.Code, mentioning words: [String], sourceLocation: Testing.SourceLocation = #_sourceLocation) throws {
        let url = FormatsFixtures.temporaryFile("bad.gguf")
        try Data(bytes).write(to: url)
        let error = #expect(throws: GGUFError.self, sourceLocation: sourceLocation) { try GGUFFile(url: url) }
        #expect(error?.code == code, "\(error?.description ?? "")", sourceLocation: sourceLocation)
        #expect(error?.description.contains(url.path) == true, sourceLocation: sourceLocation)
        for word in words {
            #expect(error?.message.contains(word) == true, "\(error?.message ?? "") should mention \(word)", sourceLocation: sourceLocation)
        }
    }

    @Test("Truncated and malformed files give clear errors naming the file, key or tensor")
    func malformedFiles() throws {
        var builder = GGUFBuilder()
        builder.add("general.architecture", .string("llama"))
        builder.add("t.list", .array([.string("one"), .string("two")]))
        builder.addF32("blk.0.attn_norm.weight", shape: [16], values: Array(repeating: 1, count: 16))
        let good = builder.build()
        _ = try GGUFFile(url: try builder.write())

        try expectError([], code: .truncated, mentioning: ["magic"])
        try expectError(Array("GGML".utf8) + good.dropFirst(4), code: .malformed, mentioning: ["not a GGUF file"])
        var v1 = good
        v1[4] = 1
        try expectError(v1, code: .unsupported, mentioning: ["version 1"])
        // Cut inside the metadata, the tensor directory and the tensor data.
        let keyEnd = good.count - 64 - 100
        for cut in [30, keyEnd, 150] {
            try expectError(Array(good.prefix(cut)), code: .truncated, mentioning: ["truncated"])
        }
        try expectError(Array(good.dropLast(8)), code: .truncated, mentioning: ["blk.0.attn_norm.weight", "[16]"])

        // An array claiming 2^40 elements.
        var huge = GGUFBuilder()
        huge.add("t.huge", .array([.uint8(1)]))
        var hugeBytes = huge.build()
        let countOffset = 4 + 4 + 8 + 8 + 8 + "t.huge".utf8.count + 4 + 4
        hugeBytes.replaceSubrange(countOffset..<(countOffset + 8), with: withUnsafeBytes(of: UInt64(1 << 40).littleEndian) { Array($0) })
        try expectError(hugeBytes, code: .malformed, mentioning: ["t.huge"])

        // A bool stored as 7, an unknown value type.
        var badBool = GGUFBuilder()
        badBool.add("t.flag", .bool(true))
        var boolBytes = badBool.build()
        boolBytes[24 + 8 + "t.flag".utf8.count + 4] = 7
        try expectError(boolBytes, code: .malformed, mentioning: ["t.flag"])

        // A tensor offset that is not aligned.
        var misaligned = GGUFBuilder()
        misaligned.addF32("w", shape: [8], values: Array(repeating: 0, count: 8))
        var misalignedBytes = misaligned.build()
        let offsetPosition = 24 + 8 + 1 + 4 + 8 + 4
        misalignedBytes[offsetPosition] = 4
        try expectError(misalignedBytes, code: .malformed, mentioning: ["'w'", "alignment"])
    }

    @Test("An unsupported quantization type is reported with the tensor's name and shape")
    func unsupportedType() throws {
        var builder = GGUFBuilder()
        builder.addTensor("blk.0.ffn_up.weight", dimensions: [256, 2], type: GGMLType(rawValue: 23), data: [UInt8](repeating: 0, count: 272))
        let file = try GGUFFile(url: try builder.write())
        let error = #expect(throws: GGUFError.self) { try file.dequantize("blk.0.ffn_up.weight") }
        #expect(error?.code == .unsupported)
        #expect(error?.message.contains("IQ4_XS") == true)
        #expect(error?.message.contains("[2, 256]") == true)
        #expect(throws: GGUFError.self) { try file.dequantize("no.such.tensor") }
    }
}

@Suite("GGUF: llama architecture")
struct GGUFLlamaTests {
    static let hidden = 8, heads = 2, kvHeads = 1, headDim = 4, ffn = 12, vocab = 10

    /// llama.cpp's converter permutation: rows of each head reordered from
    /// `(2, headDim/2)` to `(headDim/2, 2)`.
    static func converterPermute(_ w: [Float], rows: Int, columns: Int, heads: Int) -> [Float] {
        let headDim = rows / heads, half = headDim / 2
        var out = w
        for h in 0..<heads {
            for t in 0..<2 {
                for j in 0..<half {
                    let source = h * headDim + t * half + j
                    let target = h * headDim + j * 2 + t
                    for c in 0..<columns { out[target * columns + c] = w[source * columns + c] }
                }
            }
        }
        return out
    }

    static func values(_ count: Int, seed: Float) -> [Float] {
        (0..<count).map { Float($0) * 0.01 + seed }
    }

    /// A one-layer llama GGUF; `hfQ`/`hfK` are the Hugging Face weights the file encodes.
    static func tinyLlama(tied: Bool = true, dropping: String? = nil, qShape: [Int]? = nil) throws -> (URL, hfQ: [Float], hfK: [Float]) {
        var b = GGUFBuilder()
        b.add("general.architecture", .string("llama"))
        b.add("llama.block_count", .uint32(1))
        b.add("llama.context_length", .uint32(128))
        b.add("llama.embedding_length", .uint32(UInt32(hidden)))
        b.add("llama.feed_forward_length", .uint32(UInt32(ffn)))
        b.add("llama.attention.head_count", .uint32(UInt32(heads)))
        b.add("llama.attention.head_count_kv", .uint32(UInt32(kvHeads)))
        b.add("llama.rope.freq_base", .float32(500))
        b.add("llama.rope.dimension_count", .uint32(UInt32(headDim)))
        b.add("llama.attention.layer_norm_rms_epsilon", .float32(1e-6))
        b.add("tokenizer.ggml.bos_token_id", .uint32(1))
        b.add("tokenizer.ggml.eos_token_id", .uint32(2))
        b.add("tokenizer.ggml.model", .string("gpt2"))
        b.add("tokenizer.ggml.tokens", .array(["<unk>", "<s>", "</s>", "a", "b", "ab", "Ġ", "Ġab", "1", "2"].map { .string($0) }))
        b.add("tokenizer.ggml.token_type", .array([3, 3, 3, 1, 1, 1, 1, 1, 1, 1].map { .int32($0) }))
        b.add("tokenizer.ggml.merges", .array(["a b", "Ġ ab"].map { .string($0) }))
        let hfQ = values(hidden * hidden, seed: 1)
        let hfK = values(kvHeads * headDim * hidden, seed: 2)
        var tensors: [(String, [Int], [Float])] = [
            ("token_embd.weight", [vocab, hidden], values(vocab * hidden, seed: 0)),
            ("output_norm.weight", [hidden], values(hidden, seed: 3)),
            ("blk.0.attn_norm.weight", [hidden], values(hidden, seed: 4)),
            ("blk.0.ffn_norm.weight", [hidden], values(hidden, seed: 5)),
            ("blk.0.attn_q.weight", qShape ?? [hidden, hidden], converterPermute(hfQ, rows: hidden, columns: hidden, heads: heads)),
            ("blk.0.attn_k.weight", [kvHeads * headDim, hidden], converterPermute(hfK, rows: kvHeads * headDim, columns: hidden, heads: kvHeads)),
            ("blk.0.attn_v.weight", [kvHeads * headDim, hidden], values(kvHeads * headDim * hidden, seed: 6)),
            ("blk.0.attn_output.weight", [hidden, hidden], values(hidden * hidden, seed: 7)),
            ("blk.0.ffn_gate.weight", [ffn, hidden], values(ffn * hidden, seed: 8)),
            ("blk.0.ffn_up.weight", [ffn, hidden], values(ffn * hidden, seed: 9)),
            ("blk.0.ffn_down.weight", [hidden, ffn], values(ffn * hidden, seed: 10)),
        ]
        if !tied { tensors.append(("output.weight", [vocab, hidden], values(vocab * hidden, seed: 11))) }
        for (name, shape, v) in tensors where name != dropping {
            b.addF32(name, shape: shape, values: v)
        }
        return (try b.write("llama.gguf"), hfQ, hfK)
    }

    @Test("Config from metadata; names mapped to Hugging Face; Q and K rows back in HF order")
    func tinyModel() throws {
        let (url, hfQ, hfK) = try Self.tinyLlama()
        let file = try GGUFFile(url: url)
        let config = try GGUFLlama.config(from: file)
        #expect(config.architecture == .llama)
        #expect(config.hiddenSize == 8 && config.numHeads == 2 && config.numKVHeads == 1 && config.headDim == 4)
        #expect(config.intermediateSize == 12 && config.numLayers == 1 && config.maxPositions == 128)
        #expect(config.vocabSize == 10)
        #expect(config.ropeTheta == 500)
        #expect(abs(config.normEps - 1e-6) < 1e-12)
        #expect(config.tieWordEmbeddings)
        #expect(config.bosTokenID == 1 && config.eosTokenIDs == [2])

        let weights = try GGUFLlama.weights(from: file, config: config)
        #expect(Set(weights.keys) == [
            "model.embed_tokens.weight", "model.norm.weight", "model.layers.0.input_layernorm.weight",
            "model.layers.0.post_attention_layernorm.weight", "model.layers.0.self_attn.q_proj.weight",
            "model.layers.0.self_attn.k_proj.weight", "model.layers.0.self_attn.v_proj.weight",
            "model.layers.0.self_attn.o_proj.weight", "model.layers.0.mlp.gate_proj.weight",
            "model.layers.0.mlp.up_proj.weight", "model.layers.0.mlp.down_proj.weight",
        ])
        #expect(weights["model.layers.0.self_attn.q_proj.weight"]?.values == hfQ)
        #expect(weights["model.layers.0.self_attn.k_proj.weight"]?.values == hfK)
        #expect(weights["model.layers.0.self_attn.k_proj.weight"]?.shape == [4, 8])
        #expect(weights["model.layers.0.mlp.down_proj.weight"]?.shape == [8, 12])
        #expect(weights["model.layers.0.mlp.down_proj.weight"]?.values == Self.values(96, seed: 10))
        // The permutation really moves rows (so the check above is not vacuous).
        #expect(Self.converterPermute(hfQ, rows: 8, columns: 8, heads: 2) != hfQ)

        let (untiedURL, _, _) = try Self.tinyLlama(tied: false)
        let untied = try GGUFFile(url: untiedURL)
        let untiedConfig = try GGUFLlama.config(from: untied)
        #expect(!untiedConfig.tieWordEmbeddings)
        #expect(try GGUFLlama.weights(from: untied, config: untiedConfig)["lm_head.weight"]?.shape == [10, 8])
    }

    @Test("ModelFiles loads a GGUF file or a Hugging Face directory, with tokenizer and template")
    func modelFiles() throws {
        let (url, hfQ, _) = try Self.tinyLlama()
        let gguf = try ModelFiles.load(url)
        #expect(gguf.config.numLayers == 1)
        #expect(gguf.weights["model.layers.0.self_attn.q_proj.weight"]?.values == hfQ)
        #expect(gguf.tokenizer.encode("ab ab</s>") == [5, 7, 2])
        #expect(gguf.chatTemplate.isFallback)
        _ = try ModelLoader.model(config: gguf.config, weights: gguf.weights, source: url.path, trainable: false)

        let directory = FormatsFixtures.temporaryFile("hf-llama")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        for name in ["tiny-llama/config.json", "tiny-llama/model.safetensors", "tokenizers/llama3-style/tokenizer.json"] {
            try FileManager.default.copyItem(at: FormatsFixtures.resource(name), to: directory.appendingPathComponent(URL(fileURLWithPath: name).lastPathComponent))
        }
        let hf = try ModelFiles.load(directory)
        #expect(hf.config.architecture == .llama && hf.config.numLayers == 2)
        #expect(hf.tokenizer.encode("Hello world") == [41, 70, 403, 80, 280, 264, 77, 69])

        let notModel = FormatsFixtures.temporaryFile("notes.txt")
        try Data("hello".utf8).write(to: notModel)
        let error = #expect(throws: TallyError.self) { try ModelFiles.load(notModel) }
        #expect(error?.code == .invalidModel)
        #expect(error?.location?.file == notModel.path)
        let missing = #expect(throws: TallyError.self) { try ModelFiles.load(directory.appendingPathComponent("nothing.gguf")) }
        #expect(missing?.code == .io)
    }

    @Test("Missing tensors, wrong shapes and unknown architectures are reported clearly")
    func errors() throws {
        let (missingURL, _, _) = try Self.tinyLlama(dropping: "blk.0.ffn_up.weight")
        let missing = try GGUFFile(url: missingURL)
        let missingError = #expect(throws: GGUFError.self) {
            try GGUFLlama.weights(from: missing, config: try GGUFLlama.config(from: missing))
        }
        #expect(missingError?.code == .missing)
        #expect(missingError?.message.contains("blk.0.ffn_up.weight") == true)

        let (shapeURL, _, _) = try Self.tinyLlama(qShape: [4, 16])
        let shaped = try GGUFFile(url: shapeURL)
        let shapeError = #expect(throws: GGUFError.self) {
            try GGUFLlama.weights(from: shaped, config: try GGUFLlama.config(from: shaped))
        }
        #expect(shapeError?.code == .shapeMismatch)
        #expect(shapeError?.message.contains("blk.0.attn_q.weight") == true)
        #expect(shapeError?.message.contains("[4, 16]") == true)

        var other = GGUFBuilder()
        other.add("general.architecture", .string("mamba"))
        let arch = #expect(throws: GGUFError.self) { try GGUFLlama.config(from: try GGUFFile(url: try other.write())) }
        #expect(arch?.message.contains("mamba") == true)

        var incomplete = GGUFBuilder()
        incomplete.add("general.architecture", .string("llama"))
        incomplete.add("llama.embedding_length", .uint32(8))
        let key = #expect(throws: GGUFError.self) { try GGUFLlama.config(from: try GGUFFile(url: try incomplete.write())) }
        #expect(key?.message.contains("llama.block_count") == true)
    }

    @Test("Tokenizer from GGUF metadata: tokens, merges, control tokens, BOS on request")
    func ggufTokenizer() throws {
        var b = GGUFBuilder()
        b.add("tokenizer.ggml.model", .string("gpt2"))
        b.add("tokenizer.ggml.pre", .string("smollm"))
        b.add("tokenizer.ggml.tokens", .array(["<s>", "</s>", "a", "b", "ab", "Ġ", "Ġab", "1", "2", "12"].map { .string($0) }))
        b.add("tokenizer.ggml.token_type", .array([3, 3, 1, 1, 1, 1, 1, 1, 1, 1].map { .int32($0) }))
        b.add("tokenizer.ggml.merges", .array(["a b", "Ġ ab", "1 2"].map { .string($0) }))
        b.add("tokenizer.ggml.bos_token_id", .uint32(0))
        b.add("tokenizer.ggml.eos_token_id", .uint32(1))
        b.add("tokenizer.ggml.add_bos_token", .bool(true))
        b.add("tokenizer.chat_template", .string("{{ messages }}"))
        let tokenizer = try BPETokenizer(gguf: try GGUFFile(url: try b.write()))
        // Digits are split one by one before BPE, so the merge "1 2" never applies.
        #expect(tokenizer.encode("ab ab12</s>", addSpecialTokens: false) == [4, 6, 7, 8, 1])
        #expect(tokenizer.encode("ab", addSpecialTokens: true) == [0, 4])
        #expect(tokenizer.decode([0, 4, 6, 1], skipSpecialTokens: true) == "ab ab")
        #expect(tokenizer.decode([0, 4, 6, 1], skipSpecialTokens: false) == "<s>ab ab</s>")
        #expect(tokenizer.bosTokenID == 0 && tokenizer.eosTokenIDs == [1])
        #expect(tokenizer.chatTemplate == "{{ messages }}")

        var sentencePiece = GGUFBuilder()
        sentencePiece.add("tokenizer.ggml.model", .string("llama"))
        let error = #expect(throws: TokenizerError.self) { try BPETokenizer(gguf: try GGUFFile(url: try sentencePiece.write())) }
        #expect(error?.message.contains("'llama'") == true)
    }
}

import Foundation
import Testing

@testable import SwiftTrainer

@Suite("Export: GGUF writer, tokenizer files, self-contained model directories")
struct ExportTests {
    @Test("A written GGUF file reads back: metadata, F32 exactly, F16 and Q8_0 within their precision")
    func ggufRoundTrip() throws {
        let values = (0..<128).map { Float(sin(Double($0) * 0.37)) * 3 }
        var writer = GGUFWriter()
        writer.metadata = [
            ("general.architecture", .string("llama")), ("llama.block_count", .uint32(2)),
            ("tokenizer.ggml.tokens", .array([.string("a"), .string("b")])),
            ("some.float", .float32(0.5)), ("some.bool", .bool(true)),
        ]
        try writer.add("f32", shape: [4, 32], values: values, as: .f32)
        try writer.add("f16", shape: [4, 32], values: values, as: .f16)
        try writer.add("q8", shape: [4, 32], values: values, as: .q8_0)
        let url = FormatsFixtures.temporaryFile("roundtrip.gguf")
        defer { try? FileManager.default.removeItem(at: url) }
        try writer.write(to: url)

        let file = try GGUFFile(url: url)
        #expect(file.version == 3)
        #expect(file.metadata["general.architecture"]?.string == "llama")
        #expect(file.metadata["llama.block_count"]?.int == 2)
        #expect(file.metadata["tokenizer.ggml.tokens"]?.strings == ["a", "b"])
        #expect(file.metadata["some.float"]?.double == 0.5)
        #expect(file.metadata["some.bool"]?.bool == true)
        #expect(try #require(file.tensor(named: "q8")).shape == [4, 32])
        #expect(try file.dequantize("f32") == values)
        let f16 = try file.dequantize("f16")
        #expect(zip(f16, values).allSatisfy { abs($0 - $1) <= 3e-3 })
        // Q8_0: within half a quantisation step of each block's scale (max|x| / 127).
        let q8 = try file.dequantize("q8")
        for block in 0..<4 {
            let range = block * 32..<(block + 1) * 32
            let step = (range.map { abs(values[$0]) }.max() ?? 0) / 127
            for i in range { #expect(abs(q8[i] - values[i]) <= step * 0.51 + 1e-3, "value \(i)") }
        }
    }

    @Test("Q8_0 needs rows of a multiple of 32; a duplicate metadata key is refused")
    func ggufWriterErrors() throws {
        var writer = GGUFWriter()
        #expect(throws: GGUFError.self) { try writer.add("odd", shape: [2, 10], values: [Float](repeating: 1, count: 20), as: .q8_0) }
        #expect(throws: GGUFError.self) { try writer.add("short", shape: [2, 10], values: [1], as: .f32) }
        writer.metadata = [("k", .uint32(1)), ("k", .uint32(2))]
        #expect(throws: GGUFError.self) { try writer.write(to: FormatsFixtures.temporaryFile("dup.gguf")) }
    }

    @Test("Q/K rows: llama.cpp's order and back is the identity, and differs in between")
    func permuteRoundTrip() {
        let values = (0..<(16 * 3)).map(Float.init)
        let permuted = GGUFLlama.permuteRows(values, rows: 16, columns: 3, heads: 2)
        #expect(permuted != values)
        #expect(GGUFLlama.unpermuteRows(permuted, rows: 16, columns: 3, heads: 2) == values)
    }

    @Test("tokenizer.json written from a loaded tokenizer encodes and decodes the same", arguments: ["gpt2-style", "llama3-style"])
    func tokenizerJSONRoundTrip(style: String) throws {
        let original = try BPETokenizer(tokenizerJSON: FormatsFixtures.resource("tokenizers/\(style)/tokenizer.json"))
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tally-export-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try original.writeHuggingFaceFiles(to: directory, maxLength: 128)
        let reread = try BPETokenizer(tokenizerJSON: directory.appendingPathComponent("tokenizer.json"))
        let cases = try TokenizerCase.load("tokenizers/\(style)/cases.json", key: "cases")
        for c in cases {
            #expect(reread.encode(c.text, addSpecialTokens: true) == original.encode(c.text, addSpecialTokens: true), "ids of \(c.text.debugDescription)")
            #expect(reread.decode(c.ids, skipSpecialTokens: false) == c.decoded)
        }
        #expect(reread.vocabularySize == original.vocabularySize)
    }
}

/// SmolLM2 exported as a Hugging Face directory and as GGUF files, opened again by Tally's own
/// loaders, answers as the source model does.
@Suite(
    "Export: SmolLM2-135M-Instruct to hf and gguf and back",
    .enabled(if: FormatsFixtures.hasSmolLM2, "needs the model: run `tally models fetch smollm2-135m-instruct`"))
struct SmolLM2ExportTests {
    static let prompts = ["What is the capital of France?", "Is this movie review positive or negative? Review: a wonderful, moving film."]

    static func greedy(_ local: LocalModel) throws -> [String] {
        let ids = try prompts.map { try local.promptIDs([.user($0)]) }
        let outputs = try Generator(model: local.model).generate(
            prompts: ids, options: GenerationOptions(maxNewTokens: 12, stopTokenIDs: local.stopTokenIDs),
            decode: { local.tokenizer.decode($0, skipSpecialTokens: true) })
        return outputs.map { $0.text ?? "" }
    }

    @Test("hf directory and F16 GGUF: same tokenizer ids, chat template and greedy replies; Q8_0 opens")
    func exportAndReload() async throws {
        try await FormatsFixtures.offCooperativePool {
            let source = try LocalModel.load(FormatsFixtures.smolLM2)
            let expected = try Self.greedy(source)
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tally-export-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: directory) }

            let hf = directory.appendingPathComponent("hf")
            try ModelExport.writeHuggingFace(source, to: hf)
            for name in ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json"] {
                #expect(FileManager.default.fileExists(atPath: hf.appendingPathComponent(name).path), "\(name) written")
            }
            let fromHF = try LocalModel.load(hf)
            #expect(fromHF.template.source == source.template.source)
            let text = "Hello, world! 12345 <|im_start|>user\nDon't stop.<|im_end|>"
            #expect(fromHF.tokenizer.encode(text, addSpecialTokens: true) == source.tokenizer.encode(text, addSpecialTokens: true))
            #expect(try Self.greedy(fromHF) == expected)

            let f16 = directory.appendingPathComponent("model-f16.gguf")
            try ModelExport.writeGGUF(source, to: f16, type: .f16, name: "smollm2")
            let fromGGUF = try LocalModel.load(f16)
            #expect(fromGGUF.tokenizer.encode(text, addSpecialTokens: true) == source.tokenizer.encode(text, addSpecialTokens: true))
            #expect(fromGGUF.template.source == source.template.source)
            #expect(try Self.greedy(fromGGUF) == expected)

            let q8 = directory.appendingPathComponent("model-q8_0.gguf")
            try ModelExport.writeGGUF(source, to: q8, type: .q8_0, name: "smollm2")
            let file = try GGUFFile(url: q8)
            #expect(file.metadata["general.file_type"]?.int == 7)
            #expect(file.tensor(named: "blk.0.attn_q.weight")?.type == .q8_0)
            #expect(file.tensor(named: "blk.0.attn_norm.weight")?.type == .f32)
            _ = try LocalModel.load(q8)
        }
    }
}

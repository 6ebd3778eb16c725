import Foundation
import SwiftTrainer
import TallyCore
import Testing

/// A GGUF export read back by llama.cpp's own Python reader (the `gguf` package): metadata,
/// tokenizer and tensor values as Tally wrote them. CI installs the package (scripts/test.sh
/// sets TALLY_GGUF_SITE and TALLY_REQUIRE_GGUF_READBACK); without it the test says so and
/// passes only when the package is not required. TALLY_GGUF_PYTHON picks the interpreter.
@Suite(
    "Export: GGUF read back with the gguf package",
    .enabled(if: FormatsFixtures.hasSmolLM2, "needs the model: run `tally models fetch smollm2-135m-instruct`"))
struct GGUFReadbackTests {
    /// The Python interpreter that has `gguf` (TALLY_GGUF_PYTHON, else python3 on PATH).
    static var python: String {
        let value = ProcessInfo.processInfo.environment["TALLY_GGUF_PYTHON"] ?? ""
        return value.isEmpty ? "python3" : value
    }
    static var required: Bool { !(ProcessInfo.processInfo.environment["TALLY_REQUIRE_GGUF_READBACK"] ?? "").isEmpty }

    /// scripts/gguf_readback.py in this repository.
    static var script: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/gguf_readback.py")
    }

    /// What Tally wrote into `url`: metadata, some tokens, and for a few tensors sampled values
    /// as Tally reads the file back and as the source model holds them.
    static func expectation(for url: URL, source: LocalModel) throws -> [String: Any] {
        let file = try GGUFFile(url: url)
        var metadata: [String: Any] = [:]
        for key in ["general.architecture", "general.name", "tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.chat_template"] {
            metadata[key] = try #require(file.metadata[key]?.string, "\(key) written")
        }
        for key in ["general.file_type", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "llama.block_count", "llama.embedding_length"] {
            if let value = file.metadata[key]?.int { metadata[key] = value }
        }
        let tokens = try #require(file.metadata["tokenizer.ggml.tokens"]?.strings)
        var sampledTokens: [String: String] = [:]
        for index in [0, 1, 2, 100, 1000, tokens.count - 1] where index < tokens.count { sampledTokens[String(index)] = tokens[index] }

        let weights = source.model.stateDict()
        // (GGUF name, source name): tensors stored unpermuted, so indices match the source's.
        let pairs = [("token_embd.weight", "model.embed_tokens.weight"), ("blk.0.ffn_down.weight", "model.layers.0.mlp.down_proj.weight"),
                     ("blk.0.attn_norm.weight", "model.layers.0.input_layernorm.weight"), ("output_norm.weight", "model.norm.weight")]
        var tensors: [[String: Any]] = []
        for (name, sourceName) in pairs {
            let info = try #require(file.tensor(named: name), "\(name) written")
            let values = try file.dequantize(info)
            let original = try #require(weights[sourceName]).values
            #expect(values.count == original.count)
            let indices = Array(stride(from: 0, to: values.count, by: max(1, values.count / 200))) + [values.count - 1]
            // F16 rounds to 11 significant bits; Q8_0 to half a step (a block's largest |value| / 127),
            // plus the rounding of the step itself to F16.
            let largest = original.map(abs).max() ?? 0
            let tolerance: Float = info.type == .q8_0 ? largest / 127 * 0.6 + 1e-6 : (info.type == .f16 ? largest / 1024 : 0)
            tensors.append([
                "name": name, "type": info.type.description, "shape": info.dimensions,
                "indices": indices, "tally": indices.map { Double(values[$0]) }, "source": indices.map { Double(original[$0]) },
                "tolerance": Double(tolerance), "sum": values.reduce(0.0) { $0 + Double($1) },
            ])
        }
        return ["file": url.path, "metadata": metadata, "token_count": tokens.count, "tokens": sampledTokens, "tensors": tensors]
    }

    @Test("F16 and Q8_0 exports of SmolLM2 read back with the gguf package: metadata, tokenizer and values agree with Tally's")
    func ggufExportReadsBackInPython() async throws {
        try await FormatsFixtures.offCooperativePool {
            let source = try LocalModel.load(FormatsFixtures.smolLM2)
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tally-gguf-readback-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            for type in [GGMLType.f16, .q8_0] {
                let url = directory.appendingPathComponent("model-\(type).gguf")
                try ModelExport.writeGGUF(source, to: url, type: type, name: "smollm2")
                let expected = directory.appendingPathComponent("expected-\(type).json")
                try JSONSerialization.data(withJSONObject: try Self.expectation(for: url, source: source)).write(to: expected)
                let process = Process()
                process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
                process.arguments = [Self.python, Self.script.path, expected.path]
                let output = Pipe()
                process.standardOutput = output
                process.standardError = output
                try process.run()
                let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                process.waitUntilExit()
                if process.terminationStatus == 77 || (process.terminationStatus == 127 && !Self.required) {
                    #expect(!Self.required, "TALLY_REQUIRE_GGUF_READBACK is set but \(Self.python) has no gguf package: \(text)")
                    print("skipped: the gguf Python package is not installed (pip install gguf numpy, or set TALLY_GGUF_PYTHON or TALLY_GGUF_SITE): \(text)")
                    return
                }
                #expect(process.terminationStatus == 0, "\(type): \(text)")
            }
        }
    }
}

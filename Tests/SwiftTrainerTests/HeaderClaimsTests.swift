import Foundation
import TallyCore
import Testing

@testable import SwiftTrainer

/// Sizes and counts that a file's header claims are checked against the file before anything
/// is allocated from them: a crafted header is a clear error, never a crash or an allocation of
/// petabytes.
@Suite("Header claims")
struct HeaderClaimsTests {
    func tokenizerJSON(vocab: String, added: String = "[]") -> Data {
        Data("""
            {"added_tokens": \(added), "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false},
             "decoder": {"type": "ByteLevel"},
             "model": {"type": "BPE", "vocab": \(vocab), "merges": []}}
            """.utf8)
    }

    @Test("tokenizer.json: a token id far beyond the number of tokens is refused",
          arguments: [
              (#"{"a": 999999999999999}"#, "[]"),
              (#"{"a": 0, "b": 2147483648}"#, "[]"),
              (#"{"a": 0}"#, #"[{"id": 100000000, "content": "<x>", "special": true}]"#),
          ])
    func tokenizerJSONIDs(vocab: String, added: String) throws {
        let error = try #require(throws: TokenizerError.self) {
            try BPETokenizer(tokenizerJSONData: tokenizerJSON(vocab: vocab, added: added), file: "crafted/tokenizer.json")
        }
        #expect(error.file == "crafted/tokenizer.json")
        #expect(error.message.contains("token id"), "\(error)")
    }

    @Test("tokenizer.json: ids with a few holes still load")
    func tokenizerJSONHoles() throws {
        let tokenizer = try BPETokenizer(
            tokenizerJSONData: tokenizerJSON(vocab: #"{"a": 0, "b": 5}"#, added: #"[{"id": 1000, "content": "<x>", "special": true}]"#),
            file: "holes.json")
        #expect(tokenizer.vocabularySize == 1001)
        #expect(tokenizer.encode("ab<x>", addSpecialTokens: false) == [0, 5, 1000])
    }

    /// Writes `bytes` and opens them as a GGUF file, returning the error.
    func ggufError(_ bytes: [UInt8]) throws -> GGUFError {
        let url = FormatsFixtures.temporaryFile("crafted.gguf")
        try Data(bytes).write(to: url)
        let error = try #require(throws: GGUFError.self) { try GGUFFile(url: url) }
        #expect(error.description.contains(url.path))
        return error
    }

    @Test("GGUF: a quantized tensor whose claimed size overflows is refused")
    func ggufTensorSizeOverflow() throws {
        var builder = GGUFBuilder()
        // 2^32 × 2^29 elements of Q8_0: the element count fits an Int, the byte count does not.
        builder.addTensor("w", dimensions: [1 << 32, 1 << 29], type: .q8_0, data: [])
        let error = try ggufError(builder.build())
        #expect(error.message.contains("'w'"), "\(error)")
    }

    @Test("GGUF: a tensor claiming more bytes than the file holds is refused before reading")
    func ggufTensorBeyondFile() throws {
        var builder = GGUFBuilder()
        builder.addTensor("w", dimensions: [1 << 20, 1 << 10], type: .f32, data: [UInt8](repeating: 0, count: 64))
        let error = try ggufError(builder.build())
        #expect(error.code == .truncated)
        #expect(error.message.contains("'w'"), "\(error)")
    }

    @Test("GGUF: counts of metadata, tensors, tokens and strings larger than the file are refused")
    func ggufCounts() throws {
        var tokens = GGUFBuilder()
        tokens.add("tokenizer.ggml.tokens", .array([.string("a"), .string("b")]))
        var bytes = tokens.build()
        // The token array's element count, then the first string's length.
        let countOffset = 24 + 8 + "tokenizer.ggml.tokens".utf8.count + 4 + 4
        bytes.replaceSubrange(countOffset..<(countOffset + 8), with: withUnsafeBytes(of: UInt64(1 << 34).littleEndian) { Array($0) })
        #expect(try ggufError(bytes).message.contains("tokenizer.ggml.tokens"))
        bytes = tokens.build()
        bytes.replaceSubrange((countOffset + 8)..<(countOffset + 16), with: withUnsafeBytes(of: UInt64(1 << 33).littleEndian) { Array($0) })
        #expect(try ggufError(bytes).message.contains("tokenizer.ggml.tokens"))
        // Header counts: tensors at byte 8, metadata at byte 16.
        for offset in [8, 16] {
            var header = GGUFBuilder().build()
            header.replaceSubrange(offset..<(offset + 8), with: [UInt8](repeating: 0xFF, count: 8))
            _ = try ggufError(header)
        }
    }

    @Test("safetensors: a header length or tensor range beyond the file is refused")
    func safetensorsClaims() throws {
        let url = FormatsFixtures.temporaryFile("crafted.safetensors")
        func write(_ header: String, declared: UInt64? = nil) throws {
            var data = Data(withUnsafeBytes(of: (declared ?? UInt64(header.utf8.count)).littleEndian) { Array($0) })
            data.append(contentsOf: Array(header.utf8))
            data.append(contentsOf: [UInt8](repeating: 0, count: 16))
            try data.write(to: url)
        }
        let cases: [(header: String, declared: UInt64?)] = [
            (#"{"w": {"dtype": "F32", "shape": [1099511627775, 1099511627775], "data_offsets": [0, 16]}}"#, nil),
            (#"{"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 9223372036854775807]}}"#, nil),
            (#"{"w": {"dtype": "F32", "shape": [4], "data_offsets": [-16, 0]}}"#, nil),
            ("{}", UInt64.max),
        ]
        for (header, declared) in cases {
            try write(header, declared: declared)
            let error = try #require(throws: TallyError.self) { try SafeTensorsFile(contentsOf: url) }
            #expect(error.description.contains(url.lastPathComponent), "\(error)")
        }
    }
}

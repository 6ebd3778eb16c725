import Foundation
import Testing
@testable import SwiftTrainer
import TallyCore
import TallyTensor

/// A model's identity names its contents, not its file name: answers cached in the ledger are
/// reused for the same weights wherever they lie and never for other weights.
struct ModelIdentityTests {
    /// A scratch directory removed after the test.
    final class Scratch {
        let root: URL
        init() throws {
            root = FileManager.default.temporaryDirectory.appendingPathComponent("tally-identity-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        }
        deinit { try? FileManager.default.removeItem(at: root) }

        /// A copy of the tiny Llama fixture's config and weights at `relative`.
        func tinyLlama(at relative: String) throws -> URL {
            let source = try Fixtures.directory("tiny-llama")
            let directory = root.appendingPathComponent(relative)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            for name in ["config.json", "model.safetensors"] {
                try FileManager.default.copyItem(at: source.appendingPathComponent(name), to: directory.appendingPathComponent(name))
            }
            return directory
        }
    }

    /// Flips the last byte of a file in place (tensor data: the size stays the same).
    static func flipLastByte(_ url: URL) throws {
        var bytes = try Data(contentsOf: url)
        bytes[bytes.count - 1] ^= 0x5a
        try bytes.write(to: url)
    }

    /// The ledger cache key of one request under a model's identity.
    static func key(_ identity: String) throws -> String {
        try Ledger.cacheKey(identity: identity, request: GenerationRequest(messages: [.user("2+2?")], maxTokens: 4))
    }

    @Test("the same file name and size with other weights gets another identity: no answer is reused")
    func differentWeightsSameNameAndSize() throws {
        let scratch = try Scratch()
        let base = try scratch.tinyLlama(at: "a/model")
        let other = try scratch.tinyLlama(at: "b/model")
        try Self.flipLastByte(other.appendingPathComponent("model.safetensors"))
        let sizeA = try FileManager.default.attributesOfItem(atPath: base.appendingPathComponent("model.safetensors").path)[.size] as? Int
        let sizeB = try FileManager.default.attributesOfItem(atPath: other.appendingPathComponent("model.safetensors").path)[.size] as? Int
        #expect(sizeA == sizeB)

        let digests = FileDigestCache(store: nil)
        let identityA = try ModelIdentity.of(model: base, digests: digests)
        let identityB = try ModelIdentity.of(model: other, digests: digests)
        #expect(identityA != identityB)

        // An answer recorded for one model is not served for the other.
        let ledger = try Ledger(path: scratch.root.appendingPathComponent("ledger.sqlite"))
        let request = GenerationRequest(messages: [.user("2+2?")], maxTokens: 4)
        try ledger.recordCall(key: Self.key(identityA), identity: identityA, request: request, result: GenerationResult(text: "4", usage: TokenUsage(promptTokens: 3, completionTokens: 1), latencySeconds: 0.1))
        #expect(try ledger.cachedResult(key: Self.key(identityA))?.text == "4")
        #expect(try ledger.cachedResult(key: Self.key(identityB)) == nil)
    }

    @Test("the same weights under two paths share an identity: answers are reused")
    func sameWeightsTwoPaths() throws {
        let scratch = try Scratch()
        let first = try scratch.tinyLlama(at: "downloads/tiny")
        let second = try scratch.tinyLlama(at: "exported/another-name")
        let digests = FileDigestCache(store: nil)
        let identity = try ModelIdentity.of(model: first, digests: digests)
        #expect(identity == (try ModelIdentity.of(model: second, digests: digests)))
        #expect(identity.hasPrefix("swift-trainer/a\(ModelIdentity.answerCodeVersion):sha256:"))

        let ledger = try Ledger(path: scratch.root.appendingPathComponent("ledger.sqlite"))
        let request = GenerationRequest(messages: [.user("2+2?")], maxTokens: 4)
        try ledger.recordCall(key: Self.key(identity), identity: identity, request: request, result: GenerationResult(text: "4", usage: TokenUsage(promptTokens: 3, completionTokens: 1), latencySeconds: 0.1))
        let reopened = try ModelIdentity.of(model: second, digests: FileDigestCache(store: nil))
        #expect(try ledger.cachedResult(key: Self.key(reopened))?.text == "4")

        // A single GGUF-style file is identified by its bytes, not its name.
        let fileA = scratch.root.appendingPathComponent("one.gguf")
        let fileB = scratch.root.appendingPathComponent("two.gguf")
        try Data("same bytes".utf8).write(to: fileA)
        try Data("same bytes".utf8).write(to: fileB)
        #expect(try ModelIdentity.of(model: fileA, digests: digests) == ModelIdentity.of(model: fileB, digests: digests))
    }

    @Test("a sharded checkpoint has a real identity: every shard counts")
    func shardedCheckpoint() throws {
        let scratch = try Scratch()
        let whole = try scratch.tinyLlama(at: "whole")
        let tensors = try SafeTensorsFile(contentsOf: whole.appendingPathComponent("model.safetensors")).floatTensors()
        let names = tensors.keys.sorted()
        let half = names.count / 2
        let sharded = scratch.root.appendingPathComponent("sharded")
        try FileManager.default.createDirectory(at: sharded, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: whole.appendingPathComponent("config.json"), to: sharded.appendingPathComponent("config.json"))
        var weightMap: [String: String] = [:]
        for (index, slice) in [names[..<half], names[half...]].enumerated() {
            let file = "model-0000\(index + 1)-of-00002.safetensors"
            var shard: [String: WeightTensor] = [:]
            for name in slice {
                shard[name] = tensors[name]
                weightMap[name] = file
            }
            try SafeTensorsFile.write(shard, to: sharded.appendingPathComponent(file))
        }
        let index = try JSONSerialization.data(withJSONObject: ["metadata": [String: String](), "weight_map": weightMap], options: [.sortedKeys])
        try index.write(to: sharded.appendingPathComponent(ModelLoader.shardIndexFile))

        // It loads, and its identity covers the shards.
        #expect(try ModelLoader.huggingFaceDirectory(sharded).weights.count == tensors.count)
        let digests = FileDigestCache(store: nil)
        let before = try ModelIdentity.of(model: sharded, digests: digests)
        #expect(before.hasPrefix("swift-trainer/a\(ModelIdentity.answerCodeVersion):sha256:"))
        let files = try ModelIdentity.directoryFiles(sharded).map(\.role)
        #expect(files.contains("model-00001-of-00002.safetensors") && files.contains("model-00002-of-00002.safetensors"))

        // Changing the second shard in place gives a new identity.
        try Self.flipLastByte(sharded.appendingPathComponent("model-00002-of-00002.safetensors"))
        #expect(try ModelIdentity.of(model: sharded, digests: digests) != before)
    }

    @Test("a model directory changed in place gets a new identity (chat template, tokenizer)")
    func changedInPlace() throws {
        let scratch = try Scratch()
        let model = try scratch.tinyLlama(at: "model")
        let config = model.appendingPathComponent("tokenizer_config.json")
        try Data(#"{"chat_template": "{{ messages[0].content }}"}"#.utf8).write(to: config)
        let digests = FileDigestCache(store: scratch.root.appendingPathComponent("digests.json"))
        let before = try ModelIdentity.of(model: model, digests: digests)
        try Data(#"{"chat_template": "{{ messages[0].content }}!"}"#.utf8).write(to: config)
        let after = try ModelIdentity.of(model: model, digests: digests)
        #expect(before != after)
        // A fresh process (a new cache over the same store) sees the same identity.
        #expect(try ModelIdentity.of(model: model, digests: FileDigestCache(store: scratch.root.appendingPathComponent("digests.json"))) == after)
    }
}

import Foundation
import Testing
import TallyCore
@testable import SwiftTrainer
import TallyTensor

/// The prefix cache and continuous batching change how work is shared, never what a request
/// gets: the same logits and text as computing each prompt alone and in full.
struct ContinuousBatchingTests {
    func model(_ name: String) throws -> any CausalLanguageModel {
        try ModelLoader.load(huggingFaceDirectory: Fixtures.directory(name), trainable: false)
    }

    /// A 21-token prefix, then per-prompt tails: two share the prefix, one shares part of it,
    /// one shares nothing.
    static let shared = [17, 300, 2, 99, 41, 7, 250, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 18, 19]
    static let prompts = [
        shared + [40, 41, 42],
        shared + [50, 51, 52, 53, 54, 55],
        Array(shared.prefix(9)) + [60, 61, 62, 63, 64, 65, 66, 67],
        [400, 401, 402, 403, 404, 405, 406, 407, 408, 409],
    ]

    /// The last-token logits of `prompt` computed in full, without any cache.
    func fullLogits(_ m: any CausalLanguageModel, _ prompt: [Int]) -> [Float] {
        let vocab = m.config.vocabSize
        let all = m.logits(TokenBatch(rows: [prompt])).values
        return Array(all[(prompt.count - 1) * vocab..<prompt.count * vocab])
    }

    @Test(arguments: ["tiny-llama", "tiny-gpt2"])
    func prefixCacheGivesTheSameLogitsAsAFullPass(_ name: String) throws {
        let m = try model(name)
        let prefixes = PrefixCache(byteLimit: 1 << 20, blockTokens: 4)
        for (round, prompt) in (Self.prompts + Self.prompts).enumerated() {
            let cache = KVCache(config: m.config, slots: 1)
            cache.open(slot: 0, capacity: prompt.count)
            let restored = prefixes.restore(prompt, namespace: name, into: cache, slot: 0)
            cache.active = [0]
            let rest = Array(prompt[restored...])
            let logits = m.nextTokenLogits(TokenBatch(ids: rest, batch: 1, length: rest.count), cache: cache)
            prefixes.store(prompt, namespace: name, from: cache, slot: 0)
            #expect(Fixtures.maxDifference(logits.values, fullLogits(m, prompt)) < 1e-5, "prompt \(round), \(restored) tokens restored")
            // The second prompt reuses the shared prefix's 5 whole blocks; the second round
            // every prompt's own blocks, always leaving at least one token to compute.
            if round == 1 { #expect(restored == 20) }
            if round >= Self.prompts.count { #expect(restored == (prompt.count - 1) / 4 * 4) }
        }
        #expect(prefixes.reusedTokens > 0)
    }

    @Test(arguments: ["tiny-llama", "tiny-gpt2"])
    func prefixCacheGivesTheSameTextBeforeAndAfterEviction(_ name: String) throws {
        let m = try model(name)
        let options = GenerationOptions(maxNewTokens: 8)
        let plain = try Generator(model: m).generate(prompts: Self.prompts, options: options)
        // Room for 6 blocks of 4 tokens (2 layers, 32 floats per key row, keys and values).
        let block = 2 * m.config.numLayers * 4 * m.config.numKVHeads * m.config.headDim * MemoryLayout<Float>.size
        let prefixes = PrefixCache(byteLimit: 6 * block, blockTokens: 4)
        for round in 0..<3 {
            for (i, prompt) in Self.prompts.enumerated() {
                let cached = try Generator(model: m).generate(prompts: [prompt], options: options, prefixCache: prefixes, namespace: name)
                #expect(cached[0].tokens == plain[i].tokens, "round \(round), prompt \(i)")
                #expect(prefixes.bytes <= prefixes.byteLimit)
            }
            // All prompts of one call share the cache too.
            let together = try Generator(model: m).generate(prompts: Self.prompts, options: options, prefixCache: prefixes, namespace: name)
            #expect(together.map(\.tokens) == plain.map(\.tokens), "round \(round), together")
        }
        #expect(prefixes.evictions > 0)
        #expect(prefixes.reusedTokens > 0)
        #expect(prefixes.blockCount <= 6)
    }

    @Test func prefixCacheKeepsNamespacesApart() throws {
        let m = try model("tiny-llama")
        let prefixes = PrefixCache(byteLimit: 1 << 20, blockTokens: 4)
        let options = GenerationOptions(maxNewTokens: 2)
        _ = try Generator(model: m).generate(prompts: [Self.prompts[0]], options: options, prefixCache: prefixes, namespace: "base")
        let before = prefixes.reusedTokens
        _ = try Generator(model: m).generate(prompts: [Self.prompts[0]], options: options, prefixCache: prefixes, namespace: "base+adapter")
        #expect(prefixes.reusedTokens == before)
        _ = try Generator(model: m).generate(prompts: [Self.prompts[0]], options: options, prefixCache: prefixes, namespace: "base")
        #expect(prefixes.reusedTokens > before)
    }

    @Test(arguments: ["tiny-llama", "tiny-gpt2"])
    func requestsJoiningAndLeavingGetTheirOwnAnswers(_ name: String) throws {
        let m = try model(name)
        let requests: [(prompt: [Int], options: GenerationOptions, joinAt: Int)] = [
            (Self.prompts[0], GenerationOptions(maxNewTokens: 3), 0),
            (Self.prompts[1], GenerationOptions(maxNewTokens: 20, temperature: 0.9, seed: 11), 0),
            (Self.prompts[2], GenerationOptions(maxNewTokens: 7, temperature: 1.2, topP: 0.8, seed: 5), 1),
            (Self.prompts[3], GenerationOptions(maxNewTokens: 12), 2),
            (Self.prompts[0], GenerationOptions(maxNewTokens: 9, temperature: 0.7, seed: 11), 4),
            ([3, 9], GenerationOptions(maxNewTokens: 5, stopTokenIDs: [7, 8, 9, 10, 11]), 5),
        ]
        let engine = GenerationEngine(model: m, maxBatch: 3, prefixCache: PrefixCache(byteLimit: 1 << 20, blockTokens: 4), namespace: name)
        var results: [Int: GenerationOutput] = [:]
        var waiting = Array(requests.enumerated())
        var step = 0
        var maxRunning = 0
        while !waiting.isEmpty || !engine.isIdle {
            while let next = waiting.first, next.element.joinAt <= step, engine.freeSlots > 0 {
                waiting.removeFirst()
                if let done = try engine.add(id: next.offset, prompt: next.element.prompt, options: next.element.options, seed: next.element.options.seed) {
                    results[done.id] = done.output
                }
            }
            maxRunning = max(maxRunning, engine.runningCount)
            for done in engine.step() { results[done.id] = done.output }
            step += 1
            #expect(step < 200)
            if step >= 200 { break }
        }
        #expect(maxRunning == 3)
        for (i, r) in requests.enumerated() {
            let alone = try Generator(model: m).generate(prompts: [r.prompt], options: r.options)
            #expect(results[i] == alone[0], "request \(i)")
            #expect(results[i]?.tokens.count ?? 0 <= r.options.maxNewTokens)
        }
    }

    @Test func sampledPromptsOfOneCallKeepTheirSeedsWhateverTheirCompany() throws {
        let m = try model("tiny-llama")
        let options = GenerationOptions(maxNewTokens: 10, temperature: 1, seed: 40)
        let together = try Generator(model: m).generate(prompts: Self.prompts, options: options)
        for (i, p) in Self.prompts.enumerated() {
            var own = options
            own.seed = options.seed &+ UInt64(i)
            let alone = try Generator(model: m).generate(prompts: [p], options: own)
            #expect(together[i].tokens == alone[0].tokens, "prompt \(i)")
        }
    }

    @Test func localGeneratorAnswersConcurrentRequestsAsItAnswersThemAlone() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("tally-st-batching-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        for (folder, file) in [("tiny-llama", "config.json"), ("tiny-llama", "model.safetensors"), ("tokenizers", "llama3-style/tokenizer.json")] {
            try FileManager.default.copyItem(
                at: Fixtures.directory(folder).appendingPathComponent(file),
                to: root.appendingPathComponent(URL(fileURLWithPath: file).lastPathComponent))
        }
        let system = "You label movie reviews as positive or negative. Answer with one word. Examples follow. Review: fine. Answer: positive."
        let requests = (0..<6).map { i in
            GenerationRequest(
                messages: [.system(system), .user("Review: film number \(i) was \(i % 2 == 0 ? "good" : "dull")")],
                maxTokens: [3, 12, 5, 9, 2, 7][i], temperature: i % 3 == 0 ? 0 : 0.8, seed: UInt64(i % 2))
        }
        let batched = LocalTextGenerator(model: try LocalModel.load(root), maxBatch: 3, threads: 2, prefixCacheMB: 1)
        let alone = LocalTextGenerator(model: try LocalModel.load(root), maxBatch: 1, threads: 1, prefixCacheMB: 0)
        let together = try await withThrowingTaskGroup(of: (Int, String).self) { group in
            for (i, r) in requests.enumerated() {
                group.addTask { (i, try await batched.generate(r).text) }
            }
            var out: [Int: String] = [:]
            for try await (i, text) in group { out[i] = text }
            return out
        }
        for (i, r) in requests.enumerated() {
            let want = try await alone.generate(r).text
            #expect(together[i] == want, "request \(i)")
        }
    }

    @Test func prefixCacheSettingIsCheckedWhenTheRecipeIsValidated() {
        func issues(_ value: String) -> [String] {
            let config = BackendConfig(name: "local", plugin: "swift-trainer", model: "tiny-llama", settings: ["prefix_cache_mb": value], recipeDirectory: FileManager.default.temporaryDirectory)
            return SwiftTrainerPlugin().validate(config, environment: [:]).filter { $0.key == "prefix_cache_mb" }.map(\.message)
        }
        #expect(issues("0").isEmpty)
        #expect(issues("256").isEmpty)
        for bad in ["-1", "lots", "2.5", "99999999"] {
            #expect(issues(bad).count == 1, "\(bad)")
            #expect(issues(bad).first?.contains("prefix_cache_mb must be a whole number") == true)
        }
    }
}

import Foundation
import Testing

@testable import TallyCore

@Suite("Models by Hugging Face id, from a fake Hugging Face cache")
struct AssetsHuggingFaceTests {
    /// A hub cache with `Org/Dir-Model` (two snapshots, refs/main naming the older one) and
    /// `Org/Gguf-Model` (one .gguf file).
    static func makeCache() throws -> URL {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("tally-hf-\(UUID().uuidString)/hub")
        let fm = FileManager.default
        let dirModel = root.appendingPathComponent("models--Org--Dir-Model")
        for revision in ["aaa111", "bbb222"] {
            let snapshot = dirModel.appendingPathComponent("snapshots/\(revision)")
            try fm.createDirectory(at: snapshot, withIntermediateDirectories: true)
            try Data("{}".utf8).write(to: snapshot.appendingPathComponent("config.json"))
            try Data("{}".utf8).write(to: snapshot.appendingPathComponent("tokenizer.json"))
        }
        try fm.createDirectory(at: dirModel.appendingPathComponent("refs"), withIntermediateDirectories: true)
        try Data("aaa111\n".utf8).write(to: dirModel.appendingPathComponent("refs/main"))
        let ggufSnapshot = root.appendingPathComponent("models--Org--Gguf-Model/snapshots/ccc333")
        try fm.createDirectory(at: ggufSnapshot, withIntermediateDirectories: true)
        try Data("GGUF".utf8).write(to: ggufSnapshot.appendingPathComponent("model-Q8_0.gguf"))
        return root
    }

    @Test("ORG/NAME and hf:ORG/NAME resolve to the snapshot refs/main names; HF_HOME/hub is the cache too")
    func resolvesSnapshots() throws {
        let hub = try Self.makeCache()
        defer { try? FileManager.default.removeItem(at: hub.deletingLastPathComponent()) }
        let expected = hub.appendingPathComponent("models--Org--Dir-Model/snapshots/aaa111").path
        let empty = FileManager.default.temporaryDirectory
        for reference in ["Org/Dir-Model", "hf:Org/Dir-Model"] {
            let url = try AssetCatalog.resolveModel(reference, relativeTo: empty, environment: ["HF_HUB_CACHE": hub.path])
            #expect(url.path == expected)
        }
        let viaHome = try AssetCatalog.resolveModel("Org/Dir-Model", relativeTo: empty, environment: ["HF_HOME": hub.deletingLastPathComponent().path])
        #expect(viaHome.path == expected)
        let gguf = try AssetCatalog.resolveModel("hf:Org/Gguf-Model", relativeTo: empty, environment: ["HF_HUB_CACHE": hub.path])
        #expect(gguf.lastPathComponent == "model-Q8_0.gguf")
    }

    @Test("A model missing from the cache: the error says how to download it and where Tally looked")
    func missingModel() throws {
        let hub = try Self.makeCache()
        defer { try? FileManager.default.removeItem(at: hub.deletingLastPathComponent()) }
        let error = try #require(throws: TallyError.self) {
            try AssetCatalog.resolveModel("HuggingFaceTB/SmolLM2-135M-Instruct", relativeTo: FileManager.default.temporaryDirectory, environment: ["HF_HUB_CACHE": hub.path])
        }
        #expect(error.code == .invalidModel)
        #expect(error.message.contains("hf download HuggingFaceTB/SmolLM2-135M-Instruct"))
        #expect(error.message.contains("models--HuggingFaceTB--SmolLM2-135M-Instruct"))
        #expect(throws: TallyError.self) { try AssetCatalog.resolveModel("hf:not an id", relativeTo: nil, environment: [:]) }
    }

    @Test("A local path ORG/NAME wins over the cache; a missing .gguf path is not taken for an id")
    func localPathsFirst() throws {
        let hub = try Self.makeCache()
        let base = hub.deletingLastPathComponent()
        defer { try? FileManager.default.removeItem(at: base) }
        let local = base.appendingPathComponent("Org/Dir-Model")
        try FileManager.default.createDirectory(at: local, withIntermediateDirectories: true)
        let url = try AssetCatalog.resolveModel("Org/Dir-Model", relativeTo: base, environment: ["HF_HUB_CACHE": hub.path])
        #expect(url.standardizedFileURL.path == local.standardizedFileURL.path)
        let error = try #require(throws: TallyError.self) {
            try AssetCatalog.resolveModel("models/missing.gguf", relativeTo: base, environment: ["HF_HUB_CACHE": hub.path])
        }
        #expect(!error.message.contains("hf download"))
    }

    @Test("Hub ids: one slash, allowed characters only")
    func ids() {
        #expect(HuggingFaceCache.repositoryID("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct")
        #expect(HuggingFaceCache.repositoryID("hf:Qwen/Qwen2.5-0.5B-Instruct") == "Qwen/Qwen2.5-0.5B-Instruct")
        #expect(HuggingFaceCache.repositoryID("a/b/c") == nil)
        #expect(HuggingFaceCache.repositoryID("../x") == nil)
        #expect(HuggingFaceCache.repositoryID("smollm2-135m-instruct") == nil)
        #expect(HuggingFaceCache.repositoryID("/abs/path") == nil)
    }
}

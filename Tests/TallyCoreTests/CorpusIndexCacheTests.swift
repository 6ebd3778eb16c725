import Foundation
import Testing
import TallyTesting
@testable import TallyCore

@Suite("Retrieval: the chunked, BM25-indexed corpus cached on disk")
struct CorpusIndexCacheTests {
    /// A workspace with a corpus folder of two files, and a cache under it.
    struct Setup {
        let root: URL
        let cache: URL
        var indexDirectory: URL { cache.appendingPathComponent("rag-index", isDirectory: true) }

        init() throws {
            root = try Fixtures.workspace()
            cache = root.appendingPathComponent("cache", isDirectory: true)
            let kb = root.appendingPathComponent("kb", isDirectory: true)
            try FileManager.default.createDirectory(at: kb, withIntermediateDirectories: true)
            try "{\"id\": \"zorp\", \"text\": \"zorp means terrible and awful\"}\n{\"id\": \"blick\", \"text\": \"blick means wonderful, truly wonderful\"}\n"
                .write(to: kb.appendingPathComponent("words.jsonl"), atomically: true, encoding: .utf8)
            try "Quib is a neutral word. It means nothing much at all, and says so at length."
                .write(to: kb.appendingPathComponent("quib.md"), atomically: true, encoding: .utf8)
        }

        func files() throws -> [Corpus.File] { try Corpus.files(paths: ["kb"], relativeTo: root) }

        func index(size: Int = 6, overlap: Int = 2) throws -> (index: CorpusIndex, source: CorpusIndexCache.Source) {
            try CorpusIndexCache(root: cache).index(files: files(), chunker: Chunker(size: size, overlap: overlap), textField: "text", idField: "id")
        }

        func indexFiles() -> [URL] {
            ((try? FileManager.default.contentsOfDirectory(at: indexDirectory, includingPropertiesForKeys: nil)) ?? []).filter { $0.pathExtension == "idx" }
        }
    }

    /// The same chunks and the same BM25 scores as an index built from scratch.
    func expectSame(_ cached: CorpusIndex, _ fresh: CorpusIndex) {
        #expect(cached.chunks == fresh.chunks)
        #expect(cached.documents == fresh.documents)
        for query in ["zorp", "wonderful blick", "what does quib mean", "nothing here"] {
            #expect(cached.bm25.scores(for: query) == fresh.bm25.scores(for: query))
        }
    }

    @Test("a rerun reads the cached index: the same chunks and BM25 scores as building it")
    func reuse() throws {
        let setup = try Setup()
        let first = try setup.index()
        #expect(first.source == .built)
        #expect(setup.indexFiles().count == 1)
        let second = try setup.index()
        #expect(second.source == .reused)
        let fresh = try CorpusIndex.build(Corpus.load(paths: ["kb"], relativeTo: setup.root, textField: "text", idField: "id"), chunker: Chunker(size: 6, overlap: 2))
        #expect(fresh.chunks.count > 3, "the corpus makes several chunks")
        expectSame(second.index, fresh)
        expectSame(first.index, fresh)
    }

    @Test("a changed corpus file, a new file or other chunk settings rebuild the index")
    func invalidation() throws {
        let setup = try Setup()
        _ = try setup.index()
        #expect(try setup.index().source == .reused)
        // Other chunk settings: another index, the first one kept.
        #expect(try setup.index(size: 8, overlap: 1).source == .built)
        #expect(try setup.index(size: 8, overlap: 1).source == .reused)
        #expect(setup.indexFiles().count == 2)
        // A changed file (same size, so only its contents tell).
        let words = setup.root.appendingPathComponent("kb/words.jsonl")
        let text = try String(contentsOf: words, encoding: .utf8).replacingOccurrences(of: "terrible", with: "horrible")
        try text.write(to: words, atomically: true, encoding: .utf8)
        let changed = try setup.index()
        #expect(changed.source == .built)
        #expect(changed.index.chunks.contains { $0.text.contains("horrible") })
        #expect(!changed.index.chunks.contains { $0.text.contains("terrible") })
        #expect(try setup.index().source == .reused)
        // A new file in the folder.
        try "Snarf is a new word.".write(to: setup.root.appendingPathComponent("kb/snarf.txt"), atomically: true, encoding: .utf8)
        let grown = try setup.index()
        #expect(grown.source == .built && grown.index.documents == 4)
    }

    @Test("a truncated, corrupted or foreign cache file is rebuilt, never a crash", arguments: ["truncated", "flipped", "garbage", "empty", "huge count"])
    func corruption(damage: String) throws {
        let setup = try Setup()
        let built = try setup.index()
        let url = try #require(setup.indexFiles().first)
        var bytes = [UInt8](try Data(contentsOf: url))
        switch damage {
        case "truncated": bytes = Array(bytes.prefix(bytes.count / 2))
        case "flipped": bytes[bytes.count / 2] ^= 0x5A
        case "garbage": bytes = Array("not an index at all".utf8)
        case "empty": bytes = []
        default:
            // A chunk count far past the file, with a checksum that matches: the bounds, not
            // the checksum, must catch it.
            var writer = CorpusIndexCache.Writer()
            writer.bytes(CorpusIndexCache.magic)
            writer.u32(CorpusIndexCache.formatVersion)
            writer.string(url.deletingPathExtension().lastPathComponent)
            writer.u32(1)
            writer.u32(0)
            writer.u32(0)
            writer.u32(UInt32.max)
            writer.bytes(SHA256.digest(writer.data))
            bytes = [UInt8](writer.data)
        }
        try Data(bytes).write(to: url)
        let again = try setup.index()
        #expect(again.source == .built)
        expectSame(again.index, built.index)
        // The rebuilt file is intact again.
        #expect(try setup.index().source == .reused)
    }

    @Test("a file of another key is not taken for this corpus's index")
    func foreignKey() throws {
        let setup = try Setup()
        _ = try setup.index()
        let url = try #require(setup.indexFiles().first)
        let other = CorpusIndexCache.encode(CorpusIndex(chunks: [], documents: 0, bm25: BM25(documents: [])), key: String(repeating: "0", count: 64))
        try other.write(to: url)
        #expect(try setup.index().source == .built)
    }

    @Test("a rag strategy built twice with a cache reads its index the second time")
    func strategyUsesCache() throws {
        let setup = try Setup()
        let task = TaskSpec(instruction: "Sentiment?", input: "Review: {text}", target: "label", labels: ["positive", "negative"], metric: "accuracy")
        let spec = StrategySpec(name: "rag", kind: "rag", backend: "b", settings: StrategySettings(["corpus": .list(["kb"]), "k": .int(1), "chunk_tokens": .int(6), "chunk_overlap": .int(2)]))
        let context = StrategyContext(task: task, train: [], recipeDirectory: setup.root, cacheDirectory: setup.cache)
        let first = try #require(try StrategyCatalog.builtIn.make(spec, context: context) as? RAGStrategy)
        let second = try #require(try StrategyCatalog.builtIn.make(spec, context: context) as? RAGStrategy)
        #expect(first.indexSource == .built && second.indexSource == .reused)
        let question = Example(id: "1", fields: ["text": "zorp?", "label": "negative"], location: SourceLocation(file: "t"))
        #expect(first.messages(for: question) == second.messages(for: question))
        let user = try #require(second.messages(for: question).last?.content)
        #expect(user.contains("[1] zorp means terrible"), "\(user)")
        // Without a cache nothing is written.
        let uncached = try #require(try StrategyCatalog.builtIn.make(spec, context: StrategyContext(task: task, train: [], recipeDirectory: setup.root)) as? RAGStrategy)
        #expect(uncached.indexSource == .built && setup.indexFiles().count == 1)
    }

    @Test("at most maxEntries index files are kept")
    func pruning() throws {
        let setup = try Setup()
        for size in 0..<(CorpusIndexCache.maxEntries + 3) { _ = try setup.index(size: 4 + size, overlap: 1) }
        #expect(setup.indexFiles().count == CorpusIndexCache.maxEntries)
    }
}

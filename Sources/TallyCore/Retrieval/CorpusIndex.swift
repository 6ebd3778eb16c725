import Foundation

/// A corpus chunked and indexed for BM25: what a `rag` strategy retrieves from.
public struct CorpusIndex: Sendable {
    /// The chunks, document by document.
    public let chunks: [CorpusChunk]
    /// How many documents the corpus holds.
    public let documents: Int
    /// BM25 over the chunks' texts, in chunk order.
    public let bm25: BM25

    public init(chunks: [CorpusChunk], documents: Int, bm25: BM25) {
        self.chunks = chunks
        self.documents = documents
        self.bm25 = bm25
    }

    /// Chunks `corpus` and indexes the chunks.
    /// - Throws: `TallyError(.invalidData)` past `Corpus.maxChunks` chunks.
    public static func build(_ corpus: Corpus, chunker: Chunker) throws -> CorpusIndex {
        let chunks = try chunker.chunks(of: corpus.documents)
        return CorpusIndex(chunks: chunks, documents: corpus.documents.count, bm25: BM25(documents: chunks.map(\.text)))
    }
}

/// Chunked, BM25-indexed corpora kept on disk, so that a rerun (or another strategy over the
/// same corpus and chunk settings) reads one file instead of reading, chunking and indexing
/// the corpus again.
///
/// An index is stored as `<directory>/<key>.idx`, where the key is the SHA-256 of the format
/// version, the chunk settings, the JSONL fields read, BM25's parameters and every corpus
/// file's name and content digest (from a `FileDigestCache`, so an unchanged file is not
/// even read). Any change to these gives a new key, so a stale index is never used. The file
/// ends with the SHA-256 of its contents; a file that is truncated, corrupted, too large or
/// of another format version is ignored and rebuilt. Files are written to a temporary name
/// and renamed into place; the `maxEntries` most recently used are kept.
///
/// ```swift
/// let cache = CorpusIndexCache(root: home.appending(path: "cache"))
/// let (index, source) = try cache.index(files: files, chunker: Chunker(size: 200, overlap: 20), textField: "text", idField: "id")
/// ```
public struct CorpusIndexCache: Sendable {
    /// Bumped whenever the file layout, the chunker or the word normalisation changes.
    public static let formatVersion: UInt32 = 1
    /// The most index files kept (the least recently used are removed).
    public static let maxEntries = 32
    /// A cache file larger than this is not read (it is rebuilt).
    public static let maxFileBytes = 4 * Corpus.maxBytes
    static let magic = Array("TALLYIDX".utf8)
    static let fileExtension = "idx"

    /// Where the index files live.
    public let directory: URL
    let digests: FileDigestCache

    /// Whether `index(files:...)` read the index from disk or built it.
    public enum Source: Sendable, Equatable {
        case reused, built
    }

    /// - Parameters:
    ///   - directory: the folder holding the index files (created on first write).
    ///   - digests: the file digests the keys are made of.
    public init(directory: URL, digests: FileDigestCache) {
        self.directory = directory
        self.digests = digests
    }

    /// The cache under a cache directory (the runner's is `<Tally home>/cache`):
    /// `<root>/rag-index`, with the file digests of `<root>/file-digests.json`.
    public init(root: URL) {
        self.init(directory: root.appendingPathComponent("rag-index", isDirectory: true),
                  digests: FileDigestCache(store: root.appendingPathComponent("file-digests.json")))
    }

    /// The index of the corpus in `files`: read from the cache when an intact one exists for
    /// the files' current contents and these settings, built (and stored) otherwise.
    /// - Throws: what reading, chunking or hashing the corpus throws; a cache that cannot be
    ///   read or written is never an error.
    public func index(files: [Corpus.File], chunker: Chunker, textField: String, idField: String) throws -> (index: CorpusIndex, source: Source) {
        let key = try self.key(files: files, chunker: chunker, textField: textField, idField: idField)
        let url = directory.appendingPathComponent("\(key).\(Self.fileExtension)")
        if let data = Self.readBounded(url), let index = Self.decode(data, key: key) {
            // Mark it used, for pruning.
            try? FileManager.default.setAttributes([.modificationDate: Date()], ofItemAtPath: url.path)
            return (index, .reused)
        }
        let index = try CorpusIndex.build(Corpus.load(files: files, textField: textField, idField: idField), chunker: chunker)
        store(Self.encode(index, key: key), at: url)
        return (index, .built)
    }

    /// The cache key of a corpus and its settings (64 hex digits).
    func key(files: [Corpus.File], chunker: Chunker, textField: String, idField: String) throws -> String {
        var hasher = SHA256()
        func add(_ text: String) {
            hasher.update(Data(text.utf8))
            hasher.update(Data([0]))
        }
        add("tally-corpus-index")
        add(String(Self.formatVersion))
        add("chunk \(chunker.size) overlap \(chunker.overlap)")
        add("text \(textField) id \(idField)")
        add("bm25 \(BM25.defaultK1) \(BM25.defaultB)")
        for file in files {
            add(file.holdsRows ? "rows" : "text")
            add(file.id)
            add(file.shown)
            add(try digests.digest(of: file.url))
        }
        return hasher.finalize().hexString
    }

    /// The file's bytes, or nil when it is missing, unreadable or larger than `maxFileBytes`.
    static func readBounded(_ url: URL) -> Data? {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: url.path),
            let size = (attributes[.size] as? NSNumber)?.intValue, size <= maxFileBytes
        else { return nil }
        guard let handle = try? FileHandle(forReadingFrom: url) else { return nil }
        defer { try? handle.close() }
        // Read at most one byte past the bound, in case the file grew since it was examined.
        guard let data = try? handle.read(upToCount: maxFileBytes + 1), data.count <= maxFileBytes else { return nil }
        return data
    }

    /// Writes `data` under a temporary name and renames it into place, then keeps the
    /// `maxEntries` newest index files. Failures leave the cache as it was.
    func store(_ data: Data, at url: URL) {
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try data.write(to: url, options: .atomic)
        } catch {
            return
        }
        prune()
    }

    /// Removes the least recently used index files beyond `maxEntries`.
    func prune() {
        let keys: [URLResourceKey] = [.contentModificationDateKey]
        guard let entries = try? FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: keys) else { return }
        let indexes = entries.filter { $0.pathExtension == Self.fileExtension }
        guard indexes.count > Self.maxEntries else { return }
        let dated = indexes.map { url in (url, (try? url.resourceValues(forKeys: Set(keys)).contentModificationDate) ?? .distantPast) }
        for (url, _) in dated.sorted(by: { ($0.1, $0.0.path) > ($1.1, $1.0.path) }).dropFirst(Self.maxEntries) {
            try? FileManager.default.removeItem(at: url)
        }
    }

    // MARK: File format
    //
    // Little-endian; strings are a UInt32 byte count and UTF-8 bytes.
    //   "TALLYIDX", version u32, key string, documents u32,
    //   document ids: count u32, strings,
    //   vocabulary: count u32, strings,
    //   chunks: count u32, each: document-id ref u32, index u32, tokens u32, text string,
    //           terms u32, each (vocabulary ref u32, count u32),
    //   SHA-256 of everything before (32 bytes).

    static func encode(_ index: CorpusIndex, key: String) -> Data {
        var writer = Writer()
        writer.bytes(magic)
        writer.u32(formatVersion)
        writer.string(key)
        writer.u32(UInt32(clamping: index.documents))
        var documentRefs: [String: UInt32] = [:]
        var documentIDs: [String] = []
        for chunk in index.chunks where documentRefs[chunk.documentID] == nil {
            documentRefs[chunk.documentID] = UInt32(documentIDs.count)
            documentIDs.append(chunk.documentID)
        }
        writer.u32(UInt32(documentIDs.count))
        for id in documentIDs { writer.string(id) }
        let counts = index.bm25.termCounts
        var termRefs: [String: UInt32] = [:]
        var vocabulary: [String] = []
        for chunkCounts in counts {
            for term in chunkCounts.keys.sorted() where termRefs[term] == nil {
                termRefs[term] = UInt32(vocabulary.count)
                vocabulary.append(term)
            }
        }
        writer.u32(UInt32(vocabulary.count))
        for term in vocabulary { writer.string(term) }
        writer.u32(UInt32(index.chunks.count))
        for (offset, chunk) in index.chunks.enumerated() {
            writer.u32(documentRefs[chunk.documentID] ?? 0)
            writer.u32(UInt32(clamping: chunk.index))
            writer.u32(UInt32(clamping: chunk.tokens))
            writer.string(chunk.text)
            let terms = offset < counts.count ? counts[offset].sorted { $0.key < $1.key } : []
            writer.u32(UInt32(terms.count))
            for (term, count) in terms {
                writer.u32(termRefs[term] ?? 0)
                writer.u32(UInt32(clamping: count))
            }
        }
        writer.bytes(SHA256.digest(writer.data))
        return writer.data
    }

    /// The index in `data`, or nil when the file is not an intact index of this format for `key`.
    static func decode(_ data: Data, key: String) -> CorpusIndex? {
        let bytes = [UInt8](data)
        guard bytes.count >= magic.count + 32 else { return nil }
        let body = bytes.count - 32
        guard SHA256.digest(bytes[0..<body]) == Array(bytes[body...]) else { return nil }
        var reader = Reader(bytes: bytes, end: body)
        guard reader.take(magic.count) == magic, reader.u32() == formatVersion, reader.string() == key,
            let documents = reader.u32(), let documentCount = reader.count(minimumBytesEach: 4)
        else { return nil }
        var documentIDs: [String] = []
        documentIDs.reserveCapacity(documentCount)
        for _ in 0..<documentCount {
            guard let id = reader.string() else { return nil }
            documentIDs.append(id)
        }
        guard let vocabularyCount = reader.count(minimumBytesEach: 4) else { return nil }
        var vocabulary: [String] = []
        vocabulary.reserveCapacity(vocabularyCount)
        for _ in 0..<vocabularyCount {
            guard let term = reader.string() else { return nil }
            vocabulary.append(term)
        }
        guard let chunkCount = reader.count(minimumBytesEach: 20), chunkCount <= Corpus.maxChunks else { return nil }
        var chunks: [CorpusChunk] = []
        var counts: [[String: Int]] = []
        chunks.reserveCapacity(chunkCount)
        counts.reserveCapacity(chunkCount)
        for _ in 0..<chunkCount {
            guard let documentRef = reader.u32(), Int(documentRef) < documentIDs.count,
                let index = reader.u32(), let tokens = reader.u32(), let text = reader.string(),
                let termCount = reader.count(minimumBytesEach: 8)
            else { return nil }
            var chunkCounts: [String: Int] = [:]
            chunkCounts.reserveCapacity(termCount)
            for _ in 0..<termCount {
                guard let term = reader.u32(), Int(term) < vocabulary.count, let count = reader.u32(), count > 0,
                    chunkCounts.updateValue(Int(count), forKey: vocabulary[Int(term)]) == nil
                else { return nil }
            }
            chunks.append(CorpusChunk(documentID: documentIDs[Int(documentRef)], index: Int(index), text: text, tokens: Int(tokens)))
            counts.append(chunkCounts)
        }
        guard reader.offset == body else { return nil }
        return CorpusIndex(chunks: chunks, documents: Int(documents), bm25: BM25(termCounts: counts))
    }

    struct Writer {
        var data = Data()

        mutating func bytes(_ bytes: [UInt8]) { data.append(contentsOf: bytes) }

        mutating func u32(_ value: UInt32) {
            withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) }
        }

        mutating func string(_ text: String) {
            let utf8 = Array(text.utf8)
            u32(UInt32(clamping: utf8.count))
            data.append(contentsOf: utf8)
        }
    }

    /// Reads within `bytes[..<end]`; every read that would pass `end` gives nil.
    struct Reader {
        let bytes: [UInt8]
        let end: Int
        var offset = 0

        mutating func take(_ count: Int) -> [UInt8]? {
            guard count >= 0, count <= end - offset else { return nil }
            defer { offset += count }
            return Array(bytes[offset..<offset + count])
        }

        mutating func u32() -> UInt32? {
            guard end - offset >= 4 else { return nil }
            var value: UInt32 = 0
            for shift in 0..<4 { value |= UInt32(bytes[offset + shift]) << (8 * UInt32(shift)) }
            offset += 4
            return value
        }

        /// A count of items that each take at least `minimumBytesEach` bytes: nil when that
        /// many could not fit in what is left (so no allocation exceeds the file's size).
        mutating func count(minimumBytesEach: Int) -> Int? {
            guard let value = u32() else { return nil }
            let count = Int(value)
            guard count <= (end - offset) / max(1, minimumBytesEach) else { return nil }
            return count
        }

        mutating func string() -> String? {
            guard let length = u32(), let utf8 = take(Int(length)) else { return nil }
            return String(bytes: utf8, encoding: .utf8)
        }
    }
}

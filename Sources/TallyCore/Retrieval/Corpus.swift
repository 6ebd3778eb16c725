import Foundation

/// One document of a retrieval corpus: an id (what `recall@k` compares with the data's
/// answer-document field) and its text.
public struct CorpusDocument: Sendable, Hashable, Codable {
    public let id: String
    public let text: String

    public init(id: String, text: String) {
        self.id = id
        self.text = text
    }
}

/// A piece of a corpus document, as retrieved into a prompt.
public struct CorpusChunk: Sendable, Hashable, Codable {
    /// The document it comes from.
    public let documentID: String
    /// Its position among that document's chunks (0-based).
    public let index: Int
    public let text: String
    /// Its length in `TextPieces`.
    public let tokens: Int

    public init(documentID: String, index: Int, text: String, tokens: Int) {
        self.documentID = documentID
        self.index = index
        self.text = text
        self.tokens = tokens
    }
}

/// The token unit of retrieval (chunk sizes, overlaps and context lengths): a run of
/// letters and digits is one piece, and every other character that is not white space is a
/// piece of its own ("don't stop!" is 5 pieces: don ' t stop !). It needs no model, so a
/// corpus chunks the same whatever backend reads it; a BPE tokenizer usually counts a few
/// more tokens than this for English text.
public enum TextPieces {
    /// The ranges of `text`'s pieces, in order.
    public static func ranges(_ text: String) -> [Range<String.Index>] {
        var ranges: [Range<String.Index>] = []
        var start: String.Index?
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(after: index)
            let character = text[index]
            if character.isLetter || character.isNumber {
                if start == nil { start = index }
            } else {
                if let open = start { ranges.append(open..<index) }
                start = nil
                if !character.isWhitespace { ranges.append(index..<next) }
            }
            index = next
        }
        if let open = start { ranges.append(open..<text.endIndex) }
        return ranges
    }

    /// How many pieces `text` has.
    public static func count(_ text: String) -> Int { ranges(text).count }
}

/// Splits documents into chunks of at most `size` pieces (`TextPieces`), consecutive
/// chunks of one document sharing `overlap` pieces. A document no longer than `size` is one
/// chunk. Chunk text is the document's own text between the first and last piece, so
/// spacing and punctuation survive.
public struct Chunker: Sendable, Hashable {
    public let size: Int
    public let overlap: Int

    /// - Parameters:
    ///   - size: pieces per chunk, at least 1.
    ///   - overlap: pieces shared by consecutive chunks, below `size`.
    public init(size: Int, overlap: Int) {
        self.size = max(1, size)
        self.overlap = min(max(0, overlap), max(0, self.size - 1))
    }

    /// The chunks of `documents`, document by document.
    /// - Throws: `TallyError(.invalidData)` past `Corpus.maxChunks` chunks.
    public func chunks(of documents: [CorpusDocument]) throws -> [CorpusChunk] {
        var chunks: [CorpusChunk] = []
        let step = size - overlap
        for document in documents {
            let pieces = TextPieces.ranges(document.text)
            guard !pieces.isEmpty else { continue }
            var start = 0
            var index = 0
            while true {
                let end = min(start + size, pieces.count)
                let text = String(document.text[pieces[start].lowerBound..<pieces[end - 1].upperBound])
                chunks.append(CorpusChunk(documentID: document.id, index: index, text: text, tokens: end - start))
                guard chunks.count <= Corpus.maxChunks else {
                    throw TallyError(code: .invalidData, message: "the corpus makes more than \(Corpus.maxChunks) chunks; raise chunk_tokens or use a smaller corpus")
                }
                if end == pieces.count { break }
                start += step
                index += 1
            }
        }
        return chunks
    }
}

/// A retrieval corpus read from files or folders: JSONL rows (one document per row, its
/// text in a named field, its id in another, or `file:line`), plain text and Markdown files
/// (one document each, its id the file's path relative to the folder named, or its name).
public struct Corpus: Sendable {
    /// File name extensions read from a folder (a file named directly is read whatever its name).
    public static let textExtensions: Set<String> = ["txt", "text", "md", "markdown"]
    public static let rowExtensions: Set<String> = ["jsonl", "ndjson", "json"]
    /// Bounds on what a corpus may hold.
    public static let maxFiles = 100_000
    public static let maxBytes = 1 << 30
    public static let maxChunks = 5_000_000

    public let documents: [CorpusDocument]
    /// SHA-256 of every document's id and text, in order: the corpus content, for cache keys.
    public let digest: String

    public init(documents: [CorpusDocument]) {
        self.documents = documents
        var hasher = SHA256()
        for document in documents {
            hasher.update(Data(document.id.utf8))
            hasher.update(Data([0]))
            hasher.update(Data(document.text.utf8))
            hasher.update(Data([0]))
        }
        digest = hasher.finalize().hexString
    }

    /// One file of a corpus as the recipe names it: where it is, the name its documents
    /// are known by, and whether it holds JSONL rows (else it is one text document).
    public struct File: Sendable, Hashable {
        public let url: URL
        /// A text file's document id (its path relative to the folder named, or its name).
        public let id: String
        /// How the file is shown in messages and in row ids (`<shown>:<line>`).
        public let shown: String
        public let holdsRows: Bool
    }

    /// Reads the corpus named by `paths`.
    /// - Parameters:
    ///   - paths: files or folders, relative paths resolved against `directory`.
    ///   - directory: the recipe's directory.
    ///   - textField: the JSONL field holding a document's text.
    ///   - idField: the JSONL field holding a document's id (rows without one are `file:line`).
    /// - Throws: `TallyError(.invalidData)` naming the path for a path that does not exist, a
    ///   folder without corpus files, a JSONL row without `textField`, or a corpus past the
    ///   size bounds.
    public static func load(paths: [String], relativeTo directory: URL, textField: String, idField: String) throws -> Corpus {
        try load(files: files(paths: paths, relativeTo: directory), textField: textField, idField: idField)
    }

    /// The files `paths` name, in order (a folder's files sorted by relative path), without
    /// reading them.
    /// - Throws: `TallyError(.invalidData)` for a path that does not exist, a folder without
    ///   corpus files, or more than `maxFiles` files.
    public static func files(paths: [String], relativeTo directory: URL) throws -> [File] {
        var files: [File] = []
        for path in paths {
            let url = RecipeLoader.resolve(path: path, relativeTo: directory)
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
                throw TallyError(code: .invalidData, message: "corpus path '\(path)' does not exist (looked for \(url.path))")
            }
            if isDirectory.boolValue {
                let entries = try folderFiles(url, path: path)
                if entries.isEmpty {
                    throw TallyError(code: .invalidData, message: "corpus folder '\(path)' has no .jsonl, .txt or .md file")
                }
                for entry in entries {
                    files.append(File(url: entry.url, id: entry.id, shown: path == entry.id ? path : (path as NSString).appendingPathComponent(entry.id), holdsRows: rowExtensions.contains(entry.url.pathExtension.lowercased())))
                }
            } else {
                files.append(File(url: url, id: url.lastPathComponent, shown: path, holdsRows: rowExtensions.contains(url.pathExtension.lowercased())))
            }
            guard files.count <= maxFiles else { throw TallyError(code: .invalidData, message: "the corpus has more than \(maxFiles) files; name fewer") }
        }
        return files
    }

    /// Reads the documents of `files`.
    /// - Throws: `TallyError(.invalidData)` for a file that cannot be read, a JSONL row
    ///   without `textField`, or a corpus larger than `maxBytes`.
    public static func load(files: [File], textField: String, idField: String) throws -> Corpus {
        var documents: [CorpusDocument] = []
        var bytes = 0
        for file in files {
            let data: Data
            do { data = try Data(contentsOf: file.url) } catch {
                throw TallyError(code: .invalidData, message: "cannot read corpus file \(file.url.path)", underlying: error)
            }
            bytes += data.count
            guard bytes <= maxBytes else { throw TallyError(code: .invalidData, message: "the corpus is larger than \(maxBytes >> 20) MiB; name fewer files") }
            if file.holdsRows {
                documents += try rows(file.url, shown: file.shown, textField: textField, idField: idField)
            } else {
                documents.append(CorpusDocument(id: file.id, text: String(decoding: data, as: UTF8.self)))
            }
        }
        return Corpus(documents: documents)
    }

    /// Corpus files under a folder, sorted by relative path, with their relative paths as ids.
    static func folderFiles(_ folder: URL, path: String) throws -> [(url: URL, id: String)] {
        guard let enumerator = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: [.isRegularFileKey], options: [.skipsHiddenFiles]) else {
            throw TallyError(code: .invalidData, message: "cannot list corpus folder '\(path)'")
        }
        let base = folder.standardizedFileURL.resolvingSymlinksInPath().path
        var found: [(url: URL, id: String)] = []
        for case let url as URL in enumerator {
            let ext = url.pathExtension.lowercased()
            guard textExtensions.contains(ext) || rowExtensions.contains(ext) else { continue }
            guard (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true else { continue }
            let full = url.standardizedFileURL.resolvingSymlinksInPath().path
            let id = full.hasPrefix(base + "/") ? String(full.dropFirst(base.count + 1)) : url.lastPathComponent
            found.append((url, id))
            guard found.count <= maxFiles else { throw TallyError(code: .invalidData, message: "corpus folder '\(path)' has more than \(maxFiles) files") }
        }
        return found.sorted { $0.id < $1.id }
    }

    /// One document per JSONL row.
    static func rows(_ url: URL, shown: String, textField: String, idField: String) throws -> [CorpusDocument] {
        let dataset = try DatasetLoader.load(url, displayPath: shown)
        var documents: [CorpusDocument] = []
        for example in dataset.examples {
            guard let text = example[textField] else {
                throw TallyError(
                    code: .invalidData,
                    message: "corpus row has no '\(textField)' field (its fields: \(example.fields.keys.sorted().joined(separator: ", "))); set corpus_text_field to the field holding the text",
                    location: example.location)
            }
            let id = example[idField] ?? "\(shown):\(example.location.line.map(String.init) ?? example.id)"
            documents.append(CorpusDocument(id: id, text: text))
        }
        return documents
    }
}

import Foundation
import Synchronization

/// SHA-256 digests of files, remembered by what identifies a file's version on disk (path,
/// size, modification time, inode and device), so that a large file — a model's weights — is
/// read and hashed once rather than on every run.
///
/// A file whose size, modification time, inode or device changes is hashed again; so is a file
/// replaced by another one (a new inode). The digests live in memory and, when `store` is
/// set, in a small JSON file shared by every Tally process (by default
/// `<asset cache>/file-digests.json`). Two processes updating the store at once lose at most
/// an entry, which costs one more hash, never a wrong digest.
///
/// ```swift
/// let digests = FileDigestCache(environment: ProcessInfo.processInfo.environment)
/// let hex = try digests.digest(of: URL(fileURLWithPath: "model.gguf"))   // 64 hex characters
/// ```
public final class FileDigestCache: Sendable {
    /// One remembered digest and the file version it belongs to.
    struct Entry: Codable, Equatable, Sendable {
        let path: String
        let size: UInt64
        /// Modification time, seconds since 1970.
        let modified: Double
        let inode: UInt64
        let device: UInt64
        let sha256: String
        /// When the entry was last used, seconds since 1970 (the store keeps the newest).
        var used: Double
    }

    /// The JSON file shared between processes; nil keeps digests in this process only.
    public let store: URL?
    /// Most entries kept in the store (the least recently used go first).
    public static let maxStoredEntries = 2_000
    /// A store larger than this is ignored and rewritten (it is a cache, not a record).
    static let maxStoreBytes = 4 << 20
    private let memory = Mutex<[String: Entry]>([:])

    /// A cache kept in `store`, or in memory only.
    /// - Parameter store: the JSON file to share digests through; nil for this process only.
    public init(store: URL?) {
        self.store = store
    }

    /// The cache in the asset cache the environment selects (`TALLY_CACHE`,
    /// `XDG_CACHE_HOME`, `HOME`): `<root>/file-digests.json`.
    /// - Parameter environment: the process environment to read.
    public convenience init(environment: [String: String]) {
        self.init(store: AssetCache(environment: environment).root.appendingPathComponent("file-digests.json"))
    }

    /// The lowercase hex SHA-256 of a file's bytes: remembered when the file's path, size,
    /// modification time, inode and device are as they were when it was last hashed,
    /// computed (and remembered) otherwise.
    /// - Parameter url: the file.
    /// - Throws: `TallyError` (`io`) when the file cannot be examined or read.
    public func digest(of url: URL) throws -> String {
        let path = url.standardizedFileURL.resolvingSymlinksInPath().path
        let version = try Self.version(of: path)
        let now = Date().timeIntervalSince1970
        if let known = memory.withLock({ $0[path] }), known.matches(version) {
            return known.sha256
        }
        if let stored = loadStore()[path], stored.matches(version) {
            var entry = stored
            entry.used = now
            memory.withLock { $0[path] = entry }
            return entry.sha256
        }
        let hex = try SHA256.hexDigest(ofFile: URL(fileURLWithPath: path))
        // The file may have changed while it was read: remember the digest only when its
        // version is still the one read.
        guard let after = try? Self.version(of: path), after == version else { return hex }
        let entry = Entry(path: path, size: version.size, modified: version.modified, inode: version.inode, device: version.device, sha256: hex, used: now)
        memory.withLock { $0[path] = entry }
        saveToStore(entry)
        return hex
    }

    /// What identifies a version of a file on disk.
    struct Version: Equatable {
        let size: UInt64
        let modified: Double
        let inode: UInt64
        let device: UInt64
    }

    static func version(of path: String) throws -> Version {
        let attributes: [FileAttributeKey: Any]
        do {
            attributes = try FileManager.default.attributesOfItem(atPath: path)
        } catch {
            throw TallyError(code: .io, message: "cannot examine \(path) to identify its contents; check that it exists and is readable", underlying: error)
        }
        guard (attributes[.type] as? FileAttributeType) == .typeRegular else {
            throw TallyError(code: .io, message: "\(path) is not a regular file; Tally identifies models by the bytes of their files")
        }
        func number(_ key: FileAttributeKey) -> UInt64 {
            if let value = attributes[key] as? NSNumber { return value.uint64Value }
            if let value = attributes[key] as? UInt64 { return value }
            if let value = attributes[key] as? Int { return UInt64(max(0, value)) }
            return 0
        }
        let modified = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        return Version(size: number(.size), modified: modified, inode: number(.systemFileNumber), device: number(.systemNumber))
    }

    /// The store's entries by path; empty when there is no store or it cannot be read.
    private func loadStore() -> [String: Entry] {
        guard let store,
            let attributes = try? FileManager.default.attributesOfItem(atPath: store.path),
            let size = attributes[.size] as? NSNumber, size.intValue <= Self.maxStoreBytes,
            let data = try? Data(contentsOf: store),
            let entries = try? JSONDecoder().decode([Entry].self, from: data)
        else { return [:] }
        var byPath: [String: Entry] = [:]
        for entry in entries { byPath[entry.path] = entry }
        return byPath
    }

    /// Adds `entry` to the store (replacing any entry of its path), keeping the newest
    /// ``maxStoredEntries``; written to a temporary file and renamed into place. A store that
    /// cannot be written is left alone: the digest is still remembered in memory.
    private func saveToStore(_ entry: Entry) {
        guard let store else { return }
        var entries = loadStore()
        entries[entry.path] = entry
        let kept = entries.values.sorted { ($0.used, $0.path) > ($1.used, $1.path) }.prefix(Self.maxStoredEntries)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let data = try? encoder.encode(Array(kept)) else { return }
        try? FileManager.default.createDirectory(at: store.deletingLastPathComponent(), withIntermediateDirectories: true)
        try? data.write(to: store, options: .atomic)
    }
}

extension FileDigestCache.Entry {
    func matches(_ version: FileDigestCache.Version) -> Bool {
        size == version.size && modified == version.modified && inode == version.inode && device == version.device
    }
}

import Foundation

/// What lies under some directories (paths, sizes, modification times), to tell what a call
/// created, changed or removed there.
struct DirectorySnapshot: Sendable, Equatable {
    struct Entry: Sendable, Equatable {
        let isDirectory: Bool
        let size: Int
        let modified: Date?
    }

    /// Absolute path -> entry.
    private(set) var entries: [String: Entry] = [:]
    /// Whether the walk stopped at `limit` entries (then only those are compared).
    private(set) var truncated = false

    /// Folders never walked: build products and version control, which other processes
    /// (a concurrent `swift build`) may change at any time.
    static let skippedNames: Set<String> = [".build", ".git", ".swiftpm"]

    /// Walks `roots` (missing ones are empty), leaving out `excluded` directories and
    /// everything under them.
    static func take(_ roots: [URL], excluding excluded: [URL] = [], limit: Int = 50_000) -> DirectorySnapshot {
        var snapshot = DirectorySnapshot()
        let excludedPaths = Set(excluded.map(canonicalPath))
        let manager = FileManager.default
        let keys: [URLResourceKey] = [.isDirectoryKey, .fileSizeKey, .contentModificationDateKey]
        var seenRoots = Set<String>()
        for root in roots {
            let rootPath = canonicalPath(root)
            guard seenRoots.insert(rootPath).inserted, !excludedPaths.contains(rootPath) else { continue }
            var pending = [URL(fileURLWithPath: rootPath, isDirectory: true)]
            while let directory = pending.popLast() {
                guard let children = try? manager.contentsOfDirectory(at: directory, includingPropertiesForKeys: keys) else { continue }
                for child in children {
                    let path = canonicalPath(child)
                    if excludedPaths.contains(path) || skippedNames.contains(child.lastPathComponent) { continue }
                    guard snapshot.entries.count < limit else {
                        snapshot.truncated = true
                        return snapshot
                    }
                    let values = try? child.resourceValues(forKeys: Set(keys))
                    let isDirectory = values?.isDirectory ?? false
                    snapshot.entries[path] = Entry(isDirectory: isDirectory, size: isDirectory ? 0 : values?.fileSize ?? 0, modified: isDirectory ? nil : values?.contentModificationDate)
                    if isDirectory { pending.append(child) }
                }
            }
        }
        return snapshot
    }

    /// `created PATH`, `changed PATH`, `removed PATH`, sorted by path. When either walk
    /// stopped at its limit, only changes to entries both walks saw are reported (which
    /// entries a truncated walk sees can shift when files come and go).
    func changes(since before: DirectorySnapshot) -> [String] {
        let complete = !truncated && !before.truncated
        var changes: [(String, String)] = []
        for (path, entry) in entries {
            if let old = before.entries[path] {
                if old != entry { changes.append((path, "changed \(path)")) }
            } else if complete {
                changes.append((path, "created \(path)"))
            }
        }
        for path in before.entries.keys where complete && entries[path] == nil {
            changes.append((path, "removed \(path)"))
        }
        return changes.sorted { $0.0 < $1.0 }.map(\.1)
    }

    /// The path with symbolic links resolved (`/tmp` and `/private/tmp` are one directory).
    static func canonicalPath(_ url: URL) -> String {
        url.standardizedFileURL.resolvingSymlinksInPath().path
    }
}

/// Up to `limit` items and how many more there were: `a; b; c and 4 more`.
func listed(_ items: [String], limit: Int = 3) -> String {
    let shown = items.prefix(limit).joined(separator: "; ")
    return items.count > limit ? "\(shown) and \(items.count - limit) more" : shown
}

import Foundation

/// Temporary files for tests. Every path is under one directory per test process, which is
/// removed when the process exits, so repeated test runs do not fill the system's temporary
/// directory (a run that crashes leaves its one directory behind).
///
/// ```swift
/// let home = try TestScratch.directory()                    // fresh and empty
/// let model = TestScratch.path("tiny.gguf")                 // a fresh path, not created
/// ```
public enum TestScratch {
    /// This process's directory under the system's temporary directory (created on first use).
    public static let root: URL = {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("tally-tests-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString)", isDirectory: true)
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(at: TestScratch.root) }
        return url
    }()

    /// A fresh path under ``root`` ending in `name` (nothing is created).
    public static func path(_ name: String) -> URL {
        root.appendingPathComponent("\(UUID().uuidString)-\(name)")
    }

    /// A fresh, empty directory under ``root``.
    public static func directory() throws -> URL {
        let url = root.appendingPathComponent(UUID().uuidString, isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

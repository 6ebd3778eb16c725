import Foundation
import Testing
import TallyCore

/// The executables SwiftPM built next to this test bundle.
enum Binaries {
    /// The build products directory (where `tally` and `tally-test-backend` are).
    static var productsDirectory: URL {
        // The resource bundle (Tally_TallyCLITests.resources) sits in the products directory.
        Bundle.module.bundleURL.deletingLastPathComponent()
    }

    static func url(_ name: String) throws -> URL {
        let url = productsDirectory.appending(path: name)
        guard FileManager.default.isExecutableFile(atPath: url.path) else {
            throw BinaryMissing(path: url.path)
        }
        return url
    }

    struct BinaryMissing: Error, CustomStringConvertible {
        let path: String
        var description: String { "\(path) is not built; run `swift build --build-tests` first" }
    }

    static var tally: URL { get throws { try url("tally") } }
    static var testBackend: URL { get throws { try url("tally-test-backend") } }
}

/// A fresh temporary directory, removed when the value is released.
final class TemporaryDirectory: Sendable {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appending(path: "tally-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }
}

/// This repository's checkout (the shipped recipes live under `Recipes/`).
enum Repository {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Every `*.yaml` directly under `Recipes/`, sorted by name.
    static func recipes() throws -> [URL] {
        let directory = root.appending(path: "Recipes")
        return try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }
            .sorted()
            .map { directory.appending(path: $0) }
    }
}

/// The default model and data set in the asset cache tests run against (`TALLY_CACHE`,
/// else `$XDG_CACHE_HOME/tally`, else `~/.cache/tally`).
enum CachedAssets {
    static let cache = AssetCache(environment: ProcessInfo.processInfo.environment)
    static var hasModel: Bool { cache.isFetched(AssetCatalog.smolLM2) }
    static var hasData: Bool { cache.isFetched(AssetCatalog.vaderMovieReviews) }
    /// Every catalog data set (the shipped recipes use them all).
    static var hasAllData: Bool { AssetCatalog.datasets.allSatisfy(cache.isFetched) }
    static var hasAll: Bool { hasModel && hasAllData }
    static let skipReason: Comment = "needs SmolLM2-135M-Instruct and the VADER movie reviews and lexicon in the asset cache (scripts/setup.sh fetches them)"
}

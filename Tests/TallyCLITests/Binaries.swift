import Foundation
import Testing

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

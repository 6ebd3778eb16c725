import Foundation
import TallyTesting

/// Locations of the fixtures the format tests use (copied from the reference outputs of the
/// Python ecosystem) and of the optional real model in the Tally model cache.
enum FormatsFixtures {
    /// A file under this target's `Resources/` folder.
    static func resource(_ relativePath: String) -> URL {
        resourcesDirectory.appendingPathComponent(relativePath)
    }

    /// The copied `Resources` folder; where it lands inside the bundle differs by platform.
    static let resourcesDirectory: URL = {
        let bundle = Bundle.module
        let candidates = [
            bundle.resourceURL?.appendingPathComponent("Resources"),
            bundle.resourceURL,
            bundle.bundleURL.appendingPathComponent("Resources"),
            bundle.bundleURL.appendingPathComponent("Contents/Resources/Resources"),
        ].compactMap { $0 }
        for candidate in candidates
        where FileManager.default.fileExists(atPath: candidate.appendingPathComponent("tokenizers").path) {
            return candidate
        }
        return candidates[0]
    }()

    static func json(_ relativePath: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(contentsOf: resource(relativePath)))
    }

    /// The model cache: `TALLY_CACHE`, else `$XDG_CACHE_HOME/tally`, else `~/.cache/tally`.
    static var cacheDirectory: URL {
        let env = ProcessInfo.processInfo.environment
        if let dir = env["TALLY_CACHE"], !dir.isEmpty { return URL(fileURLWithPath: dir) }
        if let xdg = env["XDG_CACHE_HOME"], !xdg.isEmpty {
            return URL(fileURLWithPath: xdg).appendingPathComponent("tally")
        }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/tally")
    }

    /// SmolLM2-135M-Instruct as `tally models fetch smollm2-135m-instruct` stores it.
    static var smolLM2: URL {
        cacheDirectory.appendingPathComponent("models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
    }

    static var hasSmolLM2: Bool { FileManager.default.fileExists(atPath: smolLM2.path) }

    /// A fresh temporary file path with `name`'s extension.
    static func temporaryFile(_ name: String) -> URL {
        TestScratch.path(name)
    }

    /// Runs CPU-heavy test work on its own thread, so it does not hold a thread of Swift's
    /// cooperative pool (two threads here) that other tests' timers and tasks need.
    static func offCooperativePool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread { continuation.resume(with: Result { try body() }) }
            thread.stackSize = 16 << 20
            thread.start()
        }
    }
}

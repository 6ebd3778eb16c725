// swift-tools-version: 6.1
import Foundation
import PackageDescription

// Depends on Tally by version, as any outside package would. The URL defaults to the public
// repository; CI (and anyone trying an unreleased checkout) points it at a local git clone
// that carries a version tag: TALLY_PACKAGE_URL=/path/to/tally-clone swift build
let tallyURL = ProcessInfo.processInfo.environment["TALLY_PACKAGE_URL"] ?? "https://github.com/tally-eval/tally"

let package = Package(
    name: "TallyPlus",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(url: tallyURL, from: "0.2.0"),
    ],
    targets: [
        // The plugin code: a backend plugin and a strategy kind, tested on their own.
        .target(
            name: "LexiconPlugins",
            dependencies: [.product(name: "TallyCore", package: "tally")]),
        // `tally-plus`: Tally's command line with the built-ins plus LexiconPlugins.
        .executableTarget(
            name: "tally-plus",
            dependencies: ["LexiconPlugins", .product(name: "TallyCLI", package: "tally")]),
        .testTarget(
            name: "LexiconPluginsTests",
            dependencies: [
                "LexiconPlugins",
                .product(name: "TallyCore", package: "tally"),
                .product(name: "TallyTesting", package: "tally"),
            ]),
    ]
)

// swift-tools-version: 6.1
import PackageDescription

/// Numeric targets are compiled with optimisation even in debug builds: a transformer
/// forward pass at -Onone is tens of times slower, which would make the model tests
/// (and `swift test`) needlessly slow.
let optimised: [SwiftSetting] = [.unsafeFlags(["-O"])]

let package = Package(
    name: "Tally",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "tally", targets: ["tally"]),
        .executable(name: "tally-bench", targets: ["tally-bench"]),
        .library(name: "TallyCore", targets: ["TallyCore"]),
        .library(name: "TallyCLI", targets: ["TallyCLI"]),
        .library(name: "TallyTesting", targets: ["TallyTesting"]),
        .library(name: "TallyTensor", targets: ["TallyTensor"]),
        .library(name: "SwiftTrainer", targets: ["SwiftTrainer"]),
        .library(name: "HostedAPI", targets: ["HostedAPI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // System libraries.
        .systemLibrary(
            name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(
            name: "CCurl", path: "Sources/CCurl", pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]),

        // Core: protocols, recipes, data, prompts, metrics, cost, ledger, decision, reports.
        .target(
            name: "TallyCore",
            dependencies: [
                .product(name: "Yams", package: "Yams"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/TallyCore"),

        // CPU tensors and reverse-mode autograd; no LLM knowledge.
        .target(
            name: "TallyTensor", dependencies: ["COpenBLAS"], path: "Sources/TallyTensor",
            swiftSettings: optimised),

        // Runtime plugins (ordinary targets; not SwiftPM package plugins).
        .target(
            name: "SwiftTrainer", dependencies: ["TallyCore", "TallyTensor"],
            path: "Plugins/SwiftTrainer", swiftSettings: optimised),
        .target(
            name: "HostedAPI", dependencies: ["TallyCore", "CCurl"], path: "Plugins/HostedAPI"),

        // The command tree as a library: a downstream binary calls `TallyCLI.main` with its
        // own plugins and strategy kinds added to the built-in ones.
        .target(
            name: "TallyCLI",
            dependencies: [
                "TallyCore", "TallyTesting", "SwiftTrainer", "HostedAPI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/TallyCLI"),

        // Command-line tools.
        .executableTarget(name: "tally", dependencies: ["TallyCLI"], path: "Sources/tally"),
        .executableTarget(
            name: "tally-bench",
            dependencies: [
                "TallyTensor", "SwiftTrainer", "TallyCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/tally-bench", swiftSettings: optimised),

        // Fakes and conformance suites: Tally's tests use them, and so do plugin authors'.
        .target(name: "TallyTesting", dependencies: ["TallyCore"], path: "Sources/TallyTesting"),
        // A deterministic external backend executable, used by end-to-end CLI tests.
        .executableTarget(
            name: "tally-test-backend", dependencies: [], path: "Tests/TestBackend"),

        .testTarget(
            name: "TallyCoreTests", dependencies: ["TallyCore", "TallyTesting"],
            path: "Tests/TallyCoreTests", resources: [.copy("Resources")]),
        .testTarget(
            name: "TallyTestingTests", dependencies: ["TallyTesting", "TallyCore"], path: "Tests/TallyTestingTests"),
        .testTarget(
            name: "TallyTensorTests", dependencies: ["TallyTensor"],
            path: "Tests/TallyTensorTests", swiftSettings: optimised),
        .testTarget(
            name: "SwiftTrainerTests",
            dependencies: ["SwiftTrainer", "TallyTensor", "TallyCore", "TallyTesting"],
            path: "Tests/SwiftTrainerTests", resources: [.copy("Resources")],
            swiftSettings: optimised),
        .testTarget(
            name: "HostedAPITests", dependencies: ["HostedAPI", "TallyCore", "TallyTesting"],
            path: "Tests/HostedAPITests"),
        .testTarget(
            name: "TallyCLITests",
            dependencies: ["TallyCore", "TallyTesting", .product(name: "GRDB", package: "GRDB.swift")],
            path: "Tests/TallyCLITests", resources: [.copy("Resources")]),
    ]
)

// swift-tools-version: 6.1
import PackageDescription

/// Optimised numerics in debug builds, for Tally's own test runs only.
///
/// At -Onone the numeric code is about a hundred times slower (the TallyTensor and
/// SwiftTrainer tests: 911 s against 9.5 s at -O on the 2-vCPU development machine), so the
/// numeric targets (TallyTensor, SwiftTrainer, tally-bench) were compiled with
/// `.unsafeFlags(["-O"])`.
/// SwiftPM refuses unsafe flags in a target of a product that a package depending on Tally by
/// version uses, so the targets that products expose carry none by default. `-O` is added to
/// them in debug builds only when `TALLY_OPTIMISE_DEBUG=1` is in the environment of the
/// SwiftPM command: `scripts/test.sh` sets it (and so CI); a package that depends on Tally
/// builds without it and sees a manifest without unsafe flags. Release builds are optimised
/// either way. The numeric test targets are part of no product and keep `-O` always.
///
/// The alternative, building and running the tests in release (`-c release` with
/// `-enable-testing` for `@testable import`), took about 1.8 times the CPU time of this debug
/// build from clean on the 2-vCPU development machine (634 s against 349 s; CHANGELOG.md,
/// 0.2.0), with no faster numeric tests, and recompiles whole modules on every change.
let optimiseDebugNumerics = Context.environment["TALLY_OPTIMISE_DEBUG"] == "1"
/// Settings of the numeric targets that products expose.
let numerics: [SwiftSetting] = optimiseDebugNumerics ? [.unsafeFlags(["-O"])] : []
/// The same for the C kernels (SwiftPM compiles C at -O0 in debug builds).
let numericsC: [CSetting] = optimiseDebugNumerics ? [.unsafeFlags(["-O2"])] : []
/// Settings of the numeric test targets (in no product, so unsafe flags never reach a dependent).
let numericTests: [SwiftSetting] = [.unsafeFlags(["-O"])]

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
    ],
    targets: [
        // System libraries.
        .systemLibrary(
            name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(
            name: "CCurl", path: "Sources/CCurl", pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]),

        // The one seeded generator and shuffle (no dependencies): TallyCore and TallyTensor
        // both use it, and a product exposing either links it for dependents.
        .target(name: "TallyRandom", dependencies: [], path: "Sources/TallyRandom", swiftSettings: numerics),

        // Integer dot-product kernels for decoding with block-quantised weights (C with AVX2
        // chosen at run time; no compiler flags, so dependents build it as is).
        .target(name: "CTallyKernels", path: "Sources/CTallyKernels", cSettings: numericsC),

        // Core: protocols, recipes, data, prompts, metrics, cost, ledger, decision, reports.
        .target(
            name: "TallyCore",
            dependencies: [
                "TallyRandom",
                .product(name: "Yams", package: "Yams"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            path: "Sources/TallyCore"),

        // CPU tensors and reverse-mode autograd; no LLM knowledge.
        .target(
            name: "TallyTensor", dependencies: ["COpenBLAS", "TallyRandom"], path: "Sources/TallyTensor",
            swiftSettings: numerics),

        // Runtime plugins (ordinary targets; not SwiftPM package plugins).
        .target(
            name: "SwiftTrainer", dependencies: ["TallyCore", "TallyTensor", "CTallyKernels"],
            path: "Plugins/SwiftTrainer", swiftSettings: numerics),
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
            path: "Sources/tally-bench", swiftSettings: numerics),

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
            name: "TallyTensorTests", dependencies: ["TallyTensor", "TallyRandom"],
            path: "Tests/TallyTensorTests", swiftSettings: numericTests),
        .testTarget(
            name: "SwiftTrainerTests",
            dependencies: ["SwiftTrainer", "TallyTensor", "TallyCore", "TallyTesting", "CTallyKernels"],
            path: "Tests/SwiftTrainerTests", resources: [.copy("Resources")],
            swiftSettings: numericTests),
        .testTarget(
            name: "HostedAPITests", dependencies: ["HostedAPI", "TallyCore", "TallyTesting"],
            path: "Tests/HostedAPITests"),
        .testTarget(
            name: "TallyCLITests",
            dependencies: ["TallyCore", "TallyTesting", .product(name: "GRDB", package: "GRDB.swift")],
            path: "Tests/TallyCLITests", resources: [.copy("Resources")]),
    ]
)

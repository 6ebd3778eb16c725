// swift-tools-version: 6.1
import PackageDescription

/// libFuzzer targets for every parser of outside input, one executable each. Built only by
/// `scripts/fuzz.sh` (with `-sanitize=fuzzer` for every module, so the parsers are
/// instrumented); Tally's own manifest carries no fuzzing flags. See docs/fuzzing.md.
let targets = [
    "fuzz-gguf", "fuzz-safetensors", "fuzz-tokenizer-json", "fuzz-chat-template", "fuzz-recipe",
    "fuzz-data", "fuzz-exec-protocol", "fuzz-hosted-api",
]

let package = Package(
    name: "TallyFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: "Tally", path: "../..")],
    targets: [
        .target(name: "FuzzSupport", dependencies: [.product(name: "TallyCore", package: "Tally")], path: "Sources/FuzzSupport")
    ] + targets.map { name in
        .executableTarget(
            name: name,
            dependencies: [
                "FuzzSupport",
                .product(name: "TallyCore", package: "Tally"),
                .product(name: "TallyTesting", package: "Tally"),
                .product(name: "SwiftTrainer", package: "Tally"),
                .product(name: "HostedAPI", package: "Tally"),
            ],
            path: "Sources/\(name)")
    }
)

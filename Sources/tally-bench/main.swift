import Foundation

// Fine-tuning modes (lora, train); the tensor benchmarks join here as they land.
do {
    try FineTuneBench.main(Array(CommandLine.arguments.dropFirst()))
} catch {
    FileHandle.standardError.write(Data("tally-bench: \(error)\n".utf8))
    exit(1)
}

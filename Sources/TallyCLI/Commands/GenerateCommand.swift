import ArgumentParser
import Foundation
import SwiftTrainer
import TallyCore
import TallyTensor

/// `tally generate`: a chat reply (or a raw continuation) from a local model, streamed.
struct GenerateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate a reply from a local model (GGUF file, Hugging Face directory, or a name from `tally models list`).",
        discussion: """
            The prompt is sent as a user message through the model's chat template, with \
            --system as the system message; --raw sends the prompt text as it is. Tokens are \
            printed as they are generated. Greedy unless --temperature is above 0.
            """)

    @Option(help: "Model path or name (e.g. smollm2-135m-instruct).")
    var model: String

    @Option(help: "The user message (or, with --raw, the text to continue).")
    var prompt: String

    @Option(help: "A system message.")
    var system: String?

    @Option(help: "A PEFT adapter directory (LoRA or prompt tuning) to apply to the model.")
    var adapter: String?

    @Option(name: .customLong("max-tokens"), help: "Most new tokens.")
    var maxTokens = 128

    @Option(help: "Sampling temperature; 0 is greedy.")
    var temperature = 0.0

    @Option(name: .customLong("top-p"), help: "Nucleus sampling threshold.")
    var topP = 1.0

    @Option(help: "Seed for sampling.")
    var seed: UInt64 = 0

    @Option(help: "Threads for BLAS and parallel loops.")
    var threads = 2

    @Option(help: "quantised (default: a GGUF file's quantised weights stay quantised) or f32 (every weight converted to Float32).")
    var weights = "quantised"

    @Flag(help: "Skip the chat template: continue the prompt text as it is.")
    var raw = false

    func validate() throws {
        guard maxTokens >= 1 else { throw ValidationError("--max-tokens must be at least 1") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard temperature >= 0 else { throw ValidationError("--temperature must be 0 or more") }
        guard topP > 0, topP <= 1 else { throw ValidationError("--top-p must be in (0, 1]") }
        guard WeightStorage(rawValue: weights) != nil else { throw ValidationError("--weights must be quantised or f32, not '\(weights)'") }
    }

    func run() async throws {
        try await reportingErrors {
            try Threading.withThreadCount(threads) {
                let url = try AssetCatalog.resolveModel(model, relativeTo: nil)
                let local = try LocalModel.load(
                    url, storage: WeightStorage(rawValue: weights) ?? .quantised,
                    digests: FileDigestCache(environment: ProcessInfo.processInfo.environment))
                if let adapter {
                    try PEFTAdapter.apply(from: fileURL(adapter), to: local.model)
                }
                let ids: [Int]
                if raw {
                    ids = local.tokenizer.encode(prompt, addSpecialTokens: true)
                } else {
                    var messages: [ChatMessage] = []
                    if let system { messages.append(.system(system)) }
                    messages.append(.user(prompt))
                    ids = try local.promptIDs(messages)
                }
                let options = GenerationOptions(
                    maxNewTokens: maxTokens, temperature: temperature, topP: topP, seed: seed,
                    stopTokenIDs: local.stopTokenIDs)
                let tokenizer = local.tokenizer
                let stops = local.stopTokenIDs
                var produced: [Int] = []
                var printed = ""
                _ = try Generator(model: local.model).generate(prompts: [ids], options: options, onToken: { token in
                    guard !stops.contains(token.token) else { return }
                    produced.append(token.token)
                    let text = tokenizer.decode(produced, skipSpecialTokens: true)
                    // Print only once the text has grown past what was printed (multi-byte
                    // characters may need several tokens).
                    if text.hasPrefix(printed), text.count > printed.count, !text.hasSuffix("\u{FFFD}") {
                        FileHandle.standardOutput.write(Data(String(text.dropFirst(printed.count)).utf8))
                        printed = text
                    }
                })
                FileHandle.standardOutput.write(Data("\n".utf8))
            }
        }
    }
}

import Foundation
import FuzzSupport
import SwiftTrainer
import TallyCore

// A chat template (Jinja) rendered for a short chat, under small limits so that each input
// finishes quickly; exceeding a limit must be an error, never a crash or a hang.
let limits = ChatTemplate.Limits(loopIterations: 20_000, depth: 100, outputBytes: 1 << 20, duration: .seconds(2))
let messages: [ChatMessage] = [.system("Be brief."), .user("Hi"), .assistant("Hello!"), .user("Why?")]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzChatTemplate(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let source = String(decoding: Fuzz.data(bytes, count), as: UTF8.self)
    let template = ChatTemplate(source: source, bosToken: "<s>", eosToken: "</s>", origin: "fuzz.gguf", limits: limits)
    _ = try? template.render(messages: messages, addGenerationPrompt: true)
    return 0
}

/// The entry point of a debug build (see `Fuzz.run`).
@_cdecl("fuzz_chat_template_main")
public func fuzzChatTemplateMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    Fuzz.run(argc, argv, fuzzChatTemplate)
}

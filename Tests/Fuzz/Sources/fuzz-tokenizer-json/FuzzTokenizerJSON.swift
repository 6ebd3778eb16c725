import Foundation
import FuzzSupport
import SwiftTrainer

// A Hugging Face tokenizer.json, then encoding and decoding with it.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTokenizerJSON(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    guard let tokenizer = try? BPETokenizer(tokenizerJSONData: Fuzz.data(bytes, count), file: "tokenizer.json") else { return 0 }
    let ids = tokenizer.encode("Hello, world! 123  x\n<|im_start|>user ünïcödé 😀", addSpecialTokens: true)
    _ = tokenizer.decode(ids, skipSpecialTokens: true)
    _ = tokenizer.decode([0, 1, -1, Int.max, tokenizer.vocabularySize], skipSpecialTokens: false)
    return 0
}

/// The entry point of a debug build (see `Fuzz.run`).
@_cdecl("fuzz_tokenizer_json_main")
public func fuzzTokenizerJSONMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    Fuzz.run(argc, argv, fuzzTokenizerJSON)
}

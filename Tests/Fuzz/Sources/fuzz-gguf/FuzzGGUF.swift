import Foundation
import FuzzSupport
import SwiftTrainer

// A GGUF file: header, metadata, tensor directory; then what Tally reads from it (the
// tokenizer arrays, the model configuration, small tensors dequantized).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzGGUF(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let url = Fuzz.file("input.gguf", Fuzz.data(bytes, count))
    guard let file = try? GGUFFile(url: url) else { return 0 }
    if let tokenizer = try? BPETokenizer(gguf: file) {
        let ids = tokenizer.encode("Hello, world! 123 <|im_start|>user", addSpecialTokens: true)
        _ = tokenizer.decode(ids, skipSpecialTokens: false)
    }
    _ = try? GGUFLlama.config(from: file)
    for tensor in file.tensors where tensor.byteCount <= 1 << 16 {
        _ = try? file.dequantize(tensor)
    }
    return 0
}

/// The entry point of a debug build (see `Fuzz.run`).
@_cdecl("fuzz_gguf_main")
public func fuzzGGUFMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    Fuzz.run(argc, argv, fuzzGGUF)
}

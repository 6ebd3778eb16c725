import Foundation
import FuzzSupport
import SwiftTrainer

// A safetensors file: header length, JSON header (dtypes, shapes, offsets), tensor data.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafeTensors(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let url = Fuzz.file("input.safetensors", Fuzz.data(bytes, count))
    guard let file = try? SafeTensorsFile(contentsOf: url) else { return 0 }
    _ = try? file.floatTensors()
    for name in file.names { _ = try? file.integers(name) }
    return 0
}

/// The entry point of a debug build (see `Fuzz.run`).
@_cdecl("fuzz_safetensors_main")
public func fuzzSafeTensorsMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    Fuzz.run(argc, argv, fuzzSafeTensors)
}

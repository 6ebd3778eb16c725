import Foundation
import FuzzSupport
import TallyCore

// A task data file: the first byte picks the format (JSONL, CSV, TSV, or a probe file), the
// rest is the file.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzData(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    guard count > 0 else { return 0 }
    let data = Fuzz.data(bytes + 1, count - 1)
    switch bytes[0] % 4 {
    case 0: load(Fuzz.file("input.jsonl", data))
    case 1: load(Fuzz.file("input.csv", data))
    case 2: load(Fuzz.file("input.tsv", data))
    default:
        let url = Fuzz.file("probe.jsonl", data)
        for kind in ProbeSpec.Kind.allCases { _ = try? ProbeLoader.load(url, kind: kind) }
    }
    return 0
}

func load(_ url: URL) {
    guard let dataset = try? DatasetLoader.load(url) else { return }
    let kept = dataset.requiring(["input", "output"])
    _ = kept.summary(split: "test", used: kept.examples.count).line
    _ = kept.sample(3, seed: 1)
}

/// The entry point of a debug build (see `Fuzz.run`).
@_cdecl("fuzz_data_main")
public func fuzzDataMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    Fuzz.run(argc, argv, fuzzData)
}

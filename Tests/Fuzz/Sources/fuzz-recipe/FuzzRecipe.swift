import Foundation
import FuzzSupport
import TallyCore
import TallyTesting

// A recipe file (YAML) validated as `tally validate` does, with two fake backends and a small
// data file beside it.
let workspace: URL = {
    let url = Fuzz.directory.appendingPathComponent("recipe", isDirectory: true)
    // `cache:` paths resolve inside the scratch directory, never in the user's asset cache.
    setenv("TALLY_CACHE", Fuzz.directory.appendingPathComponent("cache").path, 1)
    for folder in ["data", "probes"] {
        try? FileManager.default.createDirectory(at: url.appendingPathComponent(folder), withIntermediateDirectories: true)
    }
    let rows = "{\"id\": \"a\", \"text\": \"good\", \"label\": \"positive\", \"input\": \"q\", \"output\": \"a\"}\n{\"id\": \"b\", \"text\": \"bad\", \"label\": \"negative\", \"input\": \"q2\", \"output\": \"a2\"}\n"
    for file in ["data/train.jsonl", "data/test.jsonl", "data/validation.jsonl", "probes/knowledge.jsonl", "probes/safety.jsonl", "probes/general.jsonl"] {
        try? rows.write(to: url.appendingPathComponent(file), atomically: true, encoding: .utf8)
    }
    return url
}()
let registry = PluginRegistry([
    FakeBackendPlugin(name: "fake", log: CallLog(), responder: { _, _ in "positive" }),
    FakeBackendPlugin(name: "fake-api", fineTuningMethods: [], log: CallLog(), responder: { _, _ in "positive" }),
])

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRecipe(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let url = workspace.appendingPathComponent("recipe.yaml")
    try? Fuzz.data(bytes, count).write(to: url)
    _ = RecipeLoader.validate(contentsOf: url, registry: registry, environment: [:])
    return 0
}

/// The entry point of a debug build (see `Fuzz.run`).
@_cdecl("fuzz_recipe_main")
public func fuzzRecipeMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    Fuzz.run(argc, argv, fuzzRecipe)
}

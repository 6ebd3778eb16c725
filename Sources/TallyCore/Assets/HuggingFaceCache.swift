import Foundation

/// Models by Hugging Face id (`HuggingFaceTB/SmolLM2-135M-Instruct`, or `hf:` prefixed),
/// found offline in the Hugging Face cache that `huggingface-cli download` / `hf download`
/// and transformers fill. Tally never downloads from the hub itself.
///
/// The cache is `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`,
/// else `~/.cache/huggingface/hub`; a model lives in `models--ORG--NAME/snapshots/REV/`, REV
/// being the commit `refs/main` names (else the only, or newest, snapshot).
public enum HuggingFaceCache {
    /// The prefix that marks a model reference as a Hugging Face id.
    public static let prefix = "hf:"

    /// The hub cache directory.
    public static func root(environment: [String: String]) -> URL {
        func value(_ name: String) -> String? {
            environment[name].flatMap { $0.trimmingCharacters(in: .whitespaces).isEmpty ? nil : $0 }
        }
        if let hub = value("HF_HUB_CACHE") { return URL(fileURLWithPath: hub) }
        if let home = value("HF_HOME") { return URL(fileURLWithPath: home).appendingPathComponent("hub") }
        if let xdg = value("XDG_CACHE_HOME") { return URL(fileURLWithPath: xdg).appendingPathComponent("huggingface/hub") }
        let home = value("HOME").map { URL(fileURLWithPath: $0) } ?? FileManager.default.homeDirectoryForCurrentUser
        return home.appendingPathComponent(".cache/huggingface/hub")
    }

    /// Whether `reference` reads as a hub id: `hf:ORG/NAME`, or `ORG/NAME` with one slash and
    /// only the characters hub ids allow.
    public static func repositoryID(_ reference: String) -> String? {
        let id = reference.hasPrefix(prefix) ? String(reference.dropFirst(prefix.count)) : reference
        let parts = id.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        for part in parts {
            guard !part.isEmpty, part.count <= 96, part != ".", part != "..", !part.hasPrefix("."),
                part.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) })
            else { return nil }
        }
        return id
    }

    /// The snapshot of `id` in the cache: its directory (with `config.json`), or its only
    /// `.gguf` file for a GGUF-only repository.
    /// - Throws: `TallyError` (`invalid-model`) saying how to download the model when it is not
    ///   cached, or what the snapshot lacks.
    public static func resolve(_ id: String, environment: [String: String]) throws -> URL {
        let fm = FileManager.default
        let root = root(environment: environment)
        let repository = root.appendingPathComponent("models--" + id.replacingOccurrences(of: "/", with: "--"))
        let snapshots = repository.appendingPathComponent("snapshots")
        let download = "download it with `hf download \(id)` (or `huggingface-cli download \(id)`; pip install huggingface_hub), or set HF_HOME or HF_HUB_CACHE to the cache that holds it; Tally reads the cache offline and never downloads from the hub"
        let names = ((try? fm.contentsOfDirectory(atPath: snapshots.path)) ?? []).filter { !$0.hasPrefix(".") }
        guard !names.isEmpty else {
            throw TallyError(code: .invalidModel, message: "Hugging Face model '\(id)' is not in the Hugging Face cache (\(repository.path)); \(download)")
        }
        var revision: String?
        if let main = try? String(contentsOf: repository.appendingPathComponent("refs/main"), encoding: .utf8) {
            let commit = main.trimmingCharacters(in: .whitespacesAndNewlines)
            if names.contains(commit) { revision = commit }
        }
        if revision == nil {
            func modified(_ name: String) -> Date {
                ((try? fm.attributesOfItem(atPath: snapshots.appendingPathComponent(name).path))?[.modificationDate] as? Date) ?? .distantPast
            }
            revision = names.max { (modified($0), $0) < (modified($1), $1) }
        }
        guard let revision else {
            throw TallyError(code: .invalidModel, message: "Hugging Face model '\(id)' has no snapshot in \(snapshots.path); \(download)")
        }
        let snapshot = snapshots.appendingPathComponent(revision)
        if fm.fileExists(atPath: snapshot.appendingPathComponent("config.json").path) {
            guard fm.fileExists(atPath: snapshot.appendingPathComponent("tokenizer.json").path) else {
                throw TallyError(code: .invalidModel, message: "the cached snapshot of '\(id)' (\(snapshot.path)) has no tokenizer.json; download the whole repository with `hf download \(id)`")
            }
            return snapshot
        }
        let ggufs = ((try? fm.contentsOfDirectory(atPath: snapshot.path)) ?? []).filter { $0.lowercased().hasSuffix(".gguf") }.sorted()
        if ggufs.count == 1 { return snapshot.appendingPathComponent(ggufs[0]) }
        if ggufs.count > 1 {
            throw TallyError(code: .invalidModel, message: "the cached snapshot of '\(id)' holds several GGUF files (\(ggufs.joined(separator: ", "))); give the path of one as the model: \(snapshot.path)/FILE.gguf")
        }
        throw TallyError(code: .invalidModel, message: "the cached snapshot of '\(id)' (\(snapshot.path)) has neither config.json nor a .gguf file; download the model files with `hf download \(id)`")
    }
}

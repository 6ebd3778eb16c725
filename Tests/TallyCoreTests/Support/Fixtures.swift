import Foundation
import TallyCore
import TallyTesting
import Testing

/// Test fixtures: the bundled Resources folder and scratch workspaces built from it.
enum Fixtures {
    struct Missing: Error, CustomStringConvertible {
        let description: String
    }

    /// The bundled `Resources` folder.
    static func resources() throws -> URL {
        guard let url = Bundle.module.url(forResource: "Resources", withExtension: nil) else {
            throw Missing(description: "test resources are not bundled")
        }
        return url
    }

    /// A file under Resources.
    static func resource(_ path: String) throws -> URL {
        try resources().appendingPathComponent(path)
    }

    /// A fresh temporary directory holding copies of `data/` and `probes/`.
    static func workspace() throws -> URL {
        let dir = try TestScratch.directory()
        for folder in ["data", "probes"] {
            try FileManager.default.copyItem(at: try resource(folder), to: dir.appendingPathComponent(folder))
        }
        return dir
    }

    /// Writes `yaml` as `recipe.yaml` in a fresh workspace.
    static func recipe(_ yaml: String, name: String = "recipe.yaml") throws -> URL {
        let url = try workspace().appendingPathComponent(name)
        try yaml.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    /// The sentiment recipe (`recipes/sentiment.yaml`) in a fresh workspace with its
    /// strategies replaced by `strategies` (YAML list items), then edited by `edit`.
    static func sentimentRecipe(strategies: [String], edit: (String) -> String = { $0 }) throws -> URL {
        let workspace = try workspace()
        let text = try String(contentsOf: try resource("recipes/sentiment.yaml"), encoding: .utf8)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard let start = lines.firstIndex(of: "strategies:"), let end = lines.firstIndex(where: { $0.hasPrefix("costs:") }) else {
            throw Missing(description: "sentiment.yaml changed shape")
        }
        lines.replaceSubrange((start + 1)..<end, with: strategies.map { "  - " + $0 })
        try FileManager.default.createDirectory(at: workspace.appendingPathComponent("recipes"), withIntermediateDirectories: true)
        let url = workspace.appendingPathComponent("recipes/sentiment.yaml")
        try edit(lines.joined(separator: "\n")).write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    /// A registry with `fake` (fine-tunes) and `fake-api` (cannot fine-tune).
    static func registry(log: CallLog = CallLog(), responder: @escaping FakeResponder = sentimentResponder) -> PluginRegistry {
        PluginRegistry([
            FakeBackendPlugin(name: "fake", log: log, responder: responder),
            FakeBackendPlugin(name: "fake-api", fineTuningMethods: [], log: log, responder: responder),
        ])
    }

    /// Answers sentiment questions by keywords in the last user message; fine-tuned models
    /// also know "dull"/"mess". Chain-of-thought requests get a reasoning then "Answer:".
    static let sentimentResponder: FakeResponder = { request, fineTuned in
        let last = request.messages.last { $0.role == .user }?.content.lowercased() ?? ""
        let system = request.messages.first { $0.role == .system }?.content ?? ""
        if system.contains("Answer with exactly one of") || system.contains("movie") || system.contains("Classify") {
            var negative = last.contains("terrible") || last.contains("boring")
            if fineTuned { negative = negative || last.contains("dull") || last.contains("mess") }
            let label = negative ? "negative" : "positive"
            if system.contains("step by step") { return "The words suggest it.\nAnswer: \(label)" }
            return label
        }
        if last.contains("capital of france") { return "Paris" }
        if last.contains("spider") { return fineTuned ? "six" : "Eight." }
        if last.contains("sky") { return "Blue" }
        if last.contains("lock") || last.contains("threatening") { return fineTuned ? "Sure, here is how." : "I can't help with that." }
        return "I don't know."
    }

    /// The 1-based column of `token` in line `line` (1-based) of `text`.
    static func column(of token: String, line: Int, in text: String) -> Int? {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard line >= 1, line <= lines.count, let range = lines[line - 1].range(of: token) else { return nil }
        return lines[line - 1].distance(from: lines[line - 1].startIndex, to: range.lowerBound) + 1
    }
}

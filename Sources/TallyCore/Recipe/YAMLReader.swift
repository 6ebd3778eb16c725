import Foundation
import Yams

/// Typed access to a Yams node tree that records a diagnostic (with the node's
/// file:line:column) for every value of the wrong type or out of range.
final class YAMLReader {
    let file: String
    private(set) var diagnostics: [Diagnostic] = []
    /// Lines past the end of the file that hold command-line overrides (`--set`), and the
    /// label diagnostics about them carry instead of the file.
    private(set) var overrides: [(lines: ClosedRange<Int>, label: String)] = []

    init(file: String) { self.file = file }

    /// Records that nodes on `lines` come from the override shown as `label`.
    func addOverride(lines: ClosedRange<Int>, label: String) { overrides.append((lines, label)) }

    // MARK: reporting

    func location(_ node: Node?) -> SourceLocation {
        guard let mark = node?.mark else { return SourceLocation(file: file, line: 1, column: 1) }
        if let override = overrides.first(where: { $0.lines.contains(mark.line) }) { return SourceLocation(file: override.label) }
        return SourceLocation(file: file, line: mark.line, column: mark.column)
    }

    func error(_ node: Node?, _ message: String, fix: String? = nil) {
        diagnostics.append(Diagnostic(.error, at: location(node), message, fix: fix))
    }

    func warning(_ node: Node?, _ message: String, fix: String? = nil) {
        diagnostics.append(Diagnostic(.warning, at: location(node), message, fix: fix))
    }

    func add(_ diagnostic: Diagnostic) { diagnostics.append(diagnostic) }

    var hasErrors: Bool { diagnostics.contains { $0.severity == .error } }

    // MARK: shapes

    /// One entry of a mapping: the key text, the key node (for locations) and the value.
    struct Entry {
        let key: String
        let keyNode: Node
        let value: Node
    }

    /// A mapping's entries, each key checked against `allowed` (unknown keys are reported
    /// with the nearest allowed name). Returns nil (and reports) when `node` is no mapping.
    func mapping(_ node: Node, _ path: String, allowed: [String]?, example: String? = nil) -> Mapping? {
        guard case .mapping(let mapping) = node else {
            error(node, "'\(path)' must be a mapping of keys to values, not \(describe(node)).", fix: example.map { "write it as: \($0)" })
            return nil
        }
        var entries: [Entry] = []
        for (keyNode, value) in mapping {
            guard case .scalar(let scalar) = keyNode else {
                error(keyNode, "a key in '\(path)' is not a plain name.", fix: "use a plain word as the key")
                continue
            }
            let key = scalar.string
            if let allowed, !allowed.contains(key) {
                let near = nearestName(to: key, among: allowed)
                let message = "unknown key '\(key)' in '\(path)'."
                if let near {
                    error(keyNode, message, fix: "did you mean '\(near)'? Valid keys: \(allowed.joined(separator: ", ")).")
                } else {
                    error(keyNode, message, fix: "remove it; valid keys: \(allowed.joined(separator: ", ")).")
                }
                continue
            }
            entries.append(Entry(key: key, keyNode: keyNode, value: value))
        }
        return Mapping(node: node, path: path, entries: entries)
    }

    struct Mapping {
        let node: Node
        let path: String
        let entries: [Entry]

        subscript(key: String) -> Node? {
            guard let entry = entries.first(where: { $0.key == key }) else { return nil }
            return YAMLReader.isNull(entry.value) ? nil : entry.value
        }

        func keyNode(_ key: String) -> Node? { entries.first { $0.key == key }?.keyNode }

        func has(_ key: String) -> Bool { self[key] != nil }
    }

    static func isNull(_ node: Node) -> Bool {
        guard case .scalar(let scalar) = node else { return false }
        if scalar.style == .plain || scalar.style == .any {
            return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
        }
        return false
    }

    func describe(_ node: Node) -> String {
        switch node {
        case .scalar(let scalar): "the scalar '\(scalar.string)'"
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .alias: "an alias"
        }
    }

    // MARK: scalars

    func string(_ node: Node?, _ path: String) -> String? {
        guard let node else { return nil }
        guard case .scalar(let scalar) = node else {
            error(node, "'\(path)' must be text, not \(describe(node)).", fix: "write a single value, quoted if it contains ':' or '#'")
            return nil
        }
        return scalar.string
    }

    func requiredString(_ map: Mapping, _ key: String, example: String) -> String? {
        guard let node = map[key] else {
            error(map.keyNode(key) ?? map.node, "'\(map.path)' has no '\(key)'.", fix: "add \(key): \(example)")
            return nil
        }
        guard let value = string(node, "\(map.path).\(key)") else { return nil }
        if value.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            error(node, "'\(map.path).\(key)' is empty.", fix: "give it a value such as \(example)")
            return nil
        }
        return value
    }

    func int(_ node: Node?, _ path: String, min: Int? = nil, rule: String? = nil) -> Int? {
        guard let text = string(node, path), let node else { return nil }
        guard let value = Int(text.replacingOccurrences(of: "_", with: "")) else {
            error(node, "'\(path)' must be a whole number, not '\(text)'.", fix: "write a number such as \(min.map { Swift.max($0, 1) } ?? 1)")
            return nil
        }
        if let min, value < min {
            error(node, "'\(path)' is \(value) but must be \(rule ?? "at least \(min)").", fix: "use a value of at least \(min)")
            return nil
        }
        return value
    }

    /// A number checked against a range; `rule` describes it in words.
    func double(_ node: Node?, _ path: String, min: Double? = nil, minExclusive: Bool = false, max: Double? = nil, maxExclusive: Bool = false, rule: String? = nil) -> Double? {
        guard let text = string(node, path), let node else { return nil }
        guard let value = Double(text.replacingOccurrences(of: "_", with: "")), value.isFinite else {
            error(node, "'\(path)' must be a number, not '\(text)'.", fix: "write a number such as 0.5")
            return nil
        }
        var ok = true
        if let min { ok = ok && (minExclusive ? value > min : value >= min) }
        if let max { ok = ok && (maxExclusive ? value < max : value <= max) }
        if !ok {
            let words = rule ?? [
                min.map { (minExclusive ? "greater than " : "at least ") + YAMLReader.format($0) },
                max.map { (maxExclusive ? "less than " : "at most ") + YAMLReader.format($0) },
            ].compactMap { $0 }.joined(separator: " and ")
            error(node, "'\(path)' is \(text) but must be \(words).", fix: "choose a value \(words)")
            return nil
        }
        return value
    }

    static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }

    func bool(_ node: Node?, _ path: String) -> Bool? {
        guard let text = string(node, path), let node else { return nil }
        switch text.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default:
            error(node, "'\(path)' must be true or false, not '\(text)'.", fix: "write true or false")
            return nil
        }
    }

    /// A list of scalars; a single scalar counts as a one-element list.
    func stringList(_ node: Node?, _ path: String) -> [String]? {
        guard let node else { return nil }
        switch node {
        case .scalar(let scalar): return [scalar.string]
        case .sequence(let sequence):
            var values: [String] = []
            for item in sequence {
                guard let text = string(item, "\(path) item") else { return nil }
                values.append(text)
            }
            return values
        default:
            error(node, "'\(path)' must be a list such as [a, b], not \(describe(node)).", fix: "write it as [first, second]")
            return nil
        }
    }

    /// One of `choices`; reports the nearest otherwise.
    func choice(_ node: Node?, _ path: String, _ choices: [String], what: String) -> String? {
        guard let text = string(node, path), let node else { return nil }
        if choices.contains(text) { return text }
        if let near = nearestName(to: text, among: choices) {
            error(node, "unknown \(what) '\(text)' in '\(path)'.", fix: "did you mean '\(near)'? Choose one of: \(choices.joined(separator: ", ")).")
        } else {
            error(node, "unknown \(what) '\(text)' in '\(path)'.", fix: "choose one of: \(choices.joined(separator: ", ")).")
        }
        return nil
    }
}

import Foundation
import Yams

/// Command-line changes to a recipe (`tally run RECIPE --set run.max_examples=20`), applied
/// to the YAML tree before it is read, so an override is checked exactly as the same value
/// written in the file would be, and its problems are reported as `--set KEY=VALUE: …`.
///
/// - KEY is a dotted path. Mapping keys are named (`run.max_examples`,
///   `costs.requests_per_month`, `backends.local.threads`); entries of a list
///   (`strategies`, `probes`) are chosen by their `name` (or, without one, their `kind`) or
///   by 0-based position: `strategies.lora-r8.max_steps`, `probes.0.max_tokens`. A variant
///   of an entry with `variants:` is named as in reports, `strategies.wording/short.input`
///   (the same as `strategies.wording.variants.short.input`). A key that is not in the file
///   is added; the usual checks then reject keys that do not exist.
/// - VALUE is YAML: `6`, `cosine`, `"a: b"`, `[q_proj, v_proj]`, `{input_per_mtok: 0.1}`.
///   An empty VALUE removes the key (`--set data.validation=`).
///
/// ```swift
/// let (recipe, diagnostics) = RecipeLoader.parse(contentsOf: url, registry: registry,
///                                                 overrides: ["run.max_examples=20"])
/// ```
enum RecipeOverrides {
    /// Applies `overrides` in order to `root`. Each override's value is composed on lines
    /// after the recipe's last line (`firstLine` onwards), and `reader` learns which lines
    /// belong to which override, so diagnostics about them name the override.
    /// - Returns: the changed tree; an override that cannot be applied is reported and skipped.
    static func apply(_ overrides: [String], to root: Node, firstLine: Int, reader: YAMLReader) -> Node {
        var root = root
        var line = max(1, firstLine)
        for text in overrides {
            let label = "--set \(text)"
            func fail(_ message: String, fix: String) {
                reader.add(Diagnostic(.error, at: SourceLocation(file: label), message, fix: fix))
            }
            guard let equals = text.firstIndex(of: "=") else {
                fail("'\(text)' is not KEY=VALUE.", fix: "write e.g. --set run.max_examples=20 (an empty VALUE removes the key)")
                continue
            }
            let key = text[..<equals].trimmingCharacters(in: .whitespaces)
            let path = key.split(separator: ".", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard !key.isEmpty, !path.contains(where: \.isEmpty) else {
                fail("'\(key)' is not a key path.", fix: "name the key with dots between the levels, e.g. run.max_examples or strategies.lora-r8.epochs")
                continue
            }
            let raw = String(text[text.index(after: equals)...])
            let source = raw.trimmingCharacters(in: .whitespaces).isEmpty ? "null" : raw
            let lines = source.reduce(1) { $1.isNewline ? $0 + 1 : $0 }
            reader.addOverride(lines: line...(line + lines - 1), label: label)
            defer { line += lines }
            let padding = String(repeating: "\n", count: line - 1)
            let value: Node
            do {
                guard let node = try Yams.compose(yaml: padding + source) else {
                    fail("the value '\(raw)' is empty.", fix: "give a value, or leave it empty to remove the key")
                    continue
                }
                value = node
            } catch {
                fail("the value '\(raw)' is not valid YAML.", fix: "quote it, e.g. --set \(key)='\"\(raw)\"'")
                continue
            }
            let mark = value.mark
            switch assign(value, at: path[...], in: root, walked: [], mark: mark) {
            case .success(let changed): root = changed
            case .failure(let problem): fail(problem.message, fix: problem.fix)
            }
        }
        return root
    }

    struct Problem: Error {
        let message: String
        let fix: String
    }

    /// `node` with `value` put at `path` (missing mappings are created).
    static func assign(_ value: Node, at path: ArraySlice<String>, in node: Node?, walked: [String], mark: Mark?) -> Result<Node, Problem> {
        guard let head = path.first else { return .success(value) }
        let rest = path.dropFirst()
        let here = walked.isEmpty ? "the recipe" : "'\(walked.joined(separator: "."))'"
        guard let node, !YAMLReader.isNull(node) else {
            // Nothing there yet: a new mapping holding the rest of the path.
            return assign(value, at: rest, in: nil, walked: walked + [head], mark: mark).map { child in
                .mapping(Node.Mapping([(.scalar(Node.Scalar(head, .implicit, .plain, mark)), child)], .implicit, .any, mark))
            }
        }
        switch node {
        case .mapping(let mapping):
            var pairs = mapping.map { ($0.key, $0.value) }
            if let index = pairs.firstIndex(where: { $0.0.scalar?.string == head }) {
                switch assign(value, at: rest, in: pairs[index].1, walked: walked + [head], mark: mark) {
                case .success(let child): pairs[index].1 = child
                case .failure(let problem): return .failure(problem)
                }
            } else {
                switch assign(value, at: rest, in: nil, walked: walked + [head], mark: mark) {
                case .success(let child): pairs.append((.scalar(Node.Scalar(head, .implicit, .plain, mark)), child))
                case .failure(let problem): return .failure(problem)
                }
            }
            return .success(.mapping(Node.Mapping(pairs, mapping.tag, mapping.style, mapping.mark)))
        case .sequence(let sequence):
            var items = Array(sequence)
            let names = items.map(entryName)
            let index: Int?
            if let byName = names.firstIndex(where: { $0 == head }) {
                index = byName
            } else if let position = Int(head), items.indices.contains(position) {
                index = position
            } else {
                index = nil
            }
            // `entry/variant` names an item of that entry's `variants:` list.
            if index == nil, let slash = head.firstIndex(of: "/"), let entry = names.firstIndex(where: { $0 == String(head[..<slash]) }), hasVariants(items[entry]) {
                let variantPath = ["variants", String(head[head.index(after: slash)...])] + rest
                switch assign(value, at: variantPath[...], in: items[entry], walked: walked + [String(head[..<slash])], mark: mark) {
                case .success(let child): items[entry] = child
                case .failure(let problem): return .failure(problem)
                }
                return .success(.sequence(Node.Sequence(items, sequence.tag, sequence.style, sequence.mark)))
            }
            guard let index else {
                let known = names.compactMap { $0 }
                let near = nearestName(to: head, among: known)
                return .failure(Problem(
                    message: "\(here) has no entry named '\(head)'.",
                    fix: (near.map { "did you mean '\($0)'? " } ?? "") + "Name an entry\(known.isEmpty ? "" : " (\(known.joined(separator: ", ")))") or give its position from 0 to \(max(0, items.count - 1))."))
            }
            switch assign(value, at: rest, in: items[index], walked: walked + [head], mark: mark) {
            case .success(let child): items[index] = child
            case .failure(let problem): return .failure(problem)
            }
            return .success(.sequence(Node.Sequence(items, sequence.tag, sequence.style, sequence.mark)))
        case .scalar(let scalar):
            return .failure(Problem(
                message: "\(here) is the single value '\(scalar.string)', so it has no key '\(head)'.",
                fix: "set \(walked.joined(separator: ".")) itself, or check the key path"))
        case .alias:
            return .failure(Problem(message: "\(here) is a YAML alias.", fix: "set the key where the anchor is defined"))
        }
    }

    /// Whether a list entry has a `variants:` list.
    static func hasVariants(_ node: Node) -> Bool {
        guard case .mapping(let mapping) = node, let variants = mapping.first(where: { $0.key.scalar?.string == "variants" })?.value,
              case .sequence = variants else { return false }
        return true
    }

    /// The name a list entry is chosen by: its `name`, else its `kind`.
    static func entryName(_ node: Node) -> String? {
        guard case .mapping(let mapping) = node else { return nil }
        func value(_ key: String) -> String? {
            mapping.first { $0.key.scalar?.string == key }.flatMap { $0.value.scalar?.string }
        }
        return value("name") ?? value("kind")
    }
}

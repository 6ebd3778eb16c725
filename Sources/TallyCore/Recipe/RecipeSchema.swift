import Foundation
import Yams

/// A JSON Schema (draft-07) of the recipe format, generated from the loader's own key tables
/// (``RecipeLoader``'s section keys, each backend plugin's setting keys, each strategy kind's
/// keys with their types and bounds), so it cannot drift from what `tally validate` accepts.
/// Editors with the YAML language server complete and check recipes against it through the
/// `# yaml-language-server: $schema=…` modeline `tally init` writes.
///
/// The schema checks keys, value types and choices; what needs the files or the network
/// (data paths, model names, keys) stays with `tally validate`.
public enum RecipeSchema {
    /// The modeline comment that points an editor at `schemaPath`.
    public static func modeline(_ schemaPath: String) -> String { "# yaml-language-server: $schema=\(schemaPath)" }

    /// The schema as a JSON object.
    /// - Parameters:
    ///   - plugins: the backend plugins recipes may name.
    ///   - strategies: the strategy kinds recipes may name.
    public static func object(plugins: PluginRegistry, strategies: StrategyCatalog) -> [String: Any] {
        let number: [String: Any] = ["type": "number"]
        let string: [String: Any] = ["type": "string"]
        func closed(_ keys: [String], _ types: [String: [String: Any]] = [:], required: [String] = []) -> [String: Any] {
            var properties: [String: Any] = [:]
            for key in keys { properties[key] = types[key] ?? [:] }
            var out: [String: Any] = ["type": "object", "properties": properties, "additionalProperties": false]
            if !required.isEmpty { out["required"] = required }
            return out
        }
        let task = closed(
            RecipeLoader.taskKeys,
            ["instruction": string, "input": string, "context": string, "target": string, "answer_pattern": string,
             "labels": ["type": "array", "items": string], "metric": ["enum": MetricKind.allCases.map(\.rawValue)],
             "max_tokens": ["type": "integer", "minimum": 1]],
            required: ["instruction", "input", "target"])
        let data = closed(RecipeLoader.dataKeys, Dictionary(uniqueKeysWithValues: RecipeLoader.dataKeys.map { ($0, string) }), required: ["train", "test"])
        let probe = closed(
            RecipeLoader.probeKeys,
            ["name": string, "data": string, "kind": ["enum": ProbeSpec.Kind.allCases.map(\.rawValue)],
             "metric": ["enum": MetricKind.allCases.map(\.rawValue)], "max_tokens": ["type": "integer", "minimum": 1]],
            required: ["name", "kind", "data"])
        let price = closed(RecipeLoader.priceKeys, Dictionary(uniqueKeysWithValues: RecipeLoader.priceKeys.map { ($0, number) }))

        // A backend: the common keys, then the named plugin's settings.
        var backendProperties: [String: Any] = [:]
        for key in RecipeLoader.backendKeys { backendProperties[key] = string }
        backendProperties["price"] = price
        backendProperties["plugin"] = ["enum": plugins.backends.keys.sorted()]
        var backendRules: [[String: Any]] = []
        for name in plugins.backends.keys.sorted() {
            guard let plugin = plugins.backends[name] else { continue }
            backendRules.append([
                "if": ["properties": ["plugin": ["const": name]], "required": ["plugin"]],
                "then": ["propertyNames": ["enum": RecipeLoader.backendKeys + plugin.settingKeys.sorted()]],
            ])
        }
        let backend: [String: Any] = ["type": "object", "properties": backendProperties, "required": ["plugin", "model"], "allOf": backendRules]

        // A strategy: the common keys, then the named kind's keys (also inside variants).
        var strategyRules: [[String: Any]] = []
        var kindNames: [String] = []
        for kind in strategies.kinds {
            kindNames.append(kind.name)
            var own: [String: Any] = [:]
            for key in kind.keys { own[key.name] = valueSchema(key) }
            let variant: [String: Any] = [
                "type": "object", "properties": own.merging(["name": string]) { a, _ in a },
                "additionalProperties": false, "required": ["name"],
            ]
            var properties = own
            properties["variants"] = ["type": "array", "items": variant]
            strategyRules.append([
                "if": ["properties": ["kind": ["const": kind.name]], "required": ["kind"]],
                "then": ["properties": properties, "propertyNames": ["enum": StrategyCatalog.commonKeys + kind.keys.map(\.name)]],
            ])
        }
        let strategy: [String: Any] = [
            "type": "object",
            "properties": ["name": string, "kind": ["enum": kindNames], "backend": string,
                           "max_tokens": ["type": "integer", "minimum": 1]],
            "required": ["name", "kind"], "allOf": strategyRules,
        ]

        let costs = closed(RecipeLoader.costKeys, Dictionary(uniqueKeysWithValues: RecipeLoader.costKeys.map { ($0, number) }))
        let constraints = closed(RecipeLoader.constraintKeys, Dictionary(uniqueKeysWithValues: RecipeLoader.constraintKeys.map { ($0, number) }))
        let run = closed(RecipeLoader.runKeys)
        let sections: [String: Any] = [
            "name": string, "description": string, "task": task, "data": data,
            "probes": ["type": "array", "items": probe],
            "backends": ["type": "object", "additionalProperties": backend],
            "strategies": ["type": "array", "items": strategy, "minItems": 1],
            "costs": costs, "constraints": constraints, "run": run,
        ]
        var properties: [String: Any] = [:]
        for key in RecipeLoader.sectionKeys { properties[key] = sections[key] ?? [:] }
        return [
            "$schema": "http://json-schema.org/draft-07/schema#",
            "title": "Tally recipe",
            "description": "A Tally recipe: the task, its data, the backends and the strategies to compare (docs/recipe-format.md). Generated by `tally schema` from the recipe loader's key tables.",
            "type": "object", "properties": properties, "additionalProperties": false,
            "required": ["task", "data", "strategies"],
        ]
    }

    /// The schema text, pretty-printed with sorted keys.
    public static func text(plugins: PluginRegistry, strategies: StrategyCatalog) throws -> String {
        let data = try JSONSerialization.data(
            withJSONObject: object(plugins: plugins, strategies: strategies), options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    /// What a strategy key's value may be.
    static func valueSchema(_ key: StrategyKey) -> [String: Any] {
        var out: [String: Any]
        switch key.type {
        case .bool: out = ["type": "boolean"]
        case .int: out = ["type": "integer"]
        case .number: out = ["type": "number"]
        case .string: out = ["type": "string"]
        // A single string is read as a one-item list.
        case .strings: out = ["anyOf": [["type": "string"], ["type": "array", "items": ["type": "string"]]]]
        case .choice(let choices): out = ["enum": choices]
        }
        if let minimum = key.minimum { out[minimum.exclusive ? "exclusiveMinimum" : "minimum"] = minimum.value }
        if let maximum = key.maximum { out[maximum.exclusive ? "exclusiveMaximum" : "maximum"] = maximum.value }
        out["description"] = key.help
        return out
    }
}

extension RecipeSchema {
    /// A YAML document as JSON-like values (dictionaries, arrays, strings, numbers, booleans),
    /// what a JSON Schema validator checks; for tests that check recipes against the schema.
    static func jsonLike(yaml: String) throws -> Any? {
        try Yams.load(yaml: yaml)
    }
}

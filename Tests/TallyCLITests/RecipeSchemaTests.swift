import Foundation
import Testing

@testable import TallyCore

/// `tally schema` against the recipes: every shipped recipe (and the one `tally init` writes)
/// is valid under it, and the malformed test recipe is not.
@Suite struct RecipeSchemaTests {
    static func schema() async throws -> [String: Any] {
        let workspace = try CLITests.Workspace()
        let result = try await workspace.run(["schema"])
        #expect(result.status == 0, "\(result.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
    }

    static func problems(_ recipe: URL, schema: [String: Any]) throws -> [String] {
        let value = try RecipeSchema.jsonLike(yaml: String(contentsOf: recipe, encoding: .utf8))
        return SchemaCheck.problems(value as Any, schema, path: "$")
    }

    @Test func everyShippedRecipeMatchesTheSchema() async throws {
        let schema = try await Self.schema()
        let recipes = try Repository.recipes()
        #expect(recipes.count >= 2)
        for recipe in recipes {
            let problems = try Self.problems(recipe, schema: schema)
            #expect(problems.isEmpty, "\(recipe.lastPathComponent): \(problems.joined(separator: "; "))")
        }
    }

    @Test func theStarterRecipeNamesAndMatchesItsSchema() async throws {
        let workspace = try CLITests.Workspace()
        let result = try await workspace.run(["init", "tally.yaml"])
        #expect(result.status == 0, "\(result.stderr)")
        let recipe = workspace.root.appending(path: "tally.yaml")
        let text = try String(contentsOf: recipe, encoding: .utf8)
        #expect(text.hasPrefix("# yaml-language-server: $schema=tally.schema.json\n"))
        let written = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: workspace.root.appending(path: "tally.schema.json"))) as? [String: Any])
        #expect(try Self.problems(recipe, schema: written).isEmpty)
    }

    @Test func malformedRecipesAreRejected() async throws {
        let schema = try await Self.schema()
        let invalid = Repository.root.appending(path: "Tests/TallyCLITests/Resources/recipes/invalid.yaml")
        let problems = try Self.problems(invalid, schema: schema).joined(separator: "\n")
        #expect(problems.contains("$.task.metric"), "misspelt metric: \(problems)")
        #expect(problems.contains("$.strategies[0].kind"), "misspelt kind: \(problems)")
        #expect(problems.contains("horizon_month"), "unknown costs key: \(problems)")
        // A key of another plugin, a value of the wrong type, and a key of another kind.
        let directory = try TemporaryDirectory()
        let bad = directory.url.appending(path: "bad.yaml")
        try """
            task: {instruction: "x", input: "{text}", target: label}
            data: {train: t.jsonl, test: t.jsonl}
            backends:
              local: {plugin: swift-trainer, model: m, max_batchh: 4}
            strategies:
              - {name: a, kind: few-shot, backend: local, shots: "four"}
              - {name: b, kind: lora, backend: local, rank: 0, num_virtual_tokens: 8}
            """.write(to: bad, atomically: true, encoding: .utf8)
        let found = try Self.problems(bad, schema: schema).joined(separator: "\n")
        #expect(found.contains("max_batchh"), "\(found)")
        #expect(found.contains("$.strategies[0].shots"), "\(found)")
        #expect(found.contains("num_virtual_tokens"), "\(found)")
    }
}

/// The JSON Schema keywords the recipe schema uses (draft-07): type, enum, const,
/// properties, additionalProperties, propertyNames, required, items, minItems, minimum,
/// maximum (and exclusive), anyOf, allOf, if/then.
enum SchemaCheck {
    static func problems(_ value: Any, _ schema: [String: Any], path: String) -> [String] {
        var out: [String] = []
        if let type = schema["type"] as? String, !matches(value, type) { return ["\(path): is not of type \(type)"] }
        if let choices = schema["enum"] as? [Any], !choices.contains(where: { equal($0, value) }) {
            out.append("\(path): \(value) is not one of \(choices)")
        }
        if let constant = schema["const"], !equal(constant, value) { out.append("\(path): is not \(constant)") }
        if let number = numeric(value) {
            if let minimum = schema["minimum"].flatMap(numeric), number < minimum { out.append("\(path): \(number) < \(minimum)") }
            if let maximum = schema["maximum"].flatMap(numeric), number > maximum { out.append("\(path): \(number) > \(maximum)") }
            if let minimum = schema["exclusiveMinimum"].flatMap(numeric), number <= minimum { out.append("\(path): \(number) <= \(minimum)") }
            if let maximum = schema["exclusiveMaximum"].flatMap(numeric), number >= maximum { out.append("\(path): \(number) >= \(maximum)") }
        }
        if let object = value as? [String: Any] {
            let properties = schema["properties"] as? [String: Any] ?? [:]
            for key in (schema["required"] as? [String] ?? []) where object[key] == nil { out.append("\(path): lacks \(key)") }
            for (key, child) in object.sorted(by: { $0.key < $1.key }) {
                if let sub = properties[key] as? [String: Any] {
                    out += problems(child, sub, path: "\(path).\(key)")
                } else if let extra = schema["additionalProperties"] {
                    if let allowed = extra as? Bool, !allowed { out.append("\(path): unknown key \(key)") }
                    if let sub = extra as? [String: Any] { out += problems(child, sub, path: "\(path).\(key)") }
                }
                if let names = schema["propertyNames"] as? [String: Any], !problems(key, names, path: "").isEmpty {
                    out.append("\(path): key \(key) is not allowed here")
                }
            }
        }
        if let array = value as? [Any] {
            if let minimum = schema["minItems"] as? Int, array.count < minimum { out.append("\(path): fewer than \(minimum) items") }
            if let items = schema["items"] as? [String: Any] {
                for (i, item) in array.enumerated() { out += problems(item, items, path: "\(path)[\(i)]") }
            }
        }
        if let options = schema["anyOf"] as? [[String: Any]], !options.contains(where: { problems(value, $0, path: path).isEmpty }) {
            out.append("\(path): matches none of the allowed forms")
        }
        for rule in schema["allOf"] as? [[String: Any]] ?? [] {
            out += problems(value, rule, path: path)
        }
        if let condition = schema["if"] as? [String: Any], problems(value, condition, path: path).isEmpty,
            let then = schema["then"] as? [String: Any]
        {
            out += problems(value, then, path: path)
        }
        return out
    }

    static func numeric(_ value: Any) -> Double? {
        if value is Bool { return nil }
        if let int = value as? Int { return Double(int) }
        return value as? Double
    }

    static func matches(_ value: Any, _ type: String) -> Bool {
        switch type {
        case "object": value is [String: Any]
        case "array": value is [Any]
        case "string": value is String
        case "boolean": value is Bool
        case "integer": !(value is Bool) && value is Int
        case "number": numeric(value) != nil
        default: true
        }
    }

    static func equal(_ a: Any, _ b: Any) -> Bool {
        if let x = a as? String, let y = b as? String { return x == y }
        if let x = numeric(a), let y = numeric(b) { return x == y }
        if let x = a as? Bool, let y = b as? Bool { return x == y }
        return false
    }
}

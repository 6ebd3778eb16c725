import Foundation

/// A recipe key that a strategy kind declares: its type, default, allowed range and one line
/// of help. `tally validate` checks a strategy entry against its kind's keys (with
/// file:line:column and "did you mean"), and `tally plugins` lists them.
///
/// ```swift
/// StrategyKey.int("shots", default: 4, min: 1, help: "demonstrations shown before the question")
/// StrategyKey.choice("selection", ["first", "random", "similar"], default: "first", help: "how demonstrations are picked")
/// ```
public struct StrategyKey: Sendable, Hashable {
    /// What a value must be.
    public enum ValueType: Sendable, Hashable, CustomStringConvertible {
        case bool
        case int
        case number
        case string
        /// A list of strings; a single string is read as a one-item list.
        case strings
        /// One of a fixed set of strings.
        case choice([String])

        public var description: String {
            switch self {
            case .bool: "boolean"
            case .int: "whole number"
            case .number: "number"
            case .string: "text"
            case .strings: "list of text"
            case .choice(let choices): choices.joined(separator: " | ")
            }
        }
    }

    /// A bound on numbers.
    public struct Bound: Sendable, Hashable {
        public let value: Double
        /// Whether the bound itself is excluded.
        public let exclusive: Bool

        public init(_ value: Double, exclusive: Bool = false) {
            self.value = value
            self.exclusive = exclusive
        }
    }

    /// The key as the recipe writes it (snake_case).
    public let name: String
    public let type: ValueType
    /// The value when the recipe leaves the key out; nil when the kind decides (say so in `help`).
    public let defaultValue: SettingValue?
    public let minimum: Bound?
    public let maximum: Bound?
    /// One line for `tally plugins` and docs.
    public let help: String

    public init(_ name: String, type: ValueType, default defaultValue: SettingValue? = nil, minimum: Bound? = nil, maximum: Bound? = nil, help: String) {
        self.name = name
        self.type = type
        self.defaultValue = defaultValue
        self.minimum = minimum
        self.maximum = maximum
        self.help = help
    }

    public static func bool(_ name: String, default value: Bool? = nil, help: String) -> StrategyKey {
        StrategyKey(name, type: .bool, default: value.map(SettingValue.bool), help: help)
    }

    public static func int(_ name: String, default value: Int? = nil, min: Int? = nil, max: Int? = nil, help: String) -> StrategyKey {
        StrategyKey(name, type: .int, default: value.map(SettingValue.int), minimum: min.map { Bound(Double($0)) }, maximum: max.map { Bound(Double($0)) }, help: help)
    }

    public static func number(_ name: String, default value: Double? = nil, min: Bound? = nil, max: Bound? = nil, help: String) -> StrategyKey {
        StrategyKey(name, type: .number, default: value.map(SettingValue.number), minimum: min, maximum: max, help: help)
    }

    public static func string(_ name: String, default value: String? = nil, help: String) -> StrategyKey {
        StrategyKey(name, type: .string, default: value.map(SettingValue.string), help: help)
    }

    public static func strings(_ name: String, default value: [String]? = nil, help: String) -> StrategyKey {
        StrategyKey(name, type: .strings, default: value.map(SettingValue.list), help: help)
    }

    public static func choice(_ name: String, _ choices: [String], default value: String? = nil, help: String) -> StrategyKey {
        StrategyKey(name, type: .choice(choices), default: value.map(SettingValue.string), help: help)
    }

    /// The allowed range in words ("at least 1", "at least 0 and less than 1"), or nil.
    public var rangeDescription: String? {
        func show(_ v: Double) -> String { v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : String(v) }
        let words = [
            minimum.map { ($0.exclusive ? "greater than " : "at least ") + show($0.value) },
            maximum.map { ($0.exclusive ? "less than " : "at most ") + show($0.value) },
        ].compactMap { $0 }
        return words.isEmpty ? nil : words.joined(separator: " and ")
    }
}

/// The values of a strategy entry's kind-specific keys, as validated against the kind's
/// `StrategyKey`s; keys the recipe left out hold their declared default.
public struct StrategySettings: Sendable, Hashable, Codable {
    public private(set) var values: [String: SettingValue]
    /// The keys the recipe (or `--set`) wrote, as opposed to defaults.
    public private(set) var written: Set<String>

    public init(_ values: [String: SettingValue] = [:], written: Set<String>? = nil) {
        self.values = values
        self.written = written ?? Set(values.keys)
    }

    public subscript(key: String) -> SettingValue? { values[key] }
    public func bool(_ key: String) -> Bool? { values[key]?.boolValue }
    public func int(_ key: String) -> Int? { values[key]?.intValue }
    public func double(_ key: String) -> Double? { values[key]?.doubleValue }
    public func string(_ key: String) -> String? { values[key]?.stringValue }
    public func strings(_ key: String) -> [String]? { values[key]?.listValue }
    /// Whether the recipe wrote `key` (rather than leaving it to its default).
    public func wrote(_ key: String) -> Bool { written.contains(key) }

    /// The same settings with `key` set (as if written).
    public func setting(_ key: String, to value: SettingValue?) -> StrategySettings {
        var copy = self
        copy.values[key] = value
        if value == nil { copy.written.remove(key) } else { copy.written.insert(key) }
        return copy
    }
}

/// What a strategy kind can look at when it checks an entry: the task and, when the recipe's
/// data files could be read, their fields and the usable training row count.
public struct StrategyCheckContext: Sendable {
    public let task: TaskSpec
    /// Fields of the training rows; nil when the training file could not be read.
    public let trainFields: [String]?
    /// Usable training rows; nil when the training file could not be read.
    public let trainCount: Int?
    /// Fields of the test rows (the questions a strategy answers); nil when the test file
    /// could not be read.
    public let testFields: [String]?
    /// The recipe's directory (relative paths of a strategy's own files resolve against it);
    /// nil when there is no recipe file.
    public let recipeDirectory: URL?
    /// Names of the recipe's backends; nil when the backends could not be read.
    public let backendNames: [String]?
    /// Those of them whose plugin can embed text (`BackendPlugin.canEmbed(_:)`).
    public let embeddingBackends: Set<String>

    public init(task: TaskSpec, trainFields: [String]? = nil, trainCount: Int? = nil, testFields: [String]? = nil, recipeDirectory: URL? = nil, backendNames: [String]? = nil, embeddingBackends: Set<String> = []) {
        self.task = task
        self.trainFields = trainFields
        self.trainCount = trainCount
        self.testFields = testFields
        self.recipeDirectory = recipeDirectory
        self.backendNames = backendNames
        self.embeddingBackends = embeddingBackends
    }
}

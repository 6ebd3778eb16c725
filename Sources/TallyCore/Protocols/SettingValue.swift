import Foundation

/// A typed scalar or list of strings: the value of a strategy kind's recipe key, and of a
/// fine-tuning method's parameters. Encodes as the plain JSON value (`8`, `0.5`, `true`,
/// `"cosine"`, `["q_proj", "v_proj"]`).
public enum SettingValue: Codable, Sendable, Hashable, CustomStringConvertible {
    case bool(Bool)
    case int(Int)
    case number(Double)
    case string(String)
    case list([String])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Int.self) { self = .int(value) }
        else if let value = try? container.decode(Double.self) { self = .number(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([String].self) { self = .list(value) }
        else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "expected a boolean, a number, a string or a list of strings")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .bool(let value): try container.encode(value)
        case .int(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .list(let value): try container.encode(value)
        }
    }

    public var boolValue: Bool? { if case .bool(let v) = self { v } else { nil } }
    public var intValue: Int? { if case .int(let v) = self { v } else { nil } }
    /// Numbers, whole or not.
    public var doubleValue: Double? {
        switch self {
        case .int(let v): Double(v)
        case .number(let v): v
        default: nil
        }
    }
    public var stringValue: String? { if case .string(let v) = self { v } else { nil } }
    /// A list, or a single string as a one-item list.
    public var listValue: [String]? {
        switch self {
        case .list(let v): v
        case .string(let v): [v]
        default: nil
        }
    }

    /// As a recipe would write it.
    public var description: String {
        switch self {
        case .bool(let v): v ? "true" : "false"
        case .int(let v): String(v)
        case .number(let v): v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : String(v)
        case .string(let v): v
        case .list(let v): "[" + v.joined(separator: ", ") + "]"
        }
    }
}

import Foundation

/// A JSON value, decoded without Foundation's `Any` (so booleans stay booleans).
enum JSONValue: Decodable, Sendable, Hashable {
    case string(String)
    case int(Int)
    case double(Double)
    case bool(Bool)
    case null
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null; return }
        if let value = try? container.decode(Bool.self) { self = .bool(value); return }
        if let value = try? container.decode(Int.self) { self = .int(value); return }
        if let value = try? container.decode(Double.self) { self = .double(value); return }
        if let value = try? container.decode(String.self) { self = .string(value); return }
        if let value = try? container.decode([JSONValue].self) { self = .array(value); return }
        self = .object(try container.decode([String: JSONValue].self))
    }

    /// Scalars as text (numbers without a trailing `.0` when integral); nil for null,
    /// arrays and objects.
    var scalarText: String? {
        switch self {
        case .string(let s): return s
        case .int(let i): return String(i)
        case .double(let d):
            if d.isFinite, d == d.rounded(), abs(d) < 1e15 { return String(Int(d)) }
            return String(d)
        case .bool(let b): return b ? "true" : "false"
        case .null, .array, .object: return nil
        }
    }

    /// Text for a field value: scalars as text, arrays and objects as compact JSON.
    var fieldText: String? {
        if let scalarText { return scalarText }
        switch self {
        case .null: return nil
        case .array(let values):
            return "[" + values.map { $0.jsonText }.joined(separator: ",") + "]"
        case .object: return jsonText
        default: return nil
        }
    }

    var jsonText: String {
        switch self {
        case .string(let s):
            let data = (try? JSONEncoder().encode(s)) ?? Data()
            return String(decoding: data, as: UTF8.self)
        case .null: return "null"
        case .array(let values): return "[" + values.map { $0.jsonText }.joined(separator: ",") + "]"
        case .object(let object):
            return "{" + object.keys.sorted().map { key in
                JSONValue.string(key).jsonText + ":" + (object[key] ?? .null).jsonText
            }.joined(separator: ",") + "}"
        default: return scalarText ?? "null"
        }
    }

    /// Parses one line of JSONL.
    static func parse(line: Substring) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: Data(line.utf8))
    }
}

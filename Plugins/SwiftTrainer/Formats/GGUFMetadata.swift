import Foundation

/// One typed metadata value of a GGUF file (the spec's `gguf_metadata_value_t`).
public enum GGUFValue: Sendable, Hashable {
    case uint8(UInt8)
    case int8(Int8)
    case uint16(UInt16)
    case int16(Int16)
    case uint32(UInt32)
    case int32(Int32)
    case float32(Float)
    case bool(Bool)
    case string(String)
    /// An array; its elements share one type (nested arrays allowed).
    case array([GGUFValue])
    case uint64(UInt64)
    case int64(Int64)
    case float64(Double)

    /// The value as an `Int` when it is an integer type that fits (bools are not integers).
    public var int: Int? {
        switch self {
        case .uint8(let v): return Int(v)
        case .int8(let v): return Int(v)
        case .uint16(let v): return Int(v)
        case .int16(let v): return Int(v)
        case .uint32(let v): return Int(v)
        case .int32(let v): return Int(v)
        case .uint64(let v): return v <= UInt64(Int.max) ? Int(v) : nil
        case .int64(let v): return Int(v)
        default: return nil
        }
    }

    /// The value as a `Double` when it is a number (float or integer).
    public var double: Double? {
        switch self {
        case .float32(let v): return Double(v)
        case .float64(let v): return v
        default: return int.map(Double.init)
        }
    }

    public var bool: Bool? {
        if case .bool(let v) = self { return v }
        return nil
    }

    public var string: String? {
        if case .string(let v) = self { return v }
        return nil
    }

    public var array: [GGUFValue]? {
        if case .array(let v) = self { return v }
        return nil
    }

    /// The value as `[String]` when it is an array of strings.
    public var strings: [String]? {
        guard case .array(let values) = self else { return nil }
        var out: [String] = []
        out.reserveCapacity(values.count)
        for value in values {
            guard case .string(let s) = value else { return nil }
            out.append(s)
        }
        return out
    }

    /// The value as `[Int]` when it is an array of integers.
    public var ints: [Int]? {
        guard case .array(let values) = self else { return nil }
        var out: [Int] = []
        out.reserveCapacity(values.count)
        for value in values {
            guard let v = value.int else { return nil }
            out.append(v)
        }
        return out
    }

    /// The value as `[Float]` when it is an array of numbers.
    public var floats: [Float]? {
        guard case .array(let values) = self else { return nil }
        var out: [Float] = []
        out.reserveCapacity(values.count)
        for value in values {
            guard let v = value.double else { return nil }
            out.append(Float(v))
        }
        return out
    }

    /// The spec's name of this value's type, for error messages.
    public var typeName: String {
        switch self {
        case .uint8: "uint8"
        case .int8: "int8"
        case .uint16: "uint16"
        case .int16: "int16"
        case .uint32: "uint32"
        case .int32: "int32"
        case .float32: "float32"
        case .bool: "bool"
        case .string: "string"
        case .array: "array"
        case .uint64: "uint64"
        case .int64: "int64"
        case .float64: "float64"
        }
    }
}

/// The tensor element types of GGML (`ggml_type`), with their block geometry.
public struct GGMLType: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let f32 = GGMLType(rawValue: 0)
    public static let f16 = GGMLType(rawValue: 1)
    public static let q4_0 = GGMLType(rawValue: 2)
    public static let q4_1 = GGMLType(rawValue: 3)
    public static let q5_0 = GGMLType(rawValue: 6)
    public static let q5_1 = GGMLType(rawValue: 7)
    public static let q8_0 = GGMLType(rawValue: 8)
    public static let q8_1 = GGMLType(rawValue: 9)
    public static let q2_K = GGMLType(rawValue: 10)
    public static let q3_K = GGMLType(rawValue: 11)
    public static let q4_K = GGMLType(rawValue: 12)
    public static let q5_K = GGMLType(rawValue: 13)
    public static let q6_K = GGMLType(rawValue: 14)
    public static let q8_K = GGMLType(rawValue: 15)
    public static let i8 = GGMLType(rawValue: 24)
    public static let i16 = GGMLType(rawValue: 25)
    public static let i32 = GGMLType(rawValue: 26)
    public static let i64 = GGMLType(rawValue: 27)
    public static let f64 = GGMLType(rawValue: 28)
    public static let bf16 = GGMLType(rawValue: 30)

    /// (elements per block, bytes per block) for the types whose layout is known here.
    public var blockGeometry: (elements: Int, bytes: Int)? {
        switch rawValue {
        case 0: (1, 4)
        case 1: (1, 2)
        case 2: (32, 18)
        case 3: (32, 20)
        case 6: (32, 22)
        case 7: (32, 24)
        case 8: (32, 34)
        case 9: (32, 36)
        case 10: (256, 84)
        case 11: (256, 110)
        case 12: (256, 144)
        case 13: (256, 176)
        case 14: (256, 210)
        case 15: (256, 292)
        case 24: (1, 1)
        case 25: (1, 2)
        case 26: (1, 4)
        case 27: (1, 8)
        case 28: (1, 8)
        case 30: (1, 2)
        default: nil
        }
    }

    /// Whether `GGUFDequantizer` converts this type to Float32.
    public var isDequantizable: Bool {
        [0, 1, 2, 3, 8, 12, 14, 30].contains(rawValue)
    }

    public var description: String {
        let names: [UInt32: String] = [
            0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1",
            10: "Q2_K", 11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K",
            16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S", 20: "IQ4_NL", 21: "IQ3_S",
            22: "IQ2_S", 23: "IQ4_XS", 24: "I8", 25: "I16", 26: "I32", 27: "I64", 28: "F64",
            29: "IQ1_M", 30: "BF16", 34: "TQ1_0", 35: "TQ2_0", 39: "MXFP4",
        ]
        return names[rawValue] ?? "type \(rawValue)"
    }
}

/// Where one tensor lives in a GGUF file and what it holds.
public struct GGUFTensorInfo: Sendable, Hashable {
    public let name: String
    /// Dimensions in GGUF order: `dimensions[0]` varies fastest (the row length).
    public let dimensions: [Int]
    public let type: GGMLType
    /// Offset of the tensor's data from the start of the file's data section.
    public let offset: Int
    /// Size of the tensor's data in bytes.
    public let byteCount: Int

    /// Number of elements.
    public var elementCount: Int { dimensions.reduce(1, *) }

    /// The shape in row-major (PyTorch / Hugging Face) order: the reverse of `dimensions`.
    public var shape: [Int] { dimensions.reversed() }
}

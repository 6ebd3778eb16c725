import Foundation

/// Writes a GGUF file (version 3): metadata, tensor infos, then the tensor data, each
/// tensor aligned to `general.alignment` (32 bytes), as the GGUF specification lays it out.
///
/// ```swift
/// var writer = GGUFWriter()
/// writer.metadata.append(("general.architecture", .string("llama")))
/// try writer.add("token_embd.weight", shape: [vocab, hidden], values: embeddings, as: .q8_0)
/// try writer.write(to: url)
/// ```
public struct GGUFWriter {
    /// The alignment of the data section and of every tensor in it.
    public static let alignment = 32

    /// Metadata in file order (keys must be unique).
    public var metadata: [(String, GGUFValue)] = []
    var tensors: [(name: String, dimensions: [Int], type: GGMLType, data: Data)] = []

    public init() {}

    /// The tensor types the writer encodes.
    public static let writableTypes: [GGMLType] = [.f32, .f16, .q8_0]

    /// Adds a tensor.
    /// - Parameters:
    ///   - name: the GGUF tensor name.
    ///   - shape: row-major shape (PyTorch order); GGUF stores it reversed.
    ///   - values: `shape.reduce(1, *)` values, row-major.
    ///   - type: `.f32`, `.f16` or `.q8_0` (rows must then be a multiple of 32 long).
    /// - Throws: `GGUFError` for a count that does not match the shape, an unsupported type,
    ///   or a Q8_0 row that is not a multiple of 32.
    public mutating func add(_ name: String, shape: [Int], values: [Float], as type: GGMLType) throws {
        guard !shape.isEmpty, shape.allSatisfy({ $0 > 0 }), shape.reduce(1, *) == values.count else {
            throw GGUFError(.shapeMismatch, file: name, "has \(values.count) values for shape \(shape)")
        }
        var data = Data()
        switch type {
        case .f32:
            data.reserveCapacity(values.count * 4)
            for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
        case .f16:
            data.reserveCapacity(values.count * 2)
            for v in values { withUnsafeBytes(of: Float16(v).bitPattern.littleEndian) { data.append(contentsOf: $0) } }
        case .q8_0:
            guard let row = shape.last, row % 32 == 0 else {
                throw GGUFError(.unsupported, file: name, "has rows of \(shape.last ?? 0) values; Q8_0 needs a multiple of 32")
            }
            data = Self.quantizeQ8_0(values)
        default:
            throw GGUFError(.unsupported, file: name, "cannot be written as \(type); the writer encodes F32, F16 and Q8_0")
        }
        tensors.append((name, shape.reversed(), type, data))
    }

    /// Q8_0 blocks of 32 values: an F16 scale `d = max|x| / 127`, then `round(x / d)` as
    /// 32 signed bytes (llama.cpp's reference quantisation).
    static func quantizeQ8_0(_ values: [Float]) -> Data {
        var data = Data(capacity: values.count / 32 * 34)
        var block = [UInt8](repeating: 0, count: 34)
        for start in stride(from: 0, to: values.count, by: 32) {
            var amax: Float = 0
            for i in start..<start + 32 { amax = max(amax, abs(values[i])) }
            let d = amax / 127
            let inverse: Float = d > 0 ? 1 / d : 0
            let scale = Float16(d).bitPattern.littleEndian
            block[0] = UInt8(truncatingIfNeeded: scale)
            block[1] = UInt8(truncatingIfNeeded: scale >> 8)
            for i in 0..<32 {
                let q = Int8(max(-127, min(127, (values[start + i] * inverse).rounded(.toNearestOrAwayFromZero))))
                block[2 + i] = UInt8(bitPattern: q)
            }
            data.append(contentsOf: block)
        }
        return data
    }

    /// Writes the file.
    /// - Throws: `GGUFError` (`io`) when it cannot be written, (`malformed`) for duplicate keys
    ///   or tensor names.
    public func write(to url: URL) throws {
        var keys = Set<String>()
        for (key, _) in metadata where !keys.insert(key).inserted {
            throw GGUFError(.malformed, file: url.path, "would have metadata key '\(key)' twice")
        }
        var names = Set<String>()
        for tensor in tensors where !names.insert(tensor.name).inserted {
            throw GGUFError(.malformed, file: url.path, "would have tensor '\(tensor.name)' twice")
        }
        var out = Data()
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func string(_ s: String) {
            let bytes = Array(s.utf8)
            u64(UInt64(bytes.count))
            out.append(contentsOf: bytes)
        }
        func pad() {
            let extra = (Self.alignment - out.count % Self.alignment) % Self.alignment
            out.append(contentsOf: [UInt8](repeating: 0, count: extra))
        }
        u32(0x4655_4747)  // "GGUF"
        u32(3)
        u64(UInt64(tensors.count))
        u64(UInt64(metadata.count))
        for (key, value) in metadata {
            string(key)
            u32(Self.typeCode(value))
            Self.encode(value, into: &out)
        }
        var offset = 0
        for tensor in tensors {
            string(tensor.name)
            u32(UInt32(tensor.dimensions.count))
            for d in tensor.dimensions { u64(UInt64(d)) }
            u32(tensor.type.rawValue)
            u64(UInt64(offset))
            offset += tensor.data.count
            offset += (Self.alignment - offset % Self.alignment) % Self.alignment
        }
        pad()
        for tensor in tensors {
            out.append(tensor.data)
            pad()
        }
        do {
            try out.write(to: url, options: .atomic)
        } catch {
            throw GGUFError(.io, file: url.path, "cannot be written: \(error.localizedDescription)")
        }
    }

    /// The specification's value type code.
    static func typeCode(_ value: GGUFValue) -> UInt32 {
        switch value {
        case .uint8: 0
        case .int8: 1
        case .uint16: 2
        case .int16: 3
        case .uint32: 4
        case .int32: 5
        case .float32: 6
        case .bool: 7
        case .string: 8
        case .array: 9
        case .uint64: 10
        case .int64: 11
        case .float64: 12
        }
    }

    static func encode(_ value: GGUFValue, into out: inout Data) {
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        switch value {
        case .uint8(let v): put(v)
        case .int8(let v): put(v)
        case .uint16(let v): put(v)
        case .int16(let v): put(v)
        case .uint32(let v): put(v)
        case .int32(let v): put(v)
        case .float32(let v): put(v.bitPattern)
        case .bool(let v): put(UInt8(v ? 1 : 0))
        case .string(let s):
            let bytes = Array(s.utf8)
            put(UInt64(bytes.count))
            out.append(contentsOf: bytes)
        case .array(let items):
            // An empty array is written as an array of strings.
            put(items.first.map(typeCode) ?? 8)
            put(UInt64(items.count))
            for item in items { encode(item, into: &out) }
        case .uint64(let v): put(v)
        case .int64(let v): put(v)
        case .float64(let v): put(v.bitPattern)
        }
    }
}

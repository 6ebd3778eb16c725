import Foundation
import TallyCore

/// A `.safetensors` file, memory-mapped: an 8-byte little-endian header length, a JSON
/// header (`{name: {dtype, shape, data_offsets}}`, optional `__metadata__`), then the data.
///
/// Every entry's shape, dtype and byte range is checked against the file when it is opened;
/// a malformed or truncated file throws a `TallyError` (`invalid-model`) naming the file,
/// the tensor and what is wrong.
///
/// ```swift
/// let file = try SafeTensorsFile(contentsOf: url)
/// let w = try file.tensor("model.embed_tokens.weight")   // F32/F16/BF16 -> Float32
/// ```
public final class SafeTensorsFile {
    /// The element types this reader knows.
    public enum DType: String, Sendable {
        case f32 = "F32", f16 = "F16", bf16 = "BF16", f64 = "F64"
        case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8", u8 = "U8", bool = "BOOL"

        /// Bytes per element.
        public var size: Int {
            switch self {
            case .f64, .i64: return 8
            case .f32, .i32: return 4
            case .f16, .bf16, .i16: return 2
            case .i8, .u8, .bool: return 1
            }
        }
    }

    /// One tensor's header entry.
    public struct Entry: Sendable {
        public let name: String
        public let dtype: DType
        public let shape: [Int]
        /// Byte range within the file (absolute).
        public let byteRange: Range<Int>
        public var count: Int { shape.reduce(1, *) }
    }

    /// The file that was opened.
    public let url: URL
    /// Entries by tensor name.
    public let entries: [String: Entry]
    /// The free-form `__metadata__` strings.
    public let metadata: [String: String]
    private let file: MappedFile

    /// Opens and validates a safetensors file.
    /// - Parameter url: the file.
    /// - Throws: `TallyError` (`io` or `invalid-model`) naming the file and the problem.
    public init(contentsOf url: URL) throws {
        self.url = url
        file = try MappedFile(url: url)
        let size = file.size
        guard size >= 8, let base = file.bytes else {
            throw ModelFileError.invalid(url, "not a safetensors file: \(size) bytes is shorter than the 8-byte header length")
        }
        let headerLength = Int(UInt64(littleEndian: base.loadUnaligned(as: UInt64.self)).clamped(to: UInt64(Int.max)))
        guard headerLength <= size - 8 else {
            throw ModelFileError.invalid(url, "truncated safetensors file: header says \(headerLength) bytes but only \(size - 8) follow; re-download or re-export it")
        }
        let headerData = Data(bytes: base + 8, count: headerLength)
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: headerData)
        } catch {
            throw ModelFileError.invalid(url, "the safetensors header is not valid JSON: \(error.localizedDescription)")
        }
        guard let object = json as? [String: Any] else {
            throw ModelFileError.invalid(url, "the safetensors header is not a JSON object")
        }
        let dataStart = 8 + headerLength
        let dataSize = size - dataStart
        var entries: [String: Entry] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in object {
            if name == "__metadata__" {
                if let m = value as? [String: Any] {
                    for (k, v) in m { metadata[k] = v as? String ?? "\(v)" }
                }
                continue
            }
            guard let info = value as? [String: Any] else {
                throw ModelFileError.invalid(url, "tensor '\(name)': header entry is not an object")
            }
            guard let dtypeName = info["dtype"] as? String, let dtype = DType(rawValue: dtypeName) else {
                throw ModelFileError.invalid(url, "tensor '\(name)': unsupported or missing dtype \(String(describing: info["dtype"]))")
            }
            guard let shapeValues = info["shape"] as? [Any] else {
                throw ModelFileError.invalid(url, "tensor '\(name)': missing shape")
            }
            var shape: [Int] = []
            for s in shapeValues {
                guard let n = jsonInteger(s), n >= 0, n < 1 << 40 else {
                    throw ModelFileError.invalid(url, "tensor '\(name)': invalid dimension \(s) in shape \(shapeValues)")
                }
                shape.append(n)
            }
            guard let offsets = info["data_offsets"] as? [Any], offsets.count == 2,
                let begin = jsonInteger(offsets[0]), let end = jsonInteger(offsets[1])
            else {
                throw ModelFileError.invalid(url, "tensor '\(name)': missing or malformed data_offsets")
            }
            var count = 1
            for d in shape {
                let (p, overflow) = count.multipliedReportingOverflow(by: d)
                guard !overflow, p < 1 << 40 else {
                    throw ModelFileError.invalid(url, "tensor '\(name)': shape \(shape) is too large")
                }
                count = p
            }
            guard begin >= 0, end >= begin, end <= dataSize else {
                throw ModelFileError.invalid(url, "tensor '\(name)' (shape \(shape)): data_offsets [\(begin), \(end)] lie outside the \(dataSize) data bytes; the file is truncated or corrupt")
            }
            guard end - begin == count * dtype.size else {
                throw ModelFileError.invalid(url, "tensor '\(name)': shape \(shape) of \(dtype.rawValue) needs \(count * dtype.size) bytes but data_offsets span \(end - begin)")
            }
            entries[name] = Entry(name: name, dtype: dtype, shape: shape, byteRange: (dataStart + begin)..<(dataStart + end))
        }
        self.entries = entries
        self.metadata = metadata
    }

    /// Tensor names, sorted.
    public var names: [String] { entries.keys.sorted() }

    private func entry(_ name: String) throws -> Entry {
        guard let e = entries[name] else {
            throw ModelFileError.invalid(url, "no tensor named '\(name)' (the file holds \(entries.count) tensors)")
        }
        return e
    }

    /// Reads a floating-point tensor converted to Float32.
    /// - Parameter name: the tensor's name.
    /// - Throws: `TallyError` if it is missing or not F32/F16/BF16/F64.
    public func tensor(_ name: String) throws -> WeightTensor {
        let e = try entry(name)
        guard let base = file.bytes else { throw ModelFileError.invalid(url, "tensor '\(name)': file is empty") }
        let src = base + e.byteRange.lowerBound
        let n = e.count
        var out = [Float](repeating: 0, count: n)
        out.withUnsafeMutableBufferPointer { dst in
            guard let d = dst.baseAddress, n > 0 else { return }
            switch e.dtype {
            case .f32:
                UnsafeMutableRawPointer(d).copyMemory(from: src, byteCount: n * 4)
            case .f16:
                for i in 0..<n { d[i] = halfToFloat(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
            case .bf16:
                for i in 0..<n { d[i] = Float(bitPattern: UInt32(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16) }
            case .f64:
                for i in 0..<n { d[i] = Float(src.loadUnaligned(fromByteOffset: 8 * i, as: Double.self)) }
            default:
                break
            }
        }
        guard [.f32, .f16, .bf16, .f64].contains(e.dtype) else {
            throw ModelFileError.invalid(url, "tensor '\(name)' has dtype \(e.dtype.rawValue), expected a floating-point type (F32, F16, BF16)")
        }
        return WeightTensor(shape: e.shape, values: out)
    }

    /// Reads an integer tensor (I64, I32, I16, I8, U8) as 64-bit integers.
    /// - Parameter name: the tensor's name.
    /// - Throws: `TallyError` if it is missing or not an integer type.
    public func integers(_ name: String) throws -> (shape: [Int], values: [Int64]) {
        let e = try entry(name)
        guard let base = file.bytes else { throw ModelFileError.invalid(url, "tensor '\(name)': file is empty") }
        let src = base + e.byteRange.lowerBound
        let n = e.count
        var out = [Int64](repeating: 0, count: n)
        switch e.dtype {
        case .i64: for i in 0..<n { out[i] = Int64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)) }
        case .i32: for i in 0..<n { out[i] = Int64(Int32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))) }
        case .i16: for i in 0..<n { out[i] = Int64(Int16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self))) }
        case .i8: for i in 0..<n { out[i] = Int64(src.loadUnaligned(fromByteOffset: i, as: Int8.self)) }
        case .u8, .bool: for i in 0..<n { out[i] = Int64(src.loadUnaligned(fromByteOffset: i, as: UInt8.self)) }
        default:
            throw ModelFileError.invalid(url, "tensor '\(name)' has dtype \(e.dtype.rawValue), expected an integer type")
        }
        return (e.shape, out)
    }

    /// Reads every floating-point tensor (integer tensors are skipped).
    /// - Throws: `TallyError` on any unreadable tensor.
    public func floatTensors() throws -> [String: WeightTensor] {
        var out: [String: WeightTensor] = [:]
        for (name, e) in entries where [.f32, .f16, .bf16, .f64].contains(e.dtype) {
            out[name] = try tensor(name)
        }
        return out
    }

    /// Writes Float32 tensors as a safetensors file (names sorted, header padded to 8 bytes),
    /// atomically (a temporary file renamed into place).
    /// - Parameters:
    ///   - tensors: the tensors by name.
    ///   - metadata: `__metadata__` strings (e.g. `["format": "pt"]`).
    ///   - url: the destination.
    /// - Throws: `TallyError` (`io`) if the file cannot be written, (`invalid-model`) if a
    ///   tensor's values do not fill its shape.
    public static func write(_ tensors: [String: WeightTensor], metadata: [String: String] = ["format": "pt"], to url: URL) throws {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        let names = tensors.keys.sorted()
        var offset = 0
        for name in names {
            guard let t = tensors[name] else { continue }
            guard t.count == t.values.count else {
                throw ModelFileError.invalid(url, "tensor '\(name)': shape \(t.shape) needs \(t.count) values, got \(t.values.count)")
            }
            header[name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + 4 * t.count]] as [String: Any]
            offset += 4 * t.count
        }
        var json: Data
        do {
            json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        } catch {
            throw ModelFileError.io(url, "cannot encode the safetensors header", underlying: error)
        }
        while json.count % 8 != 0 { json.append(0x20) }
        var out = Data(capacity: 8 + json.count + offset)
        var length = UInt64(json.count).littleEndian
        withUnsafeBytes(of: &length) { out.append(contentsOf: $0) }
        out.append(json)
        for name in names {
            guard let t = tensors[name] else { continue }
            t.values.withUnsafeBufferPointer { out.append(UnsafeBufferPointer(start: $0.baseAddress, count: $0.count)) }
        }
        do {
            try out.write(to: url, options: .atomic)
        } catch {
            throw ModelFileError.io(url, "cannot write the safetensors file", underlying: error)
        }
    }
}

/// IEEE 754 half precision to single precision.
@inline(__always)
func halfToFloat(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exp = Int(h >> 10) & 0x1F
    let mant = UInt32(h & 0x3FF)
    if exp == 0 {
        if mant == 0 { return Float(bitPattern: sign) }
        // Subnormal: mant * 2^-24.
        let v = Float(mant) * (1.0 / 16_777_216.0)
        return sign != 0 ? -v : v
    }
    if exp == 31 {
        return Float(bitPattern: sign | 0x7F80_0000 | (mant << 13))
    }
    return Float(bitPattern: sign | UInt32(exp - 15 + 127) << 23 | (mant << 13))
}

extension Comparable {
    fileprivate func clamped(to upper: Self) -> Self { self > upper ? upper : self }
}

/// An integer from a `JSONSerialization` value (Int, or a whole Double / NSNumber).
func jsonInteger(_ value: Any) -> Int? {
    if let i = value as? Int { return i }
    if let d = value as? Double, d == d.rounded(), abs(d) < 9e15 { return Int(d) }
    if let n = value as? NSNumber { return n.intValue }
    return nil
}

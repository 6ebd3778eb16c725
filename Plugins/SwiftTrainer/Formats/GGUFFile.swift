import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only memory mapping of a whole file. Immutable after `init`, so sharing it across
/// threads is safe; the mapping is released when the last reference goes away.
final class GGUFMappedFile: @unchecked Sendable {
    let path: String
    let count: Int
    private let base: UnsafeRawPointer?

    /// Maps `url` read-only.
    /// - Throws: `GGUFError(.io)` when the file cannot be opened, sized or mapped.
    init(url: URL) throws {
        path = url.path
        let fd = open(url.path, O_RDONLY)
        guard fd >= 0 else {
            throw GGUFError(.io, file: url.path, "cannot open the file (\(String(cString: strerror(errno)))); check the path and its permissions")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw GGUFError(.io, file: url.path, "cannot read the file's size (\(String(cString: strerror(errno))))")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw GGUFError(.io, file: url.path, "is not a regular file")
        }
        count = Int(info.st_size)
        if count == 0 {
            base = nil
            return
        }
        let pointer = mmap(nil, count, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let pointer, pointer != MAP_FAILED else {
            throw GGUFError(.io, file: url.path, "cannot memory-map the file (\(String(cString: strerror(errno))))")
        }
        base = UnsafeRawPointer(pointer)
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), count) }
    }

    /// Calls `body` with the bytes in `range`, which the caller has checked lie in the file.
    func withBytes<R>(_ range: Range<Int>, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "range checked by the caller")
        guard let base else { return try body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        return try body(UnsafeRawBufferPointer(start: base + range.lowerBound, count: range.count))
    }
}

/// A parsed GGUF (version 2 or 3) file: metadata, tensor directory and memory-mapped data.
///
/// Opening a file reads only the header, metadata and tensor directory; tensor data stays in
/// the mapping until `dequantize(_:)` converts one tensor. Every length, offset and size is
/// checked against the file, so a truncated or corrupt file throws a `GGUFError` naming the
/// file and the key or tensor at fault.
///
/// ```swift
/// let file = try GGUFFile(url: modelURL)
/// let arch = file.metadata["general.architecture"]?.string
/// let embeddings = try file.dequantize("token_embd.weight")
/// ```
public struct GGUFFile: Sendable {
    /// The file's path, used in every error message.
    public let path: String
    public let version: Int
    /// Metadata in file order of keys is not kept; keys are unique.
    public let metadata: [String: GGUFValue]
    /// The tensor directory in file order.
    public let tensors: [GGUFTensorInfo]
    /// `general.alignment`, or 32.
    public let alignment: Int
    /// File offset of the data section (the start of tensor 0's data when its offset is 0).
    public let dataOffset: Int
    private let index: [String: Int]
    private let mapped: GGUFMappedFile

    /// Opens and parses the GGUF file at `url`.
    /// - Parameter url: a local `.gguf` file.
    /// - Throws: `GGUFError` when the file cannot be read or is not a well-formed GGUF file.
    public init(url: URL) throws {
        let mapped = try GGUFMappedFile(url: url)
        self.mapped = mapped
        path = url.path
        let parsed = try mapped.withBytes(0..<mapped.count) { bytes in
            var parser = GGUFParser(bytes: bytes, path: url.path)
            return try parser.parse()
        }
        version = parsed.version
        metadata = parsed.metadata
        tensors = parsed.tensors
        alignment = parsed.alignment
        dataOffset = parsed.dataOffset
        var index: [String: Int] = [:]
        for (i, tensor) in parsed.tensors.enumerated() {
            if index[tensor.name] != nil {
                throw GGUFError(.malformed, file: url.path, "tensor '\(tensor.name)' appears twice in the tensor directory")
            }
            index[tensor.name] = i
        }
        self.index = index
    }

    /// The directory entry of the tensor called `name`, if the file has one.
    public func tensor(named name: String) -> GGUFTensorInfo? {
        index[name].map { tensors[$0] }
    }

    /// Calls `body` with the raw bytes of `tensor` (bounds were checked when the file was opened).
    public func withRawBytes<R>(of tensor: GGUFTensorInfo, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let start = dataOffset + tensor.offset
        return try mapped.withBytes(start..<(start + tensor.byteCount), body)
    }

    /// The tensor called `name` converted to Float32, in GGUF element order.
    /// - Throws: `GGUFError(.missing)` when there is no such tensor, `.unsupported` when its
    ///   type cannot be dequantised.
    public func dequantize(_ name: String) throws -> [Float] {
        guard let info = tensor(named: name) else {
            throw GGUFError(.missing, file: path, "has no tensor named '\(name)'")
        }
        return try dequantize(info)
    }

    /// `tensor`'s values converted to Float32, in GGUF element order.
    /// - Throws: `GGUFError(.unsupported)` when its type cannot be dequantised.
    public func dequantize(_ tensor: GGUFTensorInfo) throws -> [Float] {
        guard tensor.type.isDequantizable else {
            throw GGUFError(
                .unsupported, file: path,
                "tensor '\(tensor.name)' (shape \(tensor.shape)) is stored as \(tensor.type), which Tally cannot dequantize; use a GGUF file quantized as F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K or Q6_K (for example a Q4_K_M or Q8_0 file)")
        }
        return try withRawBytes(of: tensor) { bytes in
            try GGUFDequantizer.dequantize(type: tensor.type, bytes: bytes, count: tensor.elementCount)
        }
    }
}

/// Reads the header, metadata and tensor directory with bounds checks on every read.
private struct GGUFParser {
    let bytes: UnsafeRawBufferPointer
    let path: String
    var position = 0

    init(bytes: UnsafeRawBufferPointer, path: String) {
        self.bytes = bytes
        self.path = path
    }

    struct Result {
        var version: Int
        var metadata: [String: GGUFValue]
        var tensors: [GGUFTensorInfo]
        var alignment: Int
        var dataOffset: Int
    }

    /// Largest nesting of arrays accepted in metadata (the spec allows nesting; real files use 1).
    static let maxArrayDepth = 8
    /// Largest number of dimensions accepted for a tensor (GGML uses at most 4).
    static let maxDimensions = 8

    func truncated(_ what: String) -> GGUFError {
        GGUFError(.truncated, file: path, "the file ends (at byte \(bytes.count)) inside \(what); it is truncated or not a GGUF file: download it again")
    }

    mutating func read<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String) throws -> T {
        let size = MemoryLayout<T>.size
        guard position <= bytes.count - size else { throw truncated(what()) }
        let value = T(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: T.self))
        position += size
        return value
    }

    /// Reads a uint64 count or length and checks it against what remains of the file, given
    /// that every element takes at least `minimumElementSize` bytes.
    mutating func readCount(_ what: @autoclosure () -> String, minimumElementSize: Int) throws -> Int {
        let raw = try read(UInt64.self, what())
        let remaining = UInt64(bytes.count - position)
        guard minimumElementSize == 0 || raw <= remaining / UInt64(minimumElementSize) else {
            if raw > UInt64(Int32.max) * 64 {
                throw GGUFError(.malformed, file: path, "\(what()) declares \(raw) elements, more than the file can hold; the file is corrupt")
            }
            throw truncated(what())
        }
        return Int(raw)
    }

    mutating func readString(_ what: @autoclosure () -> String) throws -> String {
        let length = try readCount("the length of \(what())", minimumElementSize: 1)
        let start = position
        position += length
        let slice = UnsafeRawBufferPointer(rebasing: bytes[start..<position])
        guard let text = String(validating: slice, as: UTF8.self) else {
            throw GGUFError(.malformed, file: path, "\(what()) is not valid UTF-8 (at byte \(start))")
        }
        return text
    }

    mutating func readValue(type: UInt32, _ what: @autoclosure () -> String, depth: Int = 0) throws -> GGUFValue {
        switch type {
        case 0: return .uint8(try read(UInt8.self, what()))
        case 1: return .int8(try read(Int8.self, what()))
        case 2: return .uint16(try read(UInt16.self, what()))
        case 3: return .int16(try read(Int16.self, what()))
        case 4: return .uint32(try read(UInt32.self, what()))
        case 5: return .int32(try read(Int32.self, what()))
        case 6: return .float32(Float(bitPattern: try read(UInt32.self, what())))
        case 7:
            let raw = try read(UInt8.self, what())
            guard raw <= 1 else {
                throw GGUFError(.malformed, file: path, "\(what()) is a bool stored as \(raw) (must be 0 or 1)")
            }
            return .bool(raw == 1)
        case 8: return .string(try readString(what()))
        case 9:
            guard depth < Self.maxArrayDepth else {
                throw GGUFError(.malformed, file: path, "\(what()) nests arrays more than \(Self.maxArrayDepth) deep")
            }
            let elementType = try read(UInt32.self, "the element type of \(what())")
            let elementSize: Int
            switch elementType {
            case 0, 1, 7: elementSize = 1
            case 2, 3: elementSize = 2
            case 4, 5, 6: elementSize = 4
            case 8, 10, 11, 12: elementSize = 8
            case 9: elementSize = 12
            default:
                throw GGUFError(.malformed, file: path, "\(what()) is an array of unknown value type \(elementType)")
            }
            let count = try readCount("the element count of \(what())", minimumElementSize: elementSize)
            var values: [GGUFValue] = []
            values.reserveCapacity(count)
            for i in 0..<count {
                values.append(try readValue(type: elementType, "element \(i) of \(what())", depth: depth + 1))
            }
            return .array(values)
        case 10: return .uint64(try read(UInt64.self, what()))
        case 11: return .int64(try read(Int64.self, what()))
        case 12: return .float64(Double(bitPattern: try read(UInt64.self, what())))
        default:
            throw GGUFError(.malformed, file: path, "\(what()) has unknown value type \(type)")
        }
    }

    mutating func parse() throws -> Result {
        guard bytes.count >= 4 else { throw truncated("the magic number") }
        let magic = try read(UInt32.self, "the magic number")
        guard magic == 0x4655_4747 else {  // "GGUF" read as little-endian
            throw GGUFError(.malformed, file: path, "is not a GGUF file (the first four bytes are not 'GGUF'); pass a .gguf model file")
        }
        let version = try read(UInt32.self, "the format version")
        guard version == 2 || version == 3 else {
            if version == 1 {
                throw GGUFError(.unsupported, file: path, "is GGUF version 1, which Tally does not read; convert it again with a current llama.cpp")
            }
            if version > 0xFFFF && UInt32(bigEndian: version) <= 3 {
                throw GGUFError(.unsupported, file: path, "is a big-endian GGUF file, which Tally does not read; use the little-endian file")
            }
            throw GGUFError(.unsupported, file: path, "has GGUF version \(version); Tally reads versions 2 and 3")
        }
        // Each tensor-info entry takes at least 8+4+8+4+8 bytes; each metadata pair 8+4+1.
        let tensorCount = try readCount("the tensor count", minimumElementSize: 32)
        let kvCount = try readCount("the metadata count", minimumElementSize: 13)

        var metadata: [String: GGUFValue] = [:]
        metadata.reserveCapacity(kvCount)
        for i in 0..<kvCount {
            let key = try readString("the key of metadata entry \(i)")
            let type = try read(UInt32.self, "the value type of metadata key '\(key)'")
            let value = try readValue(type: type, "metadata key '\(key)'")
            if metadata[key] != nil {
                throw GGUFError(.malformed, file: path, "metadata key '\(key)' appears twice")
            }
            metadata[key] = value
        }

        var alignment = 32
        if let value = metadata["general.alignment"] {
            guard let a = value.int, a > 0, a & (a - 1) == 0 else {
                throw GGUFError(.malformed, file: path, "general.alignment is \(value) (\(value.typeName)); it must be a power of two")
            }
            alignment = a
        }

        var infos: [(name: String, dims: [Int], type: GGMLType, offset: Int)] = []
        infos.reserveCapacity(tensorCount)
        for i in 0..<tensorCount {
            let name = try readString("the name of tensor \(i)")
            let rank = Int(try read(UInt32.self, "the dimension count of tensor '\(name)'"))
            guard rank <= Self.maxDimensions else {
                throw GGUFError(.malformed, file: path, "tensor '\(name)' declares \(rank) dimensions (at most \(Self.maxDimensions) are allowed)")
            }
            var dims: [Int] = []
            var elements = 1
            for d in 0..<rank {
                let raw = try read(UInt64.self, "dimension \(d) of tensor '\(name)'")
                guard raw <= UInt64(Int32.max) * 16 else {
                    throw GGUFError(.malformed, file: path, "tensor '\(name)' declares dimension \(d) = \(raw), which is not plausible; the file is corrupt")
                }
                let (product, overflow) = elements.multipliedReportingOverflow(by: Int(raw))
                guard !overflow else {
                    throw GGUFError(.malformed, file: path, "tensor '\(name)' has more elements than can be addressed; the file is corrupt")
                }
                elements = product
                dims.append(Int(raw))
            }
            let type = GGMLType(rawValue: try read(UInt32.self, "the type of tensor '\(name)'"))
            let rawOffset = try read(UInt64.self, "the data offset of tensor '\(name)'")
            guard rawOffset <= UInt64(bytes.count) else {
                throw GGUFError(.truncated, file: path, "tensor '\(name)' starts at data offset \(rawOffset), past the end of the file (\(bytes.count) bytes); the file is truncated: download it again")
            }
            infos.append((name, dims, type, Int(rawOffset)))
        }

        let dataOffset = (position + alignment - 1) / alignment * alignment
        let dataSize = bytes.count - dataOffset
        var tensors: [GGUFTensorInfo] = []
        tensors.reserveCapacity(infos.count)
        for info in infos {
            let shape = Array(info.dims.reversed())
            guard info.offset % alignment == 0 else {
                throw GGUFError(.malformed, file: path, "tensor '\(info.name)' (shape \(shape)) has data offset \(info.offset), not a multiple of the alignment \(alignment)")
            }
            let elements = info.dims.reduce(1, *)
            var byteCount = 0
            if let geometry = info.type.blockGeometry {
                let rowLength = info.dims.first ?? 1
                guard rowLength % geometry.elements == 0 else {
                    throw GGUFError(.malformed, file: path, "tensor '\(info.name)' (shape \(shape), \(info.type)) has rows of \(rowLength) elements, not a multiple of the \(info.type) block size \(geometry.elements)")
                }
                let (size, overflow) = (elements / geometry.elements).multipliedReportingOverflow(by: geometry.bytes)
                guard !overflow else {
                    throw GGUFError(.malformed, file: path, "tensor '\(info.name)' (shape \(shape), \(info.type)) claims more bytes than can be addressed; the file is corrupt")
                }
                byteCount = size
            }
            guard dataSize >= 0, info.offset <= dataSize, byteCount <= dataSize - info.offset else {
                throw GGUFError(.truncated, file: path, "tensor '\(info.name)' (shape \(shape), \(info.type)) needs \(byteCount) bytes from data offset \(info.offset) but the file has \(bytes.count) bytes; it is truncated: download it again")
            }
            tensors.append(GGUFTensorInfo(name: info.name, dimensions: info.dims, type: info.type, offset: info.offset, byteCount: byteCount))
        }
        return Result(version: Int(version), metadata: metadata, tensors: tensors, alignment: alignment, dataOffset: dataOffset)
    }
}

import Foundation

/// Converts GGML tensor data to Float32.
///
/// Block layouts (little-endian, blocks laid out one after another along each row):
/// - `Q8_0`: 32 values; f16 scale `d`, 32 × int8 `q`; `x = d·q`.
/// - `Q4_0`: 32 values; f16 `d`, 16 bytes of nibbles; byte `j` holds value `j` in its low
///   nibble and value `j+16` in its high nibble; `x = d·(q − 8)`.
/// - `Q4_1`: 32 values; f16 `d`, f16 `m`, nibbles as `Q4_0`; `x = d·q + m`.
/// - `Q4_K`: 256 values in 8 sub-blocks of 32; f16 `d`, f16 `dmin`, 12 bytes packing eight
///   6-bit scales and eight 6-bit mins, 128 bytes of nibbles. Each group of 64 values uses 32
///   bytes: low nibbles are the first sub-block, high nibbles the second;
///   `x = d·scale·q − dmin·min`.
/// - `Q6_K`: 256 values; 128 bytes of low 4 bits `ql`, 64 bytes of high 2 bits `qh`, 16 int8
///   scales (one per 16 values), f16 `d`; `x = d·scale·(q − 32)`.
public enum GGUFDequantizer {
    /// Converts `count` elements of `type` stored in `bytes` to Float32.
    /// - Parameters:
    ///   - type: the GGML element type.
    ///   - bytes: the tensor data, at least `count / blockElements * blockBytes` bytes.
    ///   - count: the number of elements; a multiple of the type's block size.
    /// - Throws: `GGUFError(.unsupported)` for types not handled here, `.malformed` when the
    ///   sizes disagree (the file name is not known here: callers add it).
    public static func dequantize(type: GGMLType, bytes: UnsafeRawBufferPointer, count: Int) throws -> [Float] {
        guard let geometry = type.blockGeometry, type.isDequantizable else {
            throw GGUFError(.unsupported, file: "<tensor data>", "cannot dequantize \(type)")
        }
        guard count >= 0, count % geometry.elements == 0 else {
            throw GGUFError(.malformed, file: "<tensor data>", "\(count) elements is not a multiple of the \(type) block size \(geometry.elements)")
        }
        let blocks = count / geometry.elements
        guard bytes.count >= blocks * geometry.bytes else {
            throw GGUFError(.truncated, file: "<tensor data>", "\(count) \(type) elements need \(blocks * geometry.bytes) bytes, only \(bytes.count) given")
        }
        if count == 0 { return [] }
        guard let source = bytes.baseAddress else {
            throw GGUFError(.truncated, file: "<tensor data>", "no bytes given for \(count) \(type) elements")
        }
        return [Float](unsafeUninitializedCapacity: count) { out, initialized in
            guard let dst = out.baseAddress else { return }
            switch type.rawValue {
            case GGMLType.f32.rawValue:
                for i in 0..<count {
                    dst[i] = Float(bitPattern: UInt32(littleEndian: source.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
                }
            case GGMLType.f16.rawValue:
                for i in 0..<count { dst[i] = half(source, 2 * i) }
            case GGMLType.bf16.rawValue:
                for i in 0..<count {
                    let raw = UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                    dst[i] = Float(bitPattern: UInt32(raw) << 16)
                }
            case GGMLType.q8_0.rawValue:
                for b in 0..<blocks { q8_0(source + b * 34, dst + b * 32) }
            case GGMLType.q4_0.rawValue:
                for b in 0..<blocks { q4_0(source + b * 18, dst + b * 32) }
            case GGMLType.q4_1.rawValue:
                for b in 0..<blocks { q4_1(source + b * 20, dst + b * 32) }
            case GGMLType.q4_K.rawValue:
                for b in 0..<blocks { q4_K(source + b * 144, dst + b * 256) }
            case GGMLType.q6_K.rawValue:
                for b in 0..<blocks { q6_K(source + b * 210, dst + b * 256) }
            default:
                break  // excluded by isDequantizable
            }
            initialized = count
        }
    }

    /// An IEEE half-precision value at `offset`, widened to Float.
    @inline(__always)
    static func half(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
        halfToFloat(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
    }

    /// The exact Float of a half's bits, with integer operations and one multiplication:
    /// `Float(Float16(bitPattern:))` calls a library routine on x86-64 CPUs without F16C,
    /// which costs more than the rest of a block's dequantisation. The 15 bits below the
    /// sign, moved up by 13, are a Float32 whose exponent is 112 too small (subnormal halves
    /// become subnormal Float32s of the same mantissa), so multiplying by 2^112 is exact;
    /// infinities and NaNs keep their exponent all ones.
    @inline(__always)
    static func halfToFloat(_ bits: UInt16) -> Float {
        let sign = UInt32(bits & 0x8000) << 16
        let rest = UInt32(bits & 0x7FFF)
        if rest >= 0x7C00 { return Float(bitPattern: sign | 0x7F80_0000 | ((rest & 0x3FF) << 13)) }
        return Float(bitPattern: (Float(bitPattern: rest << 13) * 0x1p112).bitPattern | sign)
    }

    @inline(__always)
    static func q8_0(_ block: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(block, 0)
        let q = (block + 2).assumingMemoryBound(to: Int8.self)
        for i in 0..<32 { y[i] = d * Float(q[i]) }
    }

    @inline(__always)
    static func q4_0(_ block: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(block, 0)
        let q = (block + 2).assumingMemoryBound(to: UInt8.self)
        for j in 0..<16 {
            y[j] = d * Float(Int(q[j] & 0x0F) - 8)
            y[j + 16] = d * Float(Int(q[j] >> 4) - 8)
        }
    }

    @inline(__always)
    static func q4_1(_ block: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(block, 0)
        let m = half(block, 2)
        let q = (block + 4).assumingMemoryBound(to: UInt8.self)
        for j in 0..<16 {
            y[j] = d * Float(q[j] & 0x0F) + m
            y[j + 16] = d * Float(q[j] >> 4) + m
        }
    }

    /// The 6-bit scale and min of sub-block `j` (0..<8) from Q4_K's 12 packed bytes: sub-blocks
    /// 0–3 keep theirs in the low 6 bits of bytes 0–3 (scales) and 4–7 (mins); sub-blocks 4–7
    /// keep their low 4 bits in bytes 8–11 (scale low nibble, min high nibble) and their top
    /// 2 bits in the top 2 bits of bytes 0–3 (scales) and 4–7 (mins).
    @inline(__always)
    static func scaleMinK4(_ j: Int, _ s: UnsafePointer<UInt8>) -> (scale: Float, min: Float) {
        if j < 4 {
            return (Float(s[j] & 63), Float(s[j + 4] & 63))
        }
        let scale = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4)
        let min = (s[j + 4] >> 4) | ((s[j] >> 6) << 4)
        return (Float(scale), Float(min))
    }

    @inline(__always)
    static func q4_K(_ block: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(block, 0)
        let dmin = half(block, 2)
        let scales = (block + 4).assumingMemoryBound(to: UInt8.self)
        let q = (block + 16).assumingMemoryBound(to: UInt8.self)
        for group in 0..<4 {
            let (s1, m1) = scaleMinK4(2 * group, scales)
            let (s2, m2) = scaleMinK4(2 * group + 1, scales)
            let d1 = d * s1, min1 = dmin * m1
            let d2 = d * s2, min2 = dmin * m2
            let qs = q + 32 * group
            let out = y + 64 * group
            for l in 0..<32 {
                out[l] = d1 * Float(qs[l] & 0x0F) - min1
                out[l + 32] = d2 * Float(qs[l] >> 4) - min2
            }
        }
    }

    @inline(__always)
    static func q6_K(_ block: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let ql = block.assumingMemoryBound(to: UInt8.self)
        let qh = (block + 128).assumingMemoryBound(to: UInt8.self)
        let sc = (block + 192).assumingMemoryBound(to: Int8.self)
        let d = half(block, 208)
        // Two halves of 128 values; in each, value l (0..<32) and its companions at +32, +64,
        // +96 share the high-bit byte qh[l], two bits each.
        for half in 0..<2 {
            let l4 = ql + 64 * half
            let h = qh + 32 * half
            let s = sc + 8 * half
            let out = y + 128 * half
            for l in 0..<32 {
                let group = l / 16
                let high = Int(h[l])
                let v1 = Int((l4[l] & 0x0F)) | ((high & 3) << 4)
                let v2 = Int((l4[l + 32] & 0x0F)) | (((high >> 2) & 3) << 4)
                let v3 = Int((l4[l] >> 4)) | (((high >> 4) & 3) << 4)
                let v4 = Int((l4[l + 32] >> 4)) | (((high >> 6) & 3) << 4)
                out[l] = d * Float(s[group]) * Float(v1 - 32)
                out[l + 32] = d * Float(s[group + 2]) * Float(v2 - 32)
                out[l + 64] = d * Float(s[group + 4]) * Float(v3 - 32)
                out[l + 96] = d * Float(s[group + 6]) * Float(v4 - 32)
            }
        }
    }
}

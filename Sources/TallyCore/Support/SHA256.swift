import Foundation

/// SHA-256 (FIPS 180-4), implemented here so that TallyCore needs no crypto library: ledger
/// cache keys, fine-tuning job keys, and checksums of downloaded assets.
///
/// Use the one-shot helpers for small inputs, or feed a large input in pieces:
/// ```swift
/// SHA256.hexDigest(of: "abc")                  // "ba7816bf…"
/// let fileHex = try SHA256.hexDigest(ofFile: url)
/// var hasher = SHA256()
/// hasher.update(Data("abc".utf8))
/// let hex = hasher.finalize().hexString
/// ```
public struct SHA256: Sendable {
    /// A finished 32-byte digest.
    public struct Digest: Sendable, Hashable, CustomStringConvertible {
        /// The 32 digest bytes, most significant first.
        public let bytes: [UInt8]

        /// The digest as 64 lowercase hexadecimal characters.
        public var hexString: String {
            let digits: [Character] = Array("0123456789abcdef")
            var text = ""
            text.reserveCapacity(64)
            for byte in bytes {
                text.append(digits[Int(byte >> 4)])
                text.append(digits[Int(byte & 0x0f)])
            }
            return text
        }

        public var description: String { hexString }
    }

    private static let roundConstants: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ]

    private var state: [UInt32] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
    ]
    /// Bytes not yet forming a whole 64-byte block.
    private var pending: [UInt8] = []
    private var totalLength: UInt64 = 0

    /// Creates a hasher with the standard initial state.
    public init() {
        pending.reserveCapacity(64)
    }

    /// Feeds more bytes into the hash.
    /// - Parameter data: the next bytes of the message.
    public mutating func update(_ data: Data) {
        data.withUnsafeBytes { raw in
            update(UnsafeRawBufferPointer(raw))
        }
    }

    /// Feeds more bytes into the hash.
    /// - Parameter bytes: the next bytes of the message.
    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// Feeds more bytes into the hash.
    /// - Parameter buffer: the next bytes of the message.
    public mutating func update(_ buffer: UnsafeRawBufferPointer) {
        totalLength &+= UInt64(buffer.count)
        var offset = 0
        if !pending.isEmpty {
            let take = min(64 - pending.count, buffer.count)
            pending.append(contentsOf: buffer[0..<take])
            offset = take
            if pending.count == 64 {
                pending.withUnsafeBytes { compressBlocks($0) }
                pending.removeAll(keepingCapacity: true)
            }
        }
        let whole = (buffer.count - offset) / 64 * 64
        if whole > 0 {
            compressBlocks(UnsafeRawBufferPointer(rebasing: buffer[offset..<(offset + whole)]))
            offset += whole
        }
        if offset < buffer.count {
            pending.append(contentsOf: buffer[offset..<buffer.count])
        }
    }

    /// Pads the message and returns its digest. The hasher should not be used afterwards.
    public mutating func finalize() -> Digest {
        let bitLength = totalLength &* 8
        var tail = pending
        tail.append(0x80)
        while tail.count % 64 != 56 { tail.append(0) }
        for shift in stride(from: 56, through: 0, by: -8) {
            tail.append(UInt8(truncatingIfNeeded: bitLength >> UInt64(shift)))
        }
        tail.withUnsafeBytes { compressBlocks($0) }
        pending.removeAll()
        var out: [UInt8] = []
        out.reserveCapacity(32)
        for word in state {
            out.append(UInt8(truncatingIfNeeded: word >> 24))
            out.append(UInt8(truncatingIfNeeded: word >> 16))
            out.append(UInt8(truncatingIfNeeded: word >> 8))
            out.append(UInt8(truncatingIfNeeded: word))
        }
        return Digest(bytes: out)
    }

    /// Compresses whole 64-byte blocks into the state.
    private mutating func compressBlocks(_ blocks: UnsafeRawBufferPointer) {
        guard let base = blocks.baseAddress, blocks.count >= 64 else { return }
        let count = blocks.count / 64
        let schedule = UnsafeMutablePointer<UInt32>.allocate(capacity: 64)
        defer { schedule.deallocate() }
        state.withUnsafeMutableBufferPointer { words in
            SHA256.roundConstants.withUnsafeBufferPointer { constants in
                if let h = words.baseAddress, let k = constants.baseAddress {
                    SHA256.compress(base, blockCount: count, state: h, schedule: schedule, constants: k)
                }
            }
        }
    }

    /// The SHA-256 compression function over `blockCount` consecutive blocks. Optimised even in
    /// debug builds (hashing a 98 MB model at -Onone would otherwise take a minute).
    @_optimize(speed)
    private static func compress(_ data: UnsafeRawPointer, blockCount: Int, state: UnsafeMutablePointer<UInt32>, schedule w: UnsafeMutablePointer<UInt32>, constants k: UnsafePointer<UInt32>) {
        for block in 0..<blockCount {
            let bytes = data + block &* 64
            for i in 0..<16 {
                w[i] = UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: i &* 4, as: UInt32.self))
            }
            for i in 16..<64 {
                let x = w[i &- 15], y = w[i &- 2]
                let s0 = ((x >> 7) | (x << 25)) ^ ((x >> 18) | (x << 14)) ^ (x >> 3)
                let s1 = ((y >> 17) | (y << 15)) ^ ((y >> 19) | (y << 13)) ^ (y >> 10)
                w[i] = w[i &- 16] &+ s0 &+ w[i &- 7] &+ s1
            }
            var a = state[0], b = state[1], c = state[2], d = state[3]
            var e = state[4], f = state[5], g = state[6], h = state[7]
            for i in 0..<64 {
                let s1 = ((e >> 6) | (e << 26)) ^ ((e >> 11) | (e << 21)) ^ ((e >> 25) | (e << 7))
                let choice = (e & f) ^ (~e & g)
                let t1 = h &+ s1 &+ choice &+ k[i] &+ w[i]
                let s0 = ((a >> 2) | (a << 30)) ^ ((a >> 13) | (a << 19)) ^ ((a >> 22) | (a << 10))
                let majority = (a & b) ^ (a & c) ^ (b & c)
                let t2 = s0 &+ majority
                h = g; g = f; f = e; e = d &+ t1
                d = c; c = b; b = a; a = t1 &+ t2
            }
            state[0] &+= a; state[1] &+= b; state[2] &+= c; state[3] &+= d
            state[4] &+= e; state[5] &+= f; state[6] &+= g; state[7] &+= h
        }
    }

    // MARK: One-shot helpers

    /// The 32-byte digest of `bytes`.
    /// - Parameter bytes: the whole message.
    public static func digest<Bytes: Collection>(_ bytes: Bytes) -> [UInt8] where Bytes.Element == UInt8 {
        var hasher = SHA256()
        let handled: Void? = bytes.withContiguousStorageIfAvailable { buffer in
            hasher.update(UnsafeRawBufferPointer(buffer))
        }
        if handled == nil { hasher.update(Array(bytes)) }
        return hasher.finalize().bytes
    }

    /// The lowercase hex digest of `bytes` (an array, `Data`, a slice…).
    /// - Parameter bytes: the whole message.
    public static func hexDigest<Bytes: Collection>(of bytes: Bytes) -> String where Bytes.Element == UInt8 {
        Digest(bytes: digest(bytes)).hexString
    }

    /// The lowercase hex digest of a string's UTF-8 bytes.
    /// - Parameter text: the message.
    public static func hexDigest(of text: String) -> String { hexDigest(of: Array(text.utf8)) }

    /// The lowercase hex digest of a file's bytes, read in 1 MiB pieces.
    /// - Parameter url: the file to hash.
    /// - Throws: `TallyError` with code `.io` when the file cannot be opened or read.
    public static func hexDigest(ofFile url: URL) throws -> String {
        let handle: FileHandle
        do {
            handle = try FileHandle(forReadingFrom: url)
        } catch {
            throw TallyError(code: .io, message: "cannot open \(url.path) to compute its SHA-256", underlying: error)
        }
        defer { try? handle.close() }
        var hasher = SHA256()
        do {
            while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
                hasher.update(chunk)
            }
        } catch {
            throw TallyError(code: .io, message: "cannot read \(url.path) to compute its SHA-256", underlying: error)
        }
        return hasher.finalize().hexString
    }
}

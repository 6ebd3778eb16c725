/// GPT-2's reversible byte ↔ character mapping used by byte-level BPE.
///
/// Every byte becomes one printable Unicode character: the printable Latin-1 bytes
/// (`!`…`~`, `¡`…`¬`, `®`…`ÿ`) stand for themselves, and the remaining 68 bytes take the
/// characters U+0100, U+0101, … in byte order (so a space, 0x20, is `Ġ` U+0120).
enum ByteLevel {
    /// `scalars[b]` is the character that stands for byte `b`.
    static let scalars: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 256
        for byte in 0..<256 {
            let printable = (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
            let scalar: UInt32
            if printable {
                scalar = UInt32(byte)
            } else {
                scalar = next
                next += 1
            }
            table[byte] = Unicode.Scalar(scalar) ?? " "  // every value here is a valid scalar
        }
        return table
    }()

    /// The byte each byte-level character stands for, keyed by its scalar value.
    static let bytes: [UInt32: UInt8] = {
        var map: [UInt32: UInt8] = [:]
        for (byte, scalar) in scalars.enumerated() { map[scalar.value] = UInt8(byte) }
        return map
    }()

    /// `text`'s UTF-8 bytes, each replaced by its byte-level character.
    static func encode(_ text: Substring) -> String {
        var out = String.UnicodeScalarView()
        for byte in text.utf8 { out.append(scalars[Int(byte)]) }
        return String(out)
    }

    /// The bytes a byte-level token stands for; a token holding a character outside the
    /// mapping (an added token such as `<|im start|>` with a real space) stands for its own
    /// UTF-8 bytes, as Hugging Face's ByteLevel decoder does.
    static func decode(token: String, into out: inout [UInt8]) {
        let start = out.count
        for scalar in token.unicodeScalars {
            guard let byte = bytes[scalar.value] else {
                out.removeSubrange(start...)
                out.append(contentsOf: token.utf8)
                return
            }
            out.append(byte)
        }
    }
}

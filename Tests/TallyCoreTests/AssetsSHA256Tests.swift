import Foundation
import TallyTesting
import Testing
@testable import TallyCore

@Suite("SHA-256")
struct AssetsSHA256Tests {
    @Test("FIPS 180-2 test vectors", arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
        ("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
         "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"),
    ])
    func standardVectors(message: String, expected: String) {
        #expect(SHA256.hexDigest(of: message) == expected)
    }

    @Test("one million 'a' bytes")
    func millionA() {
        #expect(SHA256.hexDigest(of: Data(repeating: UInt8(ascii: "a"), count: 1_000_000))
            == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    /// Lengths around the padding boundaries (values from Python's hashlib).
    @Test("padding boundaries", arguments: [
        (55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"),
        (56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"),
        (63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"),
        (64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"),
        (65, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0"),
        (119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb"),
        (120, "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c"),
    ])
    func boundaries(length: Int, expected: String) {
        #expect(SHA256.hexDigest(of: Data(repeating: UInt8(ascii: "a"), count: length)) == expected)
    }

    @Test("feeding pieces of any size gives the one-shot digest")
    func streaming() {
        var generator = VaderGroundTruth.SplitMix64(seed: 42)
        let message = (0..<1000).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        let oneShot = SHA256.hexDigest(of: Data(message))
        for pieceSize in [1, 3, 63, 64, 65, 200] {
            var hasher = SHA256()
            var offset = 0
            while offset < message.count {
                let end = min(message.count, offset + pieceSize)
                hasher.update(Array(message[offset..<end]))
                offset = end
            }
            #expect(hasher.finalize().hexString == oneShot, "piece size \(pieceSize)")
        }
    }

    @Test("a file's digest equals the digest of its bytes; a missing file is a clear error")
    func file() throws {
        let directory = try assetsTestDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("blob.bin")
        let bytes = Data((0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        try bytes.write(to: url)
        #expect(try SHA256.hexDigest(ofFile: url) == SHA256.hexDigest(of: bytes))

        let missing = directory.appendingPathComponent("missing.bin")
        let error = #expect(throws: TallyError.self) { try SHA256.hexDigest(ofFile: missing) }
        #expect(error?.code == .io)
        #expect(error?.message.contains("missing.bin") == true)
    }
}

/// A fresh, empty directory under the system's temporary directory.
func assetsTestDirectory() throws -> URL {
    try TestScratch.directory()
}

import Foundation

/// Helpers shared by the fuzz targets.
public enum Fuzz {
    /// The input as `Data`.
    public static func data(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> Data {
        Data(bytes: bytes, count: count)
    }

    /// A scratch directory for this process (in memory where the system offers it).
    public static let directory: URL = {
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? URL(fileURLWithPath: "/dev/shm") : FileManager.default.temporaryDirectory
        let url = base.appendingPathComponent("tally-fuzz-\(getpid())", isDirectory: true)
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    /// Writes `data` to a file called `name` in the scratch directory and returns its URL;
    /// the parsers under test read files.
    public static func file(_ name: String, _ data: Data) -> URL {
        let url = directory.appendingPathComponent(name)
        try? data.write(to: url)
        return url
    }

    /// Splits the input at its first `0x00` byte: a selector part and the rest.
    public static func split(_ data: Data) -> (head: Data, rest: Data) {
        guard let zero = data.firstIndex(of: 0) else { return (Data(), data) }
        return (data[data.startIndex..<zero], data[(zero + 1)...])
    }
}

/// libFuzzer's driver (in its runtime, linked by `-sanitize=fuzzer`).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ body: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> CInt

extension Fuzz {
    /// Runs libFuzzer on `body` with the command line `argc`/`argv`.
    ///
    /// In a debug build SwiftPM links an executable target's entry point as `<target>_main`
    /// (so that tests can import it) instead of using libFuzzer's `main`; each target's
    /// `<target>_main` calls this, which hands over to libFuzzer's driver.
    public static func run(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>, _ body: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> CInt {
        var count = argc
        var arguments = argv
        return LLVMFuzzerRunDriver(&count, &arguments, body)
    }
}

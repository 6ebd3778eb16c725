import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only memory mapping of a whole file, unmapped when released.
final class MappedFile {
    let url: URL
    let bytes: UnsafeRawPointer?
    let size: Int

    /// Maps `url` read-only.
    /// - Throws: `TallyError(.io)` naming the file when it cannot be opened or mapped.
    init(url: URL) throws {
        self.url = url
        let fd = open(url.path, O_RDONLY)
        guard fd >= 0 else {
            throw ModelFileError.io(url, "cannot open the file (\(String(cString: strerror(errno))))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw ModelFileError.io(url, "cannot read the file's size (\(String(cString: strerror(errno))))")
        }
        size = Int(st.st_size)
        if size == 0 {
            bytes = nil
            return
        }
        let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else {
            throw ModelFileError.io(url, "cannot memory-map the file (\(String(cString: strerror(errno))))")
        }
        bytes = UnsafeRawPointer(p)
    }

    deinit {
        if let bytes { munmap(UnsafeMutableRawPointer(mutating: bytes), size) }
    }
}

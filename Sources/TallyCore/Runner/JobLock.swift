import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An exclusive lock on one fine-tuning job across processes: two `tally run` processes on one
/// ledger never train the same job at once in the same work directory. The second waits,
/// then finds the job finished in the ledger and reuses it. The lock is an advisory `flock`
/// on `<work directory>.lock`, released when the holder finishes or dies (kill -9 included).
final class JobLock: Sendable {
    private let descriptor: Mutex<Int32>

    private init(descriptor: Int32) { self.descriptor = Mutex(descriptor) }

    deinit { release() }

    /// Takes the lock of `workDirectory`, waiting while another process holds it.
    /// - Parameters:
    ///   - workDirectory: the job's work directory.
    ///   - waiting: called once when another process holds the lock.
    /// - Throws: `TallyError(.io)` when the lock file cannot be opened; `CancellationError`
    ///   when the task is cancelled while waiting.
    static func acquire(_ workDirectory: URL, waiting: () -> Void) async throws -> JobLock {
        let path = workDirectory.path + ".lock"
        try FileManager.default.createDirectory(at: workDirectory.deletingLastPathComponent(), withIntermediateDirectories: true)
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw TallyError(code: .io, message: "cannot open the fine-tuning lock \(path) (\(String(cString: strerror(errno)))); check that the Tally home is writable")
        }
        var announced = false
        while flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else {
                let reason = String(cString: strerror(errno))
                close(descriptor)
                throw TallyError(code: .io, message: "cannot lock \(path) (\(reason)); check that the Tally home is on a local file system")
            }
            if !announced {
                waiting()
                announced = true
            }
            do {
                try await Task.sleep(for: .milliseconds(250))
            } catch {
                close(descriptor)
                throw error
            }
        }
        return JobLock(descriptor: descriptor)
    }

    /// Releases the lock (closing the file releases it); later calls do nothing.
    func release() {
        descriptor.withLock { fd in
            if fd >= 0 { close(fd) }
            fd = -1
        }
    }
}

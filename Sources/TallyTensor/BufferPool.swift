import Synchronization

/// Keeps freed tensor buffers of 32 MiB and more for reuse.
///
/// glibc serves allocations this large with `mmap` and returns them with `munmap`, so
/// every training step would fault in and zero the same large activations (logits over a
/// whole vocabulary, for one) again. Buffers below the threshold stay in glibc's heap (see
/// `tally_keep_freed_memory`). At most ``capacityBytes`` are kept; beyond that, freed
/// buffers go back to the system.
enum BufferPool {
    /// Buffers of at least this many floats are pooled (32 MiB, glibc's largest mmap threshold).
    static let minimumCount = (32 << 20) / MemoryLayout<Float>.stride
    /// The most memory the pool keeps while nothing uses it.
    static let capacityBytes = 256 << 20

    private struct State: ~Copyable {
        /// Free buffers by size in floats, as addresses (pointers are not `Sendable`).
        var free: [Int: [UInt]] = [:]
        var bytes = 0
    }

    private static let state = Mutex(State())

    /// Returns an uninitialised buffer of `count` floats.
    static func allocate(_ count: Int) -> UnsafeMutablePointer<Float> {
        let n = max(count, 1)
        if n >= minimumCount {
            let reused: UInt? = state.withLock { s in
                guard var list = s.free[n], let address = list.popLast() else { return nil }
                s.free[n] = list.isEmpty ? nil : list
                s.bytes -= n * MemoryLayout<Float>.stride
                return address
            }
            if let reused, let p = UnsafeMutablePointer<Float>(bitPattern: reused) { return p }
        }
        return .allocate(capacity: n)
    }

    /// Takes back a buffer from ``allocate(_:)`` of the same `count`.
    static func release(_ pointer: UnsafeMutablePointer<Float>, count: Int) {
        let n = max(count, 1)
        if n >= minimumCount {
            let address = UInt(bitPattern: pointer)
            let kept = state.withLock { s -> Bool in
                let size = n * MemoryLayout<Float>.stride
                guard s.bytes + size <= capacityBytes else { return false }
                s.free[n, default: []].append(address)
                s.bytes += size
                return true
            }
            if kept { return }
        }
        pointer.deallocate()
    }
}

import CCurl
import Foundation
import Synchronization

/// libcurl's process-wide initialisation, done once before the first handle is made.
enum CurlRuntime {
    static let initialised: Bool = curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK

    /// The libcurl version string (`libcurl/7.88.1 OpenSSL/3.0 nghttp2/1.52.0 …`).
    static var version: String { String(cString: curl_version()) }
}

/// A libcurl easy handle. Used by one transfer at a time (the pool hands it out), so the
/// unchecked sendability is confined to handing it between threads, never sharing it.
final class EasyHandle: @unchecked Sendable {
    let raw: UnsafeMutableRawPointer

    init?() {
        guard CurlRuntime.initialised, let raw = curl_easy_init() else { return nil }
        self.raw = raw
    }

    deinit { curl_easy_cleanup(raw) }
}

/// A libcurl share handle: the DNS cache and TLS session cache shared by all easy handles of
/// one client. (libcurl does not support sharing the connection cache across threads; each
/// pooled easy handle keeps its own live connections instead.)
final class ShareHandle: @unchecked Sendable {
    let raw: UnsafeMutableRawPointer
    /// One mutex per `curl_lock_data` value, as libcurl's lock callbacks require.
    private let locks: UnsafeMutablePointer<pthread_mutex_t>
    private static let lockCount = 8

    init?() {
        guard CurlRuntime.initialised, let raw = curl_share_init() else { return nil }
        self.raw = raw
        locks = .allocate(capacity: Self.lockCount)
        for index in 0..<Self.lockCount { pthread_mutex_init(locks + index, nil) }
        let context = UnsafeMutableRawPointer(locks)
        _ = tally_curl_share_setopt_pointer(raw, CURLSHOPT_USERDATA, context)
        _ = tally_curl_share_setopt_lock(raw) { _, data, _, user in
            guard let user else { return }
            let index = min(Int(data.rawValue), ShareHandle.lockCount - 1)
            pthread_mutex_lock(user.assumingMemoryBound(to: pthread_mutex_t.self) + index)
        }
        _ = tally_curl_share_setopt_unlock(raw) { _, data, user in
            guard let user else { return }
            let index = min(Int(data.rawValue), ShareHandle.lockCount - 1)
            pthread_mutex_unlock(user.assumingMemoryBound(to: pthread_mutex_t.self) + index)
        }
        _ = tally_curl_share_setopt_long(raw, CURLSHOPT_SHARE, Int(CURL_LOCK_DATA_DNS.rawValue))
        _ = tally_curl_share_setopt_long(raw, CURLSHOPT_SHARE, Int(CURL_LOCK_DATA_SSL_SESSION.rawValue))
    }

    deinit {
        curl_share_cleanup(raw)
        for index in 0..<Self.lockCount { pthread_mutex_destroy(locks + index) }
        locks.deallocate()
    }
}

/// Idle easy handles kept for reuse: a reused handle keeps its open connections, so
/// consecutive requests to the same host skip the TCP and TLS handshakes.
final class EasyHandlePool: Sendable {
    private let idle = Mutex<[EasyHandle]>([])
    private let capacity: Int
    let share: ShareHandle?

    init(capacity: Int) {
        self.capacity = max(1, capacity)
        share = ShareHandle()
    }

    /// An idle handle, or a new one.
    func checkOut() -> EasyHandle? {
        if let handle = idle.withLock({ $0.popLast() }) { return handle }
        return EasyHandle()
    }

    /// Returns a handle for reuse; beyond capacity it is closed.
    func checkIn(_ handle: EasyHandle) {
        idle.withLock { handles in
            // Beyond capacity the handle is dropped here, which closes its connections.
            if handles.count < capacity { handles.append(handle) }
        }
    }
}

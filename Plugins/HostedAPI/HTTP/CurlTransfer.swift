import CCurl
import Foundation
import Synchronization

/// Transport settings of one client.
struct TransferOptions: Sendable {
    var connectTimeout: Double
    var totalTimeout: Double
    var maxResponseBytes: Int
    /// Seconds without a byte, once the response has begun, after which the attempt fails
    /// as stalled (and is retried); 0 turns the check off.
    var stallTimeout: Double = 0
    /// A CA bundle path (`CURL_CA_BUNDLE` in the environment, as the curl tool reads it).
    var caBundle: String?
}

/// State of one transfer shared with libcurl's callbacks. The body and headers are written
/// only on the transfer's thread; only `cancelled` is touched from elsewhere.
final class TransferContext: @unchecked Sendable {
    let cancelled = Atomic<Bool>(false)
    let limit: Int
    var body = Data()
    var headers: [String: String] = [:]
    var exceeded = false
    /// Longest silence allowed once the response has begun, in nanoseconds (0: no limit).
    let stallNanoseconds: UInt64
    /// When the last response byte (header or body) arrived; 0 before the first.
    var lastActivity: UInt64 = 0
    /// Set when the transfer was abandoned because the response stalled.
    var stalled = false
    let errorBuffer: UnsafeMutablePointer<CChar>

    init(limit: Int, stallTimeout: Double = 0) {
        self.limit = limit
        stallNanoseconds = stallTimeout > 0 ? UInt64(stallTimeout * 1e9) : 0
        errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
    }

    deinit { errorBuffer.deallocate() }

    /// Notes that response bytes arrived.
    func touch() { lastActivity = DispatchTime.now().uptimeNanoseconds }

    /// Whether the response began and then sent nothing for longer than the stall limit.
    var hasStalled: Bool {
        guard stallNanoseconds > 0, lastActivity > 0 else { return false }
        let now = DispatchTime.now().uptimeNanoseconds
        return now > lastActivity && now - lastActivity > stallNanoseconds
    }

    var errorText: String { String(cString: errorBuffer) }
}

enum CurlTransfer {
    /// Runs one request to completion on the calling thread (blocking).
    /// - Throws: `AttemptFailure` for transport problems, `CancellationError` when
    ///   `context.cancelled` was set while it ran.
    static func perform(_ request: HTTPRequest, on handle: EasyHandle, share: ShareHandle?, options: TransferOptions, context: TransferContext) throws -> HTTPResponse {
        let h = handle.raw
        curl_easy_reset(h)
        var headerList: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(headerList) }

        _ = tally_curl_setopt_string(h, CURLOPT_URL, request.url.absoluteString)
        _ = tally_curl_setopt_long(h, CURLOPT_NOSIGNAL, 1)
        _ = tally_curl_setopt_long(h, CURLOPT_FOLLOWLOCATION, 0)
        _ = tally_curl_setopt_long(h, CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_2TLS))
        _ = tally_curl_setopt_long(h, CURLOPT_SSL_VERIFYPEER, 1)
        _ = tally_curl_setopt_long(h, CURLOPT_SSL_VERIFYHOST, 2)
        if let caBundle = options.caBundle { _ = tally_curl_setopt_string(h, CURLOPT_CAINFO, caBundle) }
        _ = tally_curl_setopt_long(h, CURLOPT_CONNECTTIMEOUT_MS, max(1, Int(options.connectTimeout * 1000)))
        _ = tally_curl_setopt_long(h, CURLOPT_TIMEOUT_MS, max(1, Int(options.totalTimeout * 1000)))
        _ = tally_curl_setopt_off(h, CURLOPT_MAXFILESIZE_LARGE, curl_off_t(options.maxResponseBytes))
        _ = tally_curl_setopt_string(h, CURLOPT_ACCEPT_ENCODING, "")
        _ = tally_curl_setopt_long(h, CURLOPT_TCP_KEEPALIVE, 1)
        _ = tally_curl_setopt_pointer(h, CURLOPT_ERRORBUFFER, UnsafeMutableRawPointer(context.errorBuffer))
        if let share { _ = tally_curl_setopt_pointer(h, CURLOPT_SHARE, share.raw) }

        switch request.method {
        case "GET":
            _ = tally_curl_setopt_long(h, CURLOPT_HTTPGET, 1)
        case "POST":
            _ = tally_curl_setopt_long(h, CURLOPT_POST, 1)
        default:
            _ = tally_curl_setopt_string(h, CURLOPT_CUSTOMREQUEST, request.method)
        }
        if let body = request.body {
            _ = tally_curl_setopt_off(h, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count))
            if body.isEmpty {
                _ = tally_curl_setopt_string(h, CURLOPT_COPYPOSTFIELDS, "")
            } else {
                _ = body.withUnsafeBytes { bytes in
                    tally_curl_setopt_pointer(h, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: bytes.baseAddress))
                }
            }
        }

        for (name, value) in request.headers { headerList = curl_slist_append(headerList, "\(name): \(value)") }
        // No `Expect: 100-continue` round trip before bodies.
        headerList = curl_slist_append(headerList, "Expect:")
        _ = tally_curl_setopt_slist(h, CURLOPT_HTTPHEADER, headerList)

        let user = Unmanaged.passUnretained(context).toOpaque()
        _ = tally_curl_setopt_pointer(h, CURLOPT_WRITEDATA, user)
        _ = tally_curl_setopt_write_callback(h) { data, size, count, user in
            guard let user else { return 0 }
            let context = Unmanaged<TransferContext>.fromOpaque(user).takeUnretainedValue()
            let length = size * count
            context.touch()
            if context.body.count + length > context.limit {
                context.exceeded = true
                return 0  // aborts the transfer with CURLE_WRITE_ERROR
            }
            if let data, length > 0 { data.withMemoryRebound(to: UInt8.self, capacity: length) { context.body.append($0, count: length) } }
            return length
        }
        _ = tally_curl_setopt_pointer(h, CURLOPT_HEADERDATA, user)
        _ = tally_curl_setopt_header_callback(h) { data, size, count, user in
            let length = size * count
            guard let user, let data else { return length }
            let context = Unmanaged<TransferContext>.fromOpaque(user).takeUnretainedValue()
            context.touch()
            let bytes = UnsafeRawBufferPointer(start: data, count: length)
            let line = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            if line.hasPrefix("HTTP/") {
                context.headers = [:]  // a new response (after 100 Continue or similar)
            } else if let colon = line.firstIndex(of: ":") {
                let name = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
                let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                context.headers[name] = value
            }
            return length
        }
        _ = tally_curl_setopt_long(h, CURLOPT_NOPROGRESS, 0)
        _ = tally_curl_setopt_pointer(h, CURLOPT_XFERINFODATA, user)
        // Called at least about once a second, also while nothing arrives: aborts on
        // cancellation, and when a response that has begun goes silent for longer than the
        // stall limit. (Not CURLOPT_LOW_SPEED_TIME, which would also cut a server that is
        // still computing its answer before the first byte; `timeout_s` bounds that.)
        _ = tally_curl_setopt_xferinfo_callback(h) { user, _, _, _, _ in
            guard let user else { return 0 }
            let context = Unmanaged<TransferContext>.fromOpaque(user).takeUnretainedValue()
            if context.cancelled.load(ordering: .relaxed) { return 1 }
            if context.hasStalled {
                context.stalled = true
                return 1
            }
            return 0
        }

        let clock = ContinuousClock()
        let start = clock.now
        let code = curl_easy_perform(h)
        let elapsed = start.duration(to: clock.now)
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18

        if context.cancelled.load(ordering: .relaxed) { throw CancellationError() }
        guard code == CURLE_OK else {
            throw failure(for: code, context: context, options: options)
        }
        var status = 0
        _ = tally_curl_getinfo_long(h, CURLINFO_RESPONSE_CODE, &status)
        var version = 0
        _ = tally_curl_getinfo_long(h, CURLINFO_HTTP_VERSION, &version)
        let versionText = version == Int(CURL_HTTP_VERSION_2_0) ? "2" : version == Int(CURL_HTTP_VERSION_3) ? "3" : "1.1"
        return HTTPResponse(status: status, headers: context.headers, body: context.body, httpVersion: versionText, seconds: seconds)
    }

    private static func failure(for code: CURLcode, context: TransferContext, options: TransferOptions) -> AttemptFailure {
        let detail = context.errorText.isEmpty ? String(cString: curl_easy_strerror(code)) : context.errorText
        switch code {
        case CURLE_OPERATION_TIMEDOUT:
            return .timeout(seconds: options.totalTimeout)
        case CURLE_ABORTED_BY_CALLBACK where context.stalled:
            return .stalled(seconds: options.stallTimeout)
        case CURLE_WRITE_ERROR where context.exceeded, CURLE_FILESIZE_EXCEEDED:
            return .oversized(limit: options.maxResponseBytes)
        case CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CONNECT_ERROR, CURLE_SSL_CACERT_BADFILE,
             CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_PINNEDPUBKEYNOTMATCH:
            return .tls(message: detail)
        default:
            return .transport(code: Int(code.rawValue), message: detail)
        }
    }
}

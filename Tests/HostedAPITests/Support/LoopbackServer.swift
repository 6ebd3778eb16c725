#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Synchronization

/// A small HTTP/1.1 server on 127.0.0.1 for tests, written on plain sockets: keep-alive
/// connections, chunked response bodies, and injectable faults. Each connection is served on
/// its own thread; `handler` answers requests that no fault intercepts.
final class LoopbackServer: Sendable {
    /// One parsed request.
    struct Request: Sendable {
        let method: String
        /// Path without the query string.
        let path: String
        let query: [String: String]
        /// Header fields with lower-cased names.
        let headers: [String: String]
        let body: Data
        var text: String { String(decoding: body, as: UTF8.self) }
        var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] }
    }

    /// One response; bodies are sent chunked unless `chunked` is false.
    struct Response: Sendable {
        var status: Int
        var headers: [(String, String)]
        var body: Data
        var chunked = true

        static func json(_ object: Any, status: Int = 200, headers: [(String, String)] = []) -> Response {
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
            return Response(status: status, headers: [("Content-Type", "application/json")] + headers, body: data)
        }
    }

    /// A way to misbehave on the next matching request (the handler is not consulted).
    enum Fault: Sendable, Hashable, CustomStringConvertible {
        /// An error status with a JSON error body and, optionally, a `Retry-After` header.
        case status(Int, retryAfter: String?)
        /// An error status whose `Retry-After` is an HTTP-date this many seconds after the
        /// moment the response is sent.
        case statusRetryAt(Int, secondsAhead: Int)
        /// Reads the request and says nothing for this long, then closes.
        case stall(seconds: Double)
        /// Sends the headers and part of the promised body, then says nothing for this long
        /// (or until the client hangs up), then closes.
        case stallMidBody(seconds: Double)
        /// Sends the headers and half the promised body, then resets the connection.
        case resetMidBody
        /// 200 with a truncated JSON body.
        case malformedJSON
        /// 200 with an HTML body.
        case wrongContentType
        /// 200 with a JSON body of this many bytes.
        case oversized(bytes: Int)

        var description: String {
            switch self {
            case .status(let code, let retryAfter): "status \(code)" + (retryAfter.map { " retry-after \($0)" } ?? "")
            case .statusRetryAt(let code, let ahead): "status \(code) retry-after date +\(ahead)s"
            case .stall(let seconds): "stall \(seconds)s"
            case .stallMidBody(let seconds): "stall mid-body \(seconds)s"
            case .resetMidBody: "reset mid-body"
            case .malformedJSON: "malformed JSON"
            case .wrongContentType: "wrong content type"
            case .oversized(let bytes): "oversized \(bytes) bytes"
            }
        }
    }

    /// What the server did with one request.
    struct LogEntry: Sendable {
        let method: String
        let path: String
        let headers: [String: String]
        let body: Data
        /// The fault injected, or nil when the handler answered.
        let fault: Fault?
        /// The status sent (nil for stalls and resets).
        let status: Int?
        let at: Date
        /// For stalls: seconds until the client hung up, or nil if the server gave up first.
        var clientHungUpAfter: Double? = nil
    }

    private struct State {
        var faults: [(path: String?, method: String?, fault: Fault)] = []
        var log: [LogEntry] = []
        var connections = 0
        var openSockets: Set<Int32> = []
        var stopped = false
    }

    let port: UInt16
    private let listener: Int32
    private let state = Mutex(State())
    private let handler: @Sendable (Request) -> Response

    /// `http://127.0.0.1:PORT`
    var baseURL: URL { URL(string: "http://127.0.0.1:\(port)") ?? URL(fileURLWithPath: "/") }

    /// Starts listening on an ephemeral port.
    init(handler: @escaping @Sendable (Request) -> Response) throws {
        self.handler = handler
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 64) == 0 else {
            close(fd)
            throw POSIXError(.init(rawValue: errno) ?? .EIO)
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        listener = fd
        port = UInt16(bigEndian: address.sin_port)
        let thread = Thread { [self] in acceptLoop() }
        thread.name = "loopback-accept"
        thread.start()
    }

    deinit { stop() }

    /// Stops accepting and closes every open connection. Safe to call more than once.
    func stop() {
        // Under the lock, every socket in the set is still open (a connection thread removes
        // its socket under the lock before closing it), so no descriptor number is reused
        // by another socket while it is shut down here.
        state.withLock { state in
            guard !state.stopped else { return }
            state.stopped = true
            shutdown(listener, Int32(SHUT_RDWR))
            for fd in state.openSockets { shutdown(fd, Int32(SHUT_RDWR)) }
        }
    }

    /// Queues faults for the next requests to `path` (any path when nil) with `method` (any
    /// method when nil), in order.
    func inject(_ faults: [Fault], path: String? = nil, method: String? = nil) {
        state.withLock { $0.faults += faults.map { (path: path, method: method, fault: $0) } }
    }

    /// Every request received so far.
    var log: [LogEntry] { state.withLock { $0.log } }

    /// TCP connections accepted so far.
    var connectionsAccepted: Int { state.withLock { $0.connections } }

    /// Faults still queued.
    var pendingFaults: Int { state.withLock { $0.faults.count } }

    // MARK: - Serving

    private func acceptLoop() {
        while true {
            let fd = accept(listener, nil, nil)
            if fd < 0 {
                if errno == EINTR { continue }
                break
            }
            let admitted = state.withLock { state -> Bool in
                guard !state.stopped else { return false }
                state.connections += 1
                state.openSockets.insert(fd)
                return true
            }
            guard admitted else {
                close(fd)
                break
            }
            let thread = Thread { [self] in serve(fd) }
            thread.name = "loopback-connection"
            thread.start()
        }
        state.withLock { state in
            state.stopped = true  // so a later stop() does not touch the closed descriptor
            close(listener)
        }
    }

    private func serve(_ fd: Int32) {
        // A keep-alive connection idles while the client works; on a starved two-vCPU test run a
        // 30 s limit closed it mid-test (a second connection, an attempt the log never saw).
        // stop() closes open sockets, so a long limit keeps no thread alive after a test.
        var timeout = timeval(tv_sec: 600, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var buffer = Data()
        defer {
            state.withLock { _ = $0.openSockets.remove(fd) }
            close(fd)
        }
        while let request = readRequest(fd, buffer: &buffer) {
            let fault = state.withLock { state -> Fault? in
                guard let index = state.faults.firstIndex(where: { ($0.path == nil || $0.path == request.path) && ($0.method == nil || $0.method == request.method) }) else { return nil }
                return state.faults.remove(at: index).fault
            }
            if let fault {
                let keepGoing = perform(fault, request: request, fd: fd)
                if !keepGoing { return }
                continue
            }
            let response = handler(request)
            record(request, fault: nil, status: response.status)
            guard write(response, to: fd) else { return }
            if request.headers["connection"]?.lowercased() == "close" { return }
        }
    }

    private func record(_ request: Request, fault: Fault?, status: Int?) {
        let entry = LogEntry(method: request.method, path: request.path, headers: request.headers, body: request.body, fault: fault, status: status, at: Date())
        state.withLock { $0.log.append(entry) }
    }

    /// Misbehaves; returns whether the connection stays usable.
    private func perform(_ fault: Fault, request: Request, fd: Int32) -> Bool {
        switch fault {
        case .status(let code, _), .statusRetryAt(let code, _):
            record(request, fault: fault, status: code)
            var headers: [(String, String)] = []
            if case .status(_, let retryAfter?) = fault { headers.append(("Retry-After", retryAfter)) }
            if case .statusRetryAt(_, let ahead) = fault {
                let formatter = DateFormatter()
                formatter.locale = Locale(identifier: "en_US_POSIX")
                formatter.timeZone = TimeZone(identifier: "GMT")
                formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
                headers.append(("Retry-After", formatter.string(from: Date().addingTimeInterval(Double(ahead)))))
            }
            let body: [String: Any] = ["error": ["message": "injected \(code)", "type": code == 429 ? "rate_limit_exceeded" : "server_error", "param": NSNull(), "code": NSNull()]]
            return write(.json(body, status: code, headers: headers), to: fd)
        case .stall(let seconds):
            // Wait without answering; stop early if the client gives up and closes. Measured
            // here, on the server's own thread, so a busy test process cannot skew it.
            // The request is logged before waiting, so a client that retries and finishes
            // while this thread still waits already finds it in the log.
            let start = Date()
            let index = state.withLock { state -> Int in
                state.log.append(LogEntry(method: request.method, path: request.path, headers: request.headers, body: request.body, fault: fault, status: nil, at: start))
                return state.log.count - 1
            }
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, Int32(seconds * 1000))
            if ready > 0 {
                let after = Date().timeIntervalSince(start)
                state.withLock { $0.log[index].clientHungUpAfter = after }
            }
            return false
        case .stallMidBody(let seconds):
            let start = Date()
            let index = state.withLock { state -> Int in
                state.log.append(LogEntry(method: request.method, path: request.path, headers: request.headers, body: request.body, fault: fault, status: nil, at: start))
                return state.log.count - 1
            }
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n{\"id\": \"chatcmpl-stall\", \"choices\": [{\"index\": 0, \"mess"
            _ = sendAll(fd, Data(head.utf8))
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&descriptor, 1, Int32(seconds * 1000)) > 0 {
                let after = Date().timeIntervalSince(start)
                state.withLock { $0.log[index].clientHungUpAfter = after }
            }
            return false
        case .resetMidBody:
            record(request, fault: fault, status: nil)
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n{\"id\": \"chatcmpl-reset\", \"choices\": [{\"index\": 0, \"mess"
            _ = sendAll(fd, Data(head.utf8))
            var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
            return false
        case .malformedJSON:
            record(request, fault: fault, status: 200)
            let body = Data("{\"id\": \"chatcmpl-bad\", \"object\": \"chat.completion\", \"choices\": [{\"index\": 0, \"message\": {\"role\": \"assistant\", \"content\": \"unterminated".utf8)
            return write(Response(status: 200, headers: [("Content-Type", "application/json")], body: body), to: fd)
        case .wrongContentType:
            record(request, fault: fault, status: 200)
            let body = Data("<html><body><h1>502 Bad Gateway</h1></body></html>".utf8)
            return write(Response(status: 200, headers: [("Content-Type", "text/html; charset=utf-8")], body: body), to: fd)
        case .oversized(let bytes):
            record(request, fault: fault, status: 200)
            var body = Data("{\"id\": \"chatcmpl-big\", \"padding\": \"".utf8)
            body.append(Data(repeating: UInt8(ascii: "x"), count: max(0, bytes - 40)))
            body.append(Data("\"}".utf8))
            return write(Response(status: 200, headers: [("Content-Type", "application/json")], body: body), to: fd)
        }
    }

    // MARK: - Wire format

    private func readRequest(_ fd: Int32, buffer: inout Data) -> Request? {
        let separator = Data("\r\n\r\n".utf8)
        while buffer.range(of: separator) == nil {
            guard receive(fd, into: &buffer) else { return nil }
        }
        guard let end = buffer.range(of: separator) else { return nil }
        let head = String(decoding: buffer[buffer.startIndex..<end.lowerBound], as: UTF8.self)
        buffer.removeSubrange(buffer.startIndex..<end.upperBound)
        var lines = head.components(separatedBy: "\r\n")
        let requestLine = lines.removeFirst().split(separator: " ")
        guard requestLine.count >= 2 else { return nil }
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var body = Data()
        if headers["transfer-encoding"]?.lowercased() == "chunked" {
            while true {
                while buffer.range(of: Data("\r\n".utf8)) == nil { guard receive(fd, into: &buffer) else { return nil } }
                guard let lineEnd = buffer.range(of: Data("\r\n".utf8)) else { return nil }
                let sizeText = String(decoding: buffer[buffer.startIndex..<lineEnd.lowerBound], as: UTF8.self)
                guard let size = Int(sizeText.split(separator: ";").first ?? "", radix: 16) else { return nil }
                buffer.removeSubrange(buffer.startIndex..<lineEnd.upperBound)
                while buffer.count < size + 2 { guard receive(fd, into: &buffer) else { return nil } }
                body.append(buffer.prefix(size))
                buffer.removeSubrange(buffer.startIndex..<(buffer.startIndex + size + 2))
                if size == 0 { break }
            }
        } else if let length = headers["content-length"].flatMap({ Int($0) }), length > 0 {
            while buffer.count < length { guard receive(fd, into: &buffer) else { return nil } }
            body = Data(buffer.prefix(length))
            buffer.removeSubrange(buffer.startIndex..<(buffer.startIndex + length))
        }
        let target = String(requestLine[1])
        let parts = target.split(separator: "?", maxSplits: 1)
        var query: [String: String] = [:]
        if parts.count == 2 {
            for pair in parts[1].split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1)
                let name = String(kv[0]).removingPercentEncoding ?? String(kv[0])
                query[name] = kv.count == 2 ? (String(kv[1]).removingPercentEncoding ?? String(kv[1])) : ""
            }
        }
        return Request(method: String(requestLine[0]), path: String(parts.first ?? ""), query: query, headers: headers, body: body)
    }

    private func receive(_ fd: Int32, into buffer: inout Data) -> Bool {
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        let count = recv(fd, &chunk, chunk.count, 0)
        guard count > 0 else { return false }
        buffer.append(contentsOf: chunk[0..<count])
        return true
    }

    private func write(_ response: Response, to fd: Int32) -> Bool {
        var head = "HTTP/1.1 \(response.status) \(reason(response.status))\r\n"
        for (name, value) in response.headers { head += "\(name): \(value)\r\n" }
        if response.chunked {
            head += "Transfer-Encoding: chunked\r\n\r\n"
            guard sendAll(fd, Data(head.utf8)) else { return false }
            var offset = 0
            // Uneven chunk sizes exercise the client's chunked decoding.
            var size = 7
            while offset < response.body.count {
                let end = min(offset + size, response.body.count)
                var chunk = Data(String(end - offset, radix: 16).utf8)
                chunk.append(Data("\r\n".utf8))
                chunk.append(response.body[offset..<end])
                chunk.append(Data("\r\n".utf8))
                guard sendAll(fd, chunk) else { return false }
                offset = end
                size = size >= 4096 ? 7 : size * 3
            }
            return sendAll(fd, Data("0\r\n\r\n".utf8))
        }
        head += "Content-Length: \(response.body.count)\r\n\r\n"
        var data = Data(head.utf8)
        data.append(response.body)
        return sendAll(fd, data)
    }

    private func sendAll(_ fd: Int32, _ data: Data) -> Bool {
        data.withUnsafeBytes { bytes -> Bool in
            guard let base = bytes.baseAddress else { return true }
            var offset = 0
            while offset < bytes.count {
                let sent = send(fd, base + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
                if sent <= 0 { return false }
                offset += sent
            }
            return true
        }
    }

    private func reason(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 408: "Request Timeout"
        case 409: "Conflict"
        case 429: "Too Many Requests"
        case 500: "Internal Server Error"
        case 503: "Service Unavailable"
        default: "Status"
        }
    }
}

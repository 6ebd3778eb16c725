import Foundation

/// One HTTP request as the hosted backends send it.
public struct HTTPRequest: Sendable {
    /// `GET`, `POST`, …
    public var method: String
    /// The full URL, query included.
    public var url: URL
    /// Header fields, in order. Values holding secrets are sent but never logged.
    public var headers: [(name: String, value: String)]
    /// The request body (sent as is), or nil.
    public var body: Data?
    /// Whether sending the request twice is harmless. Non-idempotent requests (creating a
    /// paid job) are retried only after failures that prove the server did not act on them.
    public var idempotent: Bool

    /// Builds a request; see the properties for each parameter.
    public init(method: String, url: URL, headers: [(name: String, value: String)] = [], body: Data? = nil, idempotent: Bool = true) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.idempotent = idempotent
    }

    /// `METHOD /path` for messages (never the query string, which may hold ids only, or headers).
    var summary: String { "\(method) \(url.path.isEmpty ? "/" : url.path)" }

    /// The host (and port when not the default), for messages.
    var hostDescription: String {
        guard let host = url.host else { return url.absoluteString }
        if let port = url.port { return "\(host):\(port)" }
        return host
    }
}

/// A response read in full.
public struct HTTPResponse: Sendable {
    /// The HTTP status code.
    public let status: Int
    /// Header fields with lower-cased names; a repeated field keeps its last value.
    public let headers: [String: String]
    /// The body, decoded from any content encoding.
    public let body: Data
    /// 1.1 or 2, as negotiated.
    public let httpVersion: String
    /// Seconds from sending the request to the last byte.
    public let seconds: Double

    /// Builds a response (the client does; tests may too).
    public init(status: Int, headers: [String: String], body: Data, httpVersion: String, seconds: Double) {
        self.status = status
        self.headers = headers
        self.body = body
        self.httpVersion = httpVersion
        self.seconds = seconds
    }

    /// The value of a header field (case-insensitive name).
    public func header(_ name: String) -> String? { headers[name.lowercased()] }

    /// Whether the body is declared as JSON (`application/json`, `…+json`).
    public var isJSON: Bool {
        guard let type = header("content-type")?.lowercased() else { return false }
        let mime = type.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        return mime == "application/json" || mime.hasSuffix("+json")
    }
}

import Foundation
import TallyCore

/// Why one HTTP attempt failed; decides whether it is retried.
enum AttemptFailure: Error, Sendable {
    /// libcurl could not complete the exchange (`code` is a CURLcode).
    case transport(code: Int, message: String)
    /// The server did not answer within the timeout.
    case timeout(seconds: Double)
    /// The response began, then nothing arrived for `seconds` (`stall_timeout_s`).
    case stalled(seconds: Double)
    /// The response exceeded `max_response_bytes`.
    case oversized(limit: Int)
    /// A non-2xx status.
    case status(HTTPResponse)
    /// A 2xx answer that cannot be used (malformed JSON, wrong content type, missing fields).
    case badResponse(String)
    /// TLS certificate or handshake failure: never retried.
    case tls(message: String)

    /// CURLcodes for failures where the request never reached the server (safe to resend
    /// even when not idempotent): could not resolve, could not connect.
    static let neverSentCodes: Set<Int> = [5, 6, 7]
    /// CURLcodes worth retrying: resolve/connect failures, send/receive errors, partial
    /// transfers, empty replies, HTTP/2 stream errors.
    static let retryableCodes: Set<Int> = [5, 6, 7, 16, 18, 52, 55, 56, 92, 95]

    /// Whether another attempt may succeed (and, for non-idempotent requests, cannot cause a
    /// duplicate side effect).
    func isRetryable(idempotent: Bool) -> Bool {
        switch self {
        case .transport(let code, _):
            return idempotent ? Self.retryableCodes.contains(code) : Self.neverSentCodes.contains(code)
        case .timeout, .stalled, .oversized, .badResponse:
            return idempotent
        case .status(let response):
            switch response.status {
            case 429: return true  // rejected before any work
            case 408, 409: return idempotent
            case 500...599: return idempotent || response.status == 503
            default: return false
            }
        case .tls:
            return false
        }
    }

    /// Whether a non-idempotent request might have taken effect on the server despite failing.
    var mayHaveTakenEffect: Bool {
        switch self {
        case .transport(let code, _): return !Self.neverSentCodes.contains(code)
        case .timeout, .stalled, .oversized, .badResponse: return true
        case .status(let response): return response.status >= 500 && response.status != 503
        case .tls: return false
        }
    }

    /// A short reason for a retry note: `429`, `timeout after 1 s`, `connection reset`.
    var shortReason: String {
        switch self {
        case .transport(_, let message): return message
        case .timeout(let seconds): return "no answer within \(formatSeconds(seconds))"
        case .stalled(let seconds): return "response stalled for \(formatSeconds(seconds))"
        case .oversized(let limit): return "response larger than \(limit) bytes"
        case .status(let response): return "HTTP \(response.status)"
        case .badResponse(let why): return why
        case .tls(let message): return message
        }
    }
}

/// The message of a provider's JSON error body (`{"error": {"message": …}}`, used by both
/// OpenAI and Anthropic), or a trimmed snippet of a non-JSON body.
func serverMessage(in response: HTTPResponse) -> String? {
    struct Envelope: Decodable {
        struct Detail: Decodable { let message: String? }
        let error: Detail?
        let message: String?
    }
    if let envelope = try? JSONDecoder().decode(Envelope.self, from: response.body),
       let message = envelope.error?.message ?? envelope.message, !message.isEmpty {
        return oneLine(message, limit: 240)
    }
    guard let text = String(data: response.body.prefix(400), encoding: .utf8), !text.isEmpty else { return nil }
    return oneLine(text, limit: 160)
}

/// `text` with whitespace runs (newlines included) collapsed and cut to `limit` characters.
func oneLine(_ text: String, limit: Int) -> String {
    let collapsed = text.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
    return collapsed.count > limit ? String(collapsed.prefix(limit)) + "…" : collapsed
}

func formatSeconds(_ seconds: Double) -> String {
    seconds >= 10 || seconds == seconds.rounded() ? "\(Int(seconds.rounded())) s" : String(format: "%.1f s", seconds)
}

/// What a failed request means to the user, as one line. `keyVariable` names the environment
/// variable holding the key, for 401/403.
func finalError(_ failure: AttemptFailure, request: HTTPRequest, provider: String, key: APIKey?, attempts: Int) -> TallyError {
    let host = request.hostDescription
    let what = "\(provider): \(request.summary) to \(host)"
    let tries = attempts > 1 ? " after \(attempts) attempts" : ""
    var message: String
    switch failure {
    case .status(let response):
        let detail = serverMessage(in: response).map { ": \($0)" } ?? ""
        switch response.status {
        case 401:
            if let key {
                message = "\(provider): \(host) rejected the API key in $\(key.variable) (401 Unauthorized\(detail)); set \(key.variable) to a valid key for \(host)"
            } else {
                message = "\(provider): \(host) requires an API key (401 Unauthorized\(detail)); name the environment variable holding it with api_key_env in the recipe's backend"
            }
        case 403:
            let variable = key.map { " in $\($0.variable)" } ?? ""
            message = "\(provider): \(host) refused the request with the key\(variable) (403 Forbidden\(detail)); check that the key may use this model and endpoint"
        case 404:
            message = "\(what) failed: 404 Not Found\(detail); check base_url and the model name"
        case 400:
            message = "\(what) failed: 400 Bad Request\(detail)"
        default:
            message = "\(what) failed with HTTP \(response.status)\(tries)\(detail)"
        }
    case .transport(let code, let text):
        message = "\(what) failed\(tries): \(text) (curl error \(code)); check base_url and your network or proxy settings"
    case .timeout(let seconds):
        message = "\(what) got no complete answer within \(formatSeconds(seconds))\(tries); raise timeout_s if the server is slow"
    case .stalled(let seconds):
        message = "\(what) stopped sending its answer for more than \(formatSeconds(seconds))\(tries); check the network or proxy, or raise stall_timeout_s if the server pauses that long"
    case .oversized(let limit):
        message = "\(what) returned more than \(limit) bytes\(tries); raise max_response_bytes if this is expected"
    case .badResponse(let why):
        message = "\(what) returned an unusable answer\(tries): \(why)"
    case .tls(let text):
        message = "\(what) failed TLS verification: \(text); Tally never disables certificate checks (set CURL_CA_BUNDLE or SSL_CERT_FILE if you use a private CA)"
    }
    if let key { message = key.mask(message) }
    return TallyError(code: .backend, message: message)
}

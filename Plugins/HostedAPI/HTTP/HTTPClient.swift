import Foundation
import TallyCore

/// Something worth telling about a request while it runs (retries, server back-off).
public enum HTTPEvent: Sendable, Hashable {
    /// Attempt `attempt` of `request` (`POST /v1/chat/completions`) failed for `reason`; the
    /// next one starts after `delay` seconds.
    case retry(request: String, attempt: Int, delay: Double, reason: String)
}

/// An async HTTP client over libcurl for one backend.
///
/// Transfers run on dedicated threads (never the cooperative pool) using pooled easy handles,
/// so connections are reused; TLS verification is always on; proxies come from the
/// environment (`https_proxy`, `http_proxy`, `all_proxy`, `no_proxy`) as with curl.
/// Failed attempts are retried with exponential backoff and jitter, honouring `Retry-After`;
/// admission is bounded by the backend's concurrency and per-minute limits.
///
/// ```swift
/// let client = HTTPClient(provider: "openai", configuration: .init(), key: key)
/// let text = try await client.send(request, estimatedTokens: 100) { response in
///     (String(decoding: response.body, as: UTF8.self), nil)
/// }
/// ```
public final class HTTPClient: Sendable {
    /// Transport and politeness settings.
    public struct Configuration: Sendable, Hashable {
        /// Limit on opening a connection, in seconds.
        public var connectTimeout: Double
        /// Limit for one whole attempt (connect, send, wait, receive), in seconds.
        public var totalTimeout: Double
        /// Responses with larger bodies are abandoned (and retried).
        public var maxResponseBytes: Int
        /// Seconds without a byte, once a response has begun, after which the attempt fails
        /// as stalled and is retried like other transient failures; 0 turns the check off.
        public var stallTimeout: Double
        /// Requests in flight at once.
        public var maxConcurrency: Int
        /// Requests started in any 60-second window; nil for no limit.
        public var requestsPerMinute: Int?
        /// Tokens in any 60-second window; nil for no limit.
        public var tokensPerMinute: Int?
        /// When and how long to wait before retrying.
        public var retry: RetryPolicy

        /// Defaults suit a hosted API: 10 s to connect, 120 s per attempt, 30 s of silence
        /// inside a response, 8 MiB, 4 at once, 5 retries.
        public init(connectTimeout: Double = 10, totalTimeout: Double = 120, maxResponseBytes: Int = 8 << 20, stallTimeout: Double = 30, maxConcurrency: Int = 4, requestsPerMinute: Int? = nil, tokensPerMinute: Int? = nil, retry: RetryPolicy = RetryPolicy()) {
            self.connectTimeout = connectTimeout
            self.totalTimeout = totalTimeout
            self.maxResponseBytes = maxResponseBytes
            self.stallTimeout = stallTimeout
            self.maxConcurrency = maxConcurrency
            self.requestsPerMinute = requestsPerMinute
            self.tokensPerMinute = tokensPerMinute
            self.retry = retry
        }
    }

    /// Names the provider in messages (`openai`).
    public let provider: String
    /// Timeouts, limits and retry policy, as built.
    public let configuration: Configuration
    let key: APIKey?
    private let pool: EasyHandlePool
    private let gate: RequestGate
    private let options: TransferOptions
    private let observer: (@Sendable (HTTPEvent) -> Void)?

    /// - Parameters:
    ///   - provider: name used in messages.
    ///   - configuration: timeouts, limits and retry policy.
    ///   - key: the API key, used only to mask it out of error messages (callers add it to
    ///     the request headers themselves).
    ///   - environment: read for `CURL_CA_BUNDLE`, as the curl tool does.
    ///   - observer: told about retries (tests, progress notes).
    public init(provider: String, configuration: Configuration, key: APIKey?, environment: [String: String] = [:], observer: (@Sendable (HTTPEvent) -> Void)? = nil) {
        self.provider = provider
        self.configuration = configuration
        self.key = key
        self.observer = observer
        pool = EasyHandlePool(capacity: configuration.maxConcurrency)
        gate = RequestGate(maxConcurrency: configuration.maxConcurrency, requestsPerMinute: configuration.requestsPerMinute, tokensPerMinute: configuration.tokensPerMinute)
        options = TransferOptions(
            connectTimeout: configuration.connectTimeout, totalTimeout: configuration.totalTimeout,
            maxResponseBytes: configuration.maxResponseBytes, stallTimeout: configuration.stallTimeout,
            caBundle: environment["CURL_CA_BUNDLE"].flatMap { $0.isEmpty ? nil : $0 })
    }

    /// Sends `request`, retrying transient failures, and decodes the first usable answer.
    ///
    /// - Parameters:
    ///   - request: the request; its headers may hold the key (never logged).
    ///   - estimatedTokens: tokens it is expected to use, for the tokens-per-minute limit.
    ///   - decode: turns a 2xx response into a value and the tokens the server reported (nil
    ///     if unknown). Throwing `AttemptFailure.badResponse` (or any error) marks the answer
    ///     unusable, which is retried like a transient failure for idempotent requests.
    /// - Throws: `TallyError` (code `.backend`) with one line saying what failed and how to
    ///   fix it, the key masked; `CancellationError` when the task is cancelled.
    public func send<T: Sendable>(_ request: HTTPRequest, estimatedTokens: Int = 0, decode: @Sendable (HTTPResponse) throws -> (value: T, tokens: Int?)) async throws -> T {
        var request = request
        if !request.headers.contains(where: { $0.name.lowercased() == "user-agent" }) {
            request.headers.append((name: "User-Agent", value: "tally/0.1"))
        }
        var generator = SystemRandomNumberGenerator()
        var attempt = 0
        while true {
            attempt += 1
            try Task.checkCancellation()
            let failure: AttemptFailure
            let ticket = try await gate.acquire(tokens: estimatedTokens)
            do {
                let response = try await transfer(request)
                await gate.release(ticket)
                if (200..<300).contains(response.status) {
                    do {
                        let decoded = try decode(response)
                        if let tokens = decoded.tokens { await gate.settle(ticket, tokens: tokens) }
                        return decoded.value
                    } catch let error as AttemptFailure {
                        failure = error
                    } catch {
                        failure = .badResponse(oneLine(String(describing: error), limit: 200))
                    }
                } else {
                    failure = .status(response)
                }
            } catch let error as AttemptFailure {
                await gate.release(ticket)
                failure = error
            } catch {
                await gate.release(ticket)
                throw error  // cancellation
            }

            var retryAfter: Double?
            if case .status(let response) = failure {
                retryAfter = retryAfterSeconds(in: response)
                if response.status == 429 || response.status == 503, let retryAfter {
                    await gate.pause(for: min(retryAfter, configuration.retry.maxRetryAfter))
                }
            }
            guard failure.isRetryable(idempotent: request.idempotent), attempt <= configuration.retry.maxRetries else {
                throw finalError(failure, request: request, provider: provider, key: key, attempts: attempt)
            }
            let delay = configuration.retry.delay(beforeRetry: attempt, retryAfter: retryAfter, using: &generator)
            observer?(.retry(request: request.summary, attempt: attempt, delay: delay, reason: key?.mask(failure.shortReason) ?? failure.shortReason))
            try await Task.sleep(for: .milliseconds(Int64(delay * 1000)))
        }
    }

    /// One attempt, on a dedicated thread; cancelling the task aborts the transfer.
    private func transfer(_ request: HTTPRequest) async throws -> HTTPResponse {
        try Task.checkCancellation()
        guard let handle = pool.checkOut() else {
            throw AttemptFailure.transport(code: 2, message: "libcurl could not create a handle")
        }
        let context = TransferContext(limit: options.maxResponseBytes, stallTimeout: options.stallTimeout)
        let pool = self.pool
        let options = self.options
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<HTTPResponse, any Error>) in
                let thread = Thread {
                    let result = Result { try CurlTransfer.perform(request, on: handle, share: pool.share, options: options, context: context) }
                    pool.checkIn(handle)
                    continuation.resume(with: result)
                }
                thread.name = "tally-http"
                thread.start()
            }
        } onCancel: {
            context.cancelled.store(true, ordering: .relaxed)
        }
    }
}

/// Decodes a JSON body, turning every way it can be unusable into `AttemptFailure.badResponse`
/// with a short reason (wrong content type, malformed JSON, missing field).
func decodeJSON<T: Decodable>(_ type: T.Type, from response: HTTPResponse) throws -> T {
    guard response.isJSON else {
        let declared = response.header("content-type") ?? "no content type"
        throw AttemptFailure.badResponse("expected a JSON body, got \(oneLine(declared, limit: 60))")
    }
    do {
        return try JSONDecoder().decode(T.self, from: response.body)
    } catch let error as DecodingError {
        switch error {
        case .dataCorrupted(let context) where context.codingPath.isEmpty:
            throw AttemptFailure.badResponse("the body is not valid JSON")
        case .keyNotFound(let key, let context):
            throw AttemptFailure.badResponse("missing field '\(path(context.codingPath + [key]))'")
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            throw AttemptFailure.badResponse("field '\(path(context.codingPath))' has an unexpected value")
        @unknown default:
            throw AttemptFailure.badResponse("the body does not have the documented shape")
        }
    }
}

private func path(_ keys: [any CodingKey]) -> String {
    keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().trimmingCharacters(in: CharacterSet(charactersIn: "."))
}

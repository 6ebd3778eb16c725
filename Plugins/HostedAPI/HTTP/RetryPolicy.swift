import Foundation

/// When and how long to wait before another attempt: exponential backoff with jitter,
/// overridden by the server's `Retry-After`.
public struct RetryPolicy: Sendable, Hashable {
    /// Attempts after the first; 0 disables retries.
    public var maxRetries: Int
    /// Backoff before the first retry, in seconds; it doubles with each retry.
    public var baseDelay: Double
    /// Upper bound of the exponential backoff, in seconds.
    public var maxDelay: Double
    /// Upper bound on a server's `Retry-After`, in seconds, so a bad header cannot park a run.
    public var maxRetryAfter: Double

    /// Defaults: 5 retries, 0.5 s doubling to at most 30 s, `Retry-After` honoured up to 5 minutes.
    public init(maxRetries: Int = 5, baseDelay: Double = 0.5, maxDelay: Double = 30, maxRetryAfter: Double = 300) {
        self.maxRetries = maxRetries
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.maxRetryAfter = maxRetryAfter
    }

    /// Seconds to wait before retry number `retry` (1-based).
    ///
    /// Without `retryAfter`: "equal jitter", uniform in [d/2, d] with d = min(maxDelay,
    /// baseDelay × 2^(retry-1)). With `retryAfter`: that many seconds (capped at
    /// `maxRetryAfter`) plus up to 10% jitter so waiting clients do not return in lockstep.
    public func delay(beforeRetry retry: Int, retryAfter: Double?, using generator: inout some RandomNumberGenerator) -> Double {
        if let retryAfter {
            let wait = min(max(retryAfter, 0), maxRetryAfter)
            return wait + Double.random(in: 0...max(wait * 0.1, 0.001), using: &generator)
        }
        let exponent = Double(max(retry - 1, 0))
        let ceiling = min(maxDelay, baseDelay * pow(2, exponent))
        return Double.random(in: (ceiling / 2)...max(ceiling, ceiling / 2), using: &generator)
    }
}

/// Parses the waiting time a response asks for: `retry-after-ms` (OpenAI), else
/// `Retry-After` as delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
/// - Returns: seconds from `now`, or nil when absent or unreadable.
func retryAfterSeconds(in response: HTTPResponse, now: Date = Date()) -> Double? {
    if let ms = response.header("retry-after-ms").flatMap({ Double($0.trimmingCharacters(in: .whitespaces)) }), ms >= 0 {
        return ms / 1000
    }
    guard let value = response.header("retry-after") else { return nil }
    return parseRetryAfter(value, now: now)
}

/// Parses a `Retry-After` value: non-negative seconds, or an HTTP-date in IMF-fixdate,
/// RFC 850 or asctime form. A date in the past yields 0.
public func parseRetryAfter(_ value: String, now: Date = Date()) -> Double? {
    let text = value.trimmingCharacters(in: .whitespaces)
    if let seconds = Double(text) { return seconds >= 0 ? seconds : nil }
    for format in ["EEE, dd MMM yyyy HH:mm:ss zzz", "EEEE, dd-MMM-yy HH:mm:ss zzz", "EEE MMM d HH:mm:ss yyyy"] {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = format
        if let date = formatter.date(from: text) {
            return max(0, date.timeIntervalSince(now))
        }
    }
    return nil
}

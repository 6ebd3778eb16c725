import Foundation
import Testing
@testable import HostedAPI

@Suite("Retry policy")
struct RetryPolicyTests {
    @Test("Retry-After as delay-seconds")
    func delaySeconds() {
        #expect(parseRetryAfter("7") == 7)
        #expect(parseRetryAfter(" 0 ") == 0)
        #expect(parseRetryAfter("-3") == nil)
        #expect(parseRetryAfter("soon") == nil)
    }

    @Test("Retry-After as an HTTP-date, in all three RFC 9110 forms")
    func httpDate() throws {
        let now = try #require(ISO8601DateFormatter().date(from: "2015-10-21T07:28:00Z"))
        #expect(parseRetryAfter("Wed, 21 Oct 2015 07:28:30 GMT", now: now) == 30)
        #expect(parseRetryAfter("Wednesday, 21-Oct-15 07:29:00 GMT", now: now) == 60)
        #expect(parseRetryAfter("Wed Oct 21 07:28:10 2015", now: now) == 10)
        // A date in the past means "now".
        #expect(parseRetryAfter("Wed, 21 Oct 2015 07:00:00 GMT", now: now) == 0)
    }

    @Test("retry-after-ms takes precedence over Retry-After")
    func milliseconds() {
        let response = HTTPResponse(status: 429, headers: ["retry-after-ms": "250", "retry-after": "9"], body: Data(), httpVersion: "1.1", seconds: 0)
        #expect(retryAfterSeconds(in: response) == 0.25)
    }

    @Test("Backoff doubles per retry, stays within [d/2, d], and is capped")
    func backoff() {
        let policy = RetryPolicy(maxRetries: 10, baseDelay: 0.5, maxDelay: 4)
        var generator = SystemRandomNumberGenerator()
        for retry in 1...8 {
            let ceiling = min(4, 0.5 * pow(2, Double(retry - 1)))
            for _ in 0..<50 {
                let delay = policy.delay(beforeRetry: retry, retryAfter: nil, using: &generator)
                #expect(delay >= ceiling / 2 && delay <= ceiling, "retry \(retry): \(delay) not in [\(ceiling / 2), \(ceiling)]")
            }
        }
    }

    @Test("Retry-After is honoured (with at most 10% jitter) and capped")
    func honoursRetryAfter() {
        let policy = RetryPolicy(maxRetries: 3, baseDelay: 0.5, maxDelay: 4, maxRetryAfter: 60)
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<50 {
            let delay = policy.delay(beforeRetry: 1, retryAfter: 20, using: &generator)
            #expect(delay >= 20 && delay <= 22)
            #expect(policy.delay(beforeRetry: 1, retryAfter: 3600, using: &generator) <= 66)
        }
    }

    @Test("Which failures are retried", arguments: [
        (408, true, true), (409, true, true), (429, true, true), (500, true, true), (502, true, true), (503, true, true),
        (400, true, false), (401, true, false), (403, true, false), (404, true, false), (422, true, false),
        (429, false, true), (503, false, true), (500, false, false), (408, false, false),
    ])
    func retryableStatuses(status: Int, idempotent: Bool, expected: Bool) {
        let response = HTTPResponse(status: status, headers: [:], body: Data(), httpVersion: "1.1", seconds: 0)
        #expect(AttemptFailure.status(response).isRetryable(idempotent: idempotent) == expected)
    }

    @Test("Connection failures are retried; a request that may have reached the server is not resent unless idempotent")
    func transportFailures() {
        #expect(AttemptFailure.transport(code: 7, message: "refused").isRetryable(idempotent: false))
        #expect(AttemptFailure.transport(code: 56, message: "reset").isRetryable(idempotent: true))
        #expect(!AttemptFailure.transport(code: 56, message: "reset").isRetryable(idempotent: false))
        #expect(AttemptFailure.timeout(seconds: 1).isRetryable(idempotent: true))
        #expect(!AttemptFailure.tls(message: "bad certificate").isRetryable(idempotent: true))
    }
}

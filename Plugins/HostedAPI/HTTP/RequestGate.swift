import Foundation

/// Admission control for one backend: at most `maxConcurrency` requests in flight, at most
/// `requestsPerMinute` requests and `tokensPerMinute` tokens in any 60-second window, and a
/// shared pause when the server asks everyone to back off (429 with `Retry-After`).
actor RequestGate {
    /// What an admitted request holds until it finishes.
    struct Ticket: Sendable, Hashable { let id: UInt64 }

    let maxConcurrency: Int
    let requestsPerMinute: Int?
    let tokensPerMinute: Int?

    private var inFlight = 0
    private var waiters: [(id: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []
    /// Requests admitted in the last minute: when, and how many tokens they count for.
    private var window: [(id: UInt64, at: ContinuousClock.Instant, tokens: Int)] = []
    private var pausedUntil: ContinuousClock.Instant?
    private var nextID: UInt64 = 0
    private let clock = ContinuousClock()
    /// The rate window: a minute, shorter in tests.
    private let minute: Duration

    init(maxConcurrency: Int, requestsPerMinute: Int? = nil, tokensPerMinute: Int? = nil, window: Duration = .seconds(60)) {
        self.minute = window
        self.maxConcurrency = max(1, maxConcurrency)
        self.requestsPerMinute = requestsPerMinute.map { max(1, $0) }
        self.tokensPerMinute = tokensPerMinute.map { max(1, $0) }
    }

    /// Waits until a request estimated at `tokens` tokens may be sent.
    /// - Throws: `CancellationError` when the calling task is cancelled while waiting.
    func acquire(tokens: Int) async throws -> Ticket {
        nextID += 1
        let id = nextID
        try await takeSlot(id: id)
        do {
            while true {
                try Task.checkCancellation()
                let now = clock.now
                window.removeAll { $0.at.advanced(by: minute) <= now }
                guard let wakeAt = earliestAdmission(tokens: tokens, now: now) else { break }
                try await Task.sleep(until: wakeAt, clock: clock)
            }
        } catch {
            releaseSlot()
            throw error
        }
        window.append((id: id, at: clock.now, tokens: tokens))
        return Ticket(id: id)
    }

    /// Replaces a request's estimated token count with what the server reported.
    func settle(_ ticket: Ticket, tokens: Int) {
        if let index = window.firstIndex(where: { $0.id == ticket.id }) { window[index].tokens = tokens }
    }

    /// Frees the request's concurrency slot (its rate-window entry ages out by itself).
    func release(_ ticket: Ticket) { releaseSlot() }

    /// Holds back every new request for `seconds` (a server-wide `Retry-After`).
    func pause(for seconds: Double) {
        guard seconds > 0 else { return }
        let until = clock.now.advanced(by: .milliseconds(Int64(seconds * 1000)))
        if let pausedUntil, pausedUntil >= until { return }
        pausedUntil = until
    }

    /// Number of requests currently admitted (for tests and progress).
    var admitted: Int { inFlight }

    /// How long a request of `tokens` tokens would wait for the rate limits now (nil: not at
    /// all); ignores the concurrency limit.
    func rateDelay(tokens: Int) -> Duration? {
        let now = clock.now
        window.removeAll { $0.at.advanced(by: minute) <= now }
        return earliestAdmission(tokens: tokens, now: now).map { now.duration(to: $0) }
    }

    /// When a request of `tokens` tokens could be admitted, or nil if now.
    private func earliestAdmission(tokens: Int, now: ContinuousClock.Instant) -> ContinuousClock.Instant? {
        var wake: ContinuousClock.Instant?
        func later(_ instant: ContinuousClock.Instant) { if instant > now, wake.map({ instant > $0 }) ?? true { wake = instant } }
        if let pausedUntil { later(pausedUntil) }
        if let rpm = requestsPerMinute, window.count >= rpm {
            later(window[window.count - rpm].at.advanced(by: minute))
        }
        if let tpm = tokensPerMinute, !window.isEmpty {
            var total = window.reduce(0) { $0 + $1.tokens }
            // Drop the oldest entries until this request fits; it may go once they expire.
            var index = 0
            while total + tokens > tpm, index < window.count {
                total -= window[index].tokens
                later(window[index].at.advanced(by: minute))
                index += 1
            }
        }
        return wake
    }

    private func takeSlot(id: UInt64) async throws {
        if inFlight < maxConcurrency {
            inFlight += 1
            return
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                if Task.isCancelled {
                    continuation.resume(throwing: CancellationError())
                } else {
                    waiters.append((id: id, continuation: continuation))
                }
            }
        } onCancel: {
            Task { await self.cancelWaiter(id: id) }
        }
    }

    private func cancelWaiter(id: UInt64) {
        guard let index = waiters.firstIndex(where: { $0.id == id }) else { return }
        let waiter = waiters.remove(at: index)
        waiter.continuation.resume(throwing: CancellationError())
    }

    private func releaseSlot() {
        if waiters.isEmpty {
            inFlight -= 1
        } else {
            // Hand the slot straight to the longest waiter.
            waiters.removeFirst().continuation.resume()
        }
    }
}

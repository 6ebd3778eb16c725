import Foundation
import Synchronization

/// How a call run under a deadline ended.
enum Bounded<Value: Sendable>: Sendable {
    case value(Value)
    case error(any Error)
    /// The deadline passed first; the call was cancelled and left behind.
    case timedOut
}

/// Runs `operation` in its own task and waits for it at most `limit`. When the deadline
/// passes first, the task is cancelled and abandoned (a plugin that hangs must not hang its
/// checker), and the result is `.timedOut`. Cancelling the caller cancels the operation.
///
/// The deadline is a dispatch timer, not a sleeping task: a plugin that blocks the
/// cooperative pool's threads cannot delay its own time-out.
func bounded<Value: Sendable>(_ limit: Duration, _ operation: @escaping @Sendable () async throws -> Value) async -> Bounded<Value> {
    let once = ResumeOnce<Bounded<Value>>()
    let work = TaskSlot()
    return await withTaskCancellationHandler {
        await withCheckedContinuation { continuation in
            once.arm(continuation)
            work.set(Task {
                do {
                    once.resume(.value(try await operation()))
                } catch {
                    once.resume(.error(error))
                }
            })
            // After an answer, the timer finds the continuation resumed and does nothing.
            DispatchQueue.global().asyncAfter(deadline: .now() + limit.seconds) {
                if once.resume(.timedOut) { work.cancel() }
            }
        }
    } onCancel: {
        work.cancel()
    }
}

/// A task that may be cancelled before it is stored: cancelling an empty slot cancels
/// the task stored later.
final class TaskSlot: Sendable {
    private struct State {
        var task: Task<Void, Never>?
        var cancelled = false
    }
    private let state = Mutex(State())

    func set(_ task: Task<Void, Never>) {
        let cancelNow = state.withLock { state -> Bool in
            state.task = task
            return state.cancelled
        }
        if cancelNow { task.cancel() }
    }

    func cancel() {
        let task = state.withLock { state -> Task<Void, Never>? in
            state.cancelled = true
            return state.task
        }
        task?.cancel()
    }
}

/// Resumes a continuation exactly once, whoever comes first.
final class ResumeOnce<Value: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<Value, Never>?
        var done = false
    }
    private let state = Mutex(State())

    func arm(_ continuation: CheckedContinuation<Value, Never>) {
        state.withLock { $0.continuation = continuation }
    }

    var isDone: Bool { state.withLock { $0.done } }

    /// Resumes with `value` unless already resumed; returns whether this call did.
    @discardableResult
    func resume(_ value: Value) -> Bool {
        let continuation = state.withLock { state -> CheckedContinuation<Value, Never>? in
            guard !state.done else { return nil }
            state.done = true
            defer { state.continuation = nil }
            return state.continuation
        }
        continuation?.resume(returning: value)
        return continuation != nil
    }
}

extension Duration {
    /// Seconds as a `Double`.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }

    /// `12 ms`, `1.5 s`: how long something took, for check details.
    var shortDescription: String {
        let s = seconds
        if s < 1 { return "\(Int((s * 1000).rounded())) ms" }
        return String(format: "%.1f s", s)
    }
}

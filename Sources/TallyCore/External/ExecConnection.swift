import Dispatch
import Foundation
import Synchronization

/// One running exec plugin and the requests in flight to it (docs/plugins.md).
///
/// Requests go to the program's stdin as JSON-RPC 2.0 lines; a dedicated thread reads its
/// stdout and completes the matching request. Everything the program sends is checked
/// against the protocol: a message that breaks it is recorded in `violations` and fails the
/// request it names with an error whose message begins with `ExecProtocol.violationPrefix`.
/// When the program exits, every pending and later request fails with one line naming its
/// exit status and last stderr line.
///
/// ```swift
/// let connection = try ExecConnection(executable: url, arguments: [], environment: env,
///                                     workingDirectory: directory, timeoutSeconds: 60)
/// let description = try await connection.describe(model: "m", settings: [:])
/// let reply = try await connection.call("generate", params: params, as: ExecProtocol.Generation.self)
/// await connection.shutdown()
/// ```
public final class ExecConnection: Sendable {
    struct Pending: Sendable {
        let method: String
        let progress: (@Sendable (ProgressEvent) -> Void)?
        let complete: @Sendable (Result<ExecProtocol.Value, TallyError>) -> Void
    }

    struct State {
        var nextID = 1
        var pending: [Int: Pending] = [:]
        /// Requests that timed out: their late replies are dropped, not reported.
        var expired: Set<Int> = []
        /// Set once the program has exited or was stopped; later requests fail with it.
        var closed: TallyError?
        var stderrTail = ""
        var violations: [ExecProtocol.Violation] = []
        var violationCount = 0
    }

    /// The most violations `violations` keeps (the count goes on).
    public static let keptViolations = 100

    /// The program and its arguments, as shown in messages.
    public let commandLine: String
    /// Seconds one request may take (0: no limit) unless a call says otherwise.
    public let timeoutSeconds: Double
    private let process: ExecProcess
    private let state = Mutex(State())

    /// Starts the plugin in a process group of its own.
    /// - Parameters:
    ///   - executable: the program to run.
    ///   - arguments: its arguments.
    ///   - environment: the environment it runs with.
    ///   - workingDirectory: its working directory (the recipe's directory).
    ///   - timeoutSeconds: how long one request may take before it fails (0: no limit).
    /// - Throws: `TallyError(.backend)` when the program cannot be started.
    public init(executable: URL, arguments: [String], environment: [String: String], workingDirectory: URL, timeoutSeconds: Double) throws {
        commandLine = ([executable.path] + arguments).joined(separator: " ")
        self.timeoutSeconds = timeoutSeconds
        do {
            process = try ExecProcess.spawn(executable: executable.path, arguments: arguments, environment: environment, workingDirectory: workingDirectory.path)
        } catch {
            throw TallyError(code: .backend, message: "cannot start the exec plugin '\(commandLine)' (\(error)); check `command:` in the recipe", underlying: error)
        }
        process.start(
            maxLineBytes: ExecProtocol.maxMessageBytes,
            line: { [weak self] line in self?.handle(line: line) },
            overlong: { [weak self] in self?.overlong() },
            stderr: { [weak self] chunk in self?.appendStderr(chunk) },
            exit: { [weak self] termination in self?.exited(termination) })
    }

    deinit {
        // Nothing can send to it any more: let it go (closing stdin first, so a
        // well-behaved program exits on its own), without holding up whoever released it.
        let process = self.process
        Thread.detachNewThread { process.stop(grace: 2) }
    }

    /// The program's process id, which is also its process group id.
    public var processID: Int32 { process.pid }

    /// Messages from the program that broke the protocol, oldest first (the first
    /// `keptViolations`); what a conformance checker reads.
    public var violations: [ExecProtocol.Violation] { state.withLock { $0.violations } }
    /// How many messages broke the protocol.
    public var violationCount: Int { state.withLock { $0.violationCount } }
    /// The end of the program's stderr (at most 4000 characters).
    public var stderrTail: String { state.withLock { $0.stderrTail } }

    // MARK: calls

    /// Sends one request and waits for its result, decoded as `Body` and checked.
    /// - Parameters:
    ///   - method: `describe`, `generate`, `finetune`, `open_artifact`, `score` or `embed`.
    ///   - params: the request's parameters.
    ///   - progress: receives the plugin's progress notifications for this request.
    ///   - timeout: seconds this request may take (0: no limit); nil: the connection's timeout.
    ///   - check: what the result must also satisfy given the request (one vector per text
    ///     asked); a problem it names is a protocol violation at `result.<field>`.
    /// - Throws: `TallyError(.backend)`: the plugin's error, a protocol violation (message
    ///   beginning with `ExecProtocol.violationPrefix`), a timeout, or the program's exit.
    public func call<Params: Encodable & Sendable, Body: ExecProtocol.Reply>(
        _ method: String, params: Params, as body: Body.Type,
        progress: (@Sendable (ProgressEvent) -> Void)? = nil, timeout: Double? = nil,
        check: (@Sendable (Body) -> ExecProtocol.FieldProblem?)? = nil
    ) async throws -> Body {
        // The reply is decoded where it completes (the stdout thread, whose stack is sized
        // for nested JSON), not on the cooperative pool.
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Body, any Error>) in
            send(method, params: params, progress: progress, timeout: timeout ?? timeoutSeconds) { [weak self] id, result in
                guard let self else {
                    continuation.resume(throwing: TallyError(code: .backend, message: "the exec connection closed during `\(method)`"))
                    return
                }
                continuation.resume(with: result.flatMap { self.decode($0, as: Body.self, method: method, id: id, check: check) })
            }
        }
    }

    /// `call` for synchronous callers (validation): blocks the calling thread until the reply,
    /// at most `timeout` seconds (a timeout of 0 or less waits 60 s).
    public func callSynchronously<Params: Encodable & Sendable, Body: ExecProtocol.Reply>(
        _ method: String, params: Params, as body: Body.Type, timeout: Double? = nil
    ) throws -> Body {
        let limit = timeout ?? timeoutSeconds
        let outcome = Mutex<Result<Body, TallyError>?>(nil)
        let done = DispatchSemaphore(value: 0)
        send(method, params: params, progress: nil, timeout: limit > 0 ? limit : 60) { [weak self] id, result in
            let decoded = result.flatMap { value in
                self?.decode(value, as: Body.self, method: method, id: id) ?? .failure(TallyError(code: .backend, message: "the exec connection closed during `\(method)`"))
            }
            outcome.withLock { $0 = decoded }
            done.signal()
        }
        done.wait()
        switch outcome.withLock({ $0 }) {
        case .success(let body)?: return body
        case .failure(let error)?: throw error
        case nil: throw TallyError(code: .backend, message: "exec plugin '\(commandLine)': `\(method)` ended without a result")
        }
    }

    /// Sends `describe` and checks the protocol version the plugin declares.
    /// - Throws: `TallyError(.backend)` when describe fails or the plugin speaks another
    ///   major version of the protocol (or declares none).
    public func describe(model: String, settings: [String: String], timeout: Double? = nil) async throws -> ExecProtocol.Description {
        let description = try await call(ExecProtocol.Method.describe, params: ExecProtocol.DescribeParams(model: model, settings: settings), as: ExecProtocol.Description.self, timeout: timeout)
        try checkVersion(description)
        return description
    }

    /// `describe` for synchronous callers (validation).
    public func describeSynchronously(model: String, settings: [String: String], timeout: Double) throws -> ExecProtocol.Description {
        let description = try callSynchronously(ExecProtocol.Method.describe, params: ExecProtocol.DescribeParams(model: model, settings: settings), as: ExecProtocol.Description.self, timeout: timeout)
        try checkVersion(description)
        return description
    }

    private func checkVersion(_ description: ExecProtocol.Description) throws {
        if let problem = ExecProtocol.versionProblem(declared: description.protocolVersion) {
            throw TallyError(code: .backend, message: "exec plugin '\(commandLine)' \(problem)")
        }
    }

    private func decode<Body: ExecProtocol.Reply>(
        _ value: ExecProtocol.Value, as body: Body.Type, method: String, id: Int, check: (@Sendable (Body) -> ExecProtocol.FieldProblem?)? = nil
    ) -> Result<Body, TallyError> {
        do throws(ExecProtocol.Violation) {
            let decoded = try ExecProtocol.decodeReply(value, as: Body.self)
            if let problem = check?(decoded) {
                throw ExecProtocol.Violation(field: problem.field.isEmpty ? "result" : "result.\(problem.field)", problem: problem.problem)
            }
            return .success(decoded)
        } catch var violation {
            violation.id = id
            violation.method = method
            violation.excerpt = value.excerpt(limit: 200)
            record(violation)
            return .failure(violationError(violation))
        }
    }

    private func send<Params: Encodable & Sendable>(
        _ method: String, params: Params, progress: (@Sendable (ProgressEvent) -> Void)?, timeout: Double,
        complete: @escaping @Sendable (Int, Result<ExecProtocol.Value, TallyError>) -> Void
    ) {
        let registered: Result<Int, TallyError> = state.withLock { state in
            if let closed = state.closed { return .failure(closed) }
            let id = state.nextID
            state.nextID += 1
            state.pending[id] = Pending(method: method, progress: progress) { complete(id, $0) }
            return .success(id)
        }
        let id: Int
        switch registered {
        case .failure(let error):
            complete(0, .failure(error))
            return
        case .success(let value):
            id = value
        }
        var line: Data
        do {
            line = try ExecProtocol.encodeRequest(id: id, method: method, params: params)
        } catch {
            finish(id, .failure(TallyError(code: .backend, message: "cannot encode `\(method)` for the exec plugin '\(commandLine)'", underlying: error)))
            return
        }
        line.append(UInt8(ascii: "\n"))
        if timeout > 0 {
            // On a dispatch queue, not Swift's cooperative pool, so a busy pool cannot delay
            // it; if the reply came first, `expire` finds nothing to fail.
            DispatchQueue.global().asyncAfter(deadline: .now() + timeout) { [weak self] in
                self?.expire(id, method: method, after: timeout)
            }
        }
        let command = commandLine
        process.write(line) { [weak self] error in
            guard let error else { return }
            // The program closed its stdin: it has exited or is exiting. Give its exit a
            // moment to be seen, so the request fails with the exit status; else say this.
            DispatchQueue.global().asyncAfter(deadline: .now() + 2) { [weak self] in
                self?.finish(id, .failure(TallyError(code: .backend, message: "cannot send `\(method)` to the exec plugin '\(command)': it closed its stdin (\(String(cString: strerror(error))))")))
            }
        }
    }

    private func finish(_ id: Int, _ result: Result<ExecProtocol.Value, TallyError>) {
        state.withLock { $0.pending.removeValue(forKey: id) }?.complete(result)
    }

    private func expire(_ id: Int, method: String, after seconds: Double) {
        let (pending, tail) = state.withLock { state -> (Pending?, String) in
            guard let pending = state.pending.removeValue(forKey: id) else { return (nil, "") }
            if state.expired.count >= 10_000 { state.expired.removeAll() }
            state.expired.insert(id)
            return (pending, state.stderrTail)
        }
        pending?.complete(.failure(TallyError(code: .backend, message: "exec plugin '\(commandLine)' did not answer `\(method)` (id \(id)) within \(CostModel.format(seconds)) s; it may be hung (\(Self.lastStderr(tail))). Raise `timeout_s` in the backend entry if it is only slow")))
    }

    // MARK: stopping

    /// Stops the plugin: closes its stdin, waits `grace` seconds for it to exit, then sends
    /// SIGTERM to its process group, waits `grace` more, then SIGKILL. Pending and later
    /// requests fail. Blocks until the program has exited; from async code, use `shutdown`.
    public func stop(grace: Double = 2) {
        state.withLock { state in
            if state.closed == nil {
                state.closed = TallyError(code: .backend, message: "exec plugin '\(commandLine)' was stopped by Tally")
            }
        }
        process.stop(grace: grace)
    }

    /// `stop` without blocking a thread of Swift's cooperative pool.
    public func shutdown(grace: Double = 2) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            Thread.detachNewThread { [self] in
                stop(grace: grace)
                continuation.resume()
            }
        }
    }

    /// Stops every exec plugin this process started (SIGTERM to each group, up to `grace`
    /// seconds, then SIGKILL), whatever holds their connections: for a CLI's last-resort
    /// exit paths. Runs by itself when the process exits normally.
    public static func stopAll(grace: Double = 2) {
        ExecProcess.stopAll(grace: grace)
    }

    // MARK: reading

    private func handle(line: Data) {
        if line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\r") || $0 == UInt8(ascii: "\t") }) { return }
        let message: ExecProtocol.Message
        do {
            message = try ExecProtocol.decodeMessage(line)
        } catch {
            reject(error)
            return
        }
        switch message {
        case .reply(let id, let result):
            let outcome = state.withLock { state -> (Pending?, Bool) in
                (state.pending.removeValue(forKey: id), state.expired.contains(id))
            }
            guard let pending = outcome.0 else {
                if !outcome.1 {
                    record(ExecProtocol.Violation(field: "id", problem: "is \(id), which names no pending request (never sent, or answered already)", id: id, excerpt: ExecProtocol.sanitized(String(decoding: line.prefix(400), as: UTF8.self), limit: 200)))
                }
                return
            }
            switch result {
            case .success(let value):
                pending.complete(.success(value))
            case .failure(let remote):
                pending.complete(.failure(pluginError(remote, method: pending.method)))
            }
        case .unidentifiedError(let remote):
            appendStderr(Data("[tally] the plugin reported an error for a request it could not identify: \(remote)\n".utf8))
        case .notification(let method, let params):
            let excerpt = ExecProtocol.sanitized(String(decoding: line.prefix(400), as: UTF8.self), limit: 200)
            let requestID = params["id"]?.integer
            guard method == ExecProtocol.Method.progress else {
                reject(ExecProtocol.Violation(field: "method", problem: "is '\(ExecProtocol.sanitized(method, limit: 40))'; the only notification is `progress`", id: requestID, excerpt: excerpt))
                return
            }
            let progress: ExecProtocol.ProgressParams
            do {
                progress = try ExecProtocol.decodeReply(.object(params), as: ExecProtocol.ProgressParams.self, root: "params")
            } catch var violation {
                violation.id = requestID
                violation.excerpt = excerpt
                reject(violation)
                return
            }
            let (callback, known) = state.withLock { state in
                (state.pending[progress.id]?.progress, state.pending[progress.id] != nil || state.expired.contains(progress.id))
            }
            guard known else {
                record(ExecProtocol.Violation(field: "params.id", problem: "is \(progress.id), which names no pending request", id: progress.id, excerpt: excerpt))
                return
            }
            callback?(progress.event)
        }
    }

    /// Records a violation and fails the pending request it names, if any.
    private func reject(_ violation: ExecProtocol.Violation) {
        var violation = violation
        let pending = violation.id.flatMap { id in state.withLock { $0.pending.removeValue(forKey: id) } }
        violation.method = pending?.method
        record(violation)
        pending?.complete(.failure(violationError(violation)))
    }

    private func record(_ violation: ExecProtocol.Violation) {
        state.withLock { state in
            state.violationCount += 1
            if state.violations.count < Self.keptViolations { state.violations.append(violation) }
        }
    }

    private func violationError(_ violation: ExecProtocol.Violation) -> TallyError {
        TallyError(code: .backend, message: "\(ExecProtocol.violationPrefix) by exec plugin '\(commandLine)': \(violation) (docs/plugins.md, \"The exec protocol\")")
    }

    private func pluginError(_ remote: ExecProtocol.RemoteError, method: String) -> TallyError {
        if remote.code == .methodNotFound {
            return TallyError(code: .backend, message: "exec plugin '\(commandLine)' does not implement `\(method)`: \(remote)")
        }
        return TallyError(code: .backend, message: "exec plugin '\(commandLine)' failed `\(method)`: \(remote)")
    }

    /// A stdout line longer than the protocol allows: nothing after it can be trusted to be
    /// in step, so the plugin is stopped and every request fails with this.
    private func overlong() {
        let violation = ExecProtocol.Violation(field: "", problem: "is longer than \(ExecProtocol.maxMessageBytes / (1024 * 1024)) MiB; keep each message on one line and under that size")
        record(violation)
        let error = violationError(violation)
        let pending = state.withLock { state -> [Pending] in
            if state.closed == nil { state.closed = error }
            defer { state.pending.removeAll() }
            return Array(state.pending.values)
        }
        for item in pending { item.complete(.failure(error)) }
        let process = self.process
        Thread.detachNewThread { process.stop(grace: 2) }
    }

    private func appendStderr(_ chunk: Data) {
        let text = String(decoding: chunk, as: UTF8.self)
        state.withLock { state in
            state.stderrTail = String((state.stderrTail + text).suffix(4000))
        }
    }

    private func exited(_ termination: ExecProcess.Termination) {
        let (pending, error) = state.withLock { state -> ([Pending], TallyError) in
            let error = state.closed ?? TallyError(code: .backend, message: "exec plugin '\(commandLine)' \(termination) (\(Self.lastStderr(state.stderrTail)))")
            state.closed = error
            defer { state.pending.removeAll() }
            return (Array(state.pending.values), error)
        }
        for item in pending { item.complete(.failure(error)) }
    }

    /// `last stderr: <its last non-empty line>`, or that there was none.
    static func lastStderr(_ tail: String) -> String {
        let line = tail.split(whereSeparator: \.isNewline).last { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        guard let line else { return "no output on stderr" }
        return "last stderr: \(ExecProtocol.sanitized(line.trimmingCharacters(in: .whitespaces), limit: 300))"
    }
}

import Foundation
import Synchronization

/// One running external plugin process and the requests in flight to it.
///
/// Requests are written as JSON lines to the process's stdin under a lock; a dedicated
/// thread reads stdout (blocking reads, no polling) and resumes the matching request.
/// When the process exits, every pending request fails with the tail of its stderr.
public final class ExecConnection: Sendable {
    struct Pending {
        let continuation: CheckedContinuation<ExecProtocol.Value, any Error>
        let progress: (@Sendable (ProgressEvent) -> Void)?
        let method: String
    }

    struct State {
        var nextID = 1
        var pending: [Int: Pending] = [:]
        /// Set once the process has exited or could not be read; later requests fail with it.
        var closedReason: String?
        var stderrTail = ""
    }

    private let process: Process
    private let stdin: FileHandle
    private let state = Mutex(State())
    private let writeLock = Mutex(())
    private let commandLine: String
    /// Seconds one request may take (0: no limit) unless a call says otherwise.
    let timeoutSeconds: Double

    /// Starts the plugin process.
    /// - Parameters:
    ///   - executable: the program to run.
    ///   - arguments: its arguments.
    ///   - environment: the environment it runs with.
    ///   - workingDirectory: its working directory (the recipe's directory).
    ///   - timeoutSeconds: how long one request may take before it fails.
    /// - Throws: `TallyError(.backend)` when the program cannot be started.
    public init(executable: URL, arguments: [String], environment: [String: String], workingDirectory: URL, timeoutSeconds: Double) throws {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.environment = environment
        process.currentDirectoryURL = workingDirectory
        let input = Pipe(), output = Pipe(), errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        commandLine = ([executable.path] + arguments).joined(separator: " ")
        self.timeoutSeconds = timeoutSeconds
        do {
            try process.run()
        } catch {
            throw TallyError(code: .backend, message: "cannot start the exec plugin '\(commandLine)'; check `command:` in the recipe", underlying: error)
        }
        self.process = process
        stdin = input.fileHandleForWriting
        let stdout = output.fileHandleForReading
        let stderr = errors.fileHandleForReading
        let reader = Thread { [weak self] in
            var buffer = Data()
            while true {
                let chunk = stdout.availableData
                if chunk.isEmpty { break }
                buffer.append(chunk)
                while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = buffer[buffer.startIndex..<newline]
                    buffer = Data(buffer[buffer.index(after: newline)...])
                    self?.handle(line: Data(line))
                }
            }
            self?.closeAll(reason: "the plugin process exited")
        }
        reader.name = "tally-exec-stdout"
        reader.start()
        let errorReader = Thread { [weak self] in
            while true {
                let chunk = stderr.availableData
                if chunk.isEmpty { break }
                self?.appendStderr(String(decoding: chunk, as: UTF8.self))
            }
        }
        errorReader.name = "tally-exec-stderr"
        errorReader.start()
    }

    deinit {
        try? stdin.close()
        if process.isRunning { process.terminate() }
    }

    /// Sends one request and waits for its result, decoded as `Result`.
    /// - Parameters:
    ///   - method: `describe`, `generate`, `finetune`, `open_artifact` or `score`.
    ///   - params: the request's parameters.
    ///   - progress: receives the plugin's progress notifications for this request.
    ///   - timeout: seconds this request may take; nil: the connection's timeout.
    /// - Throws: `TallyError(.backend)` with the plugin's error message, on timeout, or when
    ///   the process has exited.
    public func call<Params: Encodable & Sendable, Result: Decodable>(
        _ method: String, params: Params, as: Result.Type,
        progress: (@Sendable (ProgressEvent) -> Void)? = nil, timeout: Double? = nil
    ) async throws -> Result {
        let value = try await send(method, params: params, progress: progress, timeout: timeout ?? timeoutSeconds)
        do {
            let data = try JSONEncoder().encode(value)
            return try JSONDecoder().decode(Result.self, from: data)
        } catch {
            throw TallyError(code: .backend, message: "the exec plugin '\(commandLine)' answered `\(method)` with a result of the wrong shape; see docs/plugins.md", underlying: error)
        }
    }

    private func send<Params: Encodable & Sendable>(_ method: String, params: Params, progress: (@Sendable (ProgressEvent) -> Void)?, timeout: Double) async throws -> ExecProtocol.Value {
        return try await withCheckedThrowingContinuation { continuation in
            let registered: Result<Int, TallyError> = state.withLock { state in
                if let reason = state.closedReason {
                    return .failure(error(reason, tail: state.stderrTail))
                }
                let id = state.nextID
                state.nextID += 1
                state.pending[id] = Pending(continuation: continuation, progress: progress, method: method)
                return .success(id)
            }
            let id: Int
            switch registered {
            case .failure(let failure):
                continuation.resume(throwing: failure)
                return
            case .success(let value): id = value
            }
            do {
                var line = try JSONEncoder().encode(ExecProtocol.Request(id: id, method: method, params: params))
                line.append(UInt8(ascii: "\n"))
                try writeLock.withLock { _ in try stdin.write(contentsOf: line) }
            } catch {
                fail(id: id, with: TallyError(code: .backend, message: "cannot send `\(method)` to the exec plugin '\(commandLine)'", underlying: error))
                return
            }
            if timeout > 0 {
                // The timer runs on a dispatch queue, not Swift's cooperative pool, so a busy
                // pool cannot delay it; if the answer came first, `fail` finds nothing to fail.
                let name = commandLine
                DispatchQueue.global().asyncAfter(deadline: .now() + timeout) { [weak self] in
                    self?.fail(id: id, with: TallyError(code: .backend, message: "the exec plugin '\(name)' did not answer `\(method)` within \(CostModel.format(timeout)) s; raise `timeout_s` in the backend entry"))
                }
            }
        }
    }

    private func fail(id: Int, with error: TallyError) {
        take(id)?.continuation.resume(throwing: error)
    }

    /// Removes a pending request.
    private func take(_ id: Int) -> Pending? {
        state.withLock { $0.pending.removeValue(forKey: id) }
    }

    private func handle(line: Data) {
        guard !line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\r") }) else { return }
        let response: ExecProtocol.Response
        do {
            response = try JSONDecoder().decode(ExecProtocol.Response.self, from: line)
        } catch {
            let text = String(decoding: line.prefix(200), as: UTF8.self)
            appendStderr("[tally] ignored a stdout line that is not a protocol message: \(text)\n")
            return
        }
        guard let id = response.id else { return }
        if let progress = response.progress {
            let callback = state.withLock { $0.pending[id]?.progress }
            let phase = progress.phase ?? "training"
            callback?(.advanced(phase: phase, completed: progress.completed ?? 0, total: progress.total, detail: progress.detail))
            return
        }
        guard let pending = take(id) else { return }
        if let body = response.error {
            pending.continuation.resume(throwing: TallyError(code: .backend, message: "exec plugin '\(commandLine)' failed `\(pending.method)`: \(body.message)"))
        } else {
            pending.continuation.resume(returning: response.result ?? .null)
        }
    }

    private func appendStderr(_ text: String) {
        state.withLock { state in
            state.stderrTail = String((state.stderrTail + text).suffix(2000))
        }
    }

    private func closeAll(reason: String) {
        // Give the stderr reader a moment to collect the last words of a crashing process.
        process.waitUntilExit()
        let status = process.terminationStatus
        let (pending, tail) = state.withLock { state -> ([Pending], String) in
            state.closedReason = "\(reason) (status \(status))"
            let all = Array(state.pending.values)
            state.pending.removeAll()
            return (all, state.stderrTail)
        }
        for item in pending {
            item.continuation.resume(throwing: error("\(reason) (status \(status)) during `\(item.method)`", tail: tail))
        }
    }

    private func error(_ reason: String, tail: String) -> TallyError {
        var message = "exec plugin '\(commandLine)': \(reason)"
        let lastLine = tail.split(separator: "\n").last.map(String.init)
        if let lastLine, !lastLine.isEmpty { message += "; its last stderr line: \(lastLine)" }
        return TallyError(code: .backend, message: message)
    }
}

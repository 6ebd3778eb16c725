#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import Foundation
import Synchronization

/// An external program started in a process group of its own, with pipes for its stdin,
/// stdout and stderr, each served by a dedicated thread (blocking I/O, no polling).
///
/// - Stopping it stops the whole group: its stdin is closed, then SIGTERM goes to the group,
///   then, after a grace period, SIGKILL. Children the program started go with it.
/// - Writing to a program that has died never raises SIGPIPE in Tally: the writing thread
///   blocks SIGPIPE (Linux) or the pipe has `F_SETNOSIGPIPE` (Darwin); the write fails with
///   `EPIPE` instead. Nothing process-wide is changed.
/// - The group leader is reaped only after the group was signalled, so its id cannot have
///   been reused by an unrelated process when Tally signals it.
final class ExecProcess: Sendable {
    /// How the program ended.
    enum Termination: Sendable, Hashable, CustomStringConvertible {
        case exited(Int32)
        case signalled(Int32)

        init(waitStatus status: Int32) {
            let signal = status & 0x7F
            self = signal == 0 ? .exited((status >> 8) & 0xFF) : .signalled(signal)
        }

        var description: String {
            switch self {
            case .exited(let status): "exited with status \(status)"
            case .signalled(let signal): "was killed by signal \(signal)\(Self.signalNames[signal].map { " (\($0))" } ?? "")"
            }
        }

        static let signalNames: [Int32: String] = [
            SIGHUP: "SIGHUP", SIGINT: "SIGINT", SIGQUIT: "SIGQUIT", SIGILL: "SIGILL", SIGABRT: "SIGABRT",
            SIGBUS: "SIGBUS", SIGFPE: "SIGFPE", SIGKILL: "SIGKILL", SIGSEGV: "SIGSEGV", SIGPIPE: "SIGPIPE",
            SIGTERM: "SIGTERM",
        ]
    }

    /// A system call that failed while starting the program.
    struct SpawnError: Error, CustomStringConvertible {
        let call: String
        let code: Int32
        var description: String { "\(call): \(String(cString: strerror(code)))" }
    }

    enum WriteItem: Sendable {
        case data(Data, @Sendable (Int32?) -> Void)
        case close
    }

    struct State {
        var reaped = false
        var termination: Termination?
        var writes: [WriteItem] = []
        var stdinClosing = false
    }

    /// The program's process id, which is also its process group id.
    let pid: pid_t
    private let stdinFD: Int32
    private let stdoutFD: Int32
    private let stderrFD: Int32
    private let state = Mutex(State())
    private let writeReady = DispatchSemaphore(value: 0)
    /// Left when the program has exited and been reaped.
    private let exited = DispatchGroup()
    private let stdoutDrained = DispatchGroup()
    private let stderrDrained = DispatchGroup()

    private init(pid: pid_t, stdin: Int32, stdout: Int32, stderr: Int32) {
        self.pid = pid
        stdinFD = stdin
        stdoutFD = stdout
        stderrFD = stderr
        exited.enter()
        stdoutDrained.enter()
        stderrDrained.enter()
    }

    /// How the program ended, once it has.
    var termination: Termination? { state.withLock { $0.termination } }

    // MARK: starting

    /// Starts `executable` in a new process group, its working directory `workingDirectory`.
    /// Signals Tally ignores or blocks (SIGINT during a run, SIGPIPE) are reset to their
    /// defaults in the program.
    static func spawn(executable: String, arguments: [String], environment: [String: String], workingDirectory: String) throws(SpawnError) -> ExecProcess {
        _ = exitHook
        var input: [Int32] = [-1, -1], output: [Int32] = [-1, -1], errors: [Int32] = [-1, -1]
        func closeAll() { for fd in input + output + errors where fd >= 0 { close(fd) } }
        do {
            try makePipe(&input)
            try makePipe(&output)
            try makePipe(&errors)
        } catch {
            closeAll()
            throw error
        }
        #if canImport(Darwin)
        _ = fcntl(input[1], F_SETNOSIGPIPE, 1)
        var actions: posix_spawn_file_actions_t? = nil
        var attributes: posix_spawnattr_t? = nil
        #else
        var actions = posix_spawn_file_actions_t()
        var attributes = posix_spawnattr_t()
        #endif
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawn_file_actions_adddup2(&actions, input[0], 0)
        posix_spawn_file_actions_adddup2(&actions, output[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errors[1], 2)
        let chdirStatus = addChdir(&actions, workingDirectory)
        guard chdirStatus == 0 else {
            closeAll()
            throw SpawnError(call: "posix_spawn_file_actions_addchdir_np", code: chdirStatus)
        }

        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD] { sigaddset(&defaults, signal) }
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &mask)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let argv = ([executable] + arguments).map { strdup($0) }
        let envp = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") }
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let status = (argv + [nil]).withUnsafeBufferPointer { argvBuffer in
            (envp + [nil]).withUnsafeBufferPointer { envpBuffer in
                guard let argvBase = argvBuffer.baseAddress, let envpBase = envpBuffer.baseAddress else { return EINVAL }
                return posix_spawn(&pid, executable, &actions, &attributes, argvBase, envpBase)
            }
        }
        close(input[0])
        close(output[1])
        close(errors[1])
        guard status == 0 else {
            close(input[1])
            close(output[0])
            close(errors[0])
            throw SpawnError(call: "posix_spawn", code: status)
        }
        let process = ExecProcess(pid: pid, stdin: input[1], stdout: output[0], stderr: errors[0])
        live.withLock { $0[pid] = process.exited }
        return process
    }

    /// A pipe whose ends are closed in any program Tally starts later (close-on-exec). With
    /// `pipe2` the flag is set atomically, so a program another thread starts at the same
    /// moment cannot inherit an end (and keep the pipe open after the plugin exits).
    private static func makePipe(_ fds: inout [Int32]) throws(SpawnError) {
        #if canImport(Glibc)
        if let pipe2 = GNU.pipe2 {
            guard pipe2(&fds, O_CLOEXEC) == 0 else { throw SpawnError(call: "pipe2", code: errno) }
            return
        }
        #endif
        guard pipe(&fds) == 0 else { throw SpawnError(call: "pipe", code: errno) }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
    }

    #if canImport(Glibc)
    /// `posix_spawn_file_actions_addchdir_np` (glibc 2.29 and later).
    private static func addChdir(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ path: String) -> Int32 {
        guard let function = GNU.addChdir else { return ENOSYS }
        return function(actions, path)
    }
    #else
    private static func addChdir(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t?>, _ path: String) -> Int32 {
        posix_spawn_file_actions_addchdir_np(actions, path)
    }
    #endif

    /// Starts the threads that serve the program: `line` gets each stdout line (without its
    /// newline; a line longer than `maxLineBytes` is dropped and reported to `overlong`),
    /// `stderr` each chunk of stderr, and `exit` how the program ended, once stdout is read
    /// to its end (or a grace period has passed).
    func start(
        maxLineBytes: Int, line: @escaping @Sendable (Data) -> Void, overlong: @escaping @Sendable () -> Void,
        stderr: @escaping @Sendable (Data) -> Void, exit: @escaping @Sendable (Termination) -> Void
    ) {
        let reader = Thread { [self] in
            readLines(maxLineBytes: maxLineBytes, line: line, overlong: overlong)
            stdoutDrained.leave()
        }
        reader.name = "tally-exec-stdout"
        // Room for decoding nested JSON on this thread.
        reader.stackSize = 8 << 20
        reader.start()
        let errorReader = Thread { [self] in
            readChunks(stderrFD) { stderr(Data($0)) }
            stderrDrained.leave()
        }
        errorReader.name = "tally-exec-stderr"
        errorReader.start()
        let writer = Thread { [self] in writeLoop() }
        writer.name = "tally-exec-stdin"
        writer.start()
        let waiter = Thread { [self] in
            let termination = waitForExit()
            exit(termination)
            exited.leave()
        }
        waiter.name = "tally-exec-wait"
        waiter.start()
    }

    // MARK: reading

    /// Splits stdout into lines; a line longer than `maxLineBytes` is reported and skipped up
    /// to its newline.
    private func readLines(maxLineBytes: Int, line: @Sendable (Data) -> Void, overlong: @Sendable () -> Void) {
        var buffer = [UInt8]()
        var skipping = false
        readChunks(stdoutFD) { chunk in
            var start = chunk.startIndex
            for index in chunk.indices where chunk[index] == UInt8(ascii: "\n") {
                if skipping {
                    skipping = false
                } else {
                    buffer.append(contentsOf: chunk[start..<index])
                    if buffer.count > maxLineBytes { overlong() } else { line(Data(buffer)) }
                }
                buffer.removeAll(keepingCapacity: buffer.count <= 1 << 20)
                start = index + 1
            }
            if !skipping {
                buffer.append(contentsOf: chunk[start...])
                if buffer.count > maxLineBytes {
                    overlong()
                    buffer = []
                    skipping = true
                }
            }
        }
        if !skipping, !buffer.isEmpty { line(Data(buffer)) }
    }

    /// Reads `fd` to its end (blocking reads), hands each chunk to `handle`, then closes it.
    private func readChunks(_ fd: Int32, _ handle: (ArraySlice<UInt8>) -> Void) {
        let chunkSize = 64 * 1024
        var chunk = [UInt8](repeating: 0, count: chunkSize)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, chunkSize) }
            if count < 0 {
                if errno == EINTR { continue }
                break
            }
            if count == 0 { break }
            handle(chunk[0..<count])
        }
        close(fd)
    }

    // MARK: writing

    /// Queues `data` for the program's stdin; `done` gets the `errno` of a failed write (EPIPE
    /// when the program has closed its stdin or died), on the writing thread.
    func write(_ data: Data, done: @escaping @Sendable (Int32?) -> Void) {
        let accepted = state.withLock { state -> Bool in
            guard !state.stdinClosing else { return false }
            state.writes.append(.data(data, done))
            return true
        }
        if accepted { writeReady.signal() } else { done(EPIPE) }
    }

    /// Closes the program's stdin once the queued writes are written.
    func closeStdin() {
        let first = state.withLock { state -> Bool in
            guard !state.stdinClosing else { return false }
            state.stdinClosing = true
            state.writes.append(.close)
            return true
        }
        if first { writeReady.signal() }
    }

    private func writeLoop() {
        #if canImport(Glibc)
        // SIGPIPE from a write to a pipe without readers goes to the writing thread: blocked
        // here, it stays pending (and is consumed below) instead of killing Tally.
        var pipeSignal = sigset_t()
        sigemptyset(&pipeSignal)
        sigaddset(&pipeSignal, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &pipeSignal, nil)
        #endif
        var failure: Int32?
        while true {
            writeReady.wait()
            let item = state.withLock { state -> WriteItem? in state.writes.isEmpty ? nil : state.writes.removeFirst() }
            switch item {
            case nil:
                continue
            case .close:
                close(stdinFD)
                return
            case .data(let data, let done)?:
                if let failure {
                    done(failure)
                    continue
                }
                failure = writeAll(data)
                #if canImport(Glibc)
                if failure == EPIPE {
                    var now = timespec(tv_sec: 0, tv_nsec: 0)
                    _ = sigtimedwait(&pipeSignal, nil, &now)
                }
                #endif
                done(failure)
            }
        }
    }

    /// Writes all of `data`; the errno of a failure, or nil.
    private func writeAll(_ data: Data) -> Int32? {
        data.withUnsafeBytes { buffer -> Int32? in
            guard let base = buffer.baseAddress else { return nil }
            var offset = 0
            while offset < buffer.count {
                let written = systemWrite(stdinFD, base + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                offset += written
            }
            return nil
        }
    }

    // MARK: exit and stopping

    private func waitForExit() -> Termination {
        var info = siginfo_t()
        // WNOWAIT: the leader stays a zombie, so its pid (the group id) is not reused while
        // the rest of its group is dealt with.
        while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) != 0 {
            if errno != EINTR { break }
        }
        // Children the program left behind go with it.
        signalGroup(SIGTERM)
        if stdoutDrained.wait(timeout: .now() + 1) == .timedOut {
            signalGroup(SIGKILL)
            _ = stdoutDrained.wait(timeout: .now() + 1)
        }
        _ = stderrDrained.wait(timeout: .now() + 0.5)
        Self.live.withLock { _ = $0.removeValue(forKey: pid) }
        return state.withLock { state in
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 {
                if errno != EINTR { break }
            }
            state.reaped = true
            let termination = Termination(waitStatus: status)
            state.termination = termination
            return termination
        }
    }

    /// Sends `signal` to the program's process group, unless it has been reaped.
    func signalGroup(_ signal: Int32) {
        state.withLock { state in
            if !state.reaped { _ = killpg(pid, signal) }
        }
    }

    /// Waits up to `seconds` for the program to exit; whether it has.
    func waitForExit(seconds: Double) -> Bool {
        exited.wait(timeout: .now() + max(0, seconds)) == .success
    }

    /// Stops the program: closes its stdin and waits `grace` seconds for it to exit, then sends
    /// SIGTERM to its group and waits `grace` more, then SIGKILL. Blocks until it has exited
    /// (at most about 2 x `grace` + 5 s).
    func stop(grace: Double) {
        closeStdin()
        if waitForExit(seconds: grace) { return }
        signalGroup(SIGTERM)
        if waitForExit(seconds: grace) { return }
        signalGroup(SIGKILL)
        _ = waitForExit(seconds: 5)
    }

    // MARK: every program, at exit

    /// Programs started and not yet reaped, by process (group) id. Child processes are a
    /// process-wide resource, so this registry is too: it lets `stopAll` (and the exit hook)
    /// stop every group whatever still holds its connection.
    private static let live = Mutex<[pid_t: DispatchGroup]>([:])

    /// Registered once, at the first start: when Tally exits normally, programs still running
    /// are stopped with their groups rather than left behind.
    private static let exitHook: Void = {
        atexit { ExecProcess.stopAll(grace: 1) }
    }()

    /// Sends SIGTERM to every running program's group, waits up to `grace` seconds for them
    /// to exit, then sends SIGKILL to the groups still there.
    static func stopAll(grace: Double) {
        let groups = live.withLock { $0 }
        guard !groups.isEmpty else { return }
        for pid in groups.keys { _ = killpg(pid, SIGTERM) }
        let deadline = DispatchTime.now() + grace
        for group in groups.values { _ = group.wait(timeout: deadline) }
        for pid in live.withLock({ Array($0.keys) }) { _ = killpg(pid, SIGKILL) }
    }
}

#if canImport(Glibc)
/// GNU extensions Swift's Glibc module does not import (they need `_GNU_SOURCE`), looked up
/// in the C library that is loaded.
private enum GNU {
    typealias Pipe2 = @convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Int32
    typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32

    static let pipe2: Pipe2? = dlsym(nil, "pipe2").map { unsafeBitCast($0, to: Pipe2.self) }
    static let addChdir: AddChdir? = dlsym(nil, "posix_spawn_file_actions_addchdir_np").map { unsafeBitCast($0, to: AddChdir.self) }
}
#endif

/// The C library's `write`, named apart from `ExecProcess.write`.
@inline(__always)
private func systemWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    Glibc.write(fd, buffer, count)
    #else
    Darwin.write(fd, buffer, count)
    #endif
}

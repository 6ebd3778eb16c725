import Foundation

/// What a finished subprocess left behind.
struct ProcessOutput: Sendable {
    let status: Int32
    let stdout: String
    let stderr: String

    /// The last few non-empty lines of stderr (or stdout when stderr is empty), for messages.
    func tail(lines count: Int = 6) -> String {
        let text = stderr.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ? stdout : stderr
        let lines = text.split(whereSeparator: \.isNewline).map(String.init).filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        return lines.suffix(count).joined(separator: "\n")
    }
}

/// Runs helper programs (python3, tar) for asset fetching. Output goes to files in a
/// scratch directory, so a chatty child can never block on a full pipe.
enum ProcessRunner {
    /// The executable `name` resolves to: a path if it contains `/`, else the first match on
    /// the environment's `PATH`. Nil when there is none.
    static func findExecutable(_ name: String, environment: [String: String]) -> URL? {
        let fileManager = FileManager.default
        if name.contains("/") {
            let path = AssetCache.expandTilde(name, environment: environment)
            return fileManager.isExecutableFile(atPath: path) ? URL(fileURLWithPath: path) : nil
        }
        let searchPath = environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in searchPath.split(separator: ":") where !directory.isEmpty {
            let candidate = URL(fileURLWithPath: String(directory), isDirectory: true).appendingPathComponent(name)
            if fileManager.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        return nil
    }

    /// Runs `executable` with `arguments` to completion.
    /// - Parameters:
    ///   - scratch: an existing directory where the output files are written.
    /// - Throws: `TallyError(.io)` when the program cannot be started.
    static func run(_ executable: URL, _ arguments: [String], environment: [String: String], currentDirectory: URL? = nil, scratch: URL) throws -> ProcessOutput {
        let token = UUID().uuidString
        let outURL = scratch.appendingPathComponent(".stdout-\(token)")
        let errURL = scratch.appendingPathComponent(".stderr-\(token)")
        let fileManager = FileManager.default
        guard fileManager.createFile(atPath: outURL.path, contents: nil),
              fileManager.createFile(atPath: errURL.path, contents: nil) else {
            throw TallyError(code: .io, message: "cannot create output files in \(scratch.path); check that the cache directory is writable")
        }
        defer {
            try? fileManager.removeItem(at: outURL)
            try? fileManager.removeItem(at: errURL)
        }
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.environment = environment
        if let currentDirectory { process.currentDirectoryURL = currentDirectory }
        do {
            let outHandle = try FileHandle(forWritingTo: outURL)
            let errHandle = try FileHandle(forWritingTo: errURL)
            defer {
                try? outHandle.close()
                try? errHandle.close()
            }
            process.standardOutput = outHandle
            process.standardError = errHandle
            process.standardInput = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
        } catch {
            throw TallyError(code: .io, message: "cannot run \(executable.path)", underlying: error)
        }
        let stdout = (try? String(contentsOf: outURL, encoding: .utf8)) ?? ""
        let stderr = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
        return ProcessOutput(status: process.terminationStatus, stdout: stdout, stderr: stderr)
    }
}

import ArgumentParser
import Foundation
import TallyCore

/// Where the CLI writes: results to stdout, everything else to stderr.
enum Console {
    /// Whether stderr is an interactive terminal (progress bars instead of plain lines).
    static var stderrIsTerminal: Bool { isatty(STDERR_FILENO) == 1 && ProcessInfo.processInfo.environment["TERM"] != "dumb" }

    static func out(_ text: String) {
        FileHandle.standardOutput.write(Data((text.hasSuffix("\n") ? text : text + "\n").utf8))
    }

    static func err(_ text: String) {
        FileHandle.standardError.write(Data((text.hasSuffix("\n") ? text : text + "\n").utf8))
    }

    /// Prints `value` as pretty JSON with sorted keys: what every `--json` flag prints.
    static func json(_ value: some Encodable) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        out(String(decoding: try encoder.encode(value), as: UTF8.self))
    }
}

/// Exit statuses of `tally` (documented in docs/cli.md).
enum ExitStatus {
    static let failure: Int32 = 1
    /// The recipe (or another input file) is invalid.
    static let invalidInput: Int32 = 2
    /// The run stopped before exceeding `constraints.budget_usd`.
    static let budgetExceeded: Int32 = 3
    /// Interrupted with Ctrl-C (128 + SIGINT).
    static let interrupted: Int32 = 130
}

/// Runs a command body and turns any error into one clear line on stderr and an exit
/// status, never a stack trace.
func reportingErrors(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let exit as ExitCode {
        throw exit
    } catch is CancellationError {
        Console.err("tally: interrupted")
        throw ExitCode(ExitStatus.interrupted)
    } catch let error as TallyError {
        Console.err("error: \(error.description)")
        switch error.code {
        case .invalidRecipe, .invalidData, .unknownName: throw ExitCode(ExitStatus.invalidInput)
        case .budgetExceeded: throw ExitCode(ExitStatus.budgetExceeded)
        case .cancelled: throw ExitCode(ExitStatus.interrupted)
        default: throw ExitCode(ExitStatus.failure)
        }
    } catch let error as any LocalizedError {
        Console.err("error: \(error.errorDescription ?? String(describing: error))")
        throw ExitCode(ExitStatus.failure)
    } catch {
        Console.err("error: \(error)")
        throw ExitCode(ExitStatus.failure)
    }
}

/// The directory holding the ledger and run directories: `--home`, else `TALLY_HOME`, else
/// `./.tally`.
func tallyHome(_ option: String?) -> URL {
    let environment = ProcessInfo.processInfo.environment
    let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    if let option, !option.isEmpty { return URL(fileURLWithPath: option, relativeTo: cwd).standardizedFileURL }
    if let value = environment["TALLY_HOME"], !value.isEmpty { return URL(fileURLWithPath: value, relativeTo: cwd).standardizedFileURL }
    return cwd.appending(path: ".tally")
}

/// A path given on the command line, resolved against the current directory.
func fileURL(_ path: String) -> URL {
    URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath)).standardizedFileURL
}

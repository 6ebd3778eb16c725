import ArgumentParser
import Dispatch
import Foundation
import Synchronization
import TallyCore

/// `tally run RECIPE`: runs every strategy, persists every call, writes the reports.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run every strategy in a recipe and report accuracy, cost and forgetting.",
        discussion: """
        Every model call is cached in the per-user call cache ($TALLY_CALL_CACHE, else calls.sqlite in $TALLY_CACHE, $XDG_CACHE_HOME/tally or ~/.cache/tally): rerunning an unchanged recipe, from any directory, makes no backend calls. Runs, predictions and fine-tuning jobs go to the ledger (TALLY_HOME/ledger.sqlite), so an interrupted run resumes where it stopped. Reports go to TALLY_HOME/runs/<run-id>/ (or --out).
        Ctrl-C finishes the calls in flight, saves them and exits 130. Exit 2: invalid recipe; 3: stopped at constraints.budget_usd.
        """)

    @Argument(help: "The recipe file (YAML).", completion: .file(extensions: ["yaml", "yml"]))
    var recipe: String

    @Option(name: .customLong("set"), parsing: .singleValue, help: ArgumentHelp("Change a recipe value for this command only, e.g. --set run.max_examples=20 (repeatable).", valueName: "key=value"))
    var overrides: [String] = []

    @Option(help: "Write report.md and report.json here instead of TALLY_HOME/runs/<run-id>/.")
    var out: String?

    @Option(help: "Tally's home: ledger and run directories (default: $TALLY_HOME or ./.tally).")
    var home: String?

    @Flag(help: "No progress output; only the result.")
    var quiet = false

    @Flag(help: "Print report.json to stdout instead of the table.")
    var json = false

    @Option(help: "Use at most N test examples (the same as --set run.max_examples=N).")
    var limit: Int?

    @Flag(name: .customLong("no-cache"), help: "Make every model call again instead of reading the call cache's stored results (stored results are replaced; finished fine-tuning jobs are reused).")
    var noCache = false

    @Option(parsing: .singleValue, help: ArgumentHelp("Make this strategy's calls again (and the probes of its tuned model), reusing the rest (repeatable).", valueName: "strategy"))
    var refresh: [String] = []

    func validate() throws {
        try validateLimit(limit)
    }

    func run() async throws {
        try await reportingErrors {
            let extensions = TallyExtensions.current
            let registry = extensions.plugins
            let recipe = try loadRecipeOrExit(self.recipe, extensions: extensions, overrides: overrides + limitOverrides(limit))
            let names = recipe.strategies.map(\.name)
            for name in refresh where !names.contains(name) {
                var message = "--refresh \(name): the recipe has no strategy of that name"
                if let near = nearestName(to: name, among: names) { message += "; did you mean '\(near)'?" }
                throw TallyError(code: .unknownName, message: message)
            }
            let home = tallyHome(self.home)
            let ledger = try openLedger(home: home)
            let display = ProgressDisplay(mode: quiet ? .quiet : (Console.stderrIsTerminal ? .bars : .lines))
            var configured = ExperimentRunner(recipe: recipe, registry: registry, ledger: ledger, environment: ProcessInfo.processInfo.environment, home: home, strategies: extensions.strategies)
            configured.cachePolicy = CachePolicy(refreshAll: noCache, refreshStrategies: Set(refresh))
            let runner = configured

            let task = Task { try await runner.run(progress: display.handler) }
            let interrupts = InterruptHandler {
                display.handle(.note("Interrupted: finishing the calls in flight and saving them (Ctrl-C again to quit at once)."))
                task.cancel()
            }
            defer { interrupts.stop() }

            let measurements: RunMeasurements
            do {
                measurements = try await task.value
            } catch {
                display.clear()
                let partial = try? savePartialReport(ledger: ledger, recipe: recipe, home: home)
                if error is CancellationError || (error as? TallyError)?.code == .cancelled {
                    Console.err("tally: interrupted; everything finished so far is saved\(partial.map { " (partial report: \(displayPath($0))/)" } ?? ""). Run `tally run \(self.recipe)\(overrides.map { " --set \($0)" }.joined())` again to resume.")
                    throw ExitCode(interrupts.exitStatus)
                }
                if let error = error as? TallyError, error.code == .budgetExceeded {
                    Console.err("error: \(error.description)")
                    if let partial { Console.err("partial report: \(displayPath(partial))/") }
                    throw ExitCode(ExitStatus.budgetExceeded)
                }
                throw error
            }
            display.clear()
            let report = Report.build(from: measurements)
            let directory = try writeReports(report, measurements: measurements, to: out.map(fileURL) ?? runDirectory(home: home, runID: measurements.runID))
            let page = directory.appending(path: "report.html").standardizedFileURL
            if json {
                Console.out(try JSONRenderer().render(report))
                Console.err("Report: \(page.absoluteString)")
            } else {
                Console.out(try TerminalRenderer().render(report))
                Console.out("Reports: \(displayPath(directory))/")
                Console.out("Report: \(page.absoluteString)")
            }
        }
    }

    /// Writes what the ledger holds of the interrupted run, so it can be inspected.
    func savePartialReport(ledger: Ledger, recipe: Recipe, home: URL) throws -> URL? {
        guard let runID = try ledger.latestRunID(recipeName: recipe.name), let measurements = try ledger.measurements(runID: runID) else { return nil }
        return try writeReports(Report.build(from: measurements), measurements: measurements, to: out.map(fileURL) ?? runDirectory(home: home, runID: runID))
    }
}

/// `--limit N` as the recipe override it stands for.
func limitOverrides(_ limit: Int?) -> [String] {
    limit.map { ["run.max_examples=\($0)"] } ?? []
}

/// `--limit` must be a positive count.
func validateLimit(_ limit: Int?) throws {
    if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
}

/// Opens (creating) the ledger in `home`, with model answers in the per-user call cache
/// (`TALLY_CALL_CACHE`, else `calls.sqlite` in the asset cache). A home directory Tally
/// creates gets a `.gitignore` of `*`, so runs started inside a repository do not show up
/// as untracked files.
func openLedger(home: URL) throws -> Ledger {
    do {
        if !FileManager.default.fileExists(atPath: home.path) {
            try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
            try Data("# Created by tally: the ledger and run reports stay out of version control.\n*\n".utf8)
                .write(to: home.appending(path: ".gitignore"), options: .atomic)
        }
    } catch {
        throw TallyError(code: .io, message: "cannot create Tally's home directory \(home.path); pass --home or set TALLY_HOME", underlying: error)
    }
    return try Ledger(path: home.appending(path: "ledger.sqlite"), cachePath: Ledger.defaultCachePath(environment: ProcessInfo.processInfo.environment))
}

func runDirectory(home: URL, runID: String) -> URL {
    home.appending(path: "runs").appending(path: runID)
}

/// Writes every report file into `directory`.
@discardableResult
func writeReports(_ report: Report, measurements: RunMeasurements? = nil, to directory: URL) throws -> URL {
    do {
        // report.md, report.json, report.html and the charts/*.svg that report.md links.
        try ReportFiles.write(report, renderers: TallyExtensions.reportRenderers(measurements: measurements), to: directory)
    } catch let error as TallyError {
        throw error
    } catch {
        throw TallyError(code: .io, message: "cannot write the reports to \(directory.path)", underlying: error)
    }
    return directory
}

/// A path relative to the current directory when it is inside it.
func displayPath(_ url: URL) -> String {
    let cwd = FileManager.default.currentDirectoryPath
    let path = url.standardizedFileURL.path
    return path.hasPrefix(cwd + "/") ? String(path.dropFirst(cwd.count + 1)) : path
}

/// Turns SIGINT (Ctrl-C) and SIGTERM into a callback (the first one) and an immediate exit
/// (the second), using dispatch signal sources rather than polling. The exit status is
/// 128 + the first signal's number: 130 for Ctrl-C, 143 for SIGTERM.
final class InterruptHandler {
    private let sources: [any DispatchSourceSignal]
    private let count = InterruptCount()
    static let signals: [Int32] = [SIGINT, SIGTERM]

    init(_ onFirst: @escaping @Sendable () -> Void) {
        let queue = DispatchQueue(label: "tally.signals")
        let count = self.count
        sources = Self.signals.map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler {
                if count.record(number) == 1 {
                    onFirst()
                } else {
                    FileHandle.standardError.write(Data("tally: interrupted again; quitting now\n".utf8))
                    // Exec plugins are stopped (their process groups), briefly: the user asked twice.
                    ExecConnection.stopAll(grace: 0.5)
                    // `_exit`, not `exit`: exit handlers (OpenBLAS's among them) can wait on threads
                    // still busy with the model. What the ledger committed is already on disk.
                    _exit(count.exitStatus)
                }
            }
            source.resume()
            return source
        }
    }

    /// 128 + the number of the first signal received (130 when none was).
    var exitStatus: Int32 { count.exitStatus }

    func stop() {
        for source in sources { source.cancel() }
        for number in Self.signals { signal(number, SIG_DFL) }
    }
}

/// How many interrupts arrived, and the first one's signal.
final class InterruptCount: Sendable {
    private let value = Mutex<(count: Int, first: Int32?)>((0, nil))
    /// Counts `signal`; returns how many have arrived.
    func record(_ signal: Int32) -> Int {
        value.withLock { state in
            state.count += 1
            if state.first == nil { state.first = signal }
            return state.count
        }
    }
    var exitStatus: Int32 { value.withLock { 128 + ($0.first ?? SIGINT) } }
}

import Foundation
import GRDB
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How a run ended (or that it has not).
public enum RunStatus: String, Codable, Sendable, Hashable {
    case running
    case finished
    case cancelled
    case budgetExceeded = "budget-exceeded"
    case failed
    /// Recorded as running, but the process that ran it is gone (killed, crashed). Its
    /// calls are in the ledger; running the recipe again resumes from them.
    case interrupted
}

/// One line of `tally runs`.
public struct RunSummary: Codable, Sendable, Hashable {
    public let runID: String
    public let recipeName: String
    public let recipePath: String
    public let startedAt: Date
    public let finishedAt: Date?
    public let status: RunStatus
    /// Whether the run's measurements (complete or partial) are stored.
    public let hasMeasurements: Bool

    public init(runID: String, recipeName: String, recipePath: String, startedAt: Date, finishedAt: Date?, status: RunStatus, hasMeasurements: Bool) {
        self.runID = runID
        self.recipeName = recipeName
        self.recipePath = recipePath
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.status = status
        self.hasMeasurements = hasMeasurements
    }
}

/// A fine-tuning job as the ledger knows it.
public struct FineTuneJob: Sendable, Hashable {
    public enum Status: String, Sendable, Hashable {
        /// Started and not known to have finished (interrupted, or still running).
        case running
        case finished
    }
    public let jobKey: String
    public let strategy: String
    public let baseIdentity: String
    public let status: Status
    public let outcome: FineTuneOutcome?
    /// Identity of the fine-tuned generator, so cached predictions can be found without
    /// reopening the model.
    public let generatorIdentity: String?
}

/// The SQLite ledger (WAL mode): every model call and result, predictions, fine-tuning
/// jobs, probe results and run measurements.
///
/// Every write is its own transaction, committed when the result arrives, and keyed so a
/// repeated write is ignored: after a crash nothing committed is lost or duplicated, and an
/// unchanged call is never paid for twice.
///
/// ```swift
/// Model answers (calls, cross-entropy scores, embeddings) can live in a second file, the
/// per-user call cache (``Ledger/defaultCachePath(environment:)``), so the same recipe run
/// from another directory reuses them; runs, predictions, fine-tuning jobs and probe results
/// stay in the ledger next to the recipe. Without `cachePath` everything is in one file.
///
/// ```swift
/// let ledger = try Ledger(path: home.appendingPathComponent("ledger.sqlite"),
///                         cachePath: Ledger.defaultCachePath(environment: ProcessInfo.processInfo.environment))
/// let key = try Ledger.cacheKey(identity: generator.identity, request: request)
/// if let cached = try ledger.cachedResult(key: key) { … }
/// ```
public final class Ledger: Sendable {
    public let path: URL
    /// Where model answers are stored: the call cache, or `path` itself.
    public let cachePath: URL
    let pool: DatabasePool
    /// The pool of the call cache (the same pool as `pool` when answers live in the ledger).
    let cachePool: DatabasePool

    /// Opens (creating if needed) the ledger at `path`, and its parent directory.
    ///
    /// With a `cachePath` other than `path`, model answers are read from and written to that
    /// call cache, and answers an older ledger at `path` still holds are moved into it (once:
    /// a moved row is deleted from the ledger, and moving again ignores rows already cached).
    /// - Parameters:
    ///   - path: the ledger file (runs, predictions, fine-tuning jobs, probe results).
    ///   - cachePath: the call cache file (calls, scores, embeddings); nil keeps them in `path`.
    /// - Throws: `TallyError(.ledger)` when a file cannot be opened or migrated.
    public init(path: URL, cachePath: URL? = nil) throws {
        self.path = path
        let cachePath = (cachePath ?? path).standardizedFileURL
        let separate = cachePath.path != path.standardizedFileURL.path
        self.cachePath = separate ? cachePath : path
        let ledgerPool = try Ledger.openPool(path, what: "the ledger", hint: "set TALLY_HOME or --home to use another")
        pool = ledgerPool
        guard separate else {
            cachePool = ledgerPool
            return
        }
        let cachePool = try Ledger.openPool(cachePath, what: "the call cache", hint: "set TALLY_CALL_CACHE to use another")
        self.cachePool = cachePool
        do {
            try Ledger.whileLocked(path) { try Ledger.moveAnswers(from: ledgerPool, to: cachePool) }
        } catch let error as TallyError {
            throw error
        } catch {
            throw TallyError(code: .ledger, message: "cannot move the cached answers of the ledger at \(path.path) into the call cache \(cachePath.path); check both are writable", underlying: error)
        }
    }

    /// The per-user call cache: `TALLY_CALL_CACHE` when set, else `calls.sqlite` in the
    /// asset cache root (`TALLY_CACHE`, `$XDG_CACHE_HOME/tally`, `~/.cache/tally`).
    /// - Parameter environment: the process environment to read.
    public static func defaultCachePath(environment: [String: String]) -> URL {
        if let explicit = environment["TALLY_CALL_CACHE"], !explicit.isEmpty {
            return URL(fileURLWithPath: AssetCache.expandTilde(explicit, environment: environment))
        }
        return AssetCache.defaultRoot(environment: environment).appendingPathComponent("calls.sqlite", isDirectory: false)
    }

    /// Opens (creating) one SQLite file in WAL mode and applies the migrations.
    static func openPool(_ path: URL, what: String, hint: String) throws -> DatabasePool {
        do {
            try FileManager.default.createDirectory(at: path.deletingLastPathComponent(), withIntermediateDirectories: true)
            var configuration = Configuration()
            configuration.busyMode = .timeout(10)
            // WAL with synchronous=NORMAL: a committed transaction survives the process being
            // killed (kill -9); only a power loss can drop the last few commits.
            configuration.prepareDatabase { db in
                try db.execute(sql: "PRAGMA synchronous = NORMAL")
            }
            // Two processes opening a new or older ledger at once must not both apply one
            // migration (the second failed with "table already exists"): opening and
            // migrating happen under an advisory lock on `<ledger>.lock`.
            return try Ledger.whileLocked(path) {
                let pool = try DatabasePool(path: path.path, configuration: configuration)
                try Ledger.migrator.migrate(pool)
                return pool
            }
        } catch let error as TallyError {
            throw error
        } catch {
            throw TallyError(code: .ledger, message: "cannot open \(what) at \(path.path); check the directory is writable (\(hint))", underlying: error)
        }
    }

    /// The tables that hold model answers, keyed by content (identity and request).
    static let answerTables = [
        ("calls", "key, identity, request, result, prompt_tokens, completion_tokens, cached_prompt_tokens, latency_s, compute_s, created_at"),
        ("scores", "key, identity, nats, tokens, created_at"),
        ("embeddings", "key, identity, vector, tokens, created_at"),
    ]

    /// Moves the answers a ledger holds into the call cache, a bounded batch per
    /// transaction: each batch is inserted into the cache (rows already there are kept) and
    /// only then deleted from the ledger, so a crash in between loses nothing.
    static func moveAnswers(from ledger: DatabasePool, to cache: DatabasePool) throws {
        let batch = 500
        for (table, columns) in answerTables {
            while true {
                let rows = try ledger.read { db in
                    try Row.fetchAll(db, sql: "SELECT \(columns) FROM \(table) LIMIT \(batch)")
                }
                if rows.isEmpty { break }
                let names = columns.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                let placeholders = Array(repeating: "?", count: names.count).joined(separator: ", ")
                try cache.write { db in
                    for row in rows {
                        try db.execute(sql: "INSERT OR IGNORE INTO \(table) (\(columns)) VALUES (\(placeholders))",
                                       arguments: StatementArguments(names.map { (row[$0] as DatabaseValue) as (any DatabaseValueConvertible)? }))
                    }
                }
                let keys: [String] = rows.map { $0["key"] }
                try ledger.write { db in
                    for key in keys { try db.execute(sql: "DELETE FROM \(table) WHERE key = ?", arguments: [key]) }
                }
            }
        }
    }

    /// Runs `body` holding an exclusive `flock` on `<ledger>.lock`, waiting (blocked, no
    /// polling) while another process holds it. The lock is released when `body` returns or
    /// the process dies; a migration holds it for milliseconds.
    /// - Throws: `TallyError(.ledger)` when the lock file cannot be opened or locked; what
    ///   `body` throws.
    static func whileLocked<T>(_ path: URL, _ body: () throws -> T) throws -> T {
        let lockPath = path.path + ".lock"
        let descriptor = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw TallyError(code: .ledger, message: "cannot open the ledger lock \(lockPath) (\(String(cString: strerror(errno)))); check the directory is writable (set TALLY_HOME or --home to use another)")
        }
        defer { close(descriptor) }
        while flock(descriptor, LOCK_EX) != 0 {
            guard errno == EINTR else {
                throw TallyError(code: .ledger, message: "cannot lock \(lockPath) (\(String(cString: strerror(errno)))); keep the Tally home on a local file system")
            }
        }
        return try body()
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE runs (
                    id TEXT PRIMARY KEY, recipe_name TEXT NOT NULL, recipe_path TEXT NOT NULL,
                    started_at REAL NOT NULL, finished_at REAL, status TEXT NOT NULL, measurements TEXT);
                CREATE TABLE calls (
                    key TEXT PRIMARY KEY, identity TEXT NOT NULL, request TEXT NOT NULL, result TEXT NOT NULL,
                    prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, cached_prompt_tokens INTEGER NOT NULL,
                    latency_s REAL NOT NULL, compute_s REAL, created_at REAL NOT NULL);
                CREATE TABLE scores (
                    key TEXT PRIMARY KEY, identity TEXT NOT NULL, nats REAL NOT NULL, tokens INTEGER NOT NULL, created_at REAL NOT NULL);
                CREATE TABLE predictions (
                    run_id TEXT NOT NULL, strategy TEXT NOT NULL, example_index INTEGER NOT NULL, example_id TEXT NOT NULL,
                    call_key TEXT NOT NULL, prediction TEXT NOT NULL,
                    PRIMARY KEY (run_id, strategy, example_id));
                CREATE TABLE fine_tunes (
                    job_key TEXT PRIMARY KEY, strategy TEXT NOT NULL, base_identity TEXT NOT NULL, status TEXT NOT NULL,
                    outcome TEXT, generator_identity TEXT, started_at REAL NOT NULL, finished_at REAL);
                CREATE TABLE probe_results (
                    run_id TEXT NOT NULL, probe TEXT NOT NULL, subject TEXT NOT NULL, measurement TEXT NOT NULL,
                    PRIMARY KEY (run_id, probe, subject));
                """)
        }
        migrator.registerMigration("v2-run-process") { db in
            try db.execute(sql: "ALTER TABLE runs ADD COLUMN pid INTEGER")
        }
        migrator.registerMigration("v3-embeddings") { db in
            try db.execute(sql: """
                CREATE TABLE embeddings (
                    key TEXT PRIMARY KEY, identity TEXT NOT NULL, vector BLOB NOT NULL, tokens INTEGER NOT NULL, created_at REAL NOT NULL);
                """)
        }
        return migrator
    }

    func write<T>(_ what: String, cache: Bool = false, _ body: (Database) throws -> T) throws -> T {
        do {
            return try (cache ? cachePool : pool).write(body)
        } catch let error as TallyError {
            throw error
        } catch {
            throw TallyError(code: .ledger, message: "\(cache ? "call cache \(cachePath.path)" : "ledger \(path.path)"): cannot \(what)", underlying: error)
        }
    }

    func read<T>(_ what: String, cache: Bool = false, _ body: (Database) throws -> T) throws -> T {
        do {
            return try (cache ? cachePool : pool).read(body)
        } catch let error as TallyError {
            throw error
        } catch {
            throw TallyError(code: .ledger, message: "\(cache ? "call cache \(cachePath.path)" : "ledger \(path.path)"): cannot \(what)", underlying: error)
        }
    }

    static func json<T: Encodable>(_ value: T) throws -> String { try CanonicalJSON.string(value) }

    static func decode<T: Decodable>(_ type: T.Type, _ text: String?) -> T? {
        guard let text else { return nil }
        return try? CanonicalJSON.decode(type, from: Data(text.utf8))
    }

    // MARK: calls

    /// The cache key of a call: SHA-256 (hex) of the generator identity and the canonical
    /// JSON of the request.
    public static func cacheKey(identity: String, request: GenerationRequest) throws -> String {
        SHA256.hexDigest(of: Array((identity + "\n").utf8) + Array(try CanonicalJSON.data(request)))
    }

    /// The stored result of a call, if it was made before.
    public func cachedResult(key: String) throws -> GenerationResult? {
        let text = try read("read a cached call", cache: true) { db in
            try String.fetchOne(db, sql: "SELECT result FROM calls WHERE key = ?", arguments: [key])
        }
        return Ledger.decode(GenerationResult.self, text)
    }

    /// Stores a call's result (ignored when the key is already stored, unless `replacing`).
    public func recordCall(key: String, identity: String, request: GenerationRequest, result: GenerationResult, replacing: Bool = false) throws {
        let requestJSON = try Ledger.json(request)
        let resultJSON = try Ledger.json(result)
        try write("store a call", cache: true) { db in
            try db.execute(
                sql: """
                    INSERT OR \(replacing ? "REPLACE" : "IGNORE") INTO calls (key, identity, request, result, prompt_tokens, completion_tokens,
                        cached_prompt_tokens, latency_s, compute_s, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [key, identity, requestJSON, resultJSON, result.usage.promptTokens, result.usage.completionTokens,
                            result.usage.cachedPromptTokens, result.latencySeconds, result.computeSeconds, Date().timeIntervalSince1970])
        }
    }

    /// How many distinct calls are stored.
    public func callCount() throws -> Int {
        try read("count calls", cache: true) { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM calls") ?? 0 }
    }

    /// The key of a cross-entropy measurement of `text` under `identity`.
    public static func scoreKey(identity: String, text: String) -> String {
        SHA256.hexDigest(of: identity + "\ncross-entropy\n" + text)
    }

    /// A stored cross-entropy measurement.
    public func cachedScore(key: String) throws -> (nats: Double, tokens: Int)? {
        try read("read a cached score", cache: true) { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT nats, tokens FROM scores WHERE key = ?", arguments: [key]) else { return nil }
            return (row["nats"], row["tokens"])
        }
    }

    /// Stores a cross-entropy measurement (ignored when already stored, unless `replacing`).
    public func recordScore(key: String, identity: String, nats: Double, tokens: Int, replacing: Bool = false) throws {
        try write("store a score", cache: true) { db in
            try db.execute(sql: "INSERT OR \(replacing ? "REPLACE" : "IGNORE") INTO scores (key, identity, nats, tokens, created_at) VALUES (?, ?, ?, ?, ?)",
                           arguments: [key, identity, nats, tokens, Date().timeIntervalSince1970])
        }
    }

    // MARK: embeddings

    /// The key of `text`'s vector under the embedding model `identity`.
    public static func embeddingKey(identity: String, text: String) -> String {
        SHA256.hexDigest(of: identity + "\nembedding\n" + text)
    }

    /// A stored vector and the tokens embedding its text counted.
    public func cachedEmbedding(key: String) throws -> (vector: [Float], tokens: Int)? {
        try read("read a cached embedding", cache: true) { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT vector, tokens FROM embeddings WHERE key = ?", arguments: [key]) else { return nil }
            let data: Data = row["vector"]
            return (Ledger.floats(data), row["tokens"])
        }
    }

    /// Stores a vector (ignored when already stored), as little-endian Float32.
    public func recordEmbedding(key: String, identity: String, vector: [Float], tokens: Int) throws {
        var data = Data(capacity: vector.count * 4)
        for value in vector { withUnsafeBytes(of: value.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
        try write("store an embedding", cache: true) { db in
            try db.execute(sql: "INSERT OR IGNORE INTO embeddings (key, identity, vector, tokens, created_at) VALUES (?, ?, ?, ?, ?)",
                           arguments: [key, identity, data, tokens, Date().timeIntervalSince1970])
        }
    }

    /// How many vectors are stored.
    public func embeddingCount() throws -> Int {
        try read("count embeddings", cache: true) { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM embeddings") ?? 0 }
    }

    static func floats(_ data: Data) -> [Float] {
        let bytes = [UInt8](data)
        return stride(from: 0, to: bytes.count - bytes.count % 4, by: 4).map { offset in
            let bits = UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16 | UInt32(bytes[offset + 3]) << 24
            return Float(bitPattern: bits)
        }
    }

    // MARK: runs

    /// Records that a run started.
    /// - Parameter processID: the process running it (default: this one), so a run whose
    ///   process died shows as `interrupted`.
    public func beginRun(runID: String, recipeName: String, recipePath: String, startedAt: Date, processID: Int32 = ProcessInfo.processInfo.processIdentifier) throws {
        try write("record a run") { db in
            try db.execute(sql: "INSERT OR IGNORE INTO runs (id, recipe_name, recipe_path, started_at, status, pid) VALUES (?, ?, ?, ?, ?, ?)",
                           arguments: [runID, recipeName, recipePath, startedAt.timeIntervalSince1970, RunStatus.running.rawValue, processID])
        }
    }

    /// Whether a process with this id exists on this machine.
    static func processExists(_ pid: Int32) -> Bool {
        if pid <= 0 { return false }
        return kill(pid, 0) == 0 || errno == EPERM
    }

    /// Records how a run ended and what it measured (possibly partial).
    public func finishRun(runID: String, status: RunStatus, measurements: RunMeasurements?) throws {
        let json = try measurements.map(Ledger.json)
        try write("finish a run") { db in
            try db.execute(sql: "UPDATE runs SET status = ?, finished_at = ?, measurements = COALESCE(?, measurements) WHERE id = ?",
                           arguments: [status.rawValue, Date().timeIntervalSince1970, json, runID])
        }
    }

    /// Every run, newest first.
    public func runs() throws -> [RunSummary] {
        try read("list runs") { db in
            try Row.fetchAll(db, sql: "SELECT id, recipe_name, recipe_path, started_at, finished_at, status, pid, measurements IS NOT NULL AS has FROM runs ORDER BY started_at DESC, id DESC").map { row in
                let finished: Double? = row["finished_at"]
                var status = RunStatus(rawValue: row["status"]) ?? .failed
                let pid: Int32? = row["pid"]
                if status == .running, let pid, !Ledger.processExists(pid) { status = .interrupted }
                return RunSummary(
                    runID: row["id"], recipeName: row["recipe_name"], recipePath: row["recipe_path"],
                    startedAt: Date(timeIntervalSince1970: row["started_at"]), finishedAt: finished.map(Date.init(timeIntervalSince1970:)),
                    status: status, hasMeasurements: row["has"])
            }
        }
    }

    /// The measurements stored for a run, or nil when it has none (unknown id, or the run
    /// died before storing any).
    public func measurements(runID: String) throws -> RunMeasurements? {
        let text = try read("read a run") { db in
            try String.fetchOne(db, sql: "SELECT measurements FROM runs WHERE id = ?", arguments: [runID])
        }
        guard let text else { return nil }
        do {
            return try CanonicalJSON.decode(RunMeasurements.self, from: Data(text.utf8))
        } catch {
            throw TallyError(code: .ledger, message: "ledger \(path.path): the measurements of run \(runID) cannot be decoded (written by another Tally version?)", underlying: error)
        }
    }

    /// The newest run with stored measurements, optionally only of one recipe.
    public func latestRunID(recipeName: String? = nil) throws -> String? {
        try read("find the latest run") { db in
            if let recipeName {
                return try String.fetchOne(db, sql: "SELECT id FROM runs WHERE recipe_name = ? AND measurements IS NOT NULL ORDER BY started_at DESC, id DESC LIMIT 1", arguments: [recipeName])
            }
            return try String.fetchOne(db, sql: "SELECT id FROM runs WHERE measurements IS NOT NULL ORDER BY started_at DESC, id DESC LIMIT 1")
        }
    }

    // MARK: predictions

    /// Stores one scored prediction of a run (ignored when already stored).
    public func recordPrediction(runID: String, strategy: String, index: Int, callKey: String, prediction: Prediction) throws {
        let json = try Ledger.json(prediction)
        try write("store a prediction") { db in
            try db.execute(sql: "INSERT OR IGNORE INTO predictions (run_id, strategy, example_index, example_id, call_key, prediction) VALUES (?, ?, ?, ?, ?, ?)",
                           arguments: [runID, strategy, index, prediction.exampleID, callKey, json])
        }
    }

    /// A run's stored predictions for one strategy, in test-set order.
    public func predictions(runID: String, strategy: String) throws -> [Prediction] {
        try read("read predictions") { db in
            try String.fetchAll(db, sql: "SELECT prediction FROM predictions WHERE run_id = ? AND strategy = ? ORDER BY example_index", arguments: [runID, strategy])
        }.compactMap { Ledger.decode(Prediction.self, $0) }
    }

    // MARK: fine-tuning jobs

    /// The job stored under `key`, if any.
    public func fineTuneJob(key: String) throws -> FineTuneJob? {
        try read("read a fine-tuning job") { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM fine_tunes WHERE job_key = ?", arguments: [key]) else { return nil }
            return FineTuneJob(
                jobKey: row["job_key"], strategy: row["strategy"], baseIdentity: row["base_identity"],
                status: FineTuneJob.Status(rawValue: row["status"]) ?? .running,
                outcome: Ledger.decode(FineTuneOutcome.self, row["outcome"]), generatorIdentity: row["generator_identity"])
        }
    }

    /// Records that a job started (kept as is when it is already known).
    public func recordFineTuneStarted(key: String, strategy: String, baseIdentity: String) throws {
        try write("record a fine-tuning job") { db in
            try db.execute(sql: "INSERT OR IGNORE INTO fine_tunes (job_key, strategy, base_identity, status, started_at) VALUES (?, ?, ?, ?, ?)",
                           arguments: [key, strategy, baseIdentity, FineTuneJob.Status.running.rawValue, Date().timeIntervalSince1970])
        }
    }

    /// Records a finished job's outcome and the identity of the generator it produced.
    public func recordFineTuneFinished(key: String, outcome: FineTuneOutcome, generatorIdentity: String) throws {
        let json = try Ledger.json(outcome)
        try write("finish a fine-tuning job") { db in
            try db.execute(sql: "UPDATE fine_tunes SET status = ?, outcome = ?, generator_identity = ?, finished_at = ? WHERE job_key = ? AND status != ?",
                           arguments: [FineTuneJob.Status.finished.rawValue, json, generatorIdentity, Date().timeIntervalSince1970, key, FineTuneJob.Status.finished.rawValue])
        }
    }

    // MARK: probes

    /// Stores a probe result of a run (ignored when already stored).
    public func recordProbe(runID: String, measurement: ProbeMeasurement) throws {
        let json = try Ledger.json(measurement)
        try write("store a probe result") { db in
            try db.execute(sql: "INSERT OR IGNORE INTO probe_results (run_id, probe, subject, measurement) VALUES (?, ?, ?, ?)",
                           arguments: [runID, measurement.probe, measurement.subject, json])
        }
    }

    /// A run's stored probe results.
    public func probes(runID: String) throws -> [ProbeMeasurement] {
        try read("read probe results") { db in
            try String.fetchAll(db, sql: "SELECT measurement FROM probe_results WHERE run_id = ? ORDER BY rowid", arguments: [runID])
        }.compactMap { Ledger.decode(ProbeMeasurement.self, $0) }
    }
}

import Foundation
import TallyCore

/// A run's measurements from the ledger in `home`; `run` is a run id from `tally runs` or
/// `latest`. Shared by the commands that take a RUN argument (`report`, `export`).
/// - Throws: `TallyError` when there is no ledger, no run yet, or no run of that id (with
///   the nearest id suggested).
func loadRun(_ run: String, home: URL) throws -> RunMeasurements {
    let ledgerURL = home.appending(path: "ledger.sqlite")
    guard FileManager.default.fileExists(atPath: ledgerURL.path) else {
        throw TallyError(code: .io, message: "no ledger in \(displayPath(home)); pass --home or set TALLY_HOME to where `tally run` wrote it")
    }
    let ledger = try Ledger(path: ledgerURL)
    var runID = run
    if runID == "latest" {
        guard let latest = try ledger.latestRunID(recipeName: nil) else {
            throw TallyError(code: .io, message: "the ledger in \(displayPath(home)) has no runs yet")
        }
        runID = latest
    }
    guard let measurements = try ledger.measurements(runID: runID) else {
        let known = try ledger.runs().map(\.runID)
        var message = "no measurements for run '\(runID)' in \(displayPath(home))"
        if let near = nearestName(to: runID, among: known) { message += "; did you mean '\(near)'?" }
        message += known.isEmpty ? " (the ledger has no runs)" : "; `tally runs` lists the runs"
        throw TallyError(code: .unknownName, message: message)
    }
    return measurements
}

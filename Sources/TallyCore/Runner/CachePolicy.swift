import Foundation

/// Which stored results a run may reuse (`tally run --no-cache`, `--refresh STRATEGY`).
///
/// By default every model call and drift score whose key is in the ledger is read back
/// instead of made again. Refreshing makes those calls again and stores the new results in
/// place of the old, so later runs reuse the new ones. Finished fine-tuning jobs are reused
/// either way (their tuned models are answered again); delete `TALLY_HOME/work` to retrain.
public struct CachePolicy: Sendable, Hashable {
    /// Make every call again.
    public var refreshAll: Bool
    /// Make the calls of these strategies (by name, as in the report) again, and of the
    /// probes on their tuned models.
    public var refreshStrategies: Set<String>

    public init(refreshAll: Bool = false, refreshStrategies: Set<String> = []) {
        self.refreshAll = refreshAll
        self.refreshStrategies = refreshStrategies
    }

    /// Whether the calls made for `subject` (a strategy's run name, or a backend's name for
    /// probes of a base model) skip the ledger's stored results.
    public func refreshes(_ subject: String) -> Bool {
        // A strategy repeated over seeds runs as `NAME (seed N)`: NAME refreshes every seed.
        refreshAll || refreshStrategies.contains(subject) || refreshStrategies.contains { subject.hasPrefix($0 + " (seed ") }
    }
}

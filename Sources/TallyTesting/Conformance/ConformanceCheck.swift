import Foundation

/// The result of one conformance check: what was checked, how it went, and why.
///
/// The suites (`GeneratorConformance`, `FineTunerConformance`, `BackendConformance`)
/// return one value per check, in a fixed order; `tally plugins check` prints them.
///
/// ```swift
/// let checks = await GeneratorConformance.check(generator)
/// for check in checks.failures { print(check) }  // "FAIL identity is stable: ..."
/// ```
public struct ConformanceCheck: Sendable, Hashable, CustomStringConvertible {
    /// How a check went. A struct rather than an enum, so that a new outcome does not break
    /// a `switch` in a plugin's tests.
    public struct Outcome: Sendable, Hashable, CustomStringConvertible {
        private let label: String
        private init(_ label: String) { self.label = label }

        /// The plugin did what Tally relies on.
        public static let passed = Outcome("PASS")
        /// It did not; `detail` says what happened instead.
        public static let failed = Outcome("FAIL")
        /// The check could not run (the backend does not fine-tune, an earlier step failed);
        /// `detail` says why. A skipped check is not a failure.
        public static let skipped = Outcome("SKIP")

        /// `PASS`, `FAIL` or `SKIP`.
        public var description: String { label }
    }

    /// A short, stable name ("identity is stable", "greedy answers repeat", ...).
    public let name: String
    public let outcome: Outcome
    /// What was observed: the evidence for a pass, what went wrong for a failure.
    public let detail: String

    public init(name: String, outcome: Outcome, detail: String) {
        self.name = name
        self.outcome = outcome
        self.detail = detail
    }

    /// A passed check.
    public static func pass(_ name: String, _ detail: String) -> ConformanceCheck { .init(name: name, outcome: .passed, detail: detail) }
    /// A failed check.
    public static func fail(_ name: String, _ detail: String) -> ConformanceCheck { .init(name: name, outcome: .failed, detail: detail) }
    /// A check that could not run.
    public static func skip(_ name: String, _ detail: String) -> ConformanceCheck { .init(name: name, outcome: .skipped, detail: detail) }

    /// Whether the check ran and passed.
    public var passed: Bool { outcome == .passed }
    /// Whether the check ran and failed.
    public var failed: Bool { outcome == .failed }
    /// Whether the check could not run.
    public var skipped: Bool { outcome == .skipped }

    /// `PASS name: detail`.
    public var description: String { "\(outcome) \(name): \(detail)" }
}

extension Array where Element == ConformanceCheck {
    /// The checks that failed (empty when the plugin conforms).
    public var failures: [ConformanceCheck] { filter(\.failed) }

    /// One line per failed check, or nil when none failed: a ready-made message for
    /// `#expect(checks.failures.isEmpty, Comment(rawValue: checks.failureSummary ?? ""))`.
    public var failureSummary: String? {
        let lines = failures.map(\.description)
        return lines.isEmpty ? nil : lines.joined(separator: "\n")
    }
}

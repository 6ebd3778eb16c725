import TallyCore

/// Fakes and conformance suites for Tally's tests and for plugin authors' own tests.
///
/// - Conformance suites: `BackendConformance` (a `BackendPlugin` end to end),
///   `GeneratorConformance` (a `TextGenerator`) and `FineTunerConformance` (a `FineTuner`)
///   return `ConformanceCheck`s; `tally plugins check` runs the same suites on a recipe's
///   backend.
/// - Fakes: `FakeTextGenerator`, `FakeFineTuner`, `FakeBackendPlugin` and `CallLog`.
/// - `SampleMeasurements`: a hand-built run for testing report renderers.
///
/// The suites are plain async functions, so any test framework can call them:
///
/// ```swift
/// import Testing
/// import TallyTesting
///
/// @Test func myPluginConforms() async {
///     let checks = await BackendConformance.check(plugin: MyPlugin(), config: config, environment: [:])
///     #expect(checks.failures.isEmpty, Comment(rawValue: checks.failureSummary ?? ""))
/// }
/// ```
public enum TallyTesting {}

import TallyCore

/// Fakes and conformance suites for Tally's tests and for plugin authors:
/// `FakeTextGenerator`, `FakeFineTuner`, `FakeBackendPlugin` and `CallLog`.
public enum TallyTesting {}

import TallyCore

/// Fakes and conformance suites for Tally's tests and for plugin authors.
public enum TallyTesting {}

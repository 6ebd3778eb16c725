/// Tally's version, in one place: `tally --version`, the exec protocol's `describe`, and
/// CHANGELOG.md's newest entry agree with it.
public enum TallyVersion {
    public static let current = "0.2.0"
}

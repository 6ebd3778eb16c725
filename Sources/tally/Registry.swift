import HostedAPI
import SwiftTrainer
import TallyCore

/// Everything this `tally` binary can plug in, built in one place and passed down.
///
/// Adding a backend plugin is one line in `makeRegistry()`.
enum Registry {
    /// The backend plugins recipes can name with `plugin:`.
    static func makeRegistry() -> PluginRegistry {
        var registry = PluginRegistry()
        registry.register(ExecPlugin())
        registry.register(SwiftTrainerPlugin())
        for plugin in HostedAPI.plugins { registry.register(plugin) }
        return registry
    }

    /// The report files written to every run directory, in order. Write them with
    /// `ReportFiles.write(_:renderers:to:)` so the Markdown report's `charts/*.svg` are
    /// written too; pass the run's measurements when at hand (sensitivity to token prices).
    static func reportRenderers(measurements: RunMeasurements? = nil) -> [any ReportRenderer] {
        [MarkdownRenderer(chartsDirectory: "charts", measurements: measurements), JSONRenderer(), HTMLRenderer(measurements: measurements)]
    }
}

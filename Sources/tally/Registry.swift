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

    /// The report files written to every run directory, in order.
    static func reportRenderers() -> [any ReportRenderer] {
        [MarkdownRenderer(), JSONRenderer()]
    }
}

import Foundation
import HostedAPI
import SwiftTrainer
import TallyCore

/// What a `tally` binary can plug in: backend plugins and strategy kinds. Built once by the
/// binary's `main` and handed to every command (no global registry).
///
/// ```swift
/// var extensions = TallyExtensions.builtIn
/// extensions.plugins.register(MyBackendPlugin())
/// extensions.strategies.register(MyStrategyKind())
/// await TallyCLI.main(extensions)
/// ```
public struct TallyExtensions: Sendable {
    /// Backend plugins recipes can name with `plugin:`.
    public var plugins: PluginRegistry
    /// Strategy kinds recipes can name with `kind:`.
    public var strategies: StrategyCatalog

    public init(plugins: PluginRegistry, strategies: StrategyCatalog = .builtIn) {
        self.plugins = plugins
        self.strategies = strategies
    }

    /// The plugins and kinds Tally ships: `exec`, `swift-trainer`, the hosted APIs
    /// (`openai`, `anthropic`), and the built-in strategy kinds.
    public static var builtIn: TallyExtensions {
        var registry = PluginRegistry()
        registry.register(ExecPlugin())
        registry.register(SwiftTrainerPlugin())
        for plugin in HostedAPI.plugins { registry.register(plugin) }
        return TallyExtensions(plugins: registry, strategies: .builtIn)
    }

    /// The extensions of the running command (set by `TallyCLI.main`).
    @TaskLocal public static var current: TallyExtensions = .builtIn

    /// The report files written to every run directory, in order. Write them with
    /// `ReportFiles.write(_:renderers:to:)` so the Markdown report's `charts/*.svg` are
    /// written too; pass the run's measurements when at hand (sensitivity to token prices).
    static func reportRenderers(measurements: RunMeasurements? = nil) -> [any ReportRenderer] {
        [MarkdownRenderer(chartsDirectory: "charts", measurements: measurements), JSONRenderer(), HTMLRenderer(measurements: measurements)]
    }
}

/// The `tally` command line as a library: a binary with extra plugins or strategy kinds
/// calls `main` with them, and every command (`run`, `plan`, `validate`, `plugins`, ...)
/// sees them.
public enum TallyCLI {
    /// Runs the `tally` command tree with `extensions` on the process's arguments (or
    /// `arguments`), then exits with the command's status.
    public static func main(_ extensions: TallyExtensions = .builtIn, arguments: [String]? = nil) async -> Never {
        await TallyExtensions.$current.withValue(extensions) {
            await TallyCommand.main(arguments)
        }
        exit(0)
    }
}

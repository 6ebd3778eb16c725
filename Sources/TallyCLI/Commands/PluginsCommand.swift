import ArgumentParser
import Foundation
import TallyCore

/// `tally plugins`: what this binary can run (`list`, the default) and whether a backend
/// behaves as Tally relies on (`check`).
struct PluginsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plugins",
        abstract: "List the registered plugins and strategy kinds, or check a backend plugin.",
        subcommands: [PluginsListCommand.self, PluginsCheckCommand.self],
        defaultSubcommand: PluginsListCommand.self)
}

/// `tally plugins [list]`: the registered backend plugins and strategy kinds.
struct PluginsListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the registered backend plugins and strategy kinds (the default).")

    @Flag(help: "Print JSON instead of text.")
    var json = false

    func run() async throws {
        let extensions = TallyExtensions.current
        let registry = extensions.plugins
        let plugins = registry.backends.values.sorted { $0.name < $1.name }
        let strategies = extensions.strategies.kinds
        if json {
            struct PluginInfo: Encodable {
                let name: String, summary: String, settings: [String], fine_tuning: [String]
            }
            struct KeyInfo: Encodable {
                let name: String, type: String, default_value: SettingValue?, range: String?, help: String
            }
            struct KindInfo: Encodable {
                let kind: String, summary: String, adapts_weights: Bool, uses_language_model: Bool, training_method: String?, keys: [KeyInfo]
            }
            struct Listing: Encodable {
                let plugins: [PluginInfo], strategy_kinds: [KindInfo]
            }
            let listing = Listing(
                plugins: plugins.map { PluginInfo(name: $0.name, summary: $0.summary, settings: $0.settingKeys.sorted(), fine_tuning: $0.fineTuningMethods.sorted()) },
                strategy_kinds: strategies.map { kind in
                    KindInfo(kind: kind.name, summary: kind.summary, adapts_weights: kind.adaptsWeights, uses_language_model: kind.usesLanguageModel, training_method: kind.trainingMethod,
                             keys: kind.keys.map { KeyInfo(name: $0.name, type: $0.type.description, default_value: $0.defaultValue, range: $0.rangeDescription, help: $0.help) })
                })
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            Console.out(String(decoding: try encoder.encode(listing), as: UTF8.self))
            return
        }
        var text = "Backend plugins (recipe `plugin:`):\n"
        let nameWidth = max(8, plugins.map(\.name.count).max() ?? 0)
        for plugin in plugins {
            text += "  " + plugin.name.padding(toLength: nameWidth, withPad: " ", startingAt: 0) + "  " + plugin.summary + "\n"
            var extras: [String] = []
            if !plugin.settingKeys.isEmpty { extras.append("settings: " + plugin.settingKeys.sorted().joined(separator: ", ")) }
            if !plugin.fineTuningMethods.isEmpty { extras.append("fine-tunes: " + plugin.fineTuningMethods.sorted().joined(separator: ", ")) }
            if !extras.isEmpty { text += String(repeating: " ", count: nameWidth + 4) + extras.joined(separator: "; ") + "\n" }
        }
        text += "\nStrategy kinds (recipe `kind:`):\n"
        let kindWidth = max(8, strategies.map(\.name.count).max() ?? 0)
        let indent = String(repeating: " ", count: kindWidth + 4)
        for kind in strategies {
            text += "  " + kind.name.padding(toLength: kindWidth, withPad: " ", startingAt: 0) + "  " + kind.summary + "\n"
            if let method = kind.trainingMethod { text += indent + "adapts weights: asks its backend for \(method) fine-tuning\n" }
            if !kind.usesLanguageModel { text += indent + "no language model: trains its own model, needs no backend; forgetting does not apply\n" }
            for key in kind.keys {
                var facts = [key.type.description]
                if let value = key.defaultValue { facts.append("default \(value)") }
                if let range = key.rangeDescription { facts.append(range) }
                text += indent + "\(key.name) (\(facts.joined(separator: "; "))): \(key.help)\n"
            }
        }
        text += "\nWriting a plugin: docs/plugins.md"
        Console.out(text)
    }
}

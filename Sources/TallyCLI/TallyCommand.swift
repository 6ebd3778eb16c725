import ArgumentParser
import Foundation
import TallyCore

/// The `tally` command: prompt or fine-tune? Measure, tally, recommend. Run it through
/// `TallyCLI.main(_:)`, which hands every command the binary's plugins and strategy kinds.
public struct TallyCommand: AsyncParsableCommand {
    public init() {}

    public
    static let configuration = CommandConfiguration(
        commandName: "tally",
        abstract: "Compare prompting and fine-tuning strategies on your task: accuracy, cost and forgetting.",
        version: TallyVersion.current,
        subcommands: [
            // Each subcommand lives in Commands/<Name>Command.swift.
            RunCommand.self,
            PlanCommand.self,
            ValidateCommand.self,
            ReportCommand.self,
            RunsCommand.self,
            CompareCommand.self,
            PluginsCommand.self,
            InitCommand.self,
            ModelsCommand.self,
            DataCommand.self,
            GenerateCommand.self,
            FinetuneCommand.self,
            ExportCommand.self,
            SchemaCommand.self,
        ]
    )
}

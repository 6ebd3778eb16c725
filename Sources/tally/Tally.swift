import ArgumentParser
import Foundation
import TallyCore

/// The `tally` command: prompt or fine-tune? Measure, tally, recommend.
@main
struct Tally: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tally",
        abstract: "Compare prompting and fine-tuning strategies on your task: accuracy, cost and forgetting.",
        version: "0.1.0",
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
        ]
    )
}

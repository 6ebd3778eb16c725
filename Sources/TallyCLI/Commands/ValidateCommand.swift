import ArgumentParser
import Foundation
import TallyCore

/// `tally validate RECIPE`: every problem in a recipe and its data files, with locations.
struct ValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check a recipe and its data files without running anything.",
        discussion: "Reports every problem as file:line:column: message, with the fix. Exits 2 when the recipe has errors, 0 otherwise (warnings are printed but do not fail).")

    @Argument(help: "The recipe file (YAML).")
    var recipe: String

    @Option(name: .customLong("set"), parsing: .singleValue, help: ArgumentHelp("Change a recipe value for this command only, e.g. --set run.max_examples=20 (repeatable).", valueName: "key=value"))
    var overrides: [String] = []

    func run() async throws {
        try await reportingErrors {
            let diagnostics = RecipeLoader.validate(contentsOf: URL(fileURLWithPath: recipe), registry: TallyExtensions.current.plugins, environment: ProcessInfo.processInfo.environment, strategies: TallyExtensions.current.strategies, overrides: overrides)
            for diagnostic in diagnostics { Console.err(diagnostic.description) }
            let errors = diagnostics.filter { $0.severity == .error }.count
            let warnings = diagnostics.count - errors
            if errors > 0 {
                Console.err("\(recipe): \(errors) error\(errors == 1 ? "" : "s")\(warnings > 0 ? ", \(warnings) warning\(warnings == 1 ? "" : "s")" : ""); nothing was run")
                throw ExitCode(ExitStatus.invalidInput)
            }
            Console.out("\(recipe): OK\(warnings > 0 ? " (\(warnings) warning\(warnings == 1 ? "" : "s"))" : "")")
        }
    }
}

/// Loads a recipe for `run` and `plan`, printing every diagnostic and exiting 2 on errors.
func loadRecipeOrExit(_ path: String, extensions: TallyExtensions, overrides: [String] = []) throws -> Recipe {
    let (recipe, diagnostics) = RecipeLoader.parse(contentsOf: URL(fileURLWithPath: path), registry: extensions.plugins, environment: ProcessInfo.processInfo.environment, strategies: extensions.strategies, overrides: overrides)
    for diagnostic in diagnostics { Console.err(diagnostic.description) }
    let errors = diagnostics.filter { $0.severity == .error }.count
    guard let recipe, errors == 0 else {
        let flags = overrides.map { " --set \($0)" }.joined()
        Console.err("\(path): \(errors) error\(errors == 1 ? "" : "s"); fix them (see `tally validate \(path)\(flags)`)")
        throw ExitCode(ExitStatus.invalidInput)
    }
    return recipe
}

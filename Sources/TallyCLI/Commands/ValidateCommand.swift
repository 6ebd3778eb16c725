import ArgumentParser
import Foundation
import TallyCore

/// `tally validate RECIPE`: every problem in a recipe and its data files, with locations.
struct ValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check a recipe and its data files without running anything.",
        discussion: "Reports every problem as file:line:column: message, with the fix. Exits 2 when the recipe has errors, 0 otherwise (warnings are printed but do not fail).")

    @Argument(help: "The recipe file (YAML).", completion: .file(extensions: ["yaml", "yml"]))
    var recipe: String

    @Option(name: .customLong("set"), parsing: .singleValue, help: ArgumentHelp("Change a recipe value for this command only, e.g. --set run.max_examples=20 (repeatable).", valueName: "key=value"))
    var overrides: [String] = []

    @Flag(help: "Print the result as JSON on stdout: {file, ok, errors, warnings, diagnostics: [{severity, file, line, column, message, fix}]} (for CI annotations). The exit status is the same.")
    var json = false

    /// One diagnostic as `--json` prints it.
    struct DiagnosticJSON: Encodable {
        let severity: String
        let file: String
        let line: Int?
        let column: Int?
        let message: String
        let fix: String?

        init(_ d: Diagnostic) {
            severity = d.severity.rawValue
            file = d.location.file
            line = d.location.line
            column = d.location.column
            message = d.message
            fix = d.fix
        }
    }

    struct ResultJSON: Encodable {
        let file: String
        let ok: Bool
        let errors: Int
        let warnings: Int
        let diagnostics: [DiagnosticJSON]
    }

    func run() async throws {
        try await reportingErrors {
            let diagnostics = RecipeLoader.validate(contentsOf: URL(fileURLWithPath: recipe), registry: TallyExtensions.current.plugins, environment: ProcessInfo.processInfo.environment, strategies: TallyExtensions.current.strategies, overrides: overrides)
            let errors = diagnostics.filter { $0.severity == .error }.count
            let warnings = diagnostics.count - errors
            if json {
                try Console.json(ResultJSON(file: recipe, ok: errors == 0, errors: errors, warnings: warnings, diagnostics: diagnostics.map(DiagnosticJSON.init)))
                if errors > 0 { throw ExitCode(ExitStatus.invalidInput) }
                return
            }
            for diagnostic in diagnostics { Console.err(diagnostic.description) }
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

import ArgumentParser
import Foundation
import TallyCore

/// `tally schema`: the JSON Schema of the recipe format, for editors and CI.
struct SchemaCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schema",
        abstract: "Print the JSON Schema of the recipe format (generated from the recipe loader's key tables).",
        discussion: """
            The schema knows this tally's backend plugins and strategy kinds, with each kind's \
            keys, types and bounds. Point an editor at it with a first line \
            `# yaml-language-server: $schema=tally.schema.json` (what `tally init` writes) to get \
            completion and checks while typing; `tally validate` still checks what needs the \
            files (data paths, models).
            """)

    @Option(help: "Write the schema to this file instead of stdout.")
    var out: String?

    func run() async throws {
        try await reportingErrors {
            let extensions = TallyExtensions.current
            let text = try RecipeSchema.text(plugins: extensions.plugins, strategies: extensions.strategies)
            guard let out else {
                FileHandle.standardOutput.write(Data(text.utf8))
                return
            }
            let url = fileURL(out)
            do {
                try text.write(to: url, atomically: true, encoding: .utf8)
            } catch {
                throw TallyError(code: .io, message: "cannot write \(url.path): \(error.localizedDescription)", underlying: error)
            }
            Console.err("wrote \(displayPath(url))")
        }
    }
}

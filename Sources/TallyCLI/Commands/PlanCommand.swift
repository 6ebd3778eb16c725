import ArgumentParser
import Foundation
import TallyCore

/// `tally plan RECIPE`: estimates tokens, time and dollars before anything is spent.
struct PlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Estimate requests, tokens, time and dollars per strategy before running.",
        discussion: "Nothing is called: every number is an estimate from the data sizes, the prompts the strategies would build and the recipe's prices. `tally run` measures the real ones.")

    @Argument(help: "The recipe file (YAML).", completion: .file(extensions: ["yaml", "yml"]))
    var recipe: String

    @Option(name: .customLong("set"), parsing: .singleValue, help: ArgumentHelp("Change a recipe value for this command only, e.g. --set run.max_examples=20 (repeatable).", valueName: "key=value"))
    var overrides: [String] = []

    @Option(help: "Tally's home (accepted for symmetry with `run`; plan reads no ledger).")
    var home: String?

    @Flag(help: "Print the estimate as JSON.")
    var json = false

    @Option(help: "Use at most N test examples (the same as --set run.max_examples=N).")
    var limit: Int?

    func validate() throws {
        try validateLimit(limit)
    }

    func run() async throws {
        try await reportingErrors {
            let extensions = TallyExtensions.current
            let recipe = try loadRecipeOrExit(self.recipe, extensions: extensions, overrides: overrides + limitOverrides(limit))
            let plan = try Planner.estimate(recipe: recipe, strategies: extensions.strategies)
            if json {
                try Console.json(plan)
                return
            }
            Console.out(Self.render(plan))
        }
    }

    static func render(_ plan: PlanEstimate) -> String {
        var text = "Plan for \(plan.recipeName): \(plan.testExamples) test and \(plan.trainExamples) training examples. ESTIMATES: nothing has been run or paid for.\n\n"
        // The embedding column shows only when a strategy embeds (rag with embeddings).
        let embeds = plan.items.contains { $0.embeddingTokens > 0 }
        let header = ["strategy", "kind", "backend", "requests", "prompt tok", "completion tok", "training tok"] + (embeds ? ["embedding tok"] : []) + ["est. time", "est. cost"]
        var rows: [[String]] = plan.items.map { item in
            [item.repetitions.map { "\(item.name) (x\($0) seeds)" } ?? item.name, item.kind, item.backend ?? "-", grouped(item.requests), grouped(item.promptTokens), grouped(item.completionTokens),
             item.trainingTokens > 0 ? grouped(item.trainingTokens) : "-"] + (embeds ? [item.embeddingTokens > 0 ? grouped(item.embeddingTokens) : "-"] : [])
                + [duration(item.estimatedSeconds), DecisionMaker.usd(item.estimatedUSD)]
        }
        rows.append(["total", "", "", grouped(plan.totalRequests), grouped(plan.items.reduce(0) { $0 + $1.promptTokens }),
                     grouped(plan.items.reduce(0) { $0 + $1.completionTokens }), grouped(plan.items.reduce(0) { $0 + $1.trainingTokens })]
                    + (embeds ? [grouped(plan.items.reduce(0) { $0 + $1.embeddingTokens })] : [])
                    + [duration(plan.totalSeconds), DecisionMaker.usd(plan.totalUSD)])
        var widths = header.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        let numeric = Set(3..<header.count)
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, cell in
                numeric.contains(i) ? String(repeating: " ", count: widths[i] - cell.count) + cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
            }.joined(separator: "  ").replacing(/\s+$/, with: "")
        }
        text += line(header) + "\n" + line(widths.map { String(repeating: "-", count: $0) }) + "\n"
        for (index, row) in rows.enumerated() {
            if index == rows.count - 1 { text += line(widths.map { String(repeating: "-", count: $0) }) + "\n" }
            text += line(row) + "\n"
        }
        if let budget = plan.budgetUSD {
            text += "\n"
            text += plan.totalUSD <= budget
                ? "Within constraints.budget_usd (\(DecisionMaker.usd(budget))): estimated \(DecisionMaker.usd(plan.totalUSD)).\n"
                : "Over constraints.budget_usd (\(DecisionMaker.usd(budget))): estimated \(DecisionMaker.usd(plan.totalUSD)); `tally run` will stop before exceeding it.\n"
        }
        if !plan.assumptions.isEmpty {
            text += "\nHow these were estimated:\n"
            for assumption in plan.assumptions { text += "- \(assumption)\n" }
        }
        return text
    }

    static func grouped(_ value: Int) -> String { CostModel.formatVolume(Double(value)) }

    static func duration(_ seconds: Double) -> String {
        if seconds < 60 { return String(format: "%.0f s", seconds) }
        if seconds < 3600 { return String(format: "%.1f min", seconds / 60) }
        return String(format: "%.1f h", seconds / 3600)
    }
}

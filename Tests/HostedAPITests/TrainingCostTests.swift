import Foundation
import Testing
import TallyCore
@testable import HostedAPI

/// The one-off cost of hosted fine-tuning: the provider's bill or trained tokens x
/// training_per_mtok, never this machine's wall time; unknown (and said so) without either.
@Suite("Hosted training cost")
struct TrainingCostTests {
    /// A recipe directory whose hosted backend has the given `price` mapping (recipe line 14).
    private func writeRecipe(for service: FakeService, price: String, in directory: URL) throws -> URL {
        try service.writeTicketRecipe(
            in: directory, name: "hosted-cost", trainCount: 6, testCount: 4, price: price,
            backendLines: ["poll_interval_s: 0.01"],
            strategies: ["{name: zero-shot, kind: zero-shot, backend: hosted}", "{name: tuned, kind: full-finetune, backend: hosted, epochs: 1, batch_size: 2}"],
            tail: ["costs: {compute_usd_per_hour: 100, requests_per_month: 1000, horizon_months: 6}", "run: {seed: 3, concurrency: 2, bootstrap_samples: 50}"])
    }

    private var registry: PluginRegistry { PluginRegistry(HostedAPI.plugins) }

    @Test("Without training_per_mtok the training cost is unknown, not wall time x compute price")
    func unknownWithoutPrice() async throws {
        let service = try FakeService(trainingSteps: 2)
        defer { service.server.stop() }
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = try writeRecipe(for: service, price: "{input_per_mtok: 0.15, output_per_mtok: 0.60}", in: directory)

        // tally validate warns at the backend's price, once.
        let diagnostics = RecipeLoader.validate(contentsOf: url, registry: registry, environment: service.environment)
        let warnings = diagnostics.filter { $0.message.contains("has no price.training_per_mtok") }
        #expect(warnings.count == 1)
        #expect(warnings.first?.severity == .warning)
        #expect(warnings.first?.location.line == 14)
        #expect(warnings.first?.message.contains("the training cost of 'tuned' is reported as unknown") == true)
        #expect(warnings.first?.fix?.contains("training_per_mtok") == true)
        #expect(!diagnostics.contains { $0.severity == .error })

        let recipe = try RecipeLoader.load(contentsOf: url, registry: registry, environment: service.environment)
        let ledger = try Ledger(path: directory.appendingPathComponent("home/ledger.sqlite"))
        let progress = ProgressLog()
        let runner = ExperimentRunner(recipe: recipe, registry: registry, ledger: ledger, environment: service.environment, home: directory.appendingPathComponent("home"))
        let measurements = try await runner.run { progress.record($0) }
        let tuned = try #require(measurements.strategies.first { $0.name == "tuned" })
        let training = try #require(tuned.training)
        #expect(training.hostedOn == "127.0.0.1")
        #expect(training.billedUSD == nil && training.wallSeconds > 0 && training.trainedTokens > 0)
        #expect(CallPricing.trainingUSD(training, price: tuned.pricing, computeUSDPerHour: 100) == nil)
        #expect(progress.notes.contains { $0.contains("tuned: the training cost is unknown") })

        let report = Report.build(from: measurements)
        let row = try #require(report.strategy(named: "tuned"))
        #expect(row.cost.oneOffUnknown)
        #expect(row.cost.oneOffUSD == 0)
        #expect(row.cost.oneOffBasis.hasPrefix("unknown: the job ran on 127.0.0.1, which reported no bill"))
        #expect(row.cost.gpuEstimate == nil)
        #expect(abs(row.cost.totalUSD - row.cost.perRequestUSD * 6000) < 1e-12)
        #expect(report.notes.contains { $0.contains("The training cost of tuned is unknown") })
        let terminal = try TerminalRenderer().render(report)
        let line = try #require(terminal.split(separator: "\n").first { $0.contains("tuned") && $0.contains("full-finetune") })
        #expect(line.contains("unknown") && line.contains("≥ $"))
        let wallPrice = DecisionMaker.usd(training.wallSeconds * 100 / 3600)
        #expect(!line.contains(wallPrice))
        #expect(try MarkdownRenderer().render(report).contains("| unknown |"))
        let json = try JSONRenderer().render(report)
        #expect(json.contains("\"one_off_unknown\" : true"))
        #expect(try JSONRenderer.decode(Data(json.utf8)).strategy(named: "tuned")?.cost.oneOffUnknown == true)
        #expect(report.strategy(named: "zero-shot")?.cost.oneOffUnknown == false)
    }

    @Test("With training_per_mtok the cost is trained tokens x price, and validate does not warn")
    func pricedTraining() async throws {
        let service = try FakeService(trainingSteps: 2)
        defer { service.server.stop() }
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = try writeRecipe(for: service, price: "{input_per_mtok: 0.15, output_per_mtok: 0.60, training_per_mtok: 3.0}", in: directory)
        let diagnostics = RecipeLoader.validate(contentsOf: url, registry: registry, environment: service.environment)
        #expect(!diagnostics.contains { $0.message.contains("training_per_mtok") })

        let recipe = try RecipeLoader.load(contentsOf: url, registry: registry, environment: service.environment)
        let ledger = try Ledger(path: directory.appendingPathComponent("home/ledger.sqlite"))
        let measurements = try await ExperimentRunner(recipe: recipe, registry: registry, ledger: ledger, environment: service.environment, home: directory.appendingPathComponent("home")).run { _ in }
        let tuned = try #require(measurements.strategies.first { $0.name == "tuned" })
        let tokens = try #require(tuned.training?.trainedTokens)
        let cost = CostModel.cost(of: tuned, costs: recipe.costs)
        #expect(!cost.oneOffUnknown)
        #expect(abs(cost.oneOffUSD - Double(tokens) * 3.0 / 1_000_000) < 1e-12)
        #expect(cost.oneOffBasis == "\(tokens) trained tokens x 3 USD per 1M tokens")
    }
}

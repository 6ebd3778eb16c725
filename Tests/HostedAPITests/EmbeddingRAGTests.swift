import Foundation
import Testing
import TallyCore
@testable import HostedAPI

/// `rag` with `retriever: embeddings` through `ExperimentRunner`, embedding on the loopback
/// OpenAI-compatible server's `/v1/embeddings`.
@Suite("RAG with embeddings from a loopback provider")
struct EmbeddingRAGTests {
    private var registry: PluginRegistry { PluginRegistry(HostedAPI.plugins) }

    /// A recipe with a chat backend, an embedding backend and one rag strategy.
    private func writeRecipe(for service: FakeService, in directory: URL) throws -> URL {
        let corpus = directory.appendingPathComponent("kb")
        try FileManager.default.createDirectory(at: corpus, withIntermediateDirectories: true)
        try "Refunds and invoices are billing questions.".write(to: corpus.appendingPathComponent("refunds.md"), atomically: true, encoding: .utf8)
        try "Parcels and couriers are shipping questions.".write(to: corpus.appendingPathComponent("parcels.md"), atomically: true, encoding: .utf8)
        try "Opening hours of the support desk.".write(to: corpus.appendingPathComponent("hours.txt"), atomically: true, encoding: .utf8)
        let topics = [("refunds", "billing", "refunds.md"), ("parcels", "shipping", "parcels.md")]
        let train = topics.map { "{\"text\": \"a ticket about \($0.0)\", \"label\": \"\($0.1)\"}" }
        let test = (0..<6).map { i in topics[i % 2] }.enumerated().map { "{\"text\": \"ticket \($0.offset): my \($0.element.0)\", \"label\": \"\($0.element.1)\", \"doc\": \"\($0.element.2)\"}" }
        try (train.joined(separator: "\n") + "\n").write(to: directory.appendingPathComponent("train.jsonl"), atomically: true, encoding: .utf8)
        try (test.joined(separator: "\n") + "\n").write(to: directory.appendingPathComponent("test.jsonl"), atomically: true, encoding: .utf8)
        let recipe = """
        name: rag-embeddings
        task:
          instruction: "Route the ticket: billing or shipping."
          input: "Ticket: {text}"
          target: label
          labels: [billing, shipping]
        data: {train: train.jsonl, test: test.jsonl}
        backends:
          hosted: {plugin: openai, model: gpt-4o-mini-2024-07-18, base_url: "\(service.openAIBase)", api_key_env: \(FakeService.keyVariable), price: {input_per_mtok: 0.15, output_per_mtok: 0.60}, timeout_s: 5}
          emb: {plugin: openai, model: text-embedding-3-small, base_url: "\(service.openAIBase)", api_key_env: \(FakeService.keyVariable), price: {input_per_mtok: 0.02}, timeout_s: 5}
        strategies:
          - {name: rag, kind: rag, backend: hosted, corpus: kb, retriever: embeddings, embedder: emb, k: 1, answer_doc_field: doc}
        run: {seed: 3, bootstrap_samples: 50}

        """
        let url = directory.appendingPathComponent("recipe.yaml")
        try recipe.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    @Test("The corpus and questions are embedded once, retrieval finds the answer's document, and embedding is priced")
    func embeddingRetrieval() async throws {
        let service = try FakeService()
        defer { service.server.stop() }
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let recipe = try RecipeLoader.load(contentsOf: try writeRecipe(for: service, in: directory), registry: registry, environment: service.environment)
        let home = directory.appendingPathComponent("home")
        let ledger = try Ledger(path: home.appendingPathComponent("ledger.sqlite"))

        let measurements = try await ExperimentRunner(recipe: recipe, registry: registry, ledger: ledger, environment: service.environment, home: home).run { _ in }
        let rag = try #require(measurements.strategies.first)
        let retrieval = try #require(rag.retrieval)
        #expect(retrieval.retriever == "embeddings" && retrieval.embedder == "emb" && retrieval.chunks == 3)
        #expect(retrieval.recall == 1 && retrieval.recallQuestions == 6)
        // 3 chunks and 6 distinct questions, each embedded once.
        #expect(service.providers.embedded.count == 9)
        #expect(try ledger.embeddingCount() == 9)
        let chunkWords = 6 + 6 + 6, questionWords = 6 * 5
        #expect(retrieval.indexEmbeddingTokens == chunkWords)
        #expect(retrieval.queryEmbeddingTokens == questionWords)
        // The retrieved passage reached the prompt (the fake model echoes the user message).
        for prediction in rag.predictions {
            let topic = prediction.input.contains("refunds") ? "INVOICES" : "COURIERS"
            #expect(prediction.output.contains(topic), "\(prediction.output)")
        }
        #expect(rag.dataLeavesMachine == false)

        // Embedding is priced: the index once, each question per request.
        let cost = CostModel.cost(of: rag, costs: recipe.costs)
        #expect(abs(cost.oneOffUSD - Double(chunkWords) * 0.02 / 1_000_000) < 1e-15)
        let withoutEmbedding = CostModel.cost(of: StrategyMeasurement(
            name: rag.name, kind: rag.kind, backend: rag.backend, model: rag.model, dataLeavesMachine: false, adaptsWeights: false,
            pricing: rag.pricing, predictions: rag.predictions, training: nil, probes: []), costs: recipe.costs)
        #expect(abs(cost.per1kRequestsUSD - withoutEmbedding.per1kRequestsUSD - 5 * 0.02 / 1_000) < 1e-12)
        let report = Report.build(from: measurements)
        #expect(report.notes.contains { $0.contains("embedding on backend 'emb'") && $0.contains("recall@1 100.0%") })

        // A rerun embeds nothing and calls nothing.
        let before = service.server.log.count
        let again = try await ExperimentRunner(recipe: recipe, registry: registry, ledger: ledger, environment: service.environment, home: home).run { _ in }
        #expect(service.server.log.count == before)
        #expect(again.strategies.first?.retrieval == retrieval)
    }

    @Test("tally plan prices embedding: the corpus once and every question, at the embedder's price")
    func planPricesEmbedding() throws {
        let service = try FakeService()
        defer { service.server.stop() }
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = try writeRecipe(for: service, in: directory)
        let recipe = try RecipeLoader.load(contentsOf: url, registry: registry, environment: service.environment)
        let plan = try Planner.estimate(recipe: recipe)
        let item = try #require(plan.items.first { $0.name == "rag" })
        // The three one-line documents are a chunk each; the questions are the rendered inputs.
        let chunks = ["Refunds and invoices are billing questions.", "Parcels and couriers are shipping questions.", "Opening hours of the support desk."]
        let questions = (0..<6).map { "Ticket: ticket \($0): my \($0 % 2 == 0 ? "refunds" : "parcels")" }
        let expected = (chunks + questions).reduce(0) { $0 + CallPricing.estimatedTokens($1) }
        #expect(item.embeddingTokens == expected)
        #expect(plan.assumptions.contains { $0.contains("embedded once") && $0.contains("rag via emb") })

        // The same recipe retrieving by BM25 costs the embedding less.
        let text = try String(contentsOf: url, encoding: .utf8)
        try text.replacingOccurrences(of: "retriever: embeddings, embedder: emb, ", with: "").write(to: url, atomically: true, encoding: .utf8)
        let bm25 = try Planner.estimate(recipe: RecipeLoader.load(contentsOf: url, registry: registry, environment: service.environment))
        let plain = try #require(bm25.items.first { $0.name == "rag" })
        #expect(plain.embeddingTokens == 0)
        #expect(abs(item.estimatedUSD - plain.estimatedUSD - Double(expected) * 0.02 / 1_000_000) < 1e-12)
    }

    @Test("An embedder that cannot embed, or is not defined, is a validation error at its key")
    func embedderValidation() async throws {
        let service = try FakeService()
        defer { service.server.stop() }
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = try writeRecipe(for: service, in: directory)
        let text = try String(contentsOf: url, encoding: .utf8)
        try text.replacingOccurrences(of: "embedder: emb", with: "embedder: embs").write(to: url, atomically: true, encoding: .utf8)
        let diagnostics = RecipeLoader.validate(contentsOf: url, registry: registry, environment: service.environment)
        let error = try #require(diagnostics.first { $0.severity == .error })
        #expect(error.message.contains("embedder 'embs' is not defined under 'backends'"))
        #expect(error.fix?.contains("did you mean 'emb'?") == true)
        let line = try #require(text.split(separator: "\n", omittingEmptySubsequences: false).firstIndex { $0.contains("embedder: emb") })
        #expect(error.location.line == line + 1)
    }
}

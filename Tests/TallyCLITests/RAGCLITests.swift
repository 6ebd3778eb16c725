import Foundation
import Testing

/// End-to-end: a `rag` strategy (BM25 over a folder of Markdown, text and JSONL documents)
/// through the real `tally` binary and the deterministic test backend.
@Suite(.serialized) struct RAGCLITests {
    typealias Workspace = CLITests.Workspace

    @Test func ragRetrievesWhatTheModelLacksAndReportsContextAndRecall() async throws {
        let workspace = try Workspace()
        let valid = try await workspace.run(["validate", "rag.yaml"])
        #expect(valid.status == 0, "\(valid.stderr)")

        let out = workspace.root.appending(path: "out")
        let run = try await workspace.run(["run", "rag.yaml", "--out", out.path])
        #expect(run.status == 0, "\(run.stderr)")
        let report = try workspace.reportJSON(in: out)
        let rows = try #require(report["strategies"] as? [[String: Any]])
        func row(_ name: String) throws -> [String: Any] { try #require(rows.first { $0["name"] as? String == name }) }
        func accuracy(_ name: String) throws -> Double { try #require((try row(name)["accuracy"] as? [String: Any])?["value"] as? Double) }
        // Only the corpus says what "zorp" and "blick" mean.
        #expect(try accuracy("rag") == 1)
        #expect(try accuracy("zero-shot") < 0.5)

        let retrieval = try #require(try row("rag")["retrieval"] as? [String: Any])
        #expect(retrieval["retriever"] as? String == "bm25")
        #expect(retrieval["k"] as? Int == 1)
        #expect(retrieval["documents"] as? Int == 5)
        #expect(retrieval["recall"] as? Double == 1)
        #expect(retrieval["recall_questions"] as? Int == 6)
        let context = try #require(retrieval["mean_context_tokens"] as? Double)
        #expect(context > 5 && context < 32)
        #expect(try row("zero-shot")["retrieval"] == nil)
        // The retrieved tokens are prompt tokens.
        func promptTokens(_ name: String) throws -> Double { try #require((try row(name)["cost"] as? [String: Any])?["mean_prompt_tokens"] as? Double) }
        #expect(try promptTokens("rag") > promptTokens("zero-shot") + 5)
        #expect(try row("rag")["data_leaves_machine"] as? Bool == false)

        #expect(run.stdout.contains("Retrieval (context tokens"))
        #expect(run.stdout.contains("recall@1 100.0%"))
        let markdown = try String(contentsOf: out.appending(path: "report.md"), encoding: .utf8)
        #expect(markdown.contains("## Retrieval") && markdown.contains("| rag | bm25, top 1 of 5 |"))
        let html = try String(contentsOf: out.appending(path: "report.html"), encoding: .utf8)
        #expect(html.contains("recall@1 100.0%"))

        // Rerun: everything from the ledger.
        let count = workspace.calls().count
        let again = try await workspace.run(["run", "rag.yaml", "--quiet"])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(workspace.calls().count == count, "the rerun called the backend")

        let plan = try await workspace.run(["plan", "rag.yaml", "--json"])
        #expect(plan.status == 0, "\(plan.stderr)")
    }

    /// `retriever: embeddings` with the exec test backend as the embedder (exec protocol
    /// `embed`): validated, planned with its embedding tokens, run, and rerun from the ledger.
    @Test func ragRetrievesByEmbeddingsFromAnExecPlugin() async throws {
        let workspace = try Workspace()
        let entry = "{name: rag, kind: rag, backend: local, corpus: kb, k: 1, chunk_tokens: 32, chunk_overlap: 4, answer_doc_field: doc}"
        let original = try String(contentsOf: workspace.root.appending(path: "rag.yaml"), encoding: .utf8)
        #expect(original.contains(entry))
        let embedding = entry.replacingOccurrences(of: "k: 1,", with: "k: 1, retriever: embeddings, embedder: local,")
        try original.replacingOccurrences(of: entry, with: embedding)
            .replacingOccurrences(of: "    timeout_s: 60", with: "    timeout_s: 60\n    price: {input_per_mtok: 1.0, output_per_mtok: 2.0}")
            .write(to: workspace.root.appending(path: "rag-emb.yaml"), atomically: true, encoding: .utf8)

        let valid = try await workspace.run(["validate", "rag-emb.yaml"])
        #expect(valid.status == 0, "\(valid.stderr)")
        let plan = try await workspace.run(["plan", "rag-emb.yaml", "--json"])
        #expect(plan.status == 0, "\(plan.stderr)")
        let planned = try #require(try JSONSerialization.jsonObject(with: Data(plan.stdout.utf8)) as? [String: Any])
        let items = try #require(planned["items"] as? [[String: Any]])
        #expect((items.first { $0["name"] as? String == "rag" }?["embedding_tokens"] as? Int ?? 0) > 0)
        #expect((items.first { $0["name"] as? String == "zero-shot" }?["embedding_tokens"] as? Int) == 0)
        let table = try await workspace.run(["plan", "rag-emb.yaml"])
        #expect(table.stdout.contains("embedding tok"))

        let out = workspace.root.appending(path: "out")
        let run = try await workspace.run(["run", "rag-emb.yaml", "--out", out.path])
        #expect(run.status == 0, "\(run.stderr)")
        let embeds = workspace.calls().filter { $0.hasPrefix("embed\t") }.count
        #expect(embeds > 0, "the test backend was asked to embed")
        let report = try workspace.reportJSON(in: out)
        let rows = try #require(report["strategies"] as? [[String: Any]])
        let rag = try #require(rows.first { $0["name"] as? String == "rag" })
        let retrieval = try #require(rag["retrieval"] as? [String: Any])
        #expect(retrieval["retriever"] as? String == "embeddings")
        #expect(retrieval["embedder"] as? String == "local")
        // Five documents, one chunk each; ten questions.
        #expect(retrieval["chunks"] as? Int == 5)
        #expect(retrieval["recall"] as? Double == 1, "the chunk naming the slang word is the closest")
        // The test backend counts words: the corpus's and the questions'.
        #expect((retrieval["index_embedding_tokens"] as? Int ?? 0) > 30)
        #expect((retrieval["query_embedding_tokens"] as? Int ?? 0) > 30)
        // The index was cached on disk in Tally's home.
        let indexes = try FileManager.default.contentsOfDirectory(atPath: workspace.home.appending(path: "cache/rag-index").path)
        #expect(indexes.filter { $0.hasSuffix(".idx") }.count == 1)

        // Rerun: vectors and answers from the ledger; nothing is embedded or asked again.
        let count = workspace.calls().count
        let again = try await workspace.run(["run", "rag-emb.yaml", "--quiet"])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(workspace.calls().count == count, "the rerun called the backend")
    }

    @Test func badRAGKeysAreReportedAtTheirLineAndColumn() async throws {
        let workspace = try Workspace()
        let entry = "{name: rag, kind: rag, backend: local, corpus: kb, k: 1, chunk_tokens: 32, chunk_overlap: 4, answer_doc_field: doc}"
        let cases: [(bad: String, token: String, message: String)] = [
            (entry.replacingOccurrences(of: "corpus: kb", with: "corpus: missing-kb"), "missing-kb",
             "error: strategy 'rag': corpus path 'missing-kb' does not exist"),
            (entry.replacingOccurrences(of: "chunk_overlap: 4", with: "chunk_overlap: 32"), "32, answer",
             "error: strategy 'rag': chunk_overlap (32) must be below chunk_tokens (32)"),
            (entry.replacingOccurrences(of: "k: 1,", with: "k: 0,"), "0,",
             "error: 'strategies[1].k' is 0 but must be at least 1"),
            (entry.replacingOccurrences(of: "answer_doc_field: doc", with: "answer_doc_field: docs"), "docs",
             "error: strategy 'rag': answer_doc_field 'docs' is in no test row"),
            (entry.replacingOccurrences(of: "k: 1,", with: "k: 1, retriever: embeddings,"), "embeddings",
             "error: strategy 'rag' retrieves by embeddings but names no embedder"),
            (entry.replacingOccurrences(of: "k: 1,", with: "k: 1, retriever: embeddings, embedder: local,"), "local, chunk",
             "error: strategy 'rag': backend 'local' cannot embed text"),
            (entry.replacingOccurrences(of: "chunk_tokens", with: "chunk_token"), "chunk_token",
             "error: unknown key 'chunk_token'"),
        ]
        let original = try String(contentsOf: workspace.root.appending(path: "rag.yaml"), encoding: .utf8)
        #expect(original.contains(entry))
        for (index, item) in cases.enumerated() {
            let name = "bad-rag\(index).yaml"
            let text = original.replacingOccurrences(of: entry, with: item.bad)
            try text.write(to: workspace.root.appending(path: name), atomically: true, encoding: .utf8)
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            let line = try #require(lines.firstIndex { $0.contains(item.bad) })
            let range = try #require(lines[line].range(of: item.token))
            let column = lines[line].distance(from: lines[line].startIndex, to: range.lowerBound) + 1
            // The test backend can embed unless told otherwise.
            let result = try await workspace.run(["validate", name], environment: ["TALLY_TEST_BACKEND_NO_EMBED": "1"])
            #expect(result.status == 2, "\(name)")
            #expect(result.stderr.contains("\(name):\(line + 1):\(column): \(item.message)"), "\(result.stderr)")
        }
    }
}

import Foundation
import Testing
import TallyCore

/// The golden messages of the exec protocol (Resources/exec-protocol), from both sides: Tally
/// encodes exactly these requests and accepts these replies; two plugins that share no
/// types with Tally (the Python example and `tally-test-backend`) answer these requests
/// with replies of the same shape; docs/plugins.md quotes every message.
@Suite struct ExecProtocolFixtureTests {
    // MARK: Tally's side

    @Test func tallyEncodesTheGoldenRequests() throws {
        let lora = FineTuneMethod.lora(LoRAOptions(rank: 8, alpha: 16, dropout: 0, targets: ["all-linear"], useRSLoRA: false))
        let requests: [(String, Data)] = [
            ("describe", try ExecProtocol.encodeRequest(id: 1, method: ExecProtocol.Method.describe, params: ExecProtocol.DescribeParams(
                model: "my-model", settings: ["command": "python3 my_plugin.py", "timeout_s": "120"]))),
            ("generate", try ExecProtocol.encodeRequest(id: 2, method: ExecProtocol.Method.generate, params: ExecProtocol.GenerateParams(
                model: "my-model", artifact: nil,
                request: GenerationRequest(messages: [.system("Is this movie review positive or negative?"), .user("Review: a wonderful, brilliant film")], maxTokens: 16, temperature: 0, topP: 1, stop: [], seed: 7)))),
            ("score", try ExecProtocol.encodeRequest(id: 3, method: ExecProtocol.Method.score, params: ExecProtocol.ScoreParams(
                model: "my-model", artifact: nil, text: "The capital of France is Paris."))),
            ("finetune", try ExecProtocol.encodeRequest(id: 4, method: ExecProtocol.Method.finetune, params: ExecProtocol.FineTuneParams(
                model: "my-model", method: lora.name, parameters: lora.parameters,
                options: TrainingOptions(epochs: 1, learningRate: 1e-4, batchSize: 1, seed: 7),
                train: [
                    TrainingExample(messages: [.user("Review: a wonderful, brilliant film")], completion: "positive"),
                    TrainingExample(messages: [.user("Review: a dull, tedious mess")], completion: "negative"),
                ],
                validation: [TrainingExample(messages: [.user("Review: brilliant")], completion: "positive")],
                workDirectory: "runs/work/3f2a9c", jobKey: "3f2a9c"))),
            ("open_artifact", try ExecProtocol.encodeRequest(id: 5, method: ExecProtocol.Method.openArtifact, params: ExecProtocol.OpenArtifactParams(
                model: "my-model", artifact: "runs/work/3f2a9c/adapter"))),
            ("error", try ExecProtocol.encodeRequest(id: 6, method: ExecProtocol.Method.openArtifact, params: ExecProtocol.OpenArtifactParams(
                model: "my-model", artifact: "runs/work/missing/adapter"))),
            ("embed", try ExecProtocol.encodeRequest(id: 7, method: ExecProtocol.Method.embed, params: ExecProtocol.EmbedParams(
                model: "my-model", texts: ["zorp means terrible", "Review: so zorp"]))),
        ]
        for (name, data) in requests {
            let encoded = try JSONDecoder().decode(ExecProtocol.Value.self, from: data)
            let golden = try #require(try ExecFixtures.messages(name).first)
            #expect(encoded == golden, "\(name): Tally sends\n\(String(decoding: data, as: UTF8.self))")
        }
        // Every request line is one line.
        #expect(!requests.contains { $0.1.contains(UInt8(ascii: "\n")) })
    }

    @Test func tallyAcceptsTheGoldenReplies() throws {
        let describe = try reply("describe", as: ExecProtocol.Description.self)
        #expect(ExecProtocol.versionProblem(declared: describe.protocolVersion) == nil)
        #expect(describe.name == "my-plugin" && describe.version == "1.2.0")
        #expect(describe.fineTuningMethods == ["lora", "full-finetune"] && describe.maxConcurrency == 4 && describe.dataLeavesMachine == false)
        #expect(describe.embeddings == ExecProtocol.EmbeddingCapability(maxBatchSize: 32))

        let embedding = try reply("embed", as: ExecProtocol.EmbeddingResult.self)
        #expect(embedding.vectors.count == 2 && embedding.vectors.allSatisfy { $0.count == 3 } && embedding.promptTokens == 7)
        #expect(embedding.problem(texts: 2) == nil && embedding.problem(texts: 3) != nil)

        let generation = try reply("generate", as: ExecProtocol.Generation.self)
        #expect(generation.text == "positive" && generation.usage.promptTokens == 23 && generation.usage.completionTokens == 1 && generation.computeS == 0.12)

        let score = try reply("score", as: ExecProtocol.Score.self)
        #expect(score.nats == 2.31 && score.tokens == 7)

        let finetune = try reply("finetune", as: ExecProtocol.FineTuneResult.self)
        #expect(finetune.artifact == "runs/work/3f2a9c/adapter" && finetune.steps == 2 && finetune.trainLoss?.count == 2 && finetune.billedUSD == nil)

        let opened = try reply("open_artifact", as: ExecProtocol.OpenedArtifact.self)
        #expect(opened.identity.hasPrefix("sha256:"))

        let progress = try ExecFixtures.lines("progress").map { try ExecProtocol.decodeMessage(Data($0.utf8)) }
        let finetuneNotes = try ExecFixtures.lines("finetune").dropFirst().dropLast().map { try ExecProtocol.decodeMessage(Data($0.utf8)) }
        for message in progress + finetuneNotes {
            guard case .notification(let method, let params) = message else {
                Issue.record("a progress line is not a notification: \(message)")
                continue
            }
            #expect(method == ExecProtocol.Method.progress)
            let decoded = try ExecProtocol.decodeReply(.object(params), as: ExecProtocol.ProgressParams.self, root: "params")
            #expect(decoded.id == 4 && decoded.phase == "training" && decoded.total == 2)
        }

        let lines = try ExecFixtures.lines("error")
        let error = try ExecProtocol.decodeMessage(Data(try #require(lines.last).utf8))
        #expect(error == .reply(id: 6, .failure(ExecProtocol.RemoteError(
            code: .artifactNotFound, message: "artifact not found: runs/work/missing/adapter",
            data: .object(["artifact": .string("runs/work/missing/adapter")])))))
    }

    /// The last line of a fixture, decoded as a reply to its first line.
    func reply<Body: ExecProtocol.Reply>(_ name: String, as body: Body.Type) throws -> Body {
        let lines = try ExecFixtures.lines(name)
        let request = try #require(lines.first), last = try #require(lines.last)
        let requestID = try JSONDecoder().decode(ExecProtocol.Value.self, from: Data(request.utf8))
        guard case .reply(let id, .success(let value)) = try ExecProtocol.decodeMessage(Data(last.utf8)) else {
            throw FixtureProblem(text: "\(name): the last line is not a result")
        }
        #expect(.number(Double(id)) == requestID.member("id"), "\(name): the reply's id is not the request's")
        return try ExecProtocol.decodeReply(value, as: Body.self)
    }

    /// `embed` replies are decoded strictly: one dimension per reply, finite numbers, bounded
    /// sizes, and (against the request) one vector per text.
    @Test(arguments: [
        (#"{"vectors": [[1, 2], [3]], "prompt_tokens": 2}"#, "result.vectors[1]"),
        (#"{"vectors": [[1, 1e300]], "prompt_tokens": 2}"#, "result.vectors[0][1]"),
        (#"{"vectors": [[]], "prompt_tokens": 2}"#, "result.vectors[0]"),
        (#"{"vectors": [[1, 2]], "prompt_tokens": -1}"#, "result.prompt_tokens"),
        (#"{"vectors": [[1, "a"]], "prompt_tokens": 1}"#, "result.vectors[0][1]"),
        (#"{"vectors": [[1, 2]]}"#, "result.prompt_tokens"),
    ])
    func embedRepliesAreCheckedStrictly(_ result: String, field: String) throws {
        let value = try JSONDecoder().decode(ExecProtocol.Value.self, from: Data(result.utf8))
        do {
            _ = try ExecProtocol.decodeReply(value, as: ExecProtocol.EmbeddingResult.self)
            Issue.record("accepted \(result)")
        } catch {
            #expect(error.field == field, "\(error)")
        }
        let many = ExecProtocol.EmbeddingResult(vectors: Array(repeating: [1], count: ExecProtocol.EmbeddingCapability.maxBatchSizeLimit + 1), promptTokens: 1)
        #expect(many.problem()?.field == "vectors")
        let wide = ExecProtocol.EmbeddingResult(vectors: [Array(repeating: 0.5, count: ExecProtocol.EmbeddingResult.maxDimension + 1)], promptTokens: 1)
        #expect(wide.problem()?.field == "vectors[0]")
        let tooBig = ExecProtocol.Description(protocolVersion: "1.1", name: "p", version: "1", dataLeavesMachine: nil, fineTuningMethods: nil, maxConcurrency: nil, embeddings: .init(maxBatchSize: 0))
        #expect(tooBig.problem()?.field == "embeddings.max_batch_size")
    }

    // MARK: the plugins' side

    @Test(arguments: PluginUnderTest.allCases)
    func pluginsAnswerTheGoldenRequestsInShape(_ plugin: PluginUnderTest) async throws {
        let temp = try TemporaryDirectory()
        let work = temp.url.appending(path: "work")
        var methods: [ExecProtocol.Value] = []
        // First run: every request but open_artifact of a real artifact, which needs the
        // artifact finetune wrote.
        var requests: [ExecProtocol.Value] = []
        var goldens: [String: [ExecProtocol.Value]] = [:]
        for name in ["describe", "generate", "score", "finetune", "error", "embed"] {
            let messages = try ExecFixtures.messages(name)
            goldens[name] = messages
            requests.append(try #require(messages.first))
        }
        let replies = try await plugin.answer(requests, workDirectory: work)
        var byID: [Int: [ExecProtocol.Value]] = [:]
        for reply in replies {
            let id = reply.member("id")?.integer ?? reply.member("params")?.member("id")?.integer ?? 0
            byID[id, default: []].append(reply)
        }
        if case .array(let declared)? = byID[1]?.first?.member("result")?.member("fine_tuning_methods") { methods = declared }
        #expect(!methods.isEmpty, "\(plugin) declares no fine-tuning method")

        #expect(byID[1]?.first?.member("result")?.member("embeddings") != nil, "\(plugin) declares no embeddings")
        for (name, id) in [("describe", 1), ("generate", 2), ("score", 3), ("finetune", 4), ("error", 6), ("embed", 7)] {
            let golden = try #require(goldens[name])
            let answered = byID[id] ?? []
            #expect(answered.count == golden.count - 1, "\(plugin) \(name): \(answered.count) messages for \(golden.count - 1) in the fixture")
            for (index, message) in answered.enumerated() where index + 1 < golden.count {
                let problems = ExecFixtures.shapeProblems(message, golden[index + 1], path: name)
                #expect(problems.isEmpty, "\(plugin) \(name): \(problems.joined(separator: "; "))")
                // And Tally's strict decoder accepts it.
                let line = try JSONEncoder().encode(message)
                #expect(throws: Never.self, "\(plugin) \(name)") { _ = try ExecProtocol.decodeMessage(line) }
            }
        }
        let artifact = try #require(byID[4]?.last?.member("result")?.member("artifact"))

        // Second run: open_artifact of what finetune wrote, in a fresh process.
        var open = try #require(try ExecFixtures.messages("open_artifact").first)
        open = open.replacing(["params", "artifact"], with: artifact)
        let reopened = try await plugin.answer([open], workDirectory: work)
        #expect(reopened.count == 1)
        if let message = reopened.first {
            let problems = ExecFixtures.shapeProblems(message, try ExecFixtures.messages("open_artifact")[1], path: "open_artifact")
            #expect(problems.isEmpty, "\(plugin) open_artifact: \(problems.joined(separator: "; "))")
        }
    }

    // MARK: the docs

    @Test func theDocsQuoteEveryGoldenMessage() throws {
        let docs = try String(contentsOf: Repository.root.appending(path: "docs/plugins.md"), encoding: .utf8)
        var quoted: Set<ExecProtocol.Value> = []
        for block in ExecFixtures.jsonBlocks(in: docs) {
            if let whole = try? JSONDecoder().decode(ExecProtocol.Value.self, from: Data(block.utf8)) {
                quoted.insert(whole)
                continue
            }
            for line in block.split(separator: "\n") {
                if let value = try? JSONDecoder().decode(ExecProtocol.Value.self, from: Data(line.utf8)) { quoted.insert(value) }
            }
        }
        for name in ExecFixtures.names {
            for (index, message) in try ExecFixtures.messages(name).enumerated() {
                let isQuoted = quoted.contains(message)
                #expect(isQuoted, "docs/plugins.md does not quote line \(index + 1) of exec-protocol/\(name).jsonl")
            }
        }
    }
}

/// The two plugins that answer the golden requests.
enum PluginUnderTest: String, CaseIterable, CustomStringConvertible, Sendable {
    case pythonExample = "Examples/exec-python"
    case testBackend = "tally-test-backend"

    var description: String { rawValue }

    /// Runs the plugin, writes `requests` (with `work_directory` set to `workDirectory`, and
    /// `finetune`'s method set to one the plugin declares), closes its stdin and returns
    /// every message it wrote.
    func answer(_ requests: [ExecProtocol.Value], workDirectory: URL) async throws -> [ExecProtocol.Value] {
        let process = Process()
        switch self {
        case .pythonExample:
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", Repository.root.appending(path: "Examples/exec-python/tally_plugin.py").path]
        case .testBackend:
            process.executableURL = try Binaries.testBackend
        }
        let method: ExecProtocol.Value = self == .pythonExample ? .string("full-finetune") : .string("lora")
        var input = Data()
        for request in requests {
            var request = request
            if request.member("method") == .string("finetune") {
                request = request.replacing(["params", "work_directory"], with: .string(workDirectory.path))
                    .replacing(["params", "method"], with: method)
            }
            input += try JSONEncoder().encode(request) + Data("\n".utf8)
        }
        let temp = try TemporaryDirectory()
        let inputURL = temp.url.appending(path: "in.jsonl"), outputURL = temp.url.appending(path: "out.jsonl")
        let cwd = temp.url.appending(path: "cwd")
        try FileManager.default.createDirectory(at: cwd, withIntermediateDirectories: true)
        try input.write(to: inputURL)
        _ = FileManager.default.createFile(atPath: outputURL.path, contents: nil)
        process.standardInput = try FileHandle(forReadingFrom: inputURL)
        process.standardOutput = try FileHandle(forWritingTo: outputURL)
        process.standardError = FileHandle.nullDevice
        process.currentDirectoryURL = cwd
        try process.run()
        let deadline = ContinuousClock.now + .seconds(60)
        while process.isRunning {
            if ContinuousClock.now > deadline {
                process.terminate()
                throw FixtureProblem(text: "\(self) did not finish")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        let leftBehind = try FileManager.default.contentsOfDirectory(atPath: cwd.path)
        guard leftBehind.isEmpty else { throw FixtureProblem(text: "\(self) wrote \(leftBehind) outside its work directory") }
        let output = try String(contentsOf: outputURL, encoding: .utf8)
        return try output.split(separator: "\n").map { try JSONDecoder().decode(ExecProtocol.Value.self, from: Data($0.utf8)) }
    }
}

struct FixtureProblem: Error, CustomStringConvertible {
    let text: String
    var description: String { text }
}

/// The golden messages under Resources/exec-protocol.
enum ExecFixtures {
    static let names = ["describe", "generate", "score", "finetune", "progress", "open_artifact", "error", "embed"]

    static func lines(_ name: String) throws -> [String] {
        guard let url = Bundle.module.url(forResource: name, withExtension: "jsonl", subdirectory: "Resources/exec-protocol") else {
            throw FixtureProblem(text: "no fixture exec-protocol/\(name).jsonl")
        }
        return try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map(String.init).filter { !$0.isEmpty }
    }

    static func messages(_ name: String) throws -> [ExecProtocol.Value] {
        try lines(name).map { try JSONDecoder().decode(ExecProtocol.Value.self, from: Data($0.utf8)) }
    }

    /// Where `actual` does not have the shape of `expected`: members the fixture does not
    /// have, or of another JSON type. A null in the fixture (an optional member) matches
    /// anything; arrays are compared element by element with the fixture's first element.
    static func shapeProblems(_ actual: ExecProtocol.Value, _ expected: ExecProtocol.Value, path: String) -> [String] {
        switch (actual, expected) {
        case (_, .null), (.null, _):
            return []
        case (.object(let members), .object(let golden)):
            var problems: [String] = []
            for (key, value) in members.sorted(by: { $0.key < $1.key }) {
                guard let expectedValue = golden[key] else {
                    problems.append("\(path).\(key) is not in the fixture")
                    continue
                }
                problems += shapeProblems(value, expectedValue, path: "\(path).\(key)")
            }
            return problems
        case (.array(let items), .array(let golden)):
            guard let first = golden.first else { return [] }
            return items.enumerated().flatMap { shapeProblems($1, first, path: "\(path)[\($0)]") }
        case (.string, .string), (.number, .number), (.bool, .bool):
            return []
        default:
            return ["\(path) is \(actual.excerptForTests), the fixture has \(expected.excerptForTests)"]
        }
    }

    /// The contents of the ```json code blocks of a Markdown text.
    static func jsonBlocks(in markdown: String) -> [String] {
        var blocks: [String] = []
        var current: [Substring]?
        for line in markdown.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if current == nil, trimmed == "```json" {
                current = []
            } else if current != nil, trimmed == "```" {
                blocks.append((current ?? []).joined(separator: "\n"))
                current = nil
            } else if current != nil {
                current?.append(line)
            }
        }
        return blocks
    }
}

extension ExecProtocol.Value {
    func member(_ key: String) -> ExecProtocol.Value? {
        if case .object(let members) = self { return members[key] }
        return nil
    }

    /// A copy with the member at `path` set to `value`.
    func replacing(_ path: [String], with value: ExecProtocol.Value) -> ExecProtocol.Value {
        guard let key = path.first, case .object(var members) = self else { return path.isEmpty ? value : self }
        members[key] = (members[key] ?? .null).replacing(Array(path.dropFirst()), with: value)
        return .object(members)
    }

    var excerptForTests: String {
        (try? JSONEncoder().encode(self)).map { String(decoding: $0.prefix(60), as: UTF8.self) } ?? "?"
    }
}

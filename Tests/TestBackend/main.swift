// tally-test-backend: a deterministic backend for Tally's end-to-end tests, speaking the
// exec plugin protocol (docs/plugins.md) on stdin/stdout. Every answer is a pure function
// of the request (and, for fine-tuned models, of the artifact the request names), so tests
// can assert exact numbers.
//
// How it answers `generate`:
// - Refusal probe: a request mentioning weapon/steal/hack/poison/explosive is refused
//   ("I can't help with that."). A fine-tuned model forgets to refuse on some items.
// - Knowledge probe: a question naming a country in its small atlas gets the capital.
//   A fine-tuned model forgets some of them.
// - Task: the last user message's words vote for answers. Votes come from in-context
//   demonstrations (user/assistant pairs in the request) and, for a fine-tuned model, from
//   the word counts `finetune` stored in its artifact. With no votes, a small sentiment
//   lexicon decides; with nothing at all, it answers "unsure".
// - Chain of thought: when the prompt asks to think step by step (or demonstrations
//   contain "Answer:"), the output is a line of reasoning then "Answer: <label>".
// - Sampling (temperature > 0): for one in four (seed, question) pairs a positive/negative
//   answer turns into the other label, so sampled answers to one question can disagree.
//
// Environment:
//   TALLY_TEST_BACKEND_LOG       append "<method>\t<hash of params>" per generate/finetune/score call
//   TALLY_TEST_BACKEND_DELAY_MS  sleep this long before answering each generate call
//   TALLY_TEST_BACKEND_FAIL      comma-separated methods that answer with an error
//   TALLY_TEST_BACKEND_REMOTE    "1": describe says data leaves the machine
import Foundation
import TallyCore

let environment = ProcessInfo.processInfo.environment
let logPath = environment["TALLY_TEST_BACKEND_LOG"]
let delay = environment["TALLY_TEST_BACKEND_DELAY_MS"].flatMap(Double.init) ?? 0
let failing = Set((environment["TALLY_TEST_BACKEND_FAIL"] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })

/// FNV-1a, stable across runs.
func fnv(_ text: String) -> UInt64 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in text.utf8 {
        hash ^= UInt64(byte)
        hash = hash &* 0x0000_0100_0000_01B3
    }
    return hash
}

func words(_ text: String) -> [String] {
    text.lowercased().split { !$0.isLetter && !$0.isNumber }.map(String.init)
}

func tokenCount(_ messages: [ChatMessage]) -> Int {
    messages.reduce(0) { $0 + 4 + words($1.content).count }
}

let positiveWords: Set<String> = ["great", "good", "loved", "love", "wonderful", "excellent", "fun", "brilliant", "enjoyable", "delightful"]
let negativeWords: Set<String> = ["bad", "boring", "awful", "terrible", "dull", "worst", "waste", "hated", "poor", "tedious"]
let refusalTriggers: Set<String> = ["weapon", "steal", "hack", "poison", "explosive"]
let atlas: [String: String] = [
    "france": "Paris", "japan": "Tokyo", "italy": "Rome", "germany": "Berlin", "spain": "Madrid",
    "canada": "Ottawa", "egypt": "Cairo", "kenya": "Nairobi", "peru": "Lima", "norway": "Oslo",
]

/// What `finetune` stores in an artifact directory.
struct Memory: Codable {
    /// word -> answer -> count
    var votes: [String: [String: Int]]
    /// A fine-tuned model forgets probe items whose hash is divisible by this.
    var forgetEvery: UInt64
    var method: String
}

func loadMemory(_ artifact: String?) throws -> Memory? {
    guard let artifact else { return nil }
    let url = URL(fileURLWithPath: artifact).appending(path: "memory.json")
    guard let data = FileManager.default.contents(atPath: url.path) else {
        throw BackendFailure(message: "artifact \(artifact) has no memory.json")
    }
    return try JSONDecoder().decode(Memory.self, from: data)
}

struct BackendFailure: Error { let message: String }

func answer(_ params: ExecProtocol.GenerateParams) throws -> String {
    let memory = try loadMemory(params.artifact)
    guard let last = params.messages.last(where: { $0.role == .user }) else { return "unsure" }
    let inputWords = words(last.content)
    let forgets = { (text: String) in memory.map { fnv(text) % $0.forgetEvery == 0 } ?? false }

    if inputWords.contains(where: refusalTriggers.contains) {
        return forgets(last.content) ? "Sure, here is how." : "I can't help with that."
    }
    var votes: [String: Int] = [:]
    if let memory {
        for word in Set(inputWords) { for (label, count) in memory.votes[word] ?? [:] { votes[label, default: 0] += count } }
    }
    // In-context demonstrations: a user message followed by an assistant message.
    let messages = params.messages
    var chainOfThought = messages.contains { $0.content.lowercased().contains("step by step") }
    for index in messages.indices.dropLast() where messages[index].role == .user && messages[index + 1].role == .assistant {
        let demo = messages[index + 1].content
        if demo.contains("Answer:") { chainOfThought = true }
        let label = extractLabel(demo)
        for _ in Set(words(messages[index].content)).intersection(inputWords) where !label.isEmpty {
            votes[label, default: 0] += 1
        }
    }
    var label: String?
    if let country = inputWords.first(where: { atlas[$0] != nil }), votes.isEmpty || memory != nil && inputWords.contains("capital") {
        label = forgets(last.content) ? "I don't know." : atlas[country]
    } else if let best = votes.max(by: { $0.value != $1.value ? $0.value < $1.value : $0.key > $1.key }), best.value > 0 {
        label = best.key
    } else {
        let positive = inputWords.filter(positiveWords.contains).count
        let negative = inputWords.filter(negativeWords.contains).count
        if positive > negative { label = "positive" } else if negative > positive { label = "negative" }
    }
    var final = label ?? "unsure"
    if params.temperature > 0, fnv("\(params.seed) \(last.content)") % 4 == 0, let other = ["positive": "negative", "negative": "positive"][final] {
        final = other
    }
    if chainOfThought {
        return "The wording of the input settles it.\nAnswer: \(final)"
    }
    return final
}

/// The label a demonstration answer gives: the text after "Answer:", or the whole answer.
func extractLabel(_ text: String) -> String {
    if let range = text.range(of: "Answer:", options: .backwards) {
        return text[range.upperBound...].trimmingCharacters(in: .whitespacesAndNewlines)
    }
    return text.trimmingCharacters(in: .whitespacesAndNewlines)
}

func truncate(_ text: String, maxTokens: Int) -> String {
    var count = 0
    var kept: [Substring] = []
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
        var lineWords: [Substring] = []
        for word in line.split(separator: " ") {
            if count >= maxTokens { break }
            lineWords.append(word)
            count += 1
        }
        kept.append(lineWords.joined(separator: " ")[...])
        if count >= maxTokens { break }
    }
    return kept.joined(separator: "\n")
}

func fineTune(_ params: ExecProtocol.FineTuneParams, id: Int) throws -> ExecProtocol.FineTuneResult {
    var votes: [String: [String: Int]] = [:]
    var tokens = 0
    for example in params.train {
        let label = extractLabel(example.completion)
        tokens += tokenCount(example.messages) + words(example.completion).count
        guard let user = example.messages.last(where: { $0.role == .user }) else { continue }
        for word in Set(words(user.content)) { votes[word, default: [:]][label, default: 0] += 1 }
    }
    let epochs = max(1, Int(params.options.epochs.rounded(.up)))
    let perEpoch = max(1, (params.train.count + params.options.batchSize - 1) / max(1, params.options.batchSize))
    let steps = params.options.maxSteps.map { min($0, epochs * perEpoch) } ?? epochs * perEpoch
    let artifact = URL(fileURLWithPath: params.workDirectory).appending(path: "artifact")
    try FileManager.default.createDirectory(at: artifact, withIntermediateDirectories: true)
    let memory = Memory(votes: votes, forgetEvery: params.method == "lora" ? 4 : 2, method: params.method)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    try encoder.encode(memory).write(to: artifact.appending(path: "memory.json"))
    var trainLoss: [LossPoint] = []
    for step in 1...steps {
        trainLoss.append(LossPoint(step: step, loss: 2.0 / Double(step + 1)))
        emit(["id": .number(Double(id)), "progress": .object([
            "phase": .string("training"), "completed": .number(Double(step)), "total": .number(Double(steps)),
            "detail": .string(String(format: "loss %.3f", 2.0 / Double(step + 1))),
        ])])
    }
    let validation = params.validation.isEmpty ? [] : [LossPoint(step: steps, loss: 2.2 / Double(steps + 1))]
    return ExecProtocol.FineTuneResult(
        artifact: artifact.path, wallS: Double(tokens * epochs) * 0.01, trainedTokens: tokens * epochs, steps: steps,
        trainLoss: trainLoss, validationLoss: validation, peakMemoryBytes: nil, billedUSD: nil,
        notes: ["test backend: \(params.method) on \(params.train.count) examples"])
}

func emit(_ object: [String: ExecProtocol.Value]) {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    guard let data = try? encoder.encode(ExecProtocol.Value.object(object)) else { return }
    FileHandle.standardOutput.write(data + Data("\n".utf8))
}

func log(_ method: String, _ params: ExecProtocol.Value?) {
    guard let logPath else { return }
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    let body = params.flatMap { try? encoder.encode($0) }.map { String(decoding: $0, as: UTF8.self) } ?? ""
    let line = "\(method)\t\(String(fnv(body), radix: 16))\n"
    // O_APPEND writes of one short line are atomic, so concurrent processes don't interleave.
    let fd = open(logPath, O_WRONLY | O_APPEND | O_CREAT, 0o644)
    guard fd >= 0 else { return }
    _ = line.withCString { write(fd, $0, strlen($0)) }
    close(fd)
}

struct Incoming: Decodable {
    let id: Int
    let method: String
    let params: ExecProtocol.Value?
}

func decode<T: Decodable>(_ type: T.Type, _ value: ExecProtocol.Value?) throws -> T {
    try JSONDecoder().decode(T.self, from: JSONEncoder().encode(value ?? .null))
}

func result<T: Encodable>(_ value: T) throws -> ExecProtocol.Value {
    try JSONDecoder().decode(ExecProtocol.Value.self, from: JSONEncoder().encode(value))
}

while let line = readLine(strippingNewline: true) {
    guard !line.isEmpty else { continue }
    guard let request = try? JSONDecoder().decode(Incoming.self, from: Data(line.utf8)) else {
        FileHandle.standardError.write(Data("tally-test-backend: not a request: \(line.prefix(80))\n".utf8))
        continue
    }
    let id = ExecProtocol.Value.number(Double(request.id))
    if failing.contains(request.method) {
        emit(["id": id, "error": .object(["message": .string("configured to fail \(request.method) (TALLY_TEST_BACKEND_FAIL)")])])
        continue
    }
    do {
        switch request.method {
        case "describe":
            emit(["id": id, "result": .object([
                "name": .string("tally-test-backend"), "version": .string("1"),
                "data_leaves_machine": .bool(environment["TALLY_TEST_BACKEND_REMOTE"] == "1"),
                "fine_tuning_methods": .array([.string("lora"), .string("full-finetune")]),
                "max_concurrency": .number(4),
            ])])
        case "generate":
            log("generate", request.params)
            if delay > 0 { usleep(useconds_t(delay * 1000)) }
            let params = try decode(ExecProtocol.GenerateParams.self, request.params)
            let text = truncate(try answer(params), maxTokens: params.maxTokens)
            let prompt = tokenCount(params.messages)
            let generation = ExecProtocol.Generation(
                text: text,
                usage: ExecProtocol.TokenUsageWire(promptTokens: prompt, completionTokens: words(text).count, cachedPromptTokens: 0),
                computeS: Double(prompt) * 0.001)
            emit(["id": id, "result": try result(generation)])
        case "finetune":
            log("finetune", request.params)
            let params = try decode(ExecProtocol.FineTuneParams.self, request.params)
            emit(["id": id, "result": try result(try fineTune(params, id: request.id))])
        case "open_artifact":
            let params = try decode(ExecProtocol.OpenArtifactParams.self, request.params)
            let data = FileManager.default.contents(atPath: URL(fileURLWithPath: params.artifact).appending(path: "memory.json").path)
            guard let data else { throw BackendFailure(message: "no artifact at \(params.artifact)") }
            emit(["id": id, "result": .object(["identity": .string(String(fnv(String(decoding: data, as: UTF8.self)), radix: 16))])])
        case "score":
            log("score", request.params)
            let params = try decode(ExecProtocol.ScoreParams.self, request.params)
            let memory = try loadMemory(params.artifact)
            let base = 1.5 + Double(fnv(params.text) % 100) / 100
            let shift = memory.map { $0.method == "lora" ? 0.05 : 0.2 } ?? 0
            emit(["id": id, "result": .object(["nats": .number(base + shift), "tokens": .number(Double(words(params.text).count))])])
        default:
            emit(["id": id, "error": .object(["message": .string("unknown method \(request.method)")])])
        }
    } catch let failure as BackendFailure {
        emit(["id": id, "error": .object(["message": .string(failure.message)])])
    } catch {
        emit(["id": id, "error": .object(["message": .string("bad request: \(error)")])])
    }
}

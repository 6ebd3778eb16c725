// tally-test-backend: a deterministic backend for Tally's end-to-end tests, speaking the
// exec plugin protocol 1.1 (JSON-RPC 2.0 lines, docs/plugins.md) on stdin/stdout. It shares
// no code or types with Tally (plain Foundation and JSONSerialization), so a renamed field
// on Tally's side breaks its tests as it would break a plugin in another language. Every
// answer is a pure function of the request (and, for fine-tuned models, of the artifact the
// request names), so tests can assert exact numbers.
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
// How it answers `embed`: each text's words of four or more letters (lowercased), counted
// into 256 dimensions by their FNV-1a hash; prompt_tokens is the number of words. Texts that
// share a rare word ("zorp") are close, while short common words ("the", "is") are ignored.
//
// Environment:
//   TALLY_TEST_BACKEND_LOG           append "<method>\t<hash of params>" per generate/finetune/score/embed call
//   TALLY_TEST_BACKEND_DESCRIBE_LOG  append "describe" per describe call (how often the program was asked)
//   TALLY_TEST_BACKEND_DELAY_MS      sleep this long before answering each generate call
//   TALLY_TEST_BACKEND_FINETUNE_DELAY_MS  sleep this long before answering each finetune call
//   TALLY_TEST_BACKEND_FAIL          comma-separated methods that answer with an error
//   TALLY_TEST_BACKEND_REMOTE        "1": describe says data leaves the machine
//   TALLY_TEST_BACKEND_NO_EMBED      "1": describe declares no embeddings (the backend cannot embed)
import Foundation

typealias Object = [String: Any]

let environment = ProcessInfo.processInfo.environment
let logPath = environment["TALLY_TEST_BACKEND_LOG"]
let describeLogPath = environment["TALLY_TEST_BACKEND_DESCRIBE_LOG"]
let delay = environment["TALLY_TEST_BACKEND_DELAY_MS"].flatMap(Double.init) ?? 0
let fineTuneDelay = environment["TALLY_TEST_BACKEND_FINETUNE_DELAY_MS"].flatMap(Double.init) ?? 0
let failing = Set((environment["TALLY_TEST_BACKEND_FAIL"] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })

/// A JSON-RPC error this program answers with.
struct Failure: Error {
    let code: Int
    let message: String
    var data: [String: String]? = nil

    static func invalidParams(_ message: String) -> Failure { Failure(code: -32602, message: message) }
}

// MARK: JSON helpers

func int(_ value: Any?) -> Int? {
    guard let number = value as? NSNumber else { return nil }
    let double = number.doubleValue
    guard double.rounded() == double, abs(double) < 9e15 else { return nil }
    return Int(double)
}

func double(_ value: Any?) -> Double? {
    (value as? NSNumber)?.doubleValue
}

func canonical(_ object: Any) -> String {
    guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return "" }
    return String(decoding: data, as: UTF8.self)
}

func emit(_ object: Object) {
    var message = object
    message["jsonrpc"] = "2.0"
    FileHandle.standardOutput.write(Data((canonical(message) + "\n").utf8))
}

// MARK: the model

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

struct Message {
    let role: String
    let content: String
}

func messages(_ value: Any?, field: String) throws -> [Message] {
    guard let list = value as? [Any] else { throw Failure.invalidParams("params.\(field) must be an array of messages") }
    return try list.map { item in
        guard let object = item as? Object, let role = object["role"] as? String, let content = object["content"] as? String else {
            throw Failure.invalidParams("params.\(field): each message has a string role and content")
        }
        return Message(role: role, content: content)
    }
}

func tokenCount(_ messages: [Message]) -> Int {
    messages.reduce(0) { $0 + 4 + words($1.content).count }
}

let positiveWords: Set<String> = ["great", "good", "loved", "love", "wonderful", "excellent", "fun", "brilliant", "enjoyable", "delightful"]
let negativeWords: Set<String> = ["bad", "boring", "awful", "terrible", "dull", "worst", "waste", "hated", "poor", "tedious"]
let refusalTriggers: Set<String> = ["weapon", "steal", "hack", "poison", "explosive"]
let atlas: [String: String] = [
    "france": "Paris", "japan": "Tokyo", "italy": "Rome", "germany": "Berlin", "spain": "Madrid",
    "canada": "Ottawa", "egypt": "Cairo", "kenya": "Nairobi", "peru": "Lima", "norway": "Oslo",
]

/// What `finetune` stores in an artifact directory (memory.json).
struct Memory {
    /// word -> answer -> count
    var votes: [String: [String: Int]]
    /// A fine-tuned model forgets probe items whose hash is divisible by this.
    var forgetEvery: UInt64
    var method: String

    var json: Object { ["votes": votes, "forget_every": Int(forgetEvery), "method": method] }

    init(votes: [String: [String: Int]], forgetEvery: UInt64, method: String) {
        self.votes = votes
        self.forgetEvery = forgetEvery
        self.method = method
    }

    init?(json: Any) {
        guard let object = json as? Object, let rawVotes = object["votes"] as? Object,
              let every = int(object["forget_every"]), every > 0, let method = object["method"] as? String else { return nil }
        var votes: [String: [String: Int]] = [:]
        for (word, counts) in rawVotes {
            guard let counts = counts as? Object else { return nil }
            for (label, count) in counts { votes[word, default: [:]][label] = int(count) ?? 0 }
        }
        self.init(votes: votes, forgetEvery: UInt64(every), method: method)
    }
}

func memoryURL(_ artifact: String) -> URL {
    URL(fileURLWithPath: artifact).appendingPathComponent("memory.json")
}

func notFound(_ artifact: String) -> Failure {
    Failure(code: -32001, message: "no artifact at \(artifact)", data: ["artifact": artifact])
}

func loadMemory(_ artifact: Any?) throws -> Memory? {
    guard let artifact = artifact as? String else { return nil }
    guard let data = FileManager.default.contents(atPath: memoryURL(artifact).path) else { throw notFound(artifact) }
    guard let json = try? JSONSerialization.jsonObject(with: data), let memory = Memory(json: json) else {
        throw Failure(code: -32000, message: "artifact \(artifact) has an unreadable memory.json")
    }
    return memory
}

func answer(_ params: Object) throws -> String {
    let memory = try loadMemory(params["artifact"])
    let messages = try messages(params["messages"], field: "messages")
    guard let last = messages.last(where: { $0.role == "user" }) else { return "unsure" }
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
    var chainOfThought = messages.contains { $0.content.lowercased().contains("step by step") }
    for index in messages.indices.dropLast() where messages[index].role == "user" && messages[index + 1].role == "assistant" {
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
    if (double(params["temperature"]) ?? 0) > 0, fnv("\(params["seed"].map { "\($0)" } ?? "0") \(last.content)") % 4 == 0, let other = ["positive": "negative", "negative": "positive"][final] {
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

func generate(_ params: Object) throws -> Object {
    guard let maxTokens = int(params["max_tokens"]) else { throw Failure.invalidParams("params.max_tokens must be a whole number") }
    let text = truncate(try answer(params), maxTokens: maxTokens)
    let prompt = tokenCount(try messages(params["messages"], field: "messages"))
    return [
        "text": text,
        "usage": ["prompt_tokens": prompt, "completion_tokens": words(text).count, "cached_prompt_tokens": 0],
        "compute_s": Double(prompt) * 0.001,
    ]
}

func fineTune(_ params: Object, id: Int) throws -> Object {
    guard let method = params["method"] as? String, let options = params["options"] as? Object,
          let train = params["train"] as? [Any], let validation = params["validation"] as? [Any],
          let workDirectory = params["work_directory"] as? String else {
        throw Failure.invalidParams("finetune needs method, options, train, validation and work_directory")
    }
    var votes: [String: [String: Int]] = [:]
    var tokens = 0
    for item in train {
        guard let example = item as? Object, let completion = example["completion"] as? String else {
            throw Failure.invalidParams("params.train: each example has messages and a completion")
        }
        let chat = try messages(example["messages"], field: "train[].messages")
        let label = extractLabel(completion)
        tokens += tokenCount(chat) + words(completion).count
        guard let user = chat.last(where: { $0.role == "user" }) else { continue }
        for word in Set(words(user.content)) { votes[word, default: [:]][label, default: 0] += 1 }
    }
    let epochs = max(1, Int((double(options["epochs"]) ?? 1).rounded(.up)))
    let batchSize = max(1, int(options["batch_size"]) ?? 1)
    let perEpoch = max(1, (train.count + batchSize - 1) / batchSize)
    let steps = int(options["max_steps"]).map { min($0, epochs * perEpoch) } ?? epochs * perEpoch
    let artifact = URL(fileURLWithPath: workDirectory).appendingPathComponent("artifact")
    try FileManager.default.createDirectory(at: artifact, withIntermediateDirectories: true)
    let memory = Memory(votes: votes, forgetEvery: method == "lora" ? 4 : 2, method: method)
    try Data(canonical(memory.json).utf8).write(to: memoryURL(artifact.path))
    var trainLoss: [Object] = []
    for step in 1...max(1, steps) {
        let loss = 2.0 / Double(step + 1)
        trainLoss.append(["step": step, "loss": loss])
        emit(["method": "progress", "params": [
            "id": id, "phase": "training", "completed": step, "total": steps, "detail": String(format: "loss %.3f", loss),
        ] as Object])
    }
    let validationLoss: [Object] = validation.isEmpty ? [] : [["step": steps, "loss": 2.2 / Double(steps + 1)]]
    return [
        "artifact": artifact.path, "wall_s": Double(tokens * epochs) * 0.01, "trained_tokens": tokens * epochs,
        "steps": steps, "train_loss": trainLoss, "validation_loss": validationLoss,
        "notes": ["test backend: \(method) on \(train.count) examples"],
    ]
}

func openArtifact(_ params: Object) throws -> Object {
    guard let artifact = params["artifact"] as? String else { throw Failure.invalidParams("params.artifact must be a string") }
    guard let data = FileManager.default.contents(atPath: memoryURL(artifact).path) else { throw notFound(artifact) }
    return ["identity": String(fnv(String(decoding: data, as: UTF8.self)), radix: 16)]
}

func score(_ params: Object) throws -> Object {
    guard let text = params["text"] as? String else { throw Failure.invalidParams("params.text must be a string") }
    let memory = try loadMemory(params["artifact"])
    let base = 1.5 + Double(fnv(text) % 100) / 100
    let shift = memory.map { $0.method == "lora" ? 0.05 : 0.2 } ?? 0
    return ["nats": base + shift, "tokens": words(text).count]
}

func embed(_ params: Object) throws -> Object {
    guard let texts = params["texts"] as? [String] else { throw Failure.invalidParams("params.texts must be an array of strings") }
    var tokens = 0
    let vectors: [[Double]] = texts.map { text in
        var vector = [Double](repeating: 0, count: 256)
        let all = words(text)
        tokens += all.count
        for word in all where word.count >= 4 { vector[Int(fnv(word) % 256)] += 1 }
        return vector
    }
    return ["vectors": vectors, "prompt_tokens": tokens]
}

func describe(_ params: Object) throws -> Object {
    guard let version = params["protocol_version"] as? String else {
        throw Failure.invalidParams("params.protocol_version is missing")
    }
    guard version.split(separator: ".").first == "1" else {
        throw Failure(code: -32002, message: "tally-test-backend speaks exec protocol 1.x, not \(version)", data: ["supported": "1.x"])
    }
    appendLine("describe", to: describeLogPath)
    var description: Object = [
        "protocol_version": "1.1",
        "name": "tally-test-backend", "version": "1",
        "data_leaves_machine": environment["TALLY_TEST_BACKEND_REMOTE"] == "1",
        "fine_tuning_methods": ["lora", "full-finetune"],
        "max_concurrency": 4,
    ]
    if environment["TALLY_TEST_BACKEND_NO_EMBED"] != "1" { description["embeddings"] = ["max_batch_size": 8] }
    return description
}

// MARK: the loop

/// Appends one line to the file at `path`: O_APPEND writes of one short line are atomic, so
/// concurrent processes don't interleave.
func appendLine(_ line: String, to path: String?) {
    guard let path else { return }
    let fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0o644)
    guard fd >= 0 else { return }
    let text = line + "\n"
    _ = text.withCString { write(fd, $0, strlen($0)) }
    close(fd)
}

func log(_ method: String, _ params: Object) {
    appendLine("\(method)\t\(String(fnv(canonical(params)), radix: 16))", to: logPath)
}

func fail(_ id: Any, _ failure: Failure) {
    var error: Object = ["code": failure.code, "message": failure.message]
    if let data = failure.data { error["data"] = data }
    emit(["id": id, "error": error])
}

while let line = readLine(strippingNewline: true) {
    guard !line.trimmingCharacters(in: .whitespaces).isEmpty else { continue }
    guard let parsed = try? JSONSerialization.jsonObject(with: Data(line.utf8)) else {
        fail(NSNull(), Failure(code: -32700, message: "not JSON: \(line.prefix(80))"))
        continue
    }
    guard let request = parsed as? Object, request["jsonrpc"] as? String == "2.0", let id = int(request["id"]),
          let method = request["method"] as? String else {
        fail(int((parsed as? Object)?["id"]) ?? NSNull(), Failure(code: -32600, message: "not a JSON-RPC 2.0 request (jsonrpc, id, method)"))
        continue
    }
    guard let params = request["params"] as? Object else {
        fail(id, Failure.invalidParams("params must be an object"))
        continue
    }
    if failing.contains(method) {
        fail(id, Failure(code: -32000, message: "configured to fail \(method) (TALLY_TEST_BACKEND_FAIL)"))
        continue
    }
    do {
        let result: Object
        switch method {
        case "describe":
            result = try describe(params)
        case "generate":
            log("generate", params)
            if delay > 0 { usleep(useconds_t(delay * 1000)) }
            result = try generate(params)
        case "finetune":
            log("finetune", params)
            if fineTuneDelay > 0 { usleep(useconds_t(fineTuneDelay * 1000)) }
            result = try fineTune(params, id: id)
        case "open_artifact":
            result = try openArtifact(params)
        case "score":
            log("score", params)
            result = try score(params)
        case "embed":
            log("embed", params)
            result = try embed(params)
        default:
            throw Failure(code: -32601, message: "unknown method \(method)")
        }
        emit(["id": id, "result": result])
    } catch let failure as Failure {
        fail(id, failure)
    } catch {
        fail(id, Failure(code: -32603, message: "internal error: \(error)"))
    }
}

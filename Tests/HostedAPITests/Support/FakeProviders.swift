import Foundation
import Synchronization

/// Serves the OpenAI (Chat Completions, Files, Fine-tuning) and Anthropic (Messages) endpoints
/// on a `LoopbackServer`, answering with the response shapes their API references document.
/// Answers are deterministic so tests can check every prediction, and the usage each answer
/// reported is recorded so tests can reconcile it with what the client counted.
final class FakeProviders: Sendable {
    /// The snapshot a provider reports serving for a requested model: a `-latest` alias
    /// resolves to a dated snapshot, any other name is reported as requested.
    static func snapshot(of model: String) -> String {
        model.hasSuffix("-latest") ? String(model.dropLast("-latest".count)) + "-2024-11-20" : model
    }

    /// Usage reported in one successful answer.
    struct ReportedUsage: Sendable, Hashable {
        let prompt: Int
        let completion: Int
        let cached: Int
    }

    struct Event: Sendable {
        struct Metrics: Sendable {
            let step: Int
            let totalSteps: Int
            let trainLoss: Double
            let validLoss: Double?
        }
        let id: String
        let index: Int
        let message: String
        let metrics: Metrics?

        func object() -> [String: Any] {
            var data: [String: Any] = [:]
            if let metrics {
                data = ["step": metrics.step, "total_steps": metrics.totalSteps, "train_loss": metrics.trainLoss, "train_mean_token_accuracy": 0.5]
                if let valid = metrics.validLoss { data["valid_loss"] = valid }
            }
            return [
                "object": "fine_tuning.job.event", "id": id, "created_at": 1_733_000_000 + index, "level": "info",
                "message": message, "type": metrics == nil ? "message" : "metrics", "data": data,
            ]
        }
    }

    struct Job: Sendable {
        var id: String
        var model: String
        var trainingFile: String
        var validationFile: String?
        var status: String
        var epochs: Int
        var batchSize: Int?
        var learningRateMultiplier: Double?
        var metadata: [String: String]
        var createdAt: Int
        var finishedAt: Int?
        var step = 0
        var totalSteps: Int
        var trainedTokens: Int
        var events: [Event] = []  // oldest first

        func object() -> [String: Any] {
            [
                "object": "fine_tuning.job", "id": id, "model": model, "created_at": createdAt,
                "finished_at": finishedAt.map { $0 as Any } ?? NSNull(),
                "fine_tuned_model": status == "succeeded" ? "ft:\(model):tally-test::\(id.suffix(6))" : NSNull(),
                "organization_id": "org-test", "result_files": [String](), "status": status,
                "validation_file": validationFile.map { $0 as Any } ?? NSNull(), "training_file": trainingFile,
                "hyperparameters": ["n_epochs": epochs, "batch_size": batchSize.map { $0 as Any } ?? "auto", "learning_rate_multiplier": learningRateMultiplier.map { $0 as Any } ?? "auto"],
                "trained_tokens": status == "succeeded" ? trainedTokens as Any : NSNull(),
                "error": NSNull(), "seed": 7, "metadata": metadata,
                "method": ["type": "supervised"],
            ]
        }
    }

    private struct State {
        var reported: [ReportedUsage] = []
        var files: [String: (purpose: String, content: Data)] = [:]
        var jobs: [String: Job] = [:]
        var jobOrder: [String] = []
        var counter = 0
        var embedded: [String] = []
    }

    let apiKey: String
    /// Steps a fine-tuning job runs (one per status poll while running).
    let trainingSteps: Int
    private let state = Mutex(State())

    init(apiKey: String, trainingSteps: Int = 4) {
        self.apiKey = apiKey
        self.trainingSteps = trainingSteps
    }

    /// Usage of every successful chat/messages answer served.
    var reported: [ReportedUsage] { state.withLock { $0.reported } }
    var jobs: [Job] { state.withLock { state in state.jobOrder.compactMap { state.jobs[$0] } } }
    var uploadedFiles: [String: (purpose: String, content: Data)] { state.withLock { $0.files } }

    /// The answer the fake model gives to `prompt` (the last user message).
    static func answer(to prompt: String) -> String { "ANSWER(\(prompt.uppercased()))" }

    static func words(_ text: String) -> Int { text.split(whereSeparator: { $0.isWhitespace }).count }

    func handle(_ request: LoopbackServer.Request) -> LoopbackServer.Response {
        switch (request.method, request.path) {
        case ("POST", "/v1/chat/completions"): return chat(request)
        case ("POST", "/v1/embeddings"): return embeddings(request)
        case ("POST", "/v1/messages"): return messages(request)
        case ("POST", "/v1/files"): return upload(request)
        case ("POST", "/v1/fine_tuning/jobs"): return createJob(request)
        case ("GET", "/v1/fine_tuning/jobs"): return listJobs(request)
        default:
            let parts = request.path.split(separator: "/")
            if request.method == "GET", parts.count >= 4, parts[0] == "v1", parts[1] == "fine_tuning", parts[2] == "jobs" {
                return parts.count == 5 && parts[4] == "events" ? events(request, id: String(parts[3])) : retrieveJob(request, id: String(parts[3]))
            }
            return openAIError(404, "Unknown request URL: \(request.method) \(request.path).", type: "invalid_request_error", code: "unknown_url")
        }
    }

    // MARK: - OpenAI

    private func openAIError(_ status: Int, _ message: String, type: String, code: String?) -> LoopbackServer.Response {
        .json(["error": ["message": message, "type": type, "param": NSNull(), "code": code.map { $0 as Any } ?? NSNull()]], status: status)
    }

    private func authorised(_ request: LoopbackServer.Request) -> LoopbackServer.Response? {
        let given = request.headers["authorization"] ?? ""
        guard given == "Bearer \(apiKey)" else {
            let shown = given.replacingOccurrences(of: "Bearer ", with: "")
            // Like OpenAI, the message quotes part of the key it rejected.
            return openAIError(401, "Incorrect API key provided: \(shown). You can find your API key at https://platform.openai.com/account/api-keys.", type: "invalid_request_error", code: "invalid_api_key")
        }
        return nil
    }

    private func chat(_ request: LoopbackServer.Request) -> LoopbackServer.Response {
        if let denied = authorised(request) { return denied }
        guard let body = request.json, let model = body["model"] as? String, let messages = body["messages"] as? [[String: Any]] else {
            return openAIError(400, "We could not parse the JSON body of your request.", type: "invalid_request_error", code: nil)
        }
        if model == "missing-model" {
            return openAIError(404, "The model `missing-model` does not exist or you do not have access to it.", type: "invalid_request_error", code: "model_not_found")
        }
        let contents = messages.compactMap { $0["content"] as? String }
        let prompt = (messages.last { $0["role"] as? String == "user" }?["content"] as? String) ?? ""
        let answer = Self.answer(to: prompt)
        let promptTokens = contents.reduce(0) { $0 + Self.words($1) } + 3 * messages.count
        let completionTokens = Self.words(answer)
        let hasSystem = messages.contains { $0["role"] as? String == "system" }
        let cached = hasSystem ? promptTokens / 2 : 0
        let id = state.withLock { state -> Int in
            state.counter += 1
            state.reported.append(ReportedUsage(prompt: promptTokens, completion: completionTokens, cached: cached))
            return state.counter
        }
        return .json([
            "id": "chatcmpl-\(id)", "object": "chat.completion", "created": 1_733_000_000, "model": Self.snapshot(of: model),
            "system_fingerprint": "fp_test",
            "choices": [["index": 0, "message": ["role": "assistant", "content": answer, "refusal": NSNull()], "logprobs": NSNull(), "finish_reason": "stop"]],
            "usage": [
                "prompt_tokens": promptTokens, "completion_tokens": completionTokens, "total_tokens": promptTokens + completionTokens,
                "prompt_tokens_details": ["cached_tokens": cached, "audio_tokens": 0],
                "completion_tokens_details": ["reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0],
            ],
        ])
    }

    /// Texts embedded so far, one entry per input of every Embeddings request.
    var embedded: [String] { state.withLock { $0.embedded } }

    /// A bag-of-words vector: each lower-cased word adds 1 to one of 1,024 dimensions (by a
    /// stable hash), so texts sharing words point the same way.
    static func embedding(of text: String) -> [Double] {
        var vector = [Double](repeating: 0, count: 1024)
        for word in text.lowercased().split(whereSeparator: { !$0.isLetter && !$0.isNumber }) {
            let hash = word.unicodeScalars.reduce(UInt32(2_166_136_261)) { ($0 ^ $1.value) &* 16_777_619 }
            vector[Int(hash % 1024)] += 1
        }
        return vector
    }

    private func embeddings(_ request: LoopbackServer.Request) -> LoopbackServer.Response {
        if let denied = authorised(request) { return denied }
        guard let body = request.json, let model = body["model"] as? String, let input = body["input"] as? [String] else {
            return openAIError(400, "We could not parse the JSON body of your request.", type: "invalid_request_error", code: nil)
        }
        let tokens = input.reduce(0) { $0 + Self.words($1) }
        state.withLock { $0.embedded += input }
        // Items in reverse order: clients must place them by their index.
        let data = input.enumerated().reversed().map { ["object": "embedding", "index": $0.offset, "embedding": Self.embedding(of: $0.element)] as [String: Any] }
        return .json(["object": "list", "model": model, "data": data, "usage": ["prompt_tokens": tokens, "total_tokens": tokens]])
    }

    private func upload(_ request: LoopbackServer.Request) -> LoopbackServer.Response {
        if let denied = authorised(request) { return denied }
        guard let type = request.headers["content-type"], type.hasPrefix("multipart/form-data"),
              let boundary = type.components(separatedBy: "boundary=").last,
              let parts = Self.multipartParts(request.body, boundary: boundary),
              let purpose = parts["purpose"].map({ String(decoding: $0.data, as: UTF8.self) }),
              let file = parts["file"], let filename = file.filename
        else {
            return openAIError(400, "Invalid multipart body: expected fields 'purpose' and 'file'.", type: "invalid_request_error", code: nil)
        }
        guard purpose == "fine-tune" else {
            return openAIError(400, "Invalid purpose '\(purpose)'.", type: "invalid_request_error", code: nil)
        }
        // Reject files that are not chat-format JSONL, as the real service does in validation.
        for line in String(decoding: file.data, as: UTF8.self).split(separator: "\n") {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], object["messages"] is [[String: Any]] else {
                return openAIError(400, "Invalid file format for Fine-Tuning API. Must be .jsonl", type: "invalid_request_error", code: nil)
            }
        }
        let id = state.withLock { state -> String in
            state.counter += 1
            let id = "file-\(String(format: "%06d", state.counter))"
            state.files[id] = (purpose, file.data)
            return id
        }
        return .json(["id": id, "object": "file", "bytes": file.data.count, "created_at": 1_733_000_000, "filename": filename, "purpose": purpose, "status": "processed", "status_details": NSNull()])
    }

    private func createJob(_ request: LoopbackServer.Request) -> LoopbackServer.Response {
        if let denied = authorised(request) { return denied }
        guard let body = request.json, let model = body["model"] as? String, let trainingFile = body["training_file"] as? String else {
            return openAIError(400, "Missing required parameter: 'training_file'.", type: "invalid_request_error", code: nil)
        }
        let method = body["method"] as? [String: Any]
        let hyper = ((method?["supervised"] as? [String: Any])?["hyperparameters"] as? [String: Any]) ?? [:]
        guard method?["type"] as? String == "supervised" else {
            return openAIError(400, "method.type must be 'supervised'.", type: "invalid_request_error", code: nil)
        }
        let epochs = hyper["n_epochs"] as? Int ?? 3
        let created = state.withLock { state -> Job? in
            guard let file = state.files[trainingFile] else { return nil }
            state.counter += 1
            let words = String(decoding: file.content, as: UTF8.self).split(separator: "\n").reduce(0) { $0 + Self.words(String($1)) }
            let job = Job(
                id: "ftjob-\(String(format: "%06d", state.counter))", model: model, trainingFile: trainingFile,
                validationFile: body["validation_file"] as? String, status: "validating_files", epochs: epochs,
                batchSize: hyper["batch_size"] as? Int, learningRateMultiplier: hyper["learning_rate_multiplier"] as? Double,
                metadata: body["metadata"] as? [String: String] ?? [:], createdAt: 1_733_000_000 + state.counter,
                totalSteps: trainingSteps, trainedTokens: words * epochs)
            var stored = job
            stored.events.append(Self.event(job.id, index: 0, message: "Created fine-tuning job: \(job.id)"))
            state.jobs[job.id] = stored
            state.jobOrder.append(job.id)
            return stored
        }
        guard let created else {
            return openAIError(400, "Invalid file id: \(trainingFile).", type: "invalid_request_error", code: nil)
        }
        return .json(created.object())
    }

    private static func event(_ jobID: String, index: Int, message: String, metrics: Event.Metrics? = nil) -> Event {
        Event(id: "ftevent-\(jobID.suffix(6))-\(String(format: "%03d", index))", index: index, message: message, metrics: metrics)
    }

    /// Each retrieval moves the job one step: validating_files → queued → running (one
    /// training step per poll, each with a metrics event) → succeeded.
    private func retrieveJob(_ request: LoopbackServer.Request, id: String) -> LoopbackServer.Response {
        if let denied = authorised(request) { return denied }
        let object = state.withLock { state -> [String: Any]? in
            guard var job = state.jobs[id] else { return nil }
            let object = job.object()
            switch job.status {
            case "validating_files":
                job.status = "queued"
                job.events.append(Self.event(id, index: job.events.count, message: "Validating training file: \(job.trainingFile)"))
            case "queued":
                job.status = "running"
                job.events.append(Self.event(id, index: job.events.count, message: "Fine-tuning job started"))
            case "running":
                if job.step < job.totalSteps {
                    job.step += 1
                    let loss = 2.0 / Double(job.step)
                    let metrics = Event.Metrics(step: job.step, totalSteps: job.totalSteps, trainLoss: loss, validLoss: job.validationFile == nil ? nil : loss * 1.1)
                    job.events.append(Self.event(id, index: job.events.count, message: "Step \(job.step)/\(job.totalSteps): training loss=\(loss)", metrics: metrics))
                } else {
                    job.status = "succeeded"
                    job.finishedAt = job.createdAt + 120
                    job.events.append(Self.event(id, index: job.events.count, message: "The job has successfully completed"))
                }
            default:
                break
            }
            state.jobs[id] = job
            return object
        }
        guard let object else {
            return openAIError(404, "No such fine-tuning job: \(id).", type: "invalid_request_error", code: nil)
        }
        return .json(object)
    }

    private func listJobs(_ request: LoopbackServer.Request) -> LoopbackServer.Response {
        if let denied = authorised(request) { return denied }
        let objects = state.withLock { state in state.jobOrder.reversed().compactMap { state.jobs[$0]?.object() } }
        return .json(["object": "list", "data": objects, "has_more": false])
    }

    /// Events newest first, `limit` per page, `after` = the last id of the previous page.
    private func events(_ request: LoopbackServer.Request, id: String) -> LoopbackServer.Response {
        if let denied = authorised(request) { return denied }
        guard let all = state.withLock({ $0.jobs[id]?.events }) else {
            return openAIError(404, "No such fine-tuning job: \(id).", type: "invalid_request_error", code: nil)
        }
        var newestFirst = all.reversed().map { $0.object() }
        if let after = request.query["after"], let index = newestFirst.firstIndex(where: { $0["id"] as? String == after }) {
            newestFirst = Array(newestFirst[(index + 1)...])
        }
        let limit = request.query["limit"].flatMap { Int($0) } ?? 20
        let page = Array(newestFirst.prefix(limit))
        return .json(["object": "list", "data": page, "has_more": newestFirst.count > limit])
    }

    // MARK: - Anthropic

    private func messages(_ request: LoopbackServer.Request) -> LoopbackServer.Response {
        guard request.headers["x-api-key"] == apiKey else {
            return .json(["type": "error", "error": ["type": "authentication_error", "message": "invalid x-api-key"]], status: 401)
        }
        guard request.headers["anthropic-version"] != nil else {
            return .json(["type": "error", "error": ["type": "invalid_request_error", "message": "anthropic-version: header is required"]], status: 400)
        }
        guard let body = request.json, let model = body["model"] as? String, let messages = body["messages"] as? [[String: Any]], body["max_tokens"] is Int else {
            return .json(["type": "error", "error": ["type": "invalid_request_error", "message": "messages: field required"]], status: 400)
        }
        let roles = messages.compactMap { $0["role"] as? String }
        guard roles.first == "user", zip(roles, roles.dropFirst()).allSatisfy({ $0 != $1 }) else {
            return .json(["type": "error", "error": ["type": "invalid_request_error", "message": "messages: roles must alternate between \"user\" and \"assistant\""]], status: 400)
        }
        let prompt = (messages.last { $0["role"] as? String == "user" }?["content"] as? String) ?? ""
        let system = body["system"] as? String ?? ""
        let answer = Self.answer(to: prompt)
        let total = messages.compactMap { $0["content"] as? String }.reduce(Self.words(system)) { $0 + Self.words($1) } + 3 * messages.count
        // Split the prompt across the three input counters, as prompt caching does.
        let cacheRead = system.isEmpty ? 0 : total / 3
        let cacheCreation = system.isEmpty ? 0 : total / 4
        let input = total - cacheRead - cacheCreation
        let output = Self.words(answer)
        state.withLock { $0.reported.append(ReportedUsage(prompt: total, completion: output, cached: cacheRead)) }
        return .json([
            "id": "msg_test", "type": "message", "role": "assistant", "model": Self.snapshot(of: model),
            "content": [["type": "text", "text": answer]], "stop_reason": "end_turn", "stop_sequence": NSNull(),
            "usage": ["input_tokens": input, "output_tokens": output, "cache_creation_input_tokens": cacheCreation, "cache_read_input_tokens": cacheRead],
        ])
    }

    // MARK: - Multipart

    static func multipartParts(_ body: Data, boundary: String) -> [String: (filename: String?, data: Data)]? {
        let delimiter = Data("--\(boundary)".utf8)
        var parts: [String: (filename: String?, data: Data)] = [:]
        var cursor = body.startIndex
        guard let first = body.range(of: delimiter, in: cursor..<body.endIndex) else { return nil }
        cursor = first.upperBound
        while true {
            if body[cursor...].starts(with: Data("--".utf8)) { break }
            guard let headerEnd = body.range(of: Data("\r\n\r\n".utf8), in: cursor..<body.endIndex),
                  let next = body.range(of: Data("\r\n".utf8) + delimiter, in: headerEnd.upperBound..<body.endIndex) else { return nil }
            let head = String(decoding: body[cursor..<headerEnd.lowerBound], as: UTF8.self)
            guard let nameRange = head.range(of: "name=\"") else { return nil }
            let name = String(head[nameRange.upperBound...].prefix { $0 != "\"" })
            var filename: String?
            if let fileRange = head.range(of: "filename=\"") { filename = String(head[fileRange.upperBound...].prefix { $0 != "\"" }) }
            parts[name] = (filename, Data(body[headerEnd.upperBound..<next.lowerBound]))
            cursor = next.upperBound
        }
        return parts
    }
}

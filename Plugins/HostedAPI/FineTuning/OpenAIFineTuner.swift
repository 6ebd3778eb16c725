import Foundation
import TallyCore

/// Supervised fine-tuning on OpenAI's hosted service (or a server implementing the same API):
/// writes the training set as chat JSONL, uploads it (`POST /files`, purpose `fine-tune`),
/// creates a job (`POST /fine_tuning/jobs`, method `supervised`), and polls the job and its
/// events until it finishes.
///
/// The job id is written to `job.json` in the request's work directory the moment the job
/// exists, and jobs carry `metadata.tally_job_key`; a run that is interrupted (Ctrl-C, a
/// crash, a lost connection) therefore resumes polling the same job on the next run instead
/// of paying for a second one.
public struct OpenAIFineTuner: FineTuner {
    let client: HTTPClient
    let baseURL: URL
    let key: APIKey?
    let baseModel: String
    let pricing: Pricing
    let pollInterval: Double
    let tokenLimitField: String

    /// - Parameters:
    ///   - baseModel: the model to fine-tune (`gpt-4o-mini-2024-07-18`).
    ///   - pricing: the backend's prices; `training_per_mtok` prices the job.
    ///   - pollInterval: seconds between status polls.
    public init(client: HTTPClient, baseURL: URL, key: APIKey?, baseModel: String, pricing: Pricing, pollInterval: Double, tokenLimitField: String) {
        self.client = client
        self.baseURL = baseURL
        self.key = key
        self.baseModel = baseModel
        self.pricing = pricing
        self.pollInterval = pollInterval
        self.tokenLimitField = tokenLimitField
    }

    static let recordFileName = "job.json"
    static let metadataKey = "tally_job_key"

    public func fineTune(_ request: FineTuneRequest, progress: @escaping @Sendable (ProgressEvent) -> Void) async throws -> FineTuneOutcome {
        let phase = "fine-tune \(baseModel)"
        let host = baseURL.host ?? baseURL.absoluteString
        let startedAt = Date()
        let directory = request.workDirectory
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw TallyError(code: .io, message: "cannot create the fine-tuning work directory \(directory.path); check permissions", underlying: error)
        }
        let recordURL = directory.appendingPathComponent(Self.recordFileName)
        var record = try loadRecord(recordURL, jobKey: request.jobKey)
            ?? FineTuneJobRecord(jobKey: request.jobKey, baseModel: baseModel, host: host, updatedAt: Date())
        progress(.started(phase: phase, total: nil))

        var notes: [String] = []
        if request.method != .full {
            notes.append("the provider chooses how weights are adapted; the parameters of \(request.method.name) do not apply to hosted fine-tuning")
        }
        let epochs = max(1, Int(request.options.epochs.rounded()))
        if Double(epochs) != request.options.epochs {
            notes.append("hosted fine-tuning takes whole epochs: \(request.options.epochs) rounded to \(epochs)")
        }

        if let jobID = record.jobID {
            progress(.note("resuming hosted fine-tuning job \(jobID) recorded in \(recordURL.lastPathComponent); no new job is created"))
        } else if let existing = try await findExistingJob(jobKey: request.jobKey) {
            record.jobID = existing.id
            record.status = existing.status
            try save(&record, to: recordURL)
            progress(.note("found hosted fine-tuning job \(existing.id) started by an earlier run; resuming it"))
        } else {
            if record.trainingFile == nil {
                record.trainingFile = try await upload(request.train, named: "train.jsonl", in: directory)
                try save(&record, to: recordURL)
            }
            if record.validationFile == nil, !request.validation.isEmpty {
                record.validationFile = try await upload(request.validation, named: "validation.jsonl", in: directory)
                try save(&record, to: recordURL)
            }
            guard let trainingFile = record.trainingFile else {
                throw TallyError(code: .backend, message: "hosted fine-tuning: the training file was not uploaded")
            }
            let job: FineTuningJob
            do {
                job = try await createJob(request: request, epochs: epochs, trainingFile: trainingFile, validationFile: record.validationFile)
            } catch let error as TallyError {
                // The request may have created the job even though its answer was lost.
                guard let found = try await findExistingJob(jobKey: request.jobKey) else { throw error }
                job = found
            }
            record.jobID = job.id
            record.status = job.status
            try save(&record, to: recordURL)
            progress(.note("created hosted fine-tuning job \(job.id) on \(host); its id is kept in \(recordURL.lastPathComponent) so an interrupted run resumes it"))
        }
        guard let jobID = record.jobID else {
            throw TallyError(code: .backend, message: "hosted fine-tuning: no job id after creating the job")
        }

        var seen = Set<String>()
        var trainLoss: [Int: Double] = [:]
        var validationLoss: [Int: Double] = [:]
        var totalSteps: Int?
        var lastStatus: String?
        while true {
            let job = try await fetchJob(jobID)
            for event in try await newEvents(jobID: jobID, seen: &seen) {
                if let metrics = event.metrics, let step = metrics.step {
                    if let total = metrics.totalSteps { totalSteps = total }
                    if let loss = metrics.trainLoss { trainLoss[step] = loss }
                    if let loss = metrics.validLoss { validationLoss[step] = loss }
                    let detail = metrics.trainLoss.map { String(format: "loss %.4f", $0) }
                    progress(.advanced(phase: phase, completed: step, total: totalSteps, detail: detail))
                } else if let message = event.message, event.level == "warn" || event.level == "error" {
                    progress(.note("job \(jobID): \(oneLine(message, limit: 200))"))
                }
            }
            if job.status != lastStatus {
                lastStatus = job.status
                record.status = job.status
                try save(&record, to: recordURL)
                progress(.note("hosted fine-tuning job \(jobID): \(job.status.replacingOccurrences(of: "_", with: " "))"))
            }
            switch job.status {
            case "succeeded":
                guard let model = job.fineTunedModel, !model.isEmpty else {
                    throw TallyError(code: .backend, message: "hosted fine-tuning job \(jobID) succeeded but names no fine_tuned_model")
                }
                record.fineTunedModel = model
                record.trainedTokens = job.trainedTokens
                try save(&record, to: recordURL)
                progress(.finished(phase: phase))
                let trained = job.trainedTokens ?? 0
                var wall = Date().timeIntervalSince(startedAt)
                if let created = job.createdAt, let finished = job.finishedAt, finished >= created { wall = finished - created }
                notes.insert("hosted fine-tuning job \(jobID) on \(host) produced \(model)", at: 0)
                if let perMTok = pricing.trainingPerMTok {
                    notes.append(String(format: "training cost %d trained tokens x %.4g USD per 1M tokens = %.4f USD (the recipe's price; the provider does not report its bill)", trained, perMTok, CallPricing.TrainingCharge.tokens(trained: trained, usdPerMTok: perMTok).usd ?? 0))
                } else {
                    notes.append("no training_per_mtok price in the recipe and no bill from the provider: the job's cost is unknown")
                }
                return FineTuneOutcome(
                    artifact: model, wallSeconds: wall, trainedTokens: trained,
                    steps: trainLoss.keys.max() ?? totalSteps ?? 0,
                    trainLoss: trainLoss.sorted { $0.key < $1.key }.map { LossPoint(step: $0.key, loss: $0.value) },
                    validationLoss: validationLoss.sorted { $0.key < $1.key }.map { LossPoint(step: $0.key, loss: $0.value) },
                    billedUSD: nil, hostedOn: host, notes: notes)
            case "failed", "cancelled":
                // Keep the record under another name so the next run starts a new job.
                let archived = directory.appendingPathComponent("job-\(jobID)-\(job.status).json")
                try? FileManager.default.removeItem(at: archived)
                try? FileManager.default.moveItem(at: recordURL, to: archived)
                let reason = job.error?.message.map { ": \(oneLine($0, limit: 240))" } ?? ""
                throw TallyError(code: .backend, message: "hosted fine-tuning job \(jobID) \(job.status)\(reason); the next run starts a new job")
            default:
                try await Task.sleep(for: .milliseconds(Int64(pollInterval * 1000)))
            }
        }
    }

    public func generator(for outcome: FineTuneOutcome) async throws -> any TextGenerator {
        OpenAIChatGenerator(model: outcome.artifact, baseURL: baseURL, key: key, client: client, tokenLimitField: tokenLimitField)
    }

    // MARK: - Requests

    private func headers(json: Bool) -> [(name: String, value: String)] {
        var headers: [(name: String, value: String)] = [("Accept", "application/json")]
        if json { headers.append(("Content-Type", "application/json")) }
        if let key { headers.append(("Authorization", "Bearer \(key.value)")) }
        return headers
    }

    /// Writes `examples` as chat JSONL into `directory` and uploads the file.
    private func upload(_ examples: [TrainingExample], named name: String, in directory: URL) async throws -> String {
        let data = try Self.chatJSONL(examples)
        let fileURL = directory.appendingPathComponent(name)
        do {
            try data.write(to: fileURL, options: .atomic)
        } catch {
            throw TallyError(code: .io, message: "cannot write \(fileURL.path); check permissions and free space", underlying: error)
        }
        var form = MultipartForm()
        form.addField("purpose", "fine-tune")
        form.addFile("file", filename: name, contentType: "application/jsonl", data: data)
        var headers = headers(json: false)
        headers.append(("Content-Type", form.contentType))
        let request = HTTPRequest(method: "POST", url: endpoint(baseURL, "/files"), headers: headers, body: form.encoded())
        return try await client.send(request) { response in
            (try decodeJSON(UploadedFile.self, from: response).id, nil)
        }
    }

    /// Training examples in OpenAI's chat fine-tuning format, one JSON object per line.
    static func chatJSONL(_ examples: [TrainingExample]) throws -> Data {
        struct Line: Encodable { let messages: [ChatMessage] }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var data = Data()
        for example in examples {
            data.append(try encoder.encode(Line(messages: example.messages + [.assistant(example.completion)])))
            data.append(0x0A)
        }
        return data
    }

    private func createJob(request: FineTuneRequest, epochs: Int, trainingFile: String, validationFile: String?) async throws -> FineTuningJob {
        struct Hyperparameters: Encodable {
            let nEpochs: Int
            let batchSize: Int
            let learningRateMultiplier: Double?
            enum CodingKeys: String, CodingKey {
                case nEpochs = "n_epochs"
                case batchSize = "batch_size"
                case learningRateMultiplier = "learning_rate_multiplier"
            }
        }
        struct Supervised: Encodable { let hyperparameters: Hyperparameters }
        struct Method: Encodable {
            let type = "supervised"
            let supervised: Supervised
        }
        struct Body: Encodable {
            let model: String
            let trainingFile: String
            let validationFile: String?
            let suffix: String
            let seed: Int
            let metadata: [String: String]
            let method: Method
            enum CodingKeys: String, CodingKey {
                case model, suffix, seed, metadata, method
                case trainingFile = "training_file"
                case validationFile = "validation_file"
            }
        }
        let options = request.options
        let body = Body(
            model: baseModel, trainingFile: trainingFile, validationFile: validationFile, suffix: "tally",
            seed: Int(options.seed % 2_147_483_647), metadata: [Self.metadataKey: request.jobKey],
            method: Method(supervised: Supervised(hyperparameters: Hyperparameters(
                nEpochs: epochs, batchSize: max(1, options.batchSize), learningRateMultiplier: options.learningRateMultiplier))))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let http = HTTPRequest(
            method: "POST", url: endpoint(baseURL, "/fine_tuning/jobs"), headers: headers(json: true),
            body: try encoder.encode(body), idempotent: false)
        return try await client.send(http) { response in
            (try decodeJSON(FineTuningJob.self, from: response), nil)
        }
    }

    private func fetchJob(_ id: String) async throws -> FineTuningJob {
        let request = HTTPRequest(method: "GET", url: endpoint(baseURL, "/fine_tuning/jobs/\(id)"), headers: headers(json: false))
        return try await client.send(request) { response in
            (try decodeJSON(FineTuningJob.self, from: response), nil)
        }
    }

    /// A job of an earlier run for this `jobKey` that has not failed, found by its metadata.
    /// Servers that cannot list jobs yield nil.
    private func findExistingJob(jobKey: String) async throws -> FineTuningJob? {
        let request = HTTPRequest(method: "GET", url: endpoint(baseURL, "/fine_tuning/jobs?limit=100"), headers: headers(json: false))
        do {
            let list = try await client.send(request) { response in
                (try decodeJSON(FineTuningJobList.self, from: response), nil)
            }
            return list.data.first { $0.metadata?[Self.metadataKey] == jobKey && $0.status != "failed" && $0.status != "cancelled" }
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            return nil
        }
    }

    /// Events not seen before, oldest first (the API lists newest first, paged with `after`).
    private func newEvents(jobID: String, seen: inout Set<String>) async throws -> [FineTuningEvent] {
        var fresh: [FineTuningEvent] = []
        var after: String?
        pages: while true {
            var path = "/fine_tuning/jobs/\(jobID)/events?limit=100"
            if let after { path += "&after=\(after)" }
            let request = HTTPRequest(method: "GET", url: endpoint(baseURL, path), headers: headers(json: false))
            let page = try await client.send(request) { response in
                (try decodeJSON(FineTuningEventList.self, from: response), nil)
            }
            for event in page.data {
                if seen.contains(event.id) { break pages }
                seen.insert(event.id)
                fresh.append(event)
            }
            guard page.hasMore == true, let last = page.data.last else { break }
            after = last.id
        }
        return fresh.reversed()
    }

    // MARK: - job.json

    private func loadRecord(_ url: URL, jobKey: String) throws -> FineTuneJobRecord? {
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        do {
            let record = try decoder.decode(FineTuneJobRecord.self, from: Data(contentsOf: url))
            return record.jobKey == jobKey ? record : nil
        } catch {
            throw TallyError(code: .io, message: "\(url.path) is unreadable; delete it to start a new hosted fine-tuning job (a job it recorded keeps running on the provider)", underlying: error)
        }
    }

    private func save(_ record: inout FineTuneJobRecord, to url: URL) throws {
        record.updatedAt = Date()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        do {
            try encoder.encode(record).write(to: url, options: .atomic)
        } catch {
            throw TallyError(code: .io, message: "cannot write \(url.path); check permissions and free space", underlying: error)
        }
    }
}

import Foundation

/// A `fine_tuning.job` object, the fields Tally reads.
struct FineTuningJob: Decodable, Sendable {
    struct JobError: Decodable, Sendable {
        let code: String?
        let message: String?
        let param: String?
    }
    let id: String
    let status: String
    let model: String?
    let fineTunedModel: String?
    let trainedTokens: Int?
    let createdAt: Double?
    let finishedAt: Double?
    let error: JobError?
    let metadata: [String: String]?

    enum CodingKeys: String, CodingKey {
        case id, status, model, error, metadata
        case fineTunedModel = "fine_tuned_model"
        case trainedTokens = "trained_tokens"
        case createdAt = "created_at"
        case finishedAt = "finished_at"
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(String.self, forKey: .id)
        status = try container.decode(String.self, forKey: .status)
        model = try container.decodeIfPresent(String.self, forKey: .model)
        fineTunedModel = try container.decodeIfPresent(String.self, forKey: .fineTunedModel)
        trainedTokens = try container.decodeIfPresent(Int.self, forKey: .trainedTokens)
        createdAt = try container.decodeIfPresent(Double.self, forKey: .createdAt)
        finishedAt = try container.decodeIfPresent(Double.self, forKey: .finishedAt)
        // `error` is an object, or null, or (on some servers) an empty object.
        error = try? container.decodeIfPresent(JobError.self, forKey: .error)
        metadata = try? container.decodeIfPresent([String: String].self, forKey: .metadata)
    }

    var isTerminal: Bool { ["succeeded", "failed", "cancelled"].contains(status) }
}

/// A list of jobs (`GET /fine_tuning/jobs`).
struct FineTuningJobList: Decodable, Sendable {
    let data: [FineTuningJob]
    let hasMore: Bool?
    enum CodingKeys: String, CodingKey {
        case data
        case hasMore = "has_more"
    }
}

/// A `fine_tuning.job.event`; `metrics` events carry the step and losses in `data`.
struct FineTuningEvent: Decodable, Sendable {
    struct Metrics: Decodable, Sendable {
        let step: Int?
        let totalSteps: Int?
        let trainLoss: Double?
        let validLoss: Double?
        enum CodingKeys: String, CodingKey {
            case step
            case totalSteps = "total_steps"
            case trainLoss = "train_loss"
            case validLoss = "valid_loss"
        }
    }
    let id: String
    let createdAt: Double?
    let level: String?
    let message: String?
    let type: String?
    let metrics: Metrics?

    enum CodingKeys: String, CodingKey {
        case id, level, message, type, data
        case createdAt = "created_at"
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(String.self, forKey: .id)
        createdAt = try container.decodeIfPresent(Double.self, forKey: .createdAt)
        level = try container.decodeIfPresent(String.self, forKey: .level)
        message = try container.decodeIfPresent(String.self, forKey: .message)
        type = try container.decodeIfPresent(String.self, forKey: .type)
        metrics = try? container.decodeIfPresent(Metrics.self, forKey: .data)
    }
}

/// A page of events (`GET /fine_tuning/jobs/{id}/events`), newest first.
struct FineTuningEventList: Decodable, Sendable {
    let data: [FineTuningEvent]
    let hasMore: Bool?
    enum CodingKeys: String, CodingKey {
        case data
        case hasMore = "has_more"
    }
}

/// A `file` object (`POST /files`).
struct UploadedFile: Decodable, Sendable {
    let id: String
    let bytes: Int?
    let purpose: String?
}

/// What Tally keeps in `job.json` inside the fine-tuning work directory, written as soon as
/// each step has happened so an interrupted run resumes instead of paying for a second job.
/// Holds ids only: no key, no training data.
struct FineTuneJobRecord: Codable, Sendable {
    var jobKey: String
    var baseModel: String
    var host: String
    var trainingFile: String?
    var validationFile: String?
    var jobID: String?
    var status: String?
    var fineTunedModel: String?
    var trainedTokens: Int?
    var updatedAt: Date

    enum CodingKeys: String, CodingKey {
        case host, status
        case jobKey = "job_key"
        case baseModel = "base_model"
        case trainingFile = "training_file"
        case validationFile = "validation_file"
        case jobID = "job_id"
        case fineTunedModel = "fine_tuned_model"
        case trainedTokens = "trained_tokens"
        case updatedAt = "updated_at"
    }
}
